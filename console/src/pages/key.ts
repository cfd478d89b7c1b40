// One key: its metadata, aliases, tags, rotation, replicas and public key, and the changes
// of its state (enable, disable, schedule and cancel deletion).

import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  DeleteAliasCommand,
  DisableKeyCommand,
  DisableKeyRotationCommand,
  EnableKeyCommand,
  EnableKeyRotationCommand,
  GetKeyRotationStatusCommand,
  GetParametersForImportCommand,
  GetPublicKeyCommand,
  ImportKeyMaterialCommand,
  ListKeyRotationsCommand,
  ReplicateKeyCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateKeyDescriptionCommand,
  type KeyMetadata,
} from "@aws-sdk/client-kms";
import { h, field, replace } from "../dom";
import { kms } from "../session";
import { allAliases, allPages, allTags } from "../kms";
import { Status, actionButton, confirm, download, errorView, facts, labelled, onSubmit, section, table, when } from "../ui";
import { describe, keyHeader } from "./keytabs";
import { parseTagLines } from "./create";

function pem(der: Uint8Array): string {
  let bin = "";
  for (const b of der) bin += String.fromCharCode(b);
  const b64 = btoa(bin).replace(/(.{64})/g, "$1\n");
  return `-----BEGIN PUBLIC KEY-----\n${b64.replace(/\n$/, "")}\n-----END PUBLIC KEY-----\n`;
}

export async function keyPage(main: HTMLElement, [keyId]: string[]): Promise<void> {
  replace(main, h("p", { class: "loading" }, "Loading key…"));
  const meta = await describe(keyId);
  const id = meta.KeyId ?? keyId;
  const aliases = await allAliases(id);
  const reload = () => keyPage(main, [keyId]);
  const status = new Status();
  const customer = meta.KeyManager !== "AWS";

  // Every panel's data is read before the page is drawn, once: nothing moves after it shows.
  const [tags, rotation] = await Promise.all([
    tagsPanel(id, customer, reload).then(
      (p) => section("Tags", p),
      (e) => section("Tags", errorView(e)),
    ),
    // Only symmetric encryption keys rotate, and not those of custom key stores.
    meta.KeySpec === "SYMMETRIC_DEFAULT" && (meta.Origin === "AWS_KMS" || meta.Origin === "EXTERNAL")
      ? rotationPanel(meta, customer && meta.MultiRegionConfiguration?.MultiRegionKeyType !== "REPLICA", reload).then(
          (p) => section("Rotation", p),
          (e) => section("Rotation", errorView(e)),
        )
      : Promise.resolve(null),
  ]);
  replace(
    main,
    keyHeader(meta, aliases.map((a) => a.AliasName ?? ""), "overview"),
    status.el,
    section("General", metadataFacts(meta), customer ? stateActions(meta, status, reload) : null),
    section("Aliases", aliasesPanel(id, aliases.map((a) => a.AliasName ?? ""), customer, reload)),
    tags,
    rotation,
    meta.Origin === "EXTERNAL" && customer ? section("Key material", importPanel(meta, reload)) : null,
    meta.MultiRegion ? section("Multi-Region", replicasPanel(meta, reload)) : null,
    meta.KeySpec !== "SYMMETRIC_DEFAULT" && !meta.KeySpec?.startsWith("HMAC")
      ? section("Public key", publicKeyPanel(id, status))
      : null,
  );
}

