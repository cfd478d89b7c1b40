// The console's frame: sign-in, the navigation, and the router from `#/...` to a page.

import "./style.css";
import { h, field, replace } from "./dom";
import * as session from "./session";
import { Status, errorView, labelled, onSubmit, signedOut } from "./ui";
import { keysPage } from "./pages/keys";
import { createKeyPage } from "./pages/create";
import { keyPage } from "./pages/key";
import { policyPage } from "./pages/policy";
import { grantsPage } from "./pages/grants";
import { auditPage } from "./pages/audit";
import { keyStoresPage } from "./pages/keystores";
import { usagePage } from "./pages/usage";
import { explainPage } from "./pages/explain";

type Page = (main: HTMLElement, params: string[], query: URLSearchParams) => Promise<void>;

const ROUTES: [RegExp, Page][] = [
  [/^\/keys$/, keysPage],
  [/^\/keys\/new$/, createKeyPage],
  [/^\/keys\/([^/]+)$/, keyPage],
  [/^\/keys\/([^/]+)\/policy$/, policyPage],
  [/^\/keys\/([^/]+)\/grants$/, grantsPage],
  [/^\/audit$/, auditPage],
  [/^\/key-stores$/, keyStoresPage],
  [/^\/usage$/, usagePage],
  [/^\/explain$/, explainPage],
];

const NAV: [string, string][] = [
  ["#/keys", "Keys"],
  ["#/keys/new", "Create key"],
  ["#/audit", "Audit trail"],
  ["#/usage", "Usage and cost"],
  ["#/key-stores", "Custom key stores"],
  ["#/explain", "Why was I denied?"],
];

const app = document.getElementById("app") as HTMLElement;

function signInPage(notice?: string): void {
  const status = new Status();
  const form = h(
    "form",
    { class: "signin", "aria-labelledby": "signin-title", autocomplete: "off" },
    h("h1", { id: "signin-title" }, "ferrokms console"),
    h(
      "p",
      null,
      "Sign in with an access key pair. It stays in this tab's session storage; " +
        "the server sees only the SigV4 signatures made with it.",
    ),
    // autocomplete off: a password manager would keep the secret for good.
    labelled("Access key ID", h("input", { name: "accessKeyId", autocomplete: "off", required: true, spellcheck: "false" })),
    labelled("Secret access key", h("input", { name: "secretAccessKey", type: "password", autocomplete: "off", required: true }),
    ),
    labelled("Region", h("input", { name: "region", value: "us-east-1", required: true, spellcheck: "false" })),
    h(
      "details",
      null,
      h("summary", null, "Session token or role"),
      labelled("Session token (temporary credentials)", h("input", { name: "sessionToken", type: "password", autocomplete: "off" })),
      labelled("Assume role (ARN)", h("input", { name: "roleArn", placeholder: "arn:aws:iam::111122223333:role/name", spellcheck: "false" }),
      ),
      labelled("Role session name", h("input", { name: "roleSessionName", value: "ferrokms-console" })),
      labelled(
        "Session duration (seconds)",
        h("input", { name: "durationSeconds", type: "number", min: 900, max: 43200, value: 3600 }),
      ),
    ),
    h("button", { type: "submit", class: "primary" }, "Sign in"),
    status.el,
  );
  if (notice) replace(status.el, h("div", { class: "warning", role: "alert" }, notice));
  onSubmit(form, status, async () => {
    await session.signIn({
      accessKeyId: field(form, "accessKeyId"),
      secretAccessKey: field(form, "secretAccessKey"),
      sessionToken: field(form, "sessionToken"),
      region: field(form, "region").trim(),
      roleArn: field(form, "roleArn").trim() || undefined,
      roleSessionName: field(form, "roleSessionName"),
      durationSeconds: Number(field(form, "durationSeconds")) || undefined,
    });
    // A new hash renders through hashchange; the same one is drawn here.
    if (!location.hash || location.hash === "#/") location.hash = "#/keys";
    else void render();
  });
  document.title = "Sign in · ferrokms console";
  replace(app, h("main", { id: "main", class: "signin-page", tabindex: "-1" }, form));
  (form.querySelector("input") as HTMLInputElement).focus();
}

function frame(): HTMLElement {
  const s = session.session();
  const main = h("main", { id: "main", tabindex: "-1" });
  const current = location.hash.split("?")[0];
  const nav = h(
    "nav",
    { "aria-label": "Console" },
    h("div", { class: "brand" }, "ferrokms"),
    h(
      "ul",
      null,
      NAV.map(([href, label]) =>
        h("li", null, h("a", { href, "aria-current": current === href ? "page" : null }, label)),
      ),
    ),
    h(
      "div",
      { class: "who" },
      h("div", { class: "arn", title: s.arn }, s.arn),
      h("div", null, `${s.account} · ${s.region}`),
      h(
        "button",
        {
          type: "button",
          onclick: () => {
            session.forget();
            location.hash = "";
            render();
          },
        },
        "Sign out",
      ),
    ),
  );
  replace(app, h("div", { class: "layout" }, nav, main));
  return main;
}

let rendering = 0;

/** After a page is drawn: its title, and focus on its heading, so that a keyboard or screen
 * reader user starts there, as after a page load. */
function arrived(main: HTMLElement): void {
  const heading = main.querySelector("h1");
  document.title = `${heading?.textContent?.trim() || "ferrokms"} · ferrokms console`;
  if (heading instanceof HTMLElement && !main.contains(document.activeElement)) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

async function render(): Promise<void> {
  const signedIn = session.resume();
  if (typeof signedIn === "string") {
    signInPage(signedIn || undefined);
    return;
  }
  const [path, q] = (location.hash.replace(/^#/, "") || "/keys").split("?");
  const query = new URLSearchParams(q ?? "");
  const main = frame();
  const turn = ++rendering;
  for (const [pattern, page] of ROUTES) {
    const m = pattern.exec(path);
    if (m) {
      try {
        await page(main, m.slice(1).map(decodeURIComponent), query);
        if (turn === rendering) arrived(main);
      } catch (e) {
        if (turn === rendering && !signedOut(e)) {
          replace(main, h("h1", null, "This page could not be shown"), errorView(e));
        }
      }
      return;
    }
  }
  replace(main, h("h1", null, "Not found"), h("p", null, h("a", { href: "#/keys" }, "Keys")));
}

// The skip link moves focus to the page, not the route (the hash is the router's).
document.querySelector(".skip")?.addEventListener("click", (ev) => {
  ev.preventDefault();
  document.getElementById("main")?.focus();
});

window.addEventListener("hashchange", () => void render());
window.addEventListener(session.SIGNED_OUT_EVENT, (ev) => {
  rendering++;
  signInPage((ev as CustomEvent<string>).detail);
});
void render();
