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

export async function allAliases(keyId?: string): Promise<AliasListEntry[]> {
  const out: AliasListEntry[] = [];
  let marker: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const r = await kms().send(new ListAliasesCommand({ KeyId: keyId, Marker: marker, Limit: 100 }));
    out.push(...(r.Aliases ?? []));
    if (!r.Truncated || !r.NextMarker) break;
    marker = r.NextMarker;
  }
  return out;
}

export async function allTags(keyId: string): Promise<Tag[]> {
  const out: Tag[] = [];
  let marker: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const r = await kms().send(new ListResourceTagsCommand({ KeyId: keyId, Marker: marker, Limit: 50 }));
    out.push(...(r.Tags ?? []));
    if (!r.Truncated || !r.NextMarker) break;
    marker = r.NextMarker;
  }
  return out;
}
