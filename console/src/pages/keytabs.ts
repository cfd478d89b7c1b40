// The heading and tabs every page of one key shares.

import { DescribeKeyCommand, type KeyMetadata } from "@aws-sdk/client-kms";
import { h } from "../dom";
import { kms } from "../session";
import { stateBadge } from "../ui";

export async function describe(keyId: string): Promise<KeyMetadata> {
  const r = await kms().send(new DescribeKeyCommand({ KeyId: keyId }));
  if (!r.KeyMetadata) throw new Error("DescribeKey returned no metadata");
  return r.KeyMetadata;
}

export function keyHeader(meta: KeyMetadata, aliases: string[], tab: "overview" | "policy" | "grants"): HTMLElement {
  const id = encodeURIComponent(meta.KeyId ?? "");
  const tabs: [string, string, string][] = [
    ["overview", `#/keys/${id}`, "Overview"],
    ["policy", `#/keys/${id}/policy`, "Key policy"],
    ["grants", `#/keys/${id}/grants`, "Grants"],
  ];
  return h(
    "header",
    { class: "key-header" },
    h("p", { class: "crumbs" }, h("a", { href: "#/keys" }, "Keys"), " / ", h("span", { class: "mono" }, meta.KeyId ?? "")),
    h("h1", null, aliases[0] || meta.Description || meta.KeyId || "Key", " ", stateBadge(meta.KeyState)),
    h(
      "nav",
      { class: "tabs", "aria-label": "Key" },
      tabs.map(([name, href, label]) =>
        h("a", { href, "aria-current": name === tab ? "page" : null }, label),
      ),
    ),
  );
}
