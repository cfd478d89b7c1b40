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

export function load(): Session | null {
  const text = sessionStorage.getItem(STORAGE_KEY);
  if (!text) return null;
  try {
    const s = JSON.parse(text) as Session;
    if (expired(s)) {
      forget();
      return null;
    }
    return s;
  } catch {
    forget();
    return null;
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

function open(session: Session) {
  const c = config(session.region, session.credentials);
  current = {
    session,
    kms: new KMSClient(c),
    // LookupEvents is allowed two calls a second, as on AWS: the trail's pages are read at
    // the rate the server grants, backing off when it throttles, rather than failing a look.
    trail: new CloudTrailClient({ ...c, maxAttempts: 8, retryMode: "adaptive" }),
    sts: new STSClient(c),
  };
  return current;
}

function expired(s: Session): boolean {
  return !!s.credentials.expiration && Date.parse(s.credentials.expiration) <= Date.now();
}

function clients() {
  if (current && expired(current.session)) forget();
  if (current) return current;
  const s = load();
  if (!s) throw new Error("not signed in");
  return open(s);
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
