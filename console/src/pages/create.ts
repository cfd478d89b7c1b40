// CreateKey with every spec, usage and origin AWS offers, multi-Region, a policy and tags,
// and an alias made right after.

import {
  CreateAliasCommand,
  CreateKeyCommand,
  type CreateKeyCommandInput,
  type Tag,
} from "@aws-sdk/client-kms";
import { h, checked, field, replace } from "../dom";
import { kms } from "../session";
import { KEY_SPECS, usagesOf } from "../kms";
import { Status, confirm, labelled, onSubmit } from "../ui";
import { allowsPutKeyPolicy, checkPolicy } from "../policycheck";
import { session } from "../session";

/** `key=value` lines; a line without `=` is a tag with an empty value. */
export function parseTagLines(text: string): Tag[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .map((l) => {
      const i = l.indexOf("=");
      return i < 0 ? { TagKey: l, TagValue: "" } : { TagKey: l.slice(0, i).trim(), TagValue: l.slice(i + 1).trim() };
    });
}

/** AWS: keys in a custom key store are symmetric encryption keys only; imported material
 * may be of every kind but ML-DSA (and SM2, which ferrokms does not make). */
function specsOf(origin: string): readonly string[] {
  if (origin === "AWS_CLOUDHSM" || origin === "EXTERNAL_KEY_STORE") return ["SYMMETRIC_DEFAULT"];
  if (origin === "EXTERNAL") return KEY_SPECS.filter((s) => !s.startsWith("ML_DSA_") && s !== "SM2");
  return KEY_SPECS;
}

export async function createKeyPage(main: HTMLElement): Promise<void> {
  const status = new Status();
  const usage = h("select", { name: "usage" });
  const spec = h("select", { name: "spec" });
  const fillUsages = () => {
    const current = usage.value;
    replace(
      usage,
      usagesOf(spec.value).map((u) => h("option", { value: u, selected: u === current }, u)),
    );
  };
  spec.addEventListener("change", fillUsages);
  const origin = h(
    "select",
    { name: "origin" },
    h("option", { value: "AWS_KMS" }, "AWS_KMS (ferrokms makes the key material)"),
    h("option", { value: "EXTERNAL" }, "EXTERNAL (import your own key material, on the key's page)"),
    h("option", { value: "AWS_CLOUDHSM" }, "AWS_CLOUDHSM (in a custom key store's HSM)"),
    h("option", { value: "EXTERNAL_KEY_STORE" }, "EXTERNAL_KEY_STORE (in an external key manager)"),
  );
  const storeFields = h(
    "fieldset",
    { class: "store-fields", disabled: true },
    h("legend", null, "Custom key store"),
    labelled("Custom key store ID", h("input", { name: "customKeyStoreId", placeholder: "cks-…", spellcheck: "false" })),
    labelled(
      "External key ID",
      h("input", { name: "xksKeyId", spellcheck: "false" }),
      "EXTERNAL_KEY_STORE only: the key's id in the external key manager",
    ),
  );
  // The specs an origin can have, so that the form offers only keys the server makes.
  const fillSpecs = () => {
    const current = spec.value;
    replace(
      spec,
      specsOf(origin.value).map((s) => h("option", { value: s, selected: s === current }, s)),
    );
    fillUsages();
  };
  origin.addEventListener("change", () => {
    storeFields.disabled = origin.value !== "AWS_CLOUDHSM" && origin.value !== "EXTERNAL_KEY_STORE";
    fillSpecs();
  });
  fillSpecs();
  const form = h(
    "form",
    { class: "create" },
    labelled("Description", h("input", { name: "description", maxlength: 8192 })),
    h("div", { class: "row" }, labelled("Key spec", spec), labelled("Key usage", usage), labelled("Origin", origin)),
    storeFields,
    h(
      "div",
      { class: "check" },
      h("input", { type: "checkbox", name: "multiRegion", id: "multi-region" }),
      h("label", { for: "multi-region" }, "Multi-Region primary key"),
    ),
    labelled("Alias (optional)", h("input", { name: "alias", placeholder: "alias/my-app", spellcheck: "false" })),
    labelled(
      "Tags",
      h("textarea", { name: "tags", rows: 3, placeholder: "team=payments\nenv=prod", spellcheck: "false" }),
      "One key=value per line.",
    ),
    labelled(
      "Key policy (optional)",
      h("textarea", { name: "policy", rows: 10, class: "code", spellcheck: "false" }),
      "Leave empty for the default policy, which lets the account's IAM policies decide.",
    ),
    h(
      "div",
      { class: "check" },
      h("input", { type: "checkbox", name: "bypass", id: "bypass-lockout" }),
      h("label", { for: "bypass-lockout" }, "Bypass the policy lockout safety check"),
    ),
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, "Create key")),
    status.el,
  );
  onSubmit(form, status, async () => {
    const policy = field(form, "policy").trim();
    if (policy) {
      const review = checkPolicy(policy);
      if (!review.doc) throw new Error(review.findings.map((f) => f.message).join("; "));
      const s = session();
      if (checked(form, "bypass") && !allowsPutKeyPolicy(review.doc, s.arn, s.account)) {
        const sure = await confirm(
          "Create the key without the lockout safety check?",
          `This policy may not let you (${s.arn}) change it. If it lets no one, no one can manage the key again.`,
          "Create anyway",
        );
        if (!sure) return;
      }
    }
    const input: CreateKeyCommandInput = {
      Description: field(form, "description") || undefined,
      KeySpec: field(form, "spec") as CreateKeyCommandInput["KeySpec"],
      KeyUsage: field(form, "usage") as CreateKeyCommandInput["KeyUsage"],
      Origin: field(form, "origin") as CreateKeyCommandInput["Origin"],
      MultiRegion: checked(form, "multiRegion") || undefined,
      Policy: policy || undefined,
      BypassPolicyLockoutSafetyCheck: checked(form, "bypass") || undefined,
      Tags: parseTagLines(field(form, "tags")),
    };
    if (!storeFields.disabled) {
      input.CustomKeyStoreId = field(form, "customKeyStoreId").trim() || undefined;
      if (input.Origin === "EXTERNAL_KEY_STORE") input.XksKeyId = field(form, "xksKeyId").trim() || undefined;
    }
    if (!input.Tags?.length) delete input.Tags;
    const made = await kms().send(new CreateKeyCommand(input));
    const id = made.KeyMetadata?.KeyId ?? "";
    const alias = field(form, "alias").trim();
    if (alias) {
      try {
        await kms().send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: id }));
      } catch (e) {
        // The key exists: say so beside the alias's error.
        status.error(e);
        status.el.appendChild(
          h("p", null, "The key was made without the alias: ", h("a", { href: `#/keys/${encodeURIComponent(id)}` }, id)),
        );
        return;
      }
    }
    location.hash = `#/keys/${encodeURIComponent(id)}`;
  });
  replace(main, h("h1", null, "Create key"), form);
}