function metadataFacts(m: KeyMetadata): HTMLElement {
  return facts([
    ["ARN", h("span", { class: "mono" }, m.Arn ?? "")],
    ["Key ID", h("span", { class: "mono", "data-key-id": m.KeyId ?? "" }, m.KeyId ?? "")],
    ["Description", m.Description || "—"],
    ["Key spec", m.KeySpec ?? ""],
    ["Key usage", m.KeyUsage ?? ""],
    ["Origin", m.Origin ?? ""],
    ["Key manager", m.KeyManager ?? ""],
    ["State", m.KeyState ?? ""],
    ["Created", when(m.CreationDate)],
    ["Deletion date", m.DeletionDate ? when(m.DeletionDate) : "—"],
    ["Pending window (days)", m.PendingDeletionWindowInDays ? String(m.PendingDeletionWindowInDays) : "—"],
    ["Current key material", m.CurrentKeyMaterialId ? h("span", { class: "mono" }, m.CurrentKeyMaterialId) : "—"],
    ["Encryption algorithms", m.EncryptionAlgorithms?.join(", ") || "—"],
    ["Signing algorithms", m.SigningAlgorithms?.join(", ") || "—"],
    ["MAC algorithms", m.MacAlgorithms?.join(", ") || "—"],
    ["Key agreement algorithms", m.KeyAgreementAlgorithms?.join(", ") || "—"],
    ["Custom key store", m.CustomKeyStoreId ?? "—"],
    ["Valid to", m.ValidTo ? when(m.ValidTo) : "—"],
  ]);
}

function stateActions(meta: KeyMetadata, status: Status, reload: () => Promise<void>): HTMLElement {
  const id = meta.KeyId ?? "";
  const buttons: HTMLElement[] = [];
  const describeForm = h(
    "form",
    { class: "inline" },
    labelled("New description", h("input", { name: "description", value: meta.Description ?? "", maxlength: 8192 })),
    h("button", { type: "submit" }, "Update description"),
  );
  onSubmit(describeForm, status, async () => {
    await kms().send(new UpdateKeyDescriptionCommand({ KeyId: id, Description: field(describeForm, "description") }));
    await reload();
  });
  if (meta.KeyState === "Enabled") {
    buttons.push(
      actionButton("Disable key", status, async () => {
        await kms().send(new DisableKeyCommand({ KeyId: id }));
        await reload();
      }),
    );
  } else if (meta.KeyState === "Disabled") {
    buttons.push(
      actionButton("Enable key", status, async () => {
        await kms().send(new EnableKeyCommand({ KeyId: id }));
        await reload();
      }),
    );
  }
  if (meta.KeyState === "PendingDeletion" || meta.KeyState === "PendingReplicaDeletion") {
    buttons.push(
      actionButton("Cancel deletion", status, async () => {
        await kms().send(new CancelKeyDeletionCommand({ KeyId: id }));
        await reload();
      }),
    );
  }
  let deletion: HTMLElement | null = null;
  if (meta.KeyState !== "PendingDeletion" && meta.KeyState !== "PendingReplicaDeletion") {
    const form = h(
      "form",
      { class: "inline danger-zone" },
      labelled("Waiting period (days)", h("input", { name: "days", type: "number", min: 7, max: 30, value: 30, required: true })),
      h("button", { type: "submit", class: "danger" }, "Schedule deletion"),
    );
    onSubmit(form, status, async () => {
      const days = Number(field(form, "days"));
      const sure = await confirm(
        "Schedule this key's deletion?",
        `After ${days} days the key and its material are deleted, and nothing it encrypted can be decrypted again. Until then the key cannot be used, and the deletion can be cancelled.`,
        "Schedule deletion",
      );
      if (!sure) return;
      await kms().send(new ScheduleKeyDeletionCommand({ KeyId: id, PendingWindowInDays: days }));
      await reload();
    });
    deletion = form;
  }
  return h("div", { class: "actions" }, describeForm, h("div", { class: "buttons" }, buttons), deletion);
}

