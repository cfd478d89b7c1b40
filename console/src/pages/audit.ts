// The audit trail: filters, calls per day and per operation (failures in the error colour),
// the events, and one event's whole record.

import { h, field, replace } from "../dom";
import { columns, rows, tally } from "../chart";
import { day, lookup, type TrailEvent, type TrailFilter } from "../trail";
import { errorView, labelled, section, table, when } from "../ui";
import { EXPLAIN_NOW } from "./explain";

const EVENTS_PER_PAGE = 50;

/** The time in the table: month, day and UTC time (the record has the whole of it). */
function shortTime(d: Date): string {
  return d.toISOString().slice(5, 19).replace("T", " ");
}

/** "Why?" for a refused KMS call: the explain page, filled in from the record. */
function explainLink(e: TrailEvent): HTMLElement | null {
  if (e.source !== "kms.amazonaws.com") return null;
  const identity = e.record.userIdentity as { arn?: unknown } | undefined;
  const params = (e.record.requestParameters ?? {}) as { keyId?: unknown; encryptionContext?: unknown };
  const q = new URLSearchParams({ action: `kms:${e.name}` });
  if (typeof identity?.arn === "string") q.set("principal", identity.arn);
  const key = e.keys[0] ?? (typeof params.keyId === "string" ? params.keyId : "");
  if (key) q.set("key", key);
  if (params.encryptionContext && typeof params.encryptionContext === "object") {
    q.set(
      "context",
      Object.entries(params.encryptionContext as Record<string, unknown>)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join("\n"),
    );
  }
  return h(
    "p",
    null,
    h("a", { class: "button", href: `#/explain?${q}`, onclick: () => sessionStorage.setItem(EXPLAIN_NOW, "1") }, "Why was this denied?"),
  );
}

function localInput(d?: Date): string {
  if (!d) return "";
  const off = d.getTimezoneOffset() * 60000;
  return new Date(d.getTime() - off).toISOString().slice(0, 16);
}

function filterOf(q: URLSearchParams): TrailFilter {
  const date = (s: string | null) => (s ? new Date(s) : undefined);
  return {
    eventName: q.get("event") || undefined,
    key: q.get("key") || undefined,
    user: q.get("user") || undefined,
    start: date(q.get("start")),
    end: date(q.get("end")),
  };
}

/** Each day from the first event's to the last's, so that quiet days show as gaps. */
function days(events: TrailEvent[]): string[] {
  if (!events.length) return [];
  const times = events.map((e) => e.time.getTime());
  const out: string[] = [];
  const last = day(new Date(Math.max(...times)));
  for (let t = new Date(day(new Date(Math.min(...times)))).getTime(); out.length < 400; t += 86400000) {
    const d = day(new Date(t));
    out.push(d);
    if (d >= last) break;
  }
  return out;
}

export async function auditPage(main: HTMLElement, _p: string[], query: URLSearchParams): Promise<void> {
  const filter = filterOf(query);
  const form = h(
    "form",
    { class: "filters", role: "search" },
    labelled("Event name", h("input", { name: "event", value: filter.eventName ?? "", placeholder: "Decrypt", spellcheck: "false" })),
    labelled("Key", h("input", { name: "key", value: filter.key ?? "", placeholder: "key id, ARN or alias", spellcheck: "false" })),
    labelled("User name", h("input", { name: "user", value: filter.user ?? "", spellcheck: "false" })),
    labelled("From (local time)", h("input", { name: "start", type: "datetime-local", value: localInput(filter.start) })),
    labelled("To (local time)", h("input", { name: "end", type: "datetime-local", value: localInput(filter.end) })),
    h("button", { type: "submit" }, "Look up"),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const name of ["event", "key", "user"]) {
      const v = field(form, name).trim();
      if (v) q.set(name, v);
    }
    for (const name of ["start", "end"]) {
      const v = field(form, name);
      if (v) q.set(name, new Date(v).toISOString());
    }
    location.hash = `#/audit?${q}`;
  });
  const results = h("div", { class: "results", "aria-busy": "true" }, h("p", { class: "loading" }, "Reading the trail…"));
  replace(main, h("h1", null, "Audit trail"), form, results);

  let found: { events: TrailEvent[]; truncated: boolean };
  try {
    found = await lookup(filter);
  } catch (e) {
    replace(results, errorView(e));
    results.removeAttribute("aria-busy");
    return;
  }
  const { events, truncated } = found;
  const failed = (e: TrailEvent) => e.errorCode !== undefined;
  const perDay = tally(events, (e) => day(e.time), failed);
  const byDay = new Map(perDay.map((b) => [b.label, b]));
  const dayBars = days(events).map((d) => byDay.get(d) ?? { label: d, total: 0, errors: 0 });
  const perOp = tally(events, (e) => e.name, failed).sort((a, b) => b.total - a.total).slice(0, 20);

  const detail = h("div", { class: "event-detail" }, h("p", { class: "muted" }, "Choose an event to see its record."));
  const show = (e: TrailEvent) => {
    const heading = h("h3", { tabindex: "-1" }, `${e.name} · ${when(e.time)}`);
    replace(
      detail,
      heading,
      e.errorCode === "AccessDeniedException" ? explainLink(e) : null,
      h("pre", { class: "code event-json", tabindex: "0", "aria-label": "Event record" }, JSON.stringify(e.record, null, 2)),
    );
    heading.focus();
  };
  const rowsOf = (slice: TrailEvent[]) =>
    slice.map((e) => [
      h("button", { type: "button", class: "link", onclick: () => show(e), "aria-label": `Show event ${e.name} at ${when(e.time)}` }, shortTime(e.time)),
      e.name,
      e.user || "—",
      e.keys.length
        ? h("span", { class: "mono", title: e.keys.join(", ") }, e.keys.map((k) => (k.split("/").pop() ?? k).slice(0, 8) + "…").join(", "))
        : "—",
      e.sourceIp ?? "—",
      e.errorCode
        ? h("span", { class: "badge error-code", title: `${e.errorCode}: ${e.errorMessage ?? ""}` }, e.errorCode.replace(/Exception$/, "")) : h("span", { class: "muted" }, "—"),
    ]);
  // A page of the events at a time; the charts count them all.
  const list = h("div", { class: "events" });
  const showPage = (n: number) => {
    const slice = events.slice(n * EVENTS_PER_PAGE, (n + 1) * EVENTS_PER_PAGE);
    const t = table(["Time", "Event", "User", "Key", "Source IP", "Error"], rowsOf(slice));
    t.querySelectorAll("tbody tr").forEach((tr, i) => {
      if (slice[i]?.errorCode) tr.classList.add("failed");
    });
    const pages = Math.max(1, Math.ceil(events.length / EVENTS_PER_PAGE));
    const prev = h("button", { type: "button", disabled: n === 0, onclick: () => showPage(n - 1) }, "← Newer");
    const next = h("button", { type: "button", disabled: n + 1 >= pages, onclick: () => showPage(n + 1) }, "Older →");
    replace(list, t, h("div", { class: "pager" }, prev, h("span", null, `Page ${n + 1} of ${pages}`), next));
  };
  showPage(0);
  const failures = events.filter(failed).length;
  replace(
    results,
    h(
      "p",
      { class: "summary" },
      `${events.length} events${truncated ? " (the newest only: narrow the filter or the time to see older ones)" : ""}, ${failures} failed.`,
    ),
    h("div", { class: "charts" }, columns("Calls per day (UTC)", dayBars), rows("Calls per operation", perOp)),
    h("div", { class: "split" }, section("Events", list), section("Event record", detail)),
  );
  results.removeAttribute("aria-busy");
}
