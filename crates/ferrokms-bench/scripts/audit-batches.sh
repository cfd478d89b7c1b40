#!/usr/bin/env bash
# What one node asks of its database, for docs/scaling.md: a dev-mode node on STORE_URL (an
# empty database) under ferrokms-bench encrypt-4k, 64 connections, 8 s; prints its req/s and
# the audit batches (appends to the one chain) the database took meanwhile.
#
# usage, from the repository root, after cargo build --release -p ferrokms -p ferrokms-bench:
#   crates/ferrokms-bench/scripts/audit-batches.sh STORE_URL LABEL
set -euo pipefail
BIN=${BIN:-target/release}
url=$1; label=$2
dir=$(mktemp -d)
"$BIN"/ferrokms serve --dev --data-dir "$dir" --store "$url" --listen 127.0.0.1:4711 > "$dir/log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:4711/ferrokms/health >/dev/null && break; sleep 0.1; done
count() { psql "$url" -Atc "select (select count(*) from audit_events) || ' ' || (select count(*) from audit_digests)"; }
before=$(count)
out=$(AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 "$BIN"/ferrokms-bench --endpoint http://127.0.0.1:4711 --workloads encrypt-4k -c 64 -s 8 --no-ceiling --json)
after=$(count)
kill $pid; wait $pid 2>/dev/null || true; rm -rf "$dir"
python3 - "$label" "$before" "$after" <<PY
import json,sys
label=sys.argv[1]; b=list(map(int,sys.argv[2].split())); a=list(map(int,sys.argv[3].split()))
r=json.loads('''$out''')["results"][0]["ferrokms"]
events=a[0]-b[0]; batches=a[1]-b[1]
print(f"{label}: {r['requests_per_second']:.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms; {events} audit events in {batches} batches: {events/max(batches,1):.1f} per batch, {batches/8:.0f} batches/s")
PY