function aliasesPanel(id: string, names: string[], customer: boolean, reload: () => Promise<void>): HTMLElement {
  const status = new Status();
  const rows = names.map((name) => [
    h("span", { class: "mono" }, name),
    customer
      ? actionButton("Delete", status, async () => {
          if (!(await confirm(`Delete ${name}?`, "Whatever names the key by this alias stops finding it.", "Delete alias"))) return;
          await kms().send(new DeleteAliasCommand({ AliasName: name }));
          await reload();
        }, { "aria-label": `Delete ${name}` })
      : "",
  ]);
  const form = h(
    "form",
    { class: "inline" },
    labelled("Alias name", h("input", { name: "alias", placeholder: "alias/my-app", required: true, spellcheck: "false" })),
    h("button", { type: "submit" }, "Add alias"),
  );
  onSubmit(form, status, async () => {
    await kms().send(new CreateAliasCommand({ AliasName: field(form, "alias").trim(), TargetKeyId: id }));
    await reload();
  });
  return h("div", null, table(["Alias", ""], rows), customer ? form : null, status.el);
}

async function tagsPanel(id: string, customer: boolean, reload: () => Promise<void>): Promise<HTMLElement> {
  const tags = await allTags(id);
  const status = new Status();
  const rows = tags.map((t) => [
    h("span", { class: "mono" }, t.TagKey ?? ""),
    h("span", { class: "mono" }, t.TagValue ?? ""),
    customer
      ? actionButton("Remove", status, async () => {
          await kms().send(new UntagResourceCommand({ KeyId: id, TagKeys: [t.TagKey ?? ""] }));
          await reload();
        }, { "aria-label": `Remove tag ${t.TagKey}` })
      : "",
  ]);
  const form = h(
    "form",
    { class: "inline" },
    labelled("New tag", h("input", { name: "tags", placeholder: "key=value", required: true, spellcheck: "false" })),
    h("button", { type: "submit" }, "Add tag"),
  );
  onSubmit(form, status, async () => {
    await kms().send(new TagResourceCommand({ KeyId: id, Tags: parseTagLines(field(form, "tags").replace(/,/g, "\n")) }));
    await reload();
  });
  return h("div", null, table(["Key", "Value", ""], rows), customer ? form : null, status.el);
}

async function rotationPanel(meta: KeyMetadata, customer: boolean, reload: () => Promise<void>): Promise<HTMLElement> {
  const id = meta.KeyId ?? "";
  const status = new Status();
  const symmetric = meta.KeySpec === "SYMMETRIC_DEFAULT";
  const parts: HTMLElement[] = [];
  if (symmetric && meta.Origin !== "EXTERNAL") {
    const r = await kms().send(new GetKeyRotationStatusCommand({ KeyId: id }));
    parts.push(
      facts([
        ["Automatic rotation", r.KeyRotationEnabled ? "Enabled" : "Disabled"],
        ["Rotation period (days)", r.RotationPeriodInDays ? String(r.RotationPeriodInDays) : "—"],
        ["Next rotation", when(r.NextRotationDate)],
        ["On-demand rotation started", when(r.OnDemandRotationStartDate)],
      ]),
    );
    if (customer) {
      const form = h(
        "form",
        { class: "inline" },
        labelled("Period (days)", h("input", { name: "days", type: "number", min: 90, max: 2560, value: r.RotationPeriodInDays ?? 365 })),
        h("button", { type: "submit" }, r.KeyRotationEnabled ? "Change period" : "Enable automatic rotation"),
      );
      onSubmit(form, status, async () => {
        await kms().send(new EnableKeyRotationCommand({ KeyId: id, RotationPeriodInDays: Number(field(form, "days")) }));
        await reload();
      });
      parts.push(form);
      const buttons = h("div", { class: "buttons" });
      if (r.KeyRotationEnabled) {
        buttons.appendChild(
          actionButton("Disable automatic rotation", status, async () => {
            await kms().send(new DisableKeyRotationCommand({ KeyId: id }));
            await reload();
          }),
        );
      }
      parts.push(buttons);
    }
  }
  if (customer && meta.KeyState !== "Enabled") {
    parts.push(h("p", { class: "hint" }, "Only an enabled key can be rotated now."));
  } else if (customer) {
    parts.push(
      h(
        "div",
        { class: "buttons" },
        actionButton("Rotate now", status, async () => {
          await kms().send(new RotateKeyOnDemandCommand({ KeyId: id }));
          await reload();
        }),
      ),
    );
  }
  const rotations = await allPages(
    (Marker) => kms().send(new ListKeyRotationsCommand({ KeyId: id, Marker, Limit: 100 })),
    (r) => r.Rotations,
  );
  const history = rotations.map((rot) => [when(rot.RotationDate), rot.RotationType ?? "", rot.KeyMaterialId ?? "", rot.KeyMaterialState ?? ""]);
  parts.push(table(["Rotated", "Type", "Key material", "Material state"], history, "Rotation history"));
  parts.push(status.el);
  return h("div", null, parts);
}

