// The key policy editor: the policy as stored, checks as the server makes them, the diff to
// review before saving, and the lockout warning.

import { GetKeyPolicyCommand, PutKeyPolicyCommand } from "@aws-sdk/client-kms";
import { h, replace } from "../dom";
import { kms, session } from "../session";
import { allAliases } from "../kms";
import { Status, actionButton, confirm, section } from "../ui";
import { allowsPutKeyPolicy, checkPolicy, diffLines, pretty } from "../policycheck";
import { describe, keyHeader } from "./keytabs";

export async function policyPage(main: HTMLElement, [keyId]: string[]): Promise<void> {
  replace(main, h("p", { class: "loading" }, "Loading policy…"));
  const meta = await describe(keyId);
  const id = meta.KeyId ?? keyId;
  const [aliases, stored] = await Promise.all([
    allAliases(id),
    kms().send(new GetKeyPolicyCommand({ KeyId: id, PolicyName: "default" })),
  ]);
  const original = pretty(stored.Policy ?? "");
  const status = new Status();
  const editor = h("textarea", {
    class: "code policy-editor",
    rows: 24,
    spellcheck: "false",
    "aria-label": "Key policy JSON",
  });
  editor.value = original;
  const findings = h("div", { class: "findings", "aria-live": "polite" });
  const review = h("div", { class: "review" });
  const bypass = h("input", { type: "checkbox", id: "bypass" });

  const check = () => {
    const result = checkPolicy(editor.value);
    replace(
      findings,
      result.findings.length === 0
        ? h("p", { class: "ok" }, "No problems found.")
        : h(
            "div",
            null,
            h(
              "ul",
              { class: "problems" },
              result.findings.map((f) =>
                h("li", { class: f.kind }, h("strong", null, f.kind === "refused" ? "Refused: " : "Warning: "), f.message),
              ),
            ),
            h(
              "p",
              { class: "hint" },
              "These are the server's checks, made here first; the first refusal is the error saving would get. " +
                "The server checks the policy again when it is saved, and its answer decides.",
            ),
          ),
    );
    return result;
  };
  editor.addEventListener("input", () => {
    check();
    replace(review);
  });

  const reviewButton = h("button", { type: "button", class: "primary" }, "Review changes");
  reviewButton.addEventListener("click", () => {
    status.clear();
    const result = check();
    const diff = diffLines(original, pretty(editor.value));
    const changed = diff.some((d) => d.kind !== " ");
    const s = session();
    const lockout = result.doc && !allowsPutKeyPolicy(result.doc, s.arn, s.account);
    replace(
      review,
      h("h3", null, "Changes"),
      changed
        ? h(
            "pre",
            { class: "diff", "aria-label": "Policy diff" },
            diff.map((d) => h("span", { class: `diff-${d.kind === "+" ? "add" : d.kind === "-" ? "del" : "same"}` }, `${d.kind} ${d.line}\n`)),
          )
        : h("p", null, "The policy is unchanged."),
      lockout
        ? h(
            "div",
            { class: "warning", role: "alert" },
            h("strong", null, "Lockout warning: "),
            `this policy may not let you (${s.arn}) change it again: no statement without conditions allows you or your account kms:PutKeyPolicy, or a Deny may take it away. ` +
              "If the policy lets no one change it, the key becomes unmanageable. The server refuses such a policy unless the lockout safety check is bypassed.",
          )
        : null,
      changed && result.doc
        ? h(
            "div",
            { class: "buttons" },
            lockout ? h("span", { class: "check" }, bypass, h("label", { for: "bypass" }, "Bypass the policy lockout safety check")) : null,
            actionButton("Save policy", status, async () => {
              if (
                bypass.checked &&
                !(await confirm(
                  "Save without the lockout safety check?",
                  "If this policy lets no one change it, no one can manage the key again: not you, not the account's root.",
                  "Save anyway",
                ))
              ) {
                return;
              }
              await kms().send(
                new PutKeyPolicyCommand({
                  KeyId: id,
                  PolicyName: "default",
                  Policy: editor.value,
                  BypassPolicyLockoutSafetyCheck: (lockout && bypass.checked) || undefined,
                }),
              );
              await policyPage(main, [keyId]);
              return;
            }),
          )
        : null,
    );
  });

  replace(
    main,
    keyHeader(meta, aliases.map((a) => a.AliasName ?? ""), "policy"),
    section(
      "Key policy",
      h("p", { class: "hint" }, "Edit the JSON, review the difference from the stored policy, then save (PutKeyPolicy)."),
      editor,
      findings,
      h(
        "div",
        { class: "buttons" },
        reviewButton,
        h(
          "button",
          {
            type: "button",
            onclick: () => {
              editor.value = original;
              check();
              replace(review);
            },
          },
          "Discard edits",
        ),
      ),
      review,
      status.el,
    ),
  );
  check();
}
