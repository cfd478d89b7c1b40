// The keys of the account and Region: filtered by alias, spec, state and tag, a page at a
// time. A filter reads on through ListKeys until it has a page of matches or none are left.

import { DescribeKeyCommand, ListKeysCommand, type KeyMetadata } from "@aws-sdk/client-kms";
import { h, field, replace } from "../dom";
import { kms, session } from "../session";
import { KEY_SPECS, KEY_STATES, aliasesByKey, allTags } from "../kms";
import { describeError, errorView, labelled, stateBadge, table, when } from "../ui";

const PAGE_SIZE = 25;

/** Where a page starts: a ListKeys marker, and the last key shown before (keys the listing
 * holds up to it were shown; by id, so that a key made or deleted meanwhile moves nothing). */
interface Cursor {
  marker?: string;
  after?: string;
}

/** At most this many ListKeys pages (of 100) are read for one page of matches. */
const MAX_LISTINGS = 50;

interface Filter {
  alias: string;
  spec: string;
  state: string;
  tag: string;
}

interface Row {
  meta: KeyMetadata;
  aliases: string[];
  /** Why DescribeKey failed, when it did. */
  refused?: string;
}

interface Page {
  rows: Row[];
  next?: Cursor;
  scanned: number;
  /** Reading stopped at MAX_LISTINGS with more to read. */
  stopped?: boolean;
}

function parseTag(tag: string): { key: string; value?: string } | null {
  if (!tag.trim()) return null;
  const i = tag.indexOf("=");
  return i < 0 ? { key: tag.trim() } : { key: tag.slice(0, i).trim(), value: tag.slice(i + 1).trim() };
}

async function matches(row: Row, f: Filter): Promise<boolean> {
  const m = row.meta;
  if (f.alias && !row.aliases.some((a) => a.toLowerCase().includes(f.alias.toLowerCase()))) return false;
  if (f.spec && m.KeySpec !== f.spec) return false;
  if (f.state && m.KeyState !== f.state) return false;
  const tag = parseTag(f.tag);
  if (tag && m.KeyId) {
    // A key whose tags the caller may not read cannot be shown to match.
    const tags = await allTags(m.KeyId).catch(() => null);
    if (!tags) return false;
    if (!tags.some((t) => t.TagKey === tag.key && (tag.value === undefined || t.TagValue === tag.value))) {
      return false;
    }
  }
  return true;
}

async function readPage(from: Cursor, f: Filter, aliases: Map<string, string[]>): Promise<Page> {
  const rows: Row[] = [];
  let cursor: Cursor = from;
  let scanned = 0;
  for (let listings = 0; ; listings++) {
    if (listings === MAX_LISTINGS) return { rows, scanned, next: cursor, stopped: true };
    const listing = await kms().send(new ListKeysCommand({ Marker: cursor.marker, Limit: 100 }));
    const all = listing.Keys ?? [];
    const at = cursor.after === undefined ? -1 : all.findIndex((k) => k.KeyId === cursor.after);
    // The last key shown is gone: ferrokms lists keys in id order, so start after its id.
    const entries =
      cursor.after === undefined
        ? all
        : at >= 0
          ? all.slice(at + 1)
          : all.filter((k) => (k.KeyId ?? "") > (cursor.after ?? ""));
    // Described ten at a time: quick, and well inside DescribeKey's rate.
    for (let i = 0; i < entries.length; i += 10) {
      const batch = entries.slice(i, i + 10);
      // A key the caller may list but not describe is still shown, with the refusal.
      const described = await Promise.allSettled(
        batch.map((e) => kms().send(new DescribeKeyCommand({ KeyId: e.KeyId }))),
      );
      for (let j = 0; j < described.length; j++) {
        scanned++;
        const d = described[j];
        const entry = batch[j];
        let row: Row;
        if (d.status === "fulfilled" && d.value.KeyMetadata?.KeyId) {
          const meta = d.value.KeyMetadata;
          row = { meta, aliases: aliases.get(meta.KeyId ?? "") ?? [] };
          if (!(await matches(row, f))) continue;
        } else {
          if (f.spec || f.state || f.tag) continue;
          row = {
            meta: { KeyId: entry.KeyId, Arn: entry.KeyArn },
            aliases: aliases.get(entry.KeyId ?? "") ?? [],
            refused: d.status === "rejected" ? describeError(d.reason).code : "no metadata",
          };
          if (f.alias && !(await matches(row, f))) continue;
        }
        rows.push(row);
        if (rows.length === PAGE_SIZE) {
          const last = i + j + 1 === entries.length;
          const next: Cursor | undefined = !last
            ? { marker: cursor.marker, after: entry.KeyId }
            : listing.Truncated && listing.NextMarker
              ? { marker: listing.NextMarker }
              : undefined;
          return { rows, next, scanned };
        }
      }
    }
    if (!listing.Truncated || !listing.NextMarker) return { rows, scanned };
    cursor = { marker: listing.NextMarker };
  }
}