/** The largest material RSAES_OAEP_SHA_256 under an RSA 4096 wrapping key can carry. */
const MAX_OAEP_MATERIAL = 512 - 2 * 32 - 2;

/**
 * Imports key material from a file the person picks: the browser wraps it under the
 * one-time public key from GetParametersForImport (RSAES_OAEP_SHA_256, RSA 4096, by
 * WebCrypto) and sends only the wrapped bytes and the import token. The plaintext is read
 * into memory for the wrap and overwritten after it; it is never stored or sent.
 */
function importPanel(meta: KeyMetadata, reload: () => Promise<void>): HTMLElement {
  const id = meta.KeyId ?? "";
  const status = new Status();
  const pending =
    meta.KeyState === "PendingImport" ? h("p", { class: "hint" }, "This key has no material yet: import it to use the key.") : null;
  if (meta.KeySpec?.startsWith("RSA_")) {
    // An RSA private key does not fit under RSAES_OAEP_SHA_256; RSA_AES_KEY_WRAP needs the
    // padded AES key wrap (RFC 5649), which WebCrypto does not have.
    return h(
      "div",
      null,
      pending,
      h(
        "p",
        { class: "hint" },
        "An RSA private key is too large to wrap here. Wrap it with OpenSSL under GetParametersForImport's key " +
          "(RSA_AES_KEY_WRAP_SHA_256) and import it with the aws CLI (aws kms import-key-material).",
      ),
    );
  }
  // Only symmetric encryption keys have several materials (AWS's rule, and the server's).
  const symmetric = meta.KeySpec === "SYMMETRIC_DEFAULT";
  const form = h(
    "form",
    { class: "import" },
    labelled(
      "Key material file",
      h("input", { name: "material", type: "file", required: true }),
      "The key itself, as raw bytes for a symmetric or HMAC key (32 bytes for SYMMETRIC_DEFAULT; not hex or base64 text) " +
        `or DER PKCS#8 for an elliptic curve key; at most ${MAX_OAEP_MATERIAL} bytes.`,
    ),
    h(
      "div",
      { class: "row" },
      labelled(
        "Expiration",
        h(
          "select",
          { name: "expiration" },
          h("option", { value: "KEY_MATERIAL_DOES_NOT_EXPIRE" }, "Does not expire"),
          h("option", { value: "KEY_MATERIAL_EXPIRES" }, "Expires at the date below"),
        ),
      ),
      labelled("Valid to (UTC)", h("input", { name: "validTo", type: "datetime-local" })),
      symmetric
        ? labelled(
            "Import type",
            h(
              "select",
              { name: "importType" },
              h("option", { value: "" }, "The service's default"),
              h("option", { value: "EXISTING_KEY_MATERIAL" }, "EXISTING_KEY_MATERIAL (re-import)"),
              h("option", { value: "NEW_KEY_MATERIAL" }, "NEW_KEY_MATERIAL (for a rotation)"),
            ),
          )
        : null,
    ),
    symmetric ? labelled("Material description (optional)", h("input", { name: "description", maxlength: 256 })) : null,
    h("div", { class: "buttons" }, h("button", { type: "submit" }, "Import key material")),
  );
  onSubmit(form, status, async () => {
    const file = (form.elements.namedItem("material") as HTMLInputElement).files?.[0];
    if (!file) throw new Error("Choose the file that holds the key material.");
    if (file.size > MAX_OAEP_MATERIAL) {
      throw new Error(`The file has ${file.size} bytes; at most ${MAX_OAEP_MATERIAL} can be wrapped here.`);
    }
    const expires = field(form, "expiration") === "KEY_MATERIAL_EXPIRES";
    const validTo = expires ? new Date(`${field(form, "validTo")}Z`) : undefined;
    if (validTo && (Number.isNaN(validTo.getTime()) || validTo.getTime() <= Date.now())) {
      throw new Error("Give a date in the future at which the material expires.");
    }
    // WebCrypto exists only in a secure context (HTTPS, or loopback).
    if (!globalThis.crypto?.subtle) {
      throw new Error("The browser wraps key material only on a secure page: open the console over HTTPS.");
    }
    const params = await kms().send(
      new GetParametersForImportCommand({ KeyId: id, WrappingAlgorithm: "RSAES_OAEP_SHA_256", WrappingKeySpec: "RSA_4096" }),
    );
    if (!params.PublicKey || !params.ImportToken) throw new Error("GetParametersForImport returned no wrapping key");
    const material = new Uint8Array(await file.arrayBuffer());
    let wrapped: Uint8Array;
    try {
      const wrapping = await crypto.subtle.importKey(
        "spki",
        new Uint8Array(params.PublicKey),
        { name: "RSA-OAEP", hash: "SHA-256" },
        false,
        ["encrypt"],
      );
      wrapped = new Uint8Array(await crypto.subtle.encrypt({ name: "RSA-OAEP" }, wrapping, material));
    } finally {
      material.fill(0);
    }
    await kms().send(
      new ImportKeyMaterialCommand({
        KeyId: id,
        ImportToken: params.ImportToken,
        EncryptedKeyMaterial: wrapped,
        ExpirationModel: expires ? "KEY_MATERIAL_EXPIRES" : "KEY_MATERIAL_DOES_NOT_EXPIRE",
        ValidTo: validTo,
        ImportType: symmetric
          ? ((field(form, "importType") || undefined) as "EXISTING_KEY_MATERIAL" | "NEW_KEY_MATERIAL" | undefined)
          : undefined,
        KeyMaterialDescription: symmetric ? field(form, "description").trim() || undefined : undefined,
      }),
    );
    form.reset();
    await reload();
  });
  return h("div", null, pending, form, status.el);
}

