// What the console can tell about a key policy before it is sent: the checks ferrokms's
// policy parser makes (crates/ferrokms-core/src/policy: PolicyDocument::parse and
// check_new_policy), with the messages the server gives, and whether the policy would still
// let the person editing it change it (the lockout the server's safety check refuses).
// The server decides in the end; this only says it sooner.

export interface Finding {
  message: string;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const MAX_POLICY_BYTES = 32768;
const STATEMENT_KEYS = new Set(["Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"]);

/** A string or list of scalars, as the server reads them (numbers and booleans as text). */
function list(v: Json | undefined): string[] | null {
  if (v === undefined) return null;
  const scalar = (x: Json) => (typeof x === "string" || typeof x === "number" || typeof x === "boolean" ? String(x) : null);
  if (!Array.isArray(v)) {
    const one = scalar(v);
    return one === null ? [] : [one];
  }
  const all = v.map(scalar);
  return all.every((x) => x !== null) ? (all as string[]) : [];
}

const PRINCIPAL = /^(\d{12}|\*|arn:aws:(iam|sts)::\d{12}:.+)$/;

export function checkPolicy(text: string): { findings: Finding[]; doc?: { Statement: Record<string, Json>[] } } {
  const findings: Finding[] = [];
  const bytes = new TextEncoder().encode(text).length;
  if (bytes > MAX_POLICY_BYTES) {
    findings.push({ message: `The policy is ${bytes} bytes; a key policy may have at most ${MAX_POLICY_BYTES}.` });
  }
  let doc: Json;
  try {
    doc = JSON.parse(text) as Json;
  } catch (e) {
    findings.push({ message: `MalformedPolicyDocumentException: the policy is not valid JSON (${(e as Error).message})` });
    return { findings };
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) {
    findings.push({ message: "MalformedPolicyDocumentException: the policy must be a JSON object" });
    return { findings };
  }
  const raw = doc.Statement;
  const statements = Array.isArray(raw) ? raw : raw && typeof raw === "object" ? [raw] : null;
  if (!statements) {
    findings.push({ message: "MalformedPolicyDocumentException: the policy has no Statement" });
    return { findings };
  }
  statements.forEach((s, i) => {
    const at = `Statement ${i}`;
    if (!s || typeof s !== "object" || Array.isArray(s)) {
      findings.push({ message: `${at} is not an object` });
      return;
    }
    for (const k of Object.keys(s)) {
      if (!STATEMENT_KEYS.has(k)) findings.push({ message: `${at}: ${k} is not a policy element; it is ignored` });
    }
    for (const [a, b] of [["Principal", "NotPrincipal"], ["Action", "NotAction"], ["Resource", "NotResource"]]) {
      if (s[a] !== undefined && s[b] !== undefined) findings.push({ message: `${at}: ${a} and ${b} may not both be given` });
    }
    if (s.Effect !== "Allow" && s.Effect !== "Deny") findings.push({ message: `${at}: Effect must be "Allow" or "Deny"` });
    if (s.Principal === undefined && s.NotPrincipal === undefined) {
      findings.push({ message: `${at}: a key policy statement needs a Principal` });
    }
    for (const name of ["Principal", "NotPrincipal"]) {
      const p = s[name];
      if (p === undefined || p === "*") continue;
      if (!p || typeof p !== "object" || Array.isArray(p)) {
        findings.push({ message: `${at}: ${name} must be "*" or an object such as {"AWS": [...]}` });
        continue;
      }
      for (const k of Object.keys(p)) {
        if (k !== "AWS" && k !== "Service") findings.push({ message: `${at}: ${name} has ${k}, which ferrokms does not take` });
      }
      const aws = list(p.AWS) ?? [];
      if (aws.some((a) => !PRINCIPAL.test(a))) {
        findings.push({ message: `MalformedPolicyDocumentException: Policy contains a statement with one or more invalid principals. (${at}: an AWS principal is a 12-digit account or an IAM or STS ARN)` });
      }
      const arns = [...aws, ...(list(p.Service) ?? [])];
      if (arns.length === 0) findings.push({ message: `MalformedPolicyDocumentException: Policy contains a statement with one or more invalid principals. (${at})` });
      if (!aws.includes("*") && aws.some((a) => /[*?]/.test(a))) {
        findings.push({ message: `MalformedPolicyDocumentException: Policy contains a statement with one or more invalid principals. (${at}: a wildcard in an ARN)` });
      }
    }
    if (s.Action === undefined && s.NotAction === undefined) findings.push({ message: `${at}: needs Action or NotAction` });
    for (const name of ["Action", "NotAction", "Resource", "NotResource"]) {
      const l = list(s[name]);
      if (l !== null && l.length === 0) findings.push({ message: `${at}: ${name} is empty or not a string list` });
    }
    const cond = s.Condition;
    if (cond !== undefined) {
      if (!cond || typeof cond !== "object" || Array.isArray(cond)) {
        findings.push({ message: `${at}: Condition must be an object` });
      } else {
        for (const [op, block] of Object.entries(cond)) {
          if (!block || typeof block !== "object" || Array.isArray(block)) {
            findings.push({ message: `${at}: Condition ${op} must map keys to values` });
            continue;
          }
          for (const [key, values] of Object.entries(block)) {
            const vs = Array.isArray(values) ? values : [values];
            if (vs.length === 0) findings.push({ message: `${at}: ${op} ${key} has no values` });
            if (vs.some((v) => typeof v === "string" && v.includes("${"))) {
              findings.push({ message: `${at}: ${op} ${key} uses a policy variable, which ferrokms does not substitute` });
            }
            const lower = key.toLowerCase();
            if (op.startsWith("ForAllValues:") && (lower.startsWith("kms:encryptioncontext:") || lower.startsWith("aws:requesttag/"))) {
              findings.push({ message: `${at}: ForAllValues on the single-valued ${key} would also match requests without it` });
            }
          }
        }
      }
    }
  });
  return { findings, doc: { Statement: statements as Record<string, Json>[] } };
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

/** The policy as the editor shows it: indented, or as written if it is not JSON. */
export function pretty(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
