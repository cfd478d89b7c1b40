// Listings the pages share, each read through every page of its answer (up to a bound, so a
// huge account cannot hang the tab).

import {
  ListAliasesCommand,
  ListResourceTagsCommand,
  type AliasListEntry,
  type Tag,
} from "@aws-sdk/client-kms";
import { kms } from "./session";

export const KEY_SPECS = [
  "SYMMETRIC_DEFAULT",
  "RSA_2048",
  "RSA_3072",
  "RSA_4096",
  "ECC_NIST_P256",
  "ECC_NIST_P384",
  "ECC_NIST_P521",
  "ECC_SECG_P256K1",
  "ECC_NIST_EDWARDS25519",
  "HMAC_224",
  "HMAC_256",
  "HMAC_384",
  "HMAC_512",
  "ML_DSA_44",
  "ML_DSA_65",
  "ML_DSA_87",
  "SM2",
] as const;

export const KEY_STATES = [
  "Enabled",
  "Disabled",
  "PendingDeletion",
  "PendingImport",
  "PendingReplicaDeletion",
  "Unavailable",
  "Creating",
  "Updating",
] as const;

/** The usages AWS allows for each key spec (CreateKey's KeyUsage). */
export function usagesOf(spec: string): string[] {
  if (spec === "SYMMETRIC_DEFAULT") return ["ENCRYPT_DECRYPT"];
  if (spec.startsWith("RSA_")) return ["ENCRYPT_DECRYPT", "SIGN_VERIFY"];
  if (spec.startsWith("HMAC_")) return ["GENERATE_VERIFY_MAC"];
  if (spec === "ECC_NIST_P256" || spec === "ECC_NIST_P384" || spec === "ECC_NIST_P521") {
    return ["SIGN_VERIFY", "KEY_AGREEMENT"];
  }
  if (spec === "SM2") return ["ENCRYPT_DECRYPT", "SIGN_VERIFY", "KEY_AGREEMENT"];
  return ["SIGN_VERIFY"];
}

const MAX_PAGES = 100;

/** Every alias of the account and Region, by the key it points to. */
export async function aliasesByKey(): Promise<Map<string, string[]>> {
  const byKey = new Map<string, string[]>();
  for (const a of await allAliases()) {
    if (!a.TargetKeyId || !a.AliasName) continue;
    const names = byKey.get(a.TargetKeyId) ?? [];
    names.push(a.AliasName);
    byKey.set(a.TargetKeyId, names);
  }
  return byKey;
}

/** Every item of a listing that pages with Marker / NextMarker / Truncated, up to a bound. */
export async function allPages<T, R extends { Truncated?: boolean; NextMarker?: string }>(
  page: (marker: string | undefined) => Promise<R>,
  items: (r: R) => T[] | undefined,
): Promise<T[]> {
  const out: T[] = [];
  let marker: string | undefined;
  for (let n = 0; n < MAX_PAGES; n++) {
    const r = await page(marker);
    out.push(...(items(r) ?? []));
    if (!r.Truncated || !r.NextMarker) break;
    marker = r.NextMarker;
  }
  return out;
}

export function allAliases(keyId?: string): Promise<AliasListEntry[]> {
  return allPages(
    (Marker) => kms().send(new ListAliasesCommand({ KeyId: keyId, Marker, Limit: 100 })),
    (r) => r.Aliases,
  );
}

export function allTags(keyId: string): Promise<Tag[]> {
  return allPages(
    (Marker) => kms().send(new ListResourceTagsCommand({ KeyId: keyId, Marker, Limit: 50 })),
    (r) => r.Tags,
  );
}

/** `key=value` lines as a map (EncryptionContext, say); none when the text is empty. */
export function keyValueLines(text: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const i = line.indexOf("=");
    if (i < 0) throw new Error(`"${line}" is not key=value`);
    out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return Object.keys(out).length ? out : undefined;
}
