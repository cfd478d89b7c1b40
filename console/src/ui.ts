// Pieces every page uses: headings, tables, errors shown as AWS's code and message, buttons
// that run a call, confirmations.

import { h, replace, type Child } from "./dom";
import { SignedOut, end, endsSession, fromAnotherSession } from "./session";

/** AWS's error code and message, as the SDK reports them. */
export function describeError(e: unknown): { code: string; message: string } {
  if (e && typeof e === "object") {
    const err = e as { name?: string; Code?: string; message?: string; __type?: string };
    const code = err.name && err.name !== "Error" ? err.name : err.Code ?? err.__type ?? "Error";
    return { code, message: err.message ?? String(e) };
  }
  return { code: "Error", message: String(e) };
}

/** Whether an error ended the session: the frame then shows the sign-in form instead. */
export function signedOut(e: unknown): boolean {
  if (e instanceof SignedOut) return true;
  const { code, message } = describeError(e);
  if (!endsSession(code) || fromAnotherSession(e)) return false;
  end(`${code}: ${message} Sign in again.`);
  return true;
}

/** An error as AWS gives it. Every error a page shows comes here, so an error that ended
 * the session (an expired token) also brings the sign-in form, wherever it was caught. */
export function errorView(e: unknown): HTMLElement {
  signedOut(e);
  const { code, message } = describeError(e);
  return h(
    "div",
    { class: "error", role: "alert", "data-error-code": code },
    h("strong", { class: "code" }, code),
    h("span", { class: "message" }, message),
  );
}

/** A live region a page reports into: a call's error, or what it did. */
export class Status {
  readonly el = h("div", { class: "status", "aria-live": "polite" });
  error(e: unknown): void {
    replace(this.el, errorView(e));
  }
  ok(text: string): void {
    replace(this.el, h("div", { class: "ok", role: "status" }, text));
  }
  clear(): void {
    replace(this.el);
  }
}

/** Runs `run` with `controls` disabled meanwhile, reporting to `status`. */
async function running(controls: HTMLButtonElement[], status: Status, run: () => Promise<void | string>): Promise<void> {
  controls.forEach((b) => (b.disabled = true));
  status.clear();
  try {
    const done = await run();
    if (done) status.ok(done);
  } catch (e) {
    status.error(e);
  } finally {
    controls.forEach((b) => (b.disabled = false));
  }
}

/** A button that runs `run`, disabled while it does, reporting errors to `status`. */
export function actionButton(
  label: string,
  status: Status,
  run: () => Promise<void | string>,
  attrs: Record<string, string> = {},
): HTMLButtonElement {
  const button = h("button", { type: "button", ...attrs }, label);
  button.addEventListener("click", () => void running([button], status, run));
  return button;
}

/** Runs a form's submit through `run`, with its buttons disabled meanwhile. */
export function onSubmit(form: HTMLFormElement, status: Status, run: () => Promise<void | string>): void {
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void running(Array.from(form.querySelectorAll<HTMLButtonElement>("button")), status, run);
  });
}

export function table(columns: string[], rows: Child[][], caption?: string): HTMLTableElement {
  return h(
    "table",
    null,
    caption ? h("caption", null, caption) : null,
    h("thead", null, h("tr", null, columns.map((c) => h("th", { scope: "col" }, c)))),
    h(
      "tbody",
      null,
      rows.length === 0
        ? h("tr", null, h("td", { colspan: columns.length, class: "empty" }, "None"))
        : rows.map((r) => h("tr", null, r.map((c) => h("td", null, c)))),
    ),
  );
}

/** A list of name / value pairs. */
export function facts(pairs: [string, Child][]): HTMLElement {
  return h(
    "dl",
    { class: "facts" },
    pairs.map(([k, v]) => [h("dt", null, k), h("dd", null, v ?? "—")]),
  );
}

export function when(d: Date | undefined | null): string {
  if (!d) return "—";
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

export function stateBadge(state: string | undefined): HTMLElement {
  const s = state ?? "Unknown";
  return h("span", { class: `badge state-${s}` }, s);
}

/** Asks before something that cannot be taken back; resolves true if confirmed. */
export function confirm(question: string, detail: string, yes: string): Promise<boolean> {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, question),
      h("p", null, detail),
      h(
        "div",
        { class: "buttons" },
        h("button", { type: "button", onclick: () => dialog.close("no") }, "Cancel"),
        h("button", { type: "button", class: "danger", onclick: () => dialog.close("yes") }, yes),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "yes");
      dialog.remove();
    });
    document.body.appendChild(dialog);
    dialog.showModal();
  });
}

export function section(title: string, ...children: Child[]): HTMLElement {
  return h("section", { class: "panel" }, h("h2", null, title), children);
}

export function download(name: string, type: string, content: BlobPart): void {
  const url = URL.createObjectURL(new Blob([content], { type }));
  const a = h("a", { href: url, download: name });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function labelled(label: string, control: HTMLElement, hint?: string): HTMLElement {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 10)}`;
  control.id = id;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    control,
    hint ? h("small", { class: "hint" }, hint) : null,
  );
}
