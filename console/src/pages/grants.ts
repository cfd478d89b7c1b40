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
  return [
    show("context equals", c.EncryptionContextEquals),
    show("context subset", c.EncryptionContextSubset),
    c.SourceArn ? `on behalf of ${c.SourceArn}` : null,
  ]
    .filter(Boolean)
    .join("; ") || "—";
}

/** A service principal (`rds.amazonaws.com`) rather than an IAM ARN or account. */
function isServicePrincipal(p: string): boolean {
  return !p.startsWith("arn:") && !/^\d{12}$/.test(p) && p.includes(".");
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
    h("span", { class: "mono" }, g.GranteePrincipal ?? g.GranteeServicePrincipal ?? ""),
    g.RetiringPrincipal || g.RetiringServicePrincipal
      ? h("span", { class: "mono" }, g.RetiringPrincipal ?? g.RetiringServicePrincipal ?? "")
      : "—",
    (g.Operations ?? []).join(", "),
    constraintsText(g),
    when(g.CreationDate),
    h(
      "div",
      { class: "buttons" },
      actionButton("Retire", status, async () => {
        if (!(await confirm(
          "Retire this grant?",
          "Retiring is what a grant's retiring principal (or its grantee, for some operations) does when it is done with the grant: RetireGrant. The grantee loses what the grant allowed.",
          "Retire",
        ))) return;
        await kms().send(new RetireGrantCommand({ KeyId: meta.Arn, GrantId: g.GrantId }));
        await reload();
      }, { "aria-label": `Retire grant ${g.Name || g.GrantId}` }),
      actionButton("Revoke", status, async () => {
        if (!(await confirm(
          "Revoke this grant?",
          "Revoking is the key's manager taking the grant away (RevokeGrant, allowed by kms:RevokeGrant in the key policy). The grantee loses what the grant allowed.",
          "Revoke",
        ))) return;
        await kms().send(new RevokeGrantCommand({ KeyId: id, GrantId: g.GrantId }));
        await reload();
      }, { "aria-label": `Revoke grant ${g.Name || g.GrantId}` }),
    ),
  ]);

  const form = h(
    "form",
    { class: "create-grant" },
    labelled(
      "Grantee principal",
      h("input", { name: "grantee", required: true, placeholder: "arn:aws:iam::111122223333:role/app", spellcheck: "false" }),
      "An IAM ARN or account. (A service principal such as rds.amazonaws.com is sent as one, and ferrokms refuses it: no AWS service acts for its callers.)",
    ),
    labelled("Retiring principal (optional)", h("input", { name: "retiring", spellcheck: "false" }), "An IAM ARN or account."),
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
    labelled(
      "Source ARN (optional)",
      h("input", { name: "sourceArn", spellcheck: "false", placeholder: "arn:aws:rds:us-east-1:111122223333:db:orders" }),
      "The grant applies only to requests made on behalf of this resource (aws:SourceArn).",
    ),
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, "Create grant")),
  );
  const made = h("div", { class: "made" });
  onSubmit(form, status, async () => {
    const equals = keyValueLines(field(form, "equals"));
    const subset = keyValueLines(field(form, "subset"));
    const sourceArn = field(form, "sourceArn").trim() || undefined;
    const grantee = field(form, "grantee").trim();
    const retiring = field(form, "retiring").trim() || undefined;
    const r = await kms().send(
      new CreateGrantCommand({
        KeyId: id,
        ...(isServicePrincipal(grantee) ? { GranteeServicePrincipal: grantee } : { GranteePrincipal: grantee }),
        ...(retiring && isServicePrincipal(retiring)
          ? { RetiringServicePrincipal: retiring }
          : { RetiringPrincipal: retiring }),
        Name: field(form, "name").trim() || undefined,
        Operations: checkedValues(form, "op") as GrantOperation[],
        Constraints:
          equals || subset || sourceArn
            ? { EncryptionContextEquals: equals, EncryptionContextSubset: subset, SourceArn: sourceArn }
            : undefined,
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
