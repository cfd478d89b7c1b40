// The signed-in identity: an access key pair (or a role's temporary credentials) kept in
// this tab's session storage only. The server never sees the secret, only SigV4 signatures
// made with it here; closing the tab or signing out forgets it.

import { KMSClient } from "@aws-sdk/client-kms";
import { CloudTrailClient } from "@aws-sdk/client-cloudtrail";
import {
  AssumeRoleCommand,
  GetCallerIdentityCommand,
  STSClient,
} from "@aws-sdk/client-sts";

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: string;
}

export interface Session {
  credentials: Credentials;
  region: string;
  arn: string;
  account: string;
}

const STORAGE_KEY = "ferrokms-console-session";

/** The tab's session, or why there is none: "" when no one has signed in here (or what was
 * kept is unreadable), a notice when the credentials have expired. An expired or unreadable
 * session is forgotten. */
export function resume(): Session | string {
  const text = sessionStorage.getItem(STORAGE_KEY);
  if (!text) return "";
  try {
    const s = JSON.parse(text) as Session;
    if (!expired(s)) return s;
    forget();
    return EXPIRED;
  } catch {
    forget();
    return "";
  }
}

export function forget(): void {
  sessionStorage.removeItem(STORAGE_KEY);
  current = null;
}

let current: { session: Session; kms: KMSClient; trail: CloudTrailClient; sts: STSClient } | null =
  null;

function config(region: string, credentials: Credentials) {
  return {
    region,
    // The console is served by the API it calls: same origin, so no CORS, and the CSP's
    // connect-src 'self' holds.
    endpoint: window.location.origin,
    credentials: {
      accessKeyId: credentials.accessKeyId,
      secretAccessKey: credentials.secretAccessKey,
      sessionToken: credentials.sessionToken,
    },
    maxAttempts: 2,
  };
}

/** The access key an SDK error's call was signed with, so that an answer to a call of an
 * earlier session (still in flight at sign-out) cannot end the session after it. */
const SIGNED_BY = Symbol("signedBy");

/** A middleware that marks each failed call's error with the key that signed it. */
function signedBy(accessKeyId: string) {
  return <A, R>(next: (args: A) => Promise<R>) =>
    async (args: A): Promise<R> => {
      try {
        return await next(args);
      } catch (e) {
        if (e && typeof e === "object") (e as { [SIGNED_BY]?: string })[SIGNED_BY] = accessKeyId;
        throw e;
      }
    };
}

/** The access key of the session in use or kept, expired or not, read without changing
 * anything. */
function currentAccessKey(): string | undefined {
  if (current) return current.session.credentials.accessKeyId;
  try {
    const kept = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? "null") as Session | null;
    return kept?.credentials?.accessKeyId;
  } catch {
    return undefined;
  }
}

/** Whether an error came from a call of a session other than the current one (when there is
 * none, the error's session is the one that just ended). */
export function fromAnotherSession(e: unknown): boolean {
  const by = e && typeof e === "object" ? (e as { [SIGNED_BY]?: string })[SIGNED_BY] : undefined;
  const mine = currentAccessKey();
  return by !== undefined && mine !== undefined && mine !== by;
}

function open(session: Session) {
  const c = config(session.region, session.credentials);
  const id = session.credentials.accessKeyId;
  const kms = new KMSClient(c);
  // LookupEvents is allowed two calls a second, as on AWS: the trail's pages are read at
  // the rate the server grants, backing off when it throttles, rather than failing a look.
  const trail = new CloudTrailClient({ ...c, maxAttempts: 8, retryMode: "adaptive" });
  const sts = new STSClient(c);
  kms.middlewareStack.add(signedBy(id), { step: "initialize" });
  trail.middlewareStack.add(signedBy(id), { step: "initialize" });
  sts.middlewareStack.add(signedBy(id), { step: "initialize" });
  current = { session, kms, trail, sts };
  ended = false;
  return current;
}

function expired(s: Session): boolean {
  return !!s.credentials.expiration && Date.parse(s.credentials.expiration) <= Date.now();
}

/** Thrown when the session is gone (signed out elsewhere, or a role's credentials expired):
 * the console shows the sign-in form with `message`, not a broken page. */
export class SignedOut extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SignedOut";
  }
}

/** Whether the sign-in form has been shown for the last session's end. */
let ended = false;

/** Forgets the session and tells the frame, which shows the sign-in form with why. */
export function end(reason: string): SignedOut {
  forget();
  // Once a session: calls still in flight when it ended must not redraw the form (wiping
  // its notice, or what the person has typed since).
  if (!ended) {
    ended = true;
    window.dispatchEvent(new CustomEvent(SIGNED_OUT_EVENT, { detail: reason }));
  }
  return new SignedOut(reason);
}

export const SIGNED_OUT_EVENT = "ferrokms-signed-out";

const EXPIRED = "The role session's credentials have expired. Sign in again.";

function clients() {
  if (current && expired(current.session)) throw end(EXPIRED);
  if (current) return current;
  const s = resume();
  if (typeof s === "string") throw end(s || "You are signed out. Sign in again.");
  return open(s);
}

/** The server's word that the credentials no longer hold (a session token past its end). */
export function endsSession(code: string): boolean {
  return code === "ExpiredTokenException" || code === "ExpiredToken";
}

export const kms = (): KMSClient => clients().kms;
export const trail = (): CloudTrailClient => clients().trail;
export const session = (): Session => clients().session;

export interface SignIn {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  region: string;
  roleArn?: string;
  roleSessionName?: string;
  /** How long the role's credentials last, in seconds (AssumeRole's DurationSeconds). */
  durationSeconds?: number;
}

/** Checks the credentials with GetCallerIdentity (after AssumeRole, if a role is named). */
export async function signIn(input: SignIn): Promise<Session> {
  let credentials: Credentials = {
    accessKeyId: input.accessKeyId.trim(),
    secretAccessKey: input.secretAccessKey.trim(),
    sessionToken: input.sessionToken?.trim() || undefined,
  };
  if (input.roleArn) {
    const sts = new STSClient(config(input.region, credentials));
    const assumed = await sts.send(
      new AssumeRoleCommand({
        RoleArn: input.roleArn.trim(),
        RoleSessionName: input.roleSessionName?.trim() || "ferrokms-console",
        DurationSeconds: input.durationSeconds,
      }),
    );
    const c = assumed.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey) throw new Error("AssumeRole returned no credentials");
    credentials = {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      sessionToken: c.SessionToken,
      expiration: c.Expiration?.toISOString(),
    };
  }
  const sts = new STSClient(config(input.region, credentials));
  const me = await sts.send(new GetCallerIdentityCommand({}));
  const s: Session = {
    credentials,
    region: input.region,
    arn: me.Arn ?? "",
    account: me.Account ?? "",
  };
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(s));
  open(s);
  return s;
}