// The cursors of the pages before this one, so that "Previous" goes back.
let history: { filter: string; cursors: Cursor[] } = { filter: "", cursors: [] };

export async function keysPage(main: HTMLElement, _params: string[], query: URLSearchParams): Promise<void> {
  const filter: Filter = {
    alias: query.get("alias") ?? "",
    spec: query.get("spec") ?? "",
    state: query.get("state") ?? "",
    tag: query.get("tag") ?? "",
  };
  // Per identity too: another one's markers mean nothing.
  const filterKey = JSON.stringify([session().arn, session().region, filter]);
  if (history.filter !== filterKey) history = { filter: filterKey, cursors: [{}] };
  const pageNo = Math.max(0, Math.min(Number(query.get("page") ?? "0") || 0, history.cursors.length - 1));
  const cursor = history.cursors[pageNo];

  const select = (name: string, options: readonly string[], value: string) =>
    h(
      "select",
      { name },
      h("option", { value: "" }, "Any"),
      options.map((o) => h("option", { value: o, selected: o === value }, o)),
    );
  const form = h(
    "form",
    { class: "filters", role: "search" },
    labelled("Alias contains", h("input", { name: "alias", value: filter.alias, spellcheck: "false" })),
    labelled("Key spec", select("spec", KEY_SPECS, filter.spec)),
    labelled("State", select("state", KEY_STATES, filter.state)),
    labelled("Tag", h("input", { name: "tag", value: filter.tag, placeholder: "key or key=value", spellcheck: "false" })),
    h("button", { type: "submit" }, "Filter"),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const name of ["alias", "spec", "state", "tag"]) {
      const v = field(form, name).trim();
      if (v) q.set(name, v);
    }
    location.hash = `#/keys?${q}`;
  });
  const results = h("div", { class: "results", "aria-busy": "true" }, h("p", { class: "loading" }, "Loading keys…"));
  replace(
    main,
    h("div", { class: "title" }, h("h1", null, "Keys"), h("a", { class: "button primary", href: "#/keys/new" }, "Create key")),
    form,
    results,
  );

  let page: Page;
  try {
    page = await readPage(cursor, filter, await aliasesByKey());
  } catch (e) {
    replace(results, errorView(e));
    results.removeAttribute("aria-busy");
    return;
  }
  if (page.next) history.cursors[pageNo + 1] = page.next;
  else history.cursors.length = pageNo + 1;

  const link = (n: number) => {
    const q = new URLSearchParams(query);
    q.set("page", String(n));
    return `#/keys?${q}`;
  };
  const rows = page.rows.map(({ meta, aliases, refused }) => [
    h("a", { href: `#/keys/${encodeURIComponent(meta.KeyId ?? "")}`, class: "mono" }, meta.KeyId ?? ""),
    aliases.length ? aliases.join(", ") : h("span", { class: "muted" }, "—"),
    refused ? h("span", { class: "badge error-code" }, `DescribeKey: ${refused}`) : meta.Description || h("span", { class: "muted" }, "—"),
    meta.KeySpec ?? "",
    meta.KeyUsage ?? "",
    stateBadge(meta.KeyState),
    meta.KeyManager === "AWS" ? "AWS managed" : "Customer managed",
    when(meta.CreationDate),
  ]);
  replace(
    results,
    table(["Key ID", "Aliases", "Description", "Key spec", "Usage", "State", "Type", "Created"], rows),
    h(
      "div",
      { class: "pager" },
      pageNo > 0 ? h("a", { class: "button", href: link(pageNo - 1) }, "← Previous") : h("span", { class: "button disabled" }, "← Previous"),
      h(
        "span",
        null,
        `Page ${pageNo + 1} · ${page.rows.length} shown · ${page.scanned} read` +
          (page.stopped ? " · stopped reading (Next reads on)" : ""),
      ),
      page.next ? h("a", { class: "button", href: link(pageNo + 1), rel: "next" }, "Next →") : h("span", { class: "button disabled" }, "Next →"),
    ),
  );
  results.removeAttribute("aria-busy");
}
