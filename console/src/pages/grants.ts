// A key's grants: listed with their constraints, made with operations and encryption
// context constraints, retired or revoked.

import {
  CreateGrantCommand,
  ListGrantsCommand,
  RetireGrantCommand,
  RevokeGrantCommand,
  type GrantListEntry,
  type GrantOperation,
} from "@aws-sdk/client-kms";
import { h, checkedValues, field, replace } from "../dom";
import { kms } from "../session";
import { allAliases, allPages, keyValueLines } from "../kms";
import { Status, actionButton, confirm, labelled, onSubmit, section, table, when } from "../ui";
import { describe, keyHeader } from "./keytabs";

const OPERATIONS: GrantOperation[] = [
  "Decrypt",
  "Encrypt",
  "GenerateDataKey",
  "GenerateDataKeyWithoutPlaintext",
  "ReEncryptFrom",
  "ReEncryptTo",
  "Sign",
  "Verify",
  "GetPublicKey",
  "CreateGrant",
  "RetireGrant",
  "DescribeKey",
  "GenerateDataKeyPair",
  "GenerateDataKeyPairWithoutPlaintext",
  "GenerateMac",
  "VerifyMac",
  "DeriveSharedSecret",
];

function constraintsText(g: GrantListEntry): string {
  const c = g.Constraints;
  if (!c) return "—";
  const show = (name: string, m?: Record<string, string>) =>
    m ? `${name}: ${Object.entries(m).map(([k, v]) => `${k}=${v}`).join(", ")}` : null;
  return [show("context equals", c.EncryptionContextEquals), show("context subset", c.EncryptionContextSubset)]
    .filter(Boolean)
    .join("; ") || "—";
}

function allGrants(keyId: string): Promise<GrantListEntry[]> {
  return allPages(
    (Marker) => kms().send(new ListGrantsCommand({ KeyId: keyId, Marker, Limit: 100 })),
    (r) => r.Grants,
  );
}

export async function grantsPage(main: HTMLElement, [keyId]: string[]): Promise<void> {
  replace(main, h("p", { class: "loading" }, "Loading grants…"));
  const meta = await describe(keyId);
  const id = meta.KeyId ?? keyId;
  const [aliases, grants] = await Promise.all([allAliases(id), allGrants(id)]);
  const status = new Status();
  const reload = () => grantsPage(main, [keyId]);
  const rows = grants.map((g) => [
    h("span", { class: "mono", title: g.GrantId ?? "" }, (g.GrantId ?? "").slice(0, 16) + "…"),
    g.Name || "—",
    h("span", { class: "mono" }, g.GranteePrincipal ?? ""),
    g.RetiringPrincipal ? h("span", { class: "mono" }, g.RetiringPrincipal) : "—",
    (g.Operations ?? []).join(", "),
    constraintsText(g),
    when(g.CreationDate),
    h(
      "div",
      { class: "buttons" },
      actionButton("Retire", status, async () => {
        if (!(await confirm("Retire this grant?", "The grantee loses what the grant allowed at once.", "Retire"))) return;
        await kms().send(new RetireGrantCommand({ KeyId: meta.Arn, GrantId: g.GrantId }));
        await reload();
      }, { "aria-label": `Retire grant ${g.Name || g.GrantId}` }),
      actionButton("Revoke", status, async () => {
        if (!(await confirm("Revoke this grant?", "The grantee loses what the grant allowed at once.", "Revoke"))) return;
        await kms().send(new RevokeGrantCommand({ KeyId: id, GrantId: g.GrantId }));
        await reload();
      }, { "aria-label": `Revoke grant ${g.Name || g.GrantId}` }),
    ),
  ]);

  const form = h(
    "form",
    { class: "create-grant" },
    labelled("Grantee principal", h("input", { name: "grantee", required: true, placeholder: "arn:aws:iam::111122223333:role/app", spellcheck: "false" })),
    labelled("Retiring principal (optional)", h("input", { name: "retiring", spellcheck: "false" })),
    labelled("Name (optional)", h("input", { name: "name", maxlength: 256 })),
    h(
      "fieldset",
      { class: "operations" },
      h("legend", null, "Operations"),
      OPERATIONS.map((op) =>
        h("label", { class: "check" }, h("input", { type: "checkbox", name: "op", value: op }), op),
      ),
    ),
    h(
      "div",
      { class: "row" },
      labelled("Encryption context equals", h("textarea", { name: "equals", rows: 3, placeholder: "tenant=acme", spellcheck: "false" })),
      labelled("Encryption context subset", h("textarea", { name: "subset", rows: 3, placeholder: "tenant=acme", spellcheck: "false" })),
    ),
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, "Create grant")),
  );
  const made = h("div", { class: "made" });
  onSubmit(form, status, async () => {
    const equals = keyValueLines(field(form, "equals"));
    const subset = keyValueLines(field(form, "subset"));
    const r = await kms().send(
      new CreateGrantCommand({
        KeyId: id,
        GranteePrincipal: field(form, "grantee").trim(),
        RetiringPrincipal: field(form, "retiring").trim() || undefined,
        Name: field(form, "name").trim() || undefined,
        Operations: checkedValues(form, "op") as GrantOperation[],
        Constraints:
          equals || subset ? { EncryptionContextEquals: equals, EncryptionContextSubset: subset } : undefined,
      }),
    );
    await reload();
    const fresh = main.querySelector(".made");
    if (fresh) {
      replace(
        fresh,
        h("p", { class: "ok", role: "status" }, "Grant made: ", h("span", { class: "mono" }, r.GrantId ?? "")),
        h("p", null, "Grant token (give it to the grantee to use the grant before it is everywhere):"),
        h("pre", { class: "token" }, r.GrantToken ?? ""),
      );
    }
  });

  replace(
    main,
    keyHeader(meta, aliases.map((a) => a.AliasName ?? ""), "grants"),
    status.el,
    section("Grants", table(["Grant", "Name", "Grantee", "Retiring principal", "Operations", "Constraints", "Created", ""], rows)),
    section("Create grant", form, made),
  );
}