function replicasPanel(meta: KeyMetadata, reload: () => Promise<void>): HTMLElement {
  const status = new Status();
  const c = meta.MultiRegionConfiguration;
  const rows = [
    ...(c?.PrimaryKey ? [["Primary", c.PrimaryKey.Region ?? "", h("span", { class: "mono" }, c.PrimaryKey.Arn ?? "")]] : []),
    ...(c?.ReplicaKeys ?? []).map((r) => ["Replica", r.Region ?? "", h("span", { class: "mono" }, r.Arn ?? "")]),
  ];
  const primary = c?.MultiRegionKeyType === "PRIMARY";
  const form = h(
    "form",
    { class: "inline" },
    labelled("Replica Region", h("input", { name: "region", placeholder: "eu-west-1", required: true, spellcheck: "false" })),
    h("button", { type: "submit" }, "Replicate key"),
  );
  onSubmit(form, status, async () => {
    await kms().send(new ReplicateKeyCommand({ KeyId: meta.KeyId, ReplicaRegion: field(form, "region").trim() }));
    await reload();
  });
  return h("div", null, table(["Role", "Region", "ARN"], rows), primary ? form : null, status.el);
}

function publicKeyPanel(id: string, status: Status): HTMLElement {
  return h(
    "div",
    { class: "buttons" },
    actionButton("Download public key (PEM)", status, async () => {
      const r = await kms().send(new GetPublicKeyCommand({ KeyId: id }));
      if (!r.PublicKey) throw new Error("GetPublicKey returned no key");
      download(`${id}.pem`, "application/x-pem-file", pem(r.PublicKey));
      return "Public key downloaded.";
    }),
  );
}
