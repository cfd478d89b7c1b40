// Usage from the audit trail: requests per key and per month, beside what the same keys and
// calls would cost on AWS KMS at its list prices (pricing.ts, with the date they were read).

import { DescribeKeyCommand, type KeyMetadata } from "@aws-sdk/client-kms";
import { h, field, replace } from "../dom";
import { kms } from "../session";
import { lookup, type TrailEvent } from "../trail";
import { PRICES, requestClass, requestCost, type RequestClass } from "../pricing";
import { errorView, labelled, section, table } from "../ui";

const MAX_USAGE_EVENTS = 10000;

function month(d: Date): string {
  return d.toISOString().slice(0, 7);
}

function dollars(n: number): string {
  return `$${n.toFixed(2)}`;
}

export async function usagePage(main: HTMLElement, _p: string[], query: URLSearchParams): Promise<void> {
  const months = Math.min(12, Math.max(1, Number(query.get("months") ?? "3") || 3));
  const form = h(
    "form",
    { class: "filters" },
    labelled("Months", h("input", { name: "months", type: "number", min: 1, max: 12, value: months })),
    h("button", { type: "submit" }, "Show"),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = `#/usage?months=${encodeURIComponent(field(form, "months"))}`;
  });
  const results = h("div", { class: "results", "aria-busy": "true" }, h("p", { class: "loading" }, "Counting requests in the trail…"));
  replace(main, h("h1", null, "Usage and cost"), form, results);

  const now = new Date();
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - (months - 1), 1));
  let events: TrailEvent[];
  let truncated: boolean;
  try {
    ({ events, truncated } = await lookup({ start, end: now }, MAX_USAGE_EVENTS));
  } catch (e) {
    replace(results, errorView(e));
    results.removeAttribute("aria-busy");
    return;
  }
  // Every successful KMS request is billed, also those naming no key (ListKeys, CreateKey).
  const kmsEvents = events.filter((e) => e.source === "kms.amazonaws.com" && !e.errorCode);
  const NO_KEY = "";
  // What each key is, for the price class of its requests.
  const metas = new Map<string, KeyMetadata | null>();
  // Described ten at a time, as the keys page does; a key that cannot be described is
  // priced as symmetric (the note below says so).
  const arns = [...new Set(kmsEvents.flatMap((e) => e.keys.slice(0, 1)))];
  for (let i = 0; i < arns.length; i += 10) {
    const batch = arns.slice(i, i + 10);
    const described = await Promise.allSettled(batch.map((arn) => kms().send(new DescribeKeyCommand({ KeyId: arn }))));
    described.forEach((d, j) => metas.set(batch[j], d.status === "fulfilled" ? d.value.KeyMetadata ?? null : null));
  }
  const perKey = new Map<string, Map<string, number>>();
  const perMonthClass = new Map<string, Map<RequestClass, number>>();
  for (const e of kmsEvents) {
    const arn = e.keys[0] ?? NO_KEY;
    const m = month(e.time);
    const byMonth = perKey.get(arn) ?? new Map<string, number>();
    byMonth.set(m, (byMonth.get(m) ?? 0) + 1);
    perKey.set(arn, byMonth);
    const params = e.record.requestParameters as { keyPairSpec?: unknown } | undefined;
    const pairSpec = typeof params?.keyPairSpec === "string" ? params.keyPairSpec : undefined;
    const cls = requestClass(e.name, metas.get(arn)?.KeySpec, pairSpec);
    const classes = perMonthClass.get(m) ?? new Map<RequestClass, number>();
    classes.set(cls, (classes.get(cls) ?? 0) + 1);
    perMonthClass.set(m, classes);
  }
  const monthList: string[] = [];
  for (let i = 0; i < months; i++) {
    monthList.push(month(new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + i, 1))));
  }
  const keyRows = [...perKey.entries()]
    .sort((a, b) => sum(b[1]) - sum(a[1]))
    .map(([arn, byMonth]) => [
      arn === NO_KEY
        ? h("em", null, "requests naming no key")
        : h("a", { href: `#/keys/${encodeURIComponent(arn.split("/").pop() ?? arn)}`, class: "mono" }, arn.split("/").pop() ?? arn),
      metas.get(arn)?.KeySpec ?? "—",
      ...monthList.map((m) => String(byMonth.get(m) ?? 0)),
      String(sum(byMonth)),
    ]);
  // Keys are billed per month each existed and was not pending deletion; the console
  // prices the keys that exist now, for each month shown.
  const billed = [...metas.values()].filter(
    (m): m is KeyMetadata => !!m && m.KeyManager === "CUSTOMER" && m.KeyState !== "PendingDeletion",
  );
  const costRows = monthList.map((m) => {
    const classes = perMonthClass.get(m) ?? new Map<RequestClass, number>();
    const requests = requestCost(classes);
    // A key costs from the month it was made in.
    const customerKeys = billed.filter((k) => !k.CreationDate || month(k.CreationDate) <= m).length;
    const keys = customerKeys * PRICES.keyPerMonth;
    return [m, String(sum(classes)), dollars(requests.cost), String(customerKeys), dollars(keys), dollars(requests.cost + keys)];
  });
  replace(
    results,
    h(
      "p",
      { class: "summary" },
      `${kmsEvents.length} successful KMS requests since ${start.toISOString().slice(0, 10)}` +
        (truncated ? ` (only the newest ${MAX_USAGE_EVENTS} events were read)` : "") +
        ".",
    ),
    section("Requests per key and month", table(["Key", "Spec", ...monthList, "Total"], keyRows)),
    section(
      "On AWS KMS this would cost",
      table(["Month", "Requests", "Requests cost", "Customer managed keys used", "Keys cost", "Total"], costRows),
      h(
        "p",
        { class: "hint" },
        `AWS KMS list prices (${PRICES.region}), as read from ${PRICES.source} on ${PRICES.readOn}: ` +
          PRICES.summary +
          " An estimate: keys are the customer managed keys with requests in the period, charged for every month shown; " +
          "rotations' extra charges are not counted; refused and failed requests are not counted; " +
          "requests naming no key, and requests on keys that cannot be described, are priced as symmetric; " +
          "the free tier (counted by AWS across all Regions) is applied to this Region's requests alone.",
      ),
    ),
  );
  results.removeAttribute("aria-busy");
}

function sum<K>(m: Map<K, number>): number {
  let n = 0;
  for (const v of m.values()) n += v;
  return n;
}
