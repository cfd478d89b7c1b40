// "Why was I denied?": the server's own decision for an action on a key by a principal, with
// every statement and grant that applied or did not (ExplainDecision). Reading it needs what
// reading the policies needs, so a denied user may have to ask someone who can.

import { h, field, replace } from "../dom";
import { session } from "../session";
import { explainDecision } from "../explain";
import { errorView, labelled, section } from "../ui";
import { keyValueLines } from "../kms";

const ACTIONS = [
  "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext",
  "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:DescribeKey", "kms:Sign", "kms:Verify",
  "kms:GetPublicKey", "kms:GenerateMac", "kms:VerifyMac", "kms:CreateGrant", "kms:ListGrants",
  "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:DisableKey",
  "kms:EnableKey", "kms:CreateKey", "kms:ListKeys", "kms:ListAliases",
];

/** Set by the audit page's link when it is clicked: only then does the page ask at once
 * (a link from elsewhere only fills the form in). */
export const EXPLAIN_NOW = "ferrokms-console-explain-now";

export async function explainPage(main: HTMLElement, _p: string[], query: URLSearchParams): Promise<void> {
  const me = session().arn;
  const form = h(
    "form",
    { class: "create" },
    h("div", { class: "row" },
      labelled("Action", h("input", { name: "action", required: true, list: "kms-actions", value: query.get("action") ?? "kms:Decrypt", spellcheck: "false" })),
      labelled("Key (optional)", h("input", { name: "key", value: query.get("key") ?? "", placeholder: "key id, ARN or alias", spellcheck: "false" })),
    ),
    h("datalist", { id: "kms-actions" }, ACTIONS.map((a) => h("option", { value: a }))),
    labelled(
      "Principal",
      h("input", { name: "principal", value: query.get("principal") ?? me, spellcheck: "false" }),
      "You, or (with iam:SimulatePrincipalPolicy) another principal of your account.",
    ),
    h("div", { class: "row" },
      labelled("Encryption context", h("textarea", { name: "context", rows: 3, placeholder: "tenant=acme", spellcheck: "false" }, query.get("context") ?? "")),
      labelled("Other condition keys", h("textarea", { name: "conditions", rows: 3, placeholder: "kms:EncryptionAlgorithm=SYMMETRIC_DEFAULT", spellcheck: "false" })),
    ),
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, "Explain")),
  );
  const result = h("div", { class: "explain-result", "aria-live": "polite" });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const button = form.querySelector("button") as HTMLButtonElement;
    button.disabled = true;
    replace(result, h("p", { class: "loading" }, "Deciding…"));
    try {
      const principal = field(form, "principal").trim();
      const answer = await explainDecision({
        Action: field(form, "action").trim(),
        KeyId: field(form, "key").trim() || undefined,
        Principal: principal && principal !== me ? principal : undefined,
        EncryptionContext: keyValueLines(field(form, "context")),
        Conditions: keyValueLines(field(form, "conditions")),
      });
      replace(
        result,
        section(
          "Decision",
          h(
            "p",
            { class: answer.Allowed ? "verdict allowed" : "verdict denied", "data-allowed": String(answer.Allowed) },
            answer.Allowed ? "ALLOWED" : "DENIED",
          ),
          h(
            "pre",
            { class: "code explanation", "aria-label": "Explanation" },
            answer.Explanation.split("\n").map((line) =>
              h("span", { class: /^\s*\*/.test(line) ? "applies" : /condition not met|DENIED/.test(line) ? "fails" : "" }, line + "\n"),
            ),
          ),
          h("p", { class: "hint" }, "A * marks the statements and grants that applied to this request."),
        ),
      );
    } catch (e) {
      replace(result, errorView(e));
    } finally {
      button.disabled = false;
    }
  });
  replace(
    main,
    h("h1", null, "Why was I denied?"),
    h(
      "p",
      { class: "hint" },
      "ferrokms decides the request as it would decide it for real and shows every statement and grant that applied or did not, with the condition that failed. " +
        "Asking needs kms:GetKeyPolicy and kms:ListGrants on the key.",
    ),
    form,
    result,
  );
  if (sessionStorage.getItem(EXPLAIN_NOW)) {
    sessionStorage.removeItem(EXPLAIN_NOW);
    form.requestSubmit();
  }
}
