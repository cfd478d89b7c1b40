// ExplainDecision, ferrokms's own operation (explain/operation.rs on the server): signed here
// with SigV4 like every other call, sent with fetch to the same origin.

import { SignatureV4 } from "@smithy/signature-v4";
import { Sha256 } from "@smithy/core/checksum";
import { session } from "./session";

export const TARGET = "FerroKMS_20261201.ExplainDecision";

export interface Question {
  Action: string;
  KeyId?: string;
  Principal?: string;
  EncryptionContext?: Record<string, string>;
  Conditions?: Record<string, string>;
}

export interface Answer {
  Allowed: boolean;
  Explanation: string;
}

/** An error answer, shaped as the SDK's are (name = AWS's error code). */
class ServiceError extends Error {
  constructor(code: string, message: string) {
    super(message);
    this.name = code;
  }
}

export async function explainDecision(q: Question): Promise<Answer> {
  const s = session();
  const url = new URL(window.location.origin);
  const body = JSON.stringify(q);
  const signer = new SignatureV4({
    service: "kms",
    region: s.region,
    credentials: {
      accessKeyId: s.credentials.accessKeyId,
      secretAccessKey: s.credentials.secretAccessKey,
      sessionToken: s.credentials.sessionToken,
    },
    sha256: Sha256,
  });
  const signed = await signer.sign({
    method: "POST",
    protocol: url.protocol,
    hostname: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    path: "/",
    headers: {
      host: url.host,
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": TARGET,
    },
    body,
  });
  const headers = { ...signed.headers };
  // The browser sets Host itself.
  delete headers.host;
  const r = await fetch(url.origin + "/", { method: "POST", headers, body, credentials: "omit", cache: "no-store" });
  const text = await r.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new ServiceError("Error", `HTTP ${r.status}: ${text.slice(0, 200)}`);
  }
  if (!r.ok) {
    const code = String(json.__type ?? "Error").split("#").pop() ?? "Error";
    throw new ServiceError(code, String(json.message ?? json.Message ?? `HTTP ${r.status}`));
  }
  return json as unknown as Answer;
}
