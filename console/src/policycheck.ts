// What the console can tell about a key policy before it is sent: the checks ferrokms's
// policy parser makes (crates/ferrokms-core/src/policy: PolicyDocument::parse and
// check_new_policy), with the messages the server gives, and whether the policy would still
// let the person editing it change it (the lockout the server's safety check refuses).
// The server decides in the end; this only says it sooner.

export interface Finding {
  /** "refused": the server refuses the policy with this message (its code first);
   * "warning": the server takes it, but it may not do what it seems to. */
  kind: "refused" | "warning";
  message: string;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Where serde_json, the server's JSON reader, refuses what JSON.parse takes. */
class NotJson extends Error {}

/** serde_json's nesting limit: 128 levels refused, 127 read. */
const MAX_DEPTH = 127;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The policy as the server reads it. Numbers become the text the server makes of them (it
 * takes a number only where it takes a string, and reads it as text): an integer as its
 * digits, a fraction or exponent as something no account id can be, as serde's float
 * formatting never gives twelve bare digits. What serde_json refuses is refused: numbers out
 * of range, lone surrogates, nesting too deep.
 */
function parseAsServer(text: string): Json {
  const doc = JSON.parse(text, (key: string, value: unknown, context?: { source?: string }) => {
    if (typeof value === "number") {
      if (!Number.isFinite(value)) throw new NotJson();
      // A JSON number with a fraction or an exponent; serde reads it as a float.
      const source = context?.source ?? String(value);
      if (!/^-?\d+$/.test(source)) return source;
      const n = BigInt(source);
      // Beyond 64 bits serde reads a float.
      return n >= -(2n ** 63n) && n < 2n ** 64n ? n.toString() : `${source}.0`;
    }
    if (typeof value === "string" && LONE_SURROGATE.test(value)) throw new NotJson();
    if (key !== "" && LONE_SURROGATE.test(key)) throw new NotJson();
    return value;
  }) as Json;
  const depth = (v: Json): number =>
    v && typeof v === "object" ? 1 + Math.max(0, ...(Array.isArray(v) ? v : Object.values(v)).map(depth)) : 0;
  if (depth(doc) > MAX_DEPTH) throw new NotJson();
  return doc;
}

/** The longest Policy member the API takes, in characters. */
const MAX_POLICY_CHARS = 131072;

/** The default key policy quota (the server's `key_policy_bytes`). */
const MAX_POLICY_BYTES = 32768;
const STATEMENT_KEYS = new Set(["Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"]);
const OPERATORS = new Set([
  "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike", "StringNotLike",
  "NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals",
  "DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals",
  "Bool", "BinaryEquals", "IpAddress", "NotIpAddress", "ArnEquals", "ArnNotEquals", "ArnLike", "ArnNotLike", "Null",
]);

const malformed = (message: string) => `MalformedPolicyDocumentException: ${message}`;
const INVALID_PRINCIPALS = malformed("Policy contains a statement with one or more invalid principals.");

/** Refusal of a statement: the server's message, which stops its reading of the statement. */
class Refused {
  constructor(readonly message: string) {}
}

/** A string or a list of scalars, as the server reads them (booleans as text; numbers are
 * text already, from parseAsServer); anything else is refused as the server refuses it. */
function strings(v: Json, element: string): string[] {
  const scalar = (x: Json) => {
    if (typeof x === "string") return x;
    if (typeof x === "boolean") return String(x);
    throw new Refused(malformed(`${element} must be a string or a list of strings`));
  };
  return Array.isArray(v) ? v.map(scalar) : [scalar(v)];
}

function optionalStrings(s: Record<string, Json>, element: string): string[] | undefined {
  return s[element] === undefined ? undefined : strings(s[element], element);
}

/** Orders strings by code point, which is the UTF-8 byte order the server's maps use (a
 * plain sort compares UTF-16 units, which differs beyond the Basic Multilingual Plane). */
function byCodePoint(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = (x[i].codePointAt(0) ?? 0) - (y[i].codePointAt(0) ?? 0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/** An object's members in the order the server reads them (its JSON maps are sorted by key). */
const sorted = (o: { [k: string]: Json }): [string, Json][] => Object.keys(o).sort(byCodePoint).map((k) => [k, o[k]]);

const isObject = (v: Json | undefined): v is { [k: string]: Json } => !!v && typeof v === "object" && !Array.isArray(v);

/** An AWS principal the server takes: a 12-digit account, or an IAM or STS ARN. */
function validPrincipal(p: string): boolean {
  if (/^\d{12}$/.test(p)) return true;
  const parts = p.split(":");
  return parts.length >= 6 && parts[0] === "arn" && (parts[2] === "iam" || parts[2] === "sts") && parts[3] === "" &&
    /^\d{12}$/.test(parts[4]) && parts.slice(5).join(":") !== "";
}

/** A Principal or NotPrincipal as the server reads it: everyone, or the listed AWS and
 * service principals (Federated and CanonicalUser are taken and never match). */
function principals(v: Json, at: string, warnings: Finding[]): { any: true } | { aws: string[]; service: string[] } {
  if (v === "*") return { any: true };
  if (!isObject(v)) throw new Refused(INVALID_PRINCIPALS);
  const aws: string[] = [];
  const service: string[] = [];
  for (const [kind, value] of sorted(v)) {
    if (kind === "AWS") aws.push(...strings(value, "Principal"));
    else if (kind === "Service") service.push(...strings(value, "Principal"));
    else if (kind === "Federated" || kind === "CanonicalUser") {
      warnings.push({ kind: "warning", message: `${at}: a ${kind} principal never matches a request to ferrokms` });
    } else throw new Refused(INVALID_PRINCIPALS);
  }
  if (aws.includes("*")) return { any: true };
  if (!aws.every(validPrincipal)) throw new Refused(INVALID_PRINCIPALS);
  return { aws, service };
}

interface Parsed {
  principals: ({ any: true } | { aws: string[]; service: string[] } | undefined)[];
  lists: (string[] | undefined)[];
  conditions: { op: string; key: string; values: string[]; forAll: boolean }[];
}

/** One statement's grammar, as the server's PolicyDocument::parse reads it. */
function parseStatement(s: Json, at: string, warnings: Finding[]): Parsed {
  if (!isObject(s)) throw new Refused(malformed("Each statement must be an object"));
  for (const k of Object.keys(s)) {
    if (!STATEMENT_KEYS.has(k)) warnings.push({ kind: "warning", message: `${at}: ${k} is not a policy element; it is ignored` });
  }
  if (s.Effect !== "Allow" && s.Effect !== "Deny") throw new Refused(malformed("Each statement needs an Effect of Allow or Deny"));
  const principal = s.Principal === undefined ? undefined : principals(s.Principal, at, warnings);
  const notPrincipal = s.NotPrincipal === undefined ? undefined : principals(s.NotPrincipal, at, warnings);
  if (!principal && !notPrincipal) {
    throw new Refused(malformed("Policy contains a statement with no principal (key policy statements need Principal or NotPrincipal)."));
  }
  if (principal && notPrincipal) throw new Refused(malformed("A statement may not have both Principal and NotPrincipal"));
  const action = optionalStrings(s, "Action");
  const notAction = optionalStrings(s, "NotAction");
  if ((action === undefined) === (notAction === undefined)) {
    throw new Refused(malformed("Each statement needs exactly one of Action or NotAction"));
  }
  const resource = optionalStrings(s, "Resource");
  const notResource = optionalStrings(s, "NotResource");
  if (resource !== undefined && notResource !== undefined) {
    throw new Refused(malformed("A statement may not have both Resource and NotResource"));
  }
  const conditions: { op: string; key: string; values: string[]; forAll: boolean }[] = [];
  if (s.Condition !== undefined) {
    if (!isObject(s.Condition)) throw new Refused(malformed("Condition must be an object"));
    for (const [op, block] of sorted(s.Condition)) {
      const rest = op.replace(/^(ForAllValues|ForAnyValue):/, "");
      const base = rest.endsWith("IfExists") && rest !== "NullIfExists" ? rest.slice(0, -"IfExists".length) : rest;
      if (!OPERATORS.has(base)) throw new Refused(malformed(`Invalid condition operator: ${op}`));
      if (!isObject(block)) throw new Refused(malformed(`Condition ${op} must map keys to values`));
      for (const [key, values] of sorted(block)) {
        conditions.push({ op, key: key.toLowerCase(), values: strings(values, "Condition"), forAll: op.startsWith("ForAllValues:") });
      }
    }
  }
  return { principals: [principal, notPrincipal], lists: [action, notAction, resource, notResource], conditions };
}

/** What the server's check_new_policy refuses in a statement that parsed. */
function checkParsed({ principals, lists, conditions }: Parsed): void {
  for (const p of principals) {
    if (!p || "any" in p) continue;
    if (p.aws.length === 0 && p.service.length === 0) throw new Refused(INVALID_PRINCIPALS);
    if (p.aws.some((a) => /[*?]/.test(a))) throw new Refused(INVALID_PRINCIPALS);
  }
  for (const l of lists) {
    if (l && l.length === 0) throw new Refused(malformed("A statement lists no actions or resources."));
  }
  for (const c of conditions) {
    if (c.values.length === 0) throw new Refused(malformed(`Condition ${c.op} on ${c.key} has no values.`));
    if (c.values.some((v) => v.includes("${"))) {
      throw new Refused(malformed(`Condition ${c.op} on ${c.key} uses a policy variable; ferrokms does not substitute policy variables.`));
    }
    if (!c.forAll) continue;
    if (c.key.startsWith("kms:encryptioncontext:")) {
      throw new Refused(malformed(
        "OverlyPermissiveCondition:EncryptionContext: Using the ForAllValues set operator with a single-valued condition key matches requests without the specified encryption context or with an unspecified encryption context. To fix, remove ForAllValues.",
      ));
    }
    if (c.key.startsWith("aws:requesttag/")) {
      throw new Refused(malformed(
        "OverlyPermissiveCondition: Using the ForAllValues set operator with a single-valued condition key matches requests without the specified tag or with an unspecified tag. To fix, remove ForAllValues.",
      ));
    }
  }
}

/**
 * The policy as the server will judge it: refusals with the server's own code and message
 * (the first is the one the server answers with; each statement is read up to its first),
 * and warnings about what it takes but may not mean. `doc` is there when the text is a JSON
 * object with statements, refused or not, for the lockout check.
 */
export function checkPolicy(text: string): { findings: Finding[]; doc?: { Statement: Record<string, Json>[] } } {
  const refused: Finding[] = [];
  const warnings: Finding[] = [];
  // The API's length limits on the member come first.
  const chars = [...text].length;
  if (chars < 1 || chars > MAX_POLICY_CHARS) {
    const bound = chars < 1 ? "greater than or equal to 1" : `less than or equal to ${MAX_POLICY_CHARS}`;
    return {
      findings: [
        { kind: "refused", message: `ValidationException: 1 validation error detected: Value '${text}' at 'policy' failed to satisfy constraint: Member must have length ${bound}` },
      ],
    };
  }
  const bytes = new TextEncoder().encode(text).length;
  if (bytes > MAX_POLICY_BYTES) {
    refused.push({
      kind: "refused",
      message: `LimitExceededException: The key policy exceeds the maximum size of ${MAX_POLICY_BYTES} bytes. (The default quota; this server's may be larger.)`,
    });
  }
  // A refusal of the whole document, after which the server reads no statement.
  const stop = (message: string) => ({ findings: [...refused, { kind: "refused" as const, message: malformed(message) }] });
  let doc: Json;
  try {
    doc = parseAsServer(text);
  } catch {
    return stop("The policy is not a valid JSON document.");
  }
  if (!isObject(doc)) return stop("The policy must be a JSON object.");
  const raw = doc.Statement;
  const statements = Array.isArray(raw) ? raw : isObject(raw) ? [raw] : null;
  if (!statements) return stop("The policy needs a Statement.");
  // The server reads every statement's grammar before it checks any: its first refusal is
  // the first statement's that does not parse, else the first that fails the checks.
  const attempt = (i: number, run: () => void) => {
    try {
      run();
    } catch (e) {
      if (!(e instanceof Refused)) throw e;
      refused.push({ kind: "refused", message: `${e.message} (Statement ${i})` });
    }
  };
  const parsed: [number, Parsed][] = [];
  statements.forEach((s, i) => attempt(i, () => parsed.push([i, parseStatement(s, `Statement ${i}`, warnings)])));
  parsed.forEach(([i, p]) => attempt(i, () => checkParsed(p)));
  // The lockout check reads statements as objects; one that is not is refused above.
  const objects = statements.filter(isObject) as Record<string, Json>[];
  return { findings: [...refused, ...warnings], doc: { Statement: objects } };
}

function globMatch(pattern: string, text: string): boolean {
  const re = new RegExp(
    "^" + pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$",
    "i",
  );
  return re.test(text);
}

/** The ARNs a policy may name the caller by: itself, its role, its account. */
function namesOf(callerArn: string, account: string): string[] {
  const names = [callerArn, `arn:aws:iam::${account}:root`, account];
  const m = /^arn:aws:sts::(\d{12}):assumed-role\/([^/]+)\//.exec(callerArn);
  if (m) names.push(`arn:aws:iam::${m[1]}:role/${m[2]}`);
  return names;
}

/** A string or list of scalars, leniently: what the lockout check looks at. */
function list(v: Json | undefined): string[] | null {
  if (v === undefined) return null;
  const one = (x: Json) => (typeof x === "string" || typeof x === "number" || typeof x === "boolean" ? String(x) : null);
  return (Array.isArray(v) ? v.map(one) : [one(v)]).filter((x): x is string => x !== null);
}

function principalsOf(p: Json | undefined): string[] {
  if (p === "*") return ["*"];
  return p && typeof p === "object" && !Array.isArray(p) ? list(p.AWS) ?? [] : [];
}

/** Whether a statement's actions take in kms:PutKeyPolicy. */
function coversPutKeyPolicy(s: Record<string, Json>): boolean {
  const actions = list(s.Action);
  if (actions !== null) return actions.some((a) => globMatch(a, "kms:PutKeyPolicy"));
  const not = list(s.NotAction);
  return not !== null && !not.some((a) => globMatch(a, "kms:PutKeyPolicy"));
}

/**
 * Whether the caller could still change the policy: some Allow statement without conditions
 * names the caller (or everyone) for kms:PutKeyPolicy, and no Deny that could apply to the
 * caller (with or without conditions: the console cannot tell when they hold) takes it
 * away. False means the policy may lock the caller out (when it names the account, the
 * caller's IAM policy must allow it too, which the console cannot see either).
 */
export function allowsPutKeyPolicy(doc: { Statement: Record<string, Json>[] }, callerArn: string, account: string): boolean {
  const names = namesOf(callerArn, account);
  const names_caller = (s: Record<string, Json>) =>
    s.NotPrincipal !== undefined
      ? !principalsOf(s.NotPrincipal).some((x) => names.includes(x))
      : principalsOf(s.Principal).some((x) => x === "*" || names.includes(x));
  const denied = doc.Statement.some((s) => s.Effect === "Deny" && names_caller(s) && coversPutKeyPolicy(s));
  if (denied) return false;
  return doc.Statement.some(
    (s) => s.Effect === "Allow" && s.Condition === undefined && s.NotPrincipal === undefined && names_caller(s) && coversPutKeyPolicy(s),
  );
}

/** A line diff (longest common subsequence) of two texts. */
export function diffLines(before: string, after: string): { kind: " " | "-" | "+"; line: string }[] {
  const a = before.split("\n");
  const b = after.split("\n");
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out: { kind: " " | "-" | "+"; line: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push({ kind: " ", line: a[i] });
      i++;
      j++;
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) {
      out.push({ kind: "-", line: a[i++] });
    } else {
      out.push({ kind: "+", line: b[j++] });
    }
  }
  while (i < n) out.push({ kind: "-", line: a[i++] });
  while (j < m) out.push({ kind: "+", line: b[j++] });
  return out;
}

/** The policy as the editor shows it: indented, or as written if it is not JSON or if
 * indenting would change it (a number JavaScript cannot hold exactly, such as
 * 12345678901234567890, which a save would otherwise store rounded). */
export function pretty(text: string): string {
  let exact = true;
  try {
    const doc = JSON.parse(text, (_key: string, value: unknown, context?: { source?: string }) => {
      if (typeof value === "number" && context?.source !== undefined && JSON.stringify(value) !== context.source) exact = false;
      return value;
    });
    return exact ? JSON.stringify(doc, null, 2) : text;
  } catch {
    return text;
  }
}
