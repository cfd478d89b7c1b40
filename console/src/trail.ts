// The audit trail through CloudTrail's LookupEvents: one attribute filters on the server
// (as AWS allows one), any other in the tab; at most MAX_EVENTS are read.

import { LookupEventsCommand, type LookupAttribute } from "@aws-sdk/client-cloudtrail";
import { DescribeKeyCommand } from "@aws-sdk/client-kms";
import { kms, session, trail } from "./session";

export const MAX_EVENTS = 2000;
/** At most this many LookupEvents pages for one look: filters applied here read on. */
const MAX_PAGES = 400;

export interface TrailEvent {
  id: string;
  time: Date;
  name: string;
  source: string;
  user: string;
  keys: string[];
  errorCode?: string;
  errorMessage?: string;
  sourceIp?: string;
  record: Record<string, unknown>;
}

export interface TrailFilter {
  eventName?: string;
  key?: string;
  user?: string;
  start?: Date;
  end?: Date;
}

/** A key named by id, alias or ARN, as the key ARN the trail records. A deleted key
 * cannot be described, and is the one most worth looking up: its id makes its ARN. */
async function keyArn(key: string): Promise<string> {
  if (/^arn:[^:]+:kms:[^:]+:\d{12}:key\//.test(key)) return key;
  try {
    const r = await kms().send(new DescribeKeyCommand({ KeyId: key }));
    if (r.KeyMetadata?.Arn) return r.KeyMetadata.Arn;
  } catch (e) {
    const s = session();
    if (!key.includes("alias/") && !key.startsWith("arn:")) return `arn:aws:kms:${s.region}:${s.account}:key/${key}`;
    throw e;
  }
  return key;
}

export async function lookup(
  filter: TrailFilter,
  max = MAX_EVENTS,
): Promise<{ events: TrailEvent[]; truncated: boolean }> {
  const key = filter.key ? await keyArn(filter.key) : undefined;
  const candidates: LookupAttribute[] = [];
  if (key) candidates.push({ AttributeKey: "ResourceName", AttributeValue: key });
  if (filter.eventName) candidates.push({ AttributeKey: "EventName", AttributeValue: filter.eventName });
  if (filter.user) candidates.push({ AttributeKey: "Username", AttributeValue: filter.user });
  const server = candidates.slice(0, 1);
  const events: TrailEvent[] = [];
  let token: string | undefined;
  let truncated = false;
  for (let page = 0; events.length < max; page++) {
    if (page === MAX_PAGES) {
      truncated = true;
      break;
    }
    const r = await trail().send(
      new LookupEventsCommand({
        LookupAttributes: server.length ? server : undefined,
        StartTime: filter.start,
        EndTime: filter.end,
        MaxResults: 50,
        NextToken: token,
      }),
    );
    for (const e of r.Events ?? []) {
      let record: Record<string, unknown> = {};
      try {
        record = JSON.parse(e.CloudTrailEvent ?? "{}") as Record<string, unknown>;
      } catch {
        record = {};
      }
      const ev: TrailEvent = {
        id: e.EventId ?? "",
        time: e.EventTime ?? new Date(0),
        name: e.EventName ?? "",
        source: e.EventSource ?? "",
        user: e.Username ?? "",
        keys: (e.Resources ?? []).map((res) => res.ResourceName ?? "").filter(Boolean),
        errorCode: typeof record.errorCode === "string" ? record.errorCode : undefined,
        errorMessage: typeof record.errorMessage === "string" ? record.errorMessage : undefined,
        sourceIp: typeof record.sourceIPAddress === "string" ? record.sourceIPAddress : undefined,
        record,
      };
      if (filter.eventName && ev.name !== filter.eventName) continue;
      if (filter.user && ev.user !== filter.user) continue;
      if (key && !ev.keys.includes(key)) continue;
      events.push(ev);
    }
    if (!r.NextToken) break;
    token = r.NextToken;
    if (events.length >= max) truncated = true;
  }
  if (events.length > max) truncated = true;
  return { events: events.slice(0, max), truncated };
}

export function day(d: Date): string {
  return d.toISOString().slice(0, 10);
}
