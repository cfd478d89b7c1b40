#!/usr/bin/env bash
# The share of this machine's ceiling that ferrokms reaches, measured with wrk (a generator
# that costs little): for each workload, wrk replays one SigV4-signed request at C
# connections against a bare hyper server answering a fixed body of the same size (the
# ceiling), then against a strict-mode ferrokms (every signature checked against the admin's
# secret, the admin's identity policy evaluated, audit on and durable, quotas off).
#
# usage: crates/ferrokms-bench/scripts/wrk.sh [SECONDS] [CONNECTIONS] [--store postgres://...]
# after: cargo build --release -p ferrokms -p ferrokms-bench; apt-get install wrk
#
# Each workload then runs again paced at half the throughput wrk measured, with
# ferrokms-bench's --rate (a paced request's latency counts from when it was due; wrk's own
# pacing would hide a stall). With --store, a second node on that PostgreSQL database runs
# the same workloads in the same run, and its share of the SQLite node's throughput is printed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$HERE/../../../target/release}
SECONDS_EACH=${1:-10}
CONNECTIONS=${2:-64}
POSTGRES=""
if [ "${3:-}" = "--store" ]; then POSTGRES=$4; fi
WORKLOADS=${WORKLOADS:-encrypt-4k,decrypt-4k,generate-data-key,generate-mac,sign-ecc-p256}
PORT=4599
POSTGRES_PORT=4601
CEILING_PORT=4600

work=$(mktemp -d /tmp/ferrokms-wrk-XXXX)
cleanup() {
  kill "${sqlite_server:-}" "${postgres_server:-}" "${ceiling:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=serve.sh
. "$HERE/serve.sh"
STORE=()
start_strict "$work/sqlite" "$PORT" "$WORKLOADS" 10 "$BIN/ferrokms"
sqlite_server=$server
if [ -n "$POSTGRES" ]; then
  STORE=(--store "$POSTGRES")
  start_strict "$work/postgres" "$POSTGRES_PORT" "$WORKLOADS" 10 "$BIN/ferrokms"
  postgres_server=$server
fi

rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
pct() { awk -v p="$2" '$1 == p {print $2}' "$1"; }

# wrk against PORT with the workload's script signed for that server; prints req/s.
load() { # name port dir out
  wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency -s "$3/wrk/$1.lua" \
    "http://127.0.0.1:$2/" > "$4"
  if grep -q "Non-2xx" "$4"; then
    echo "$1 on port $2 answered errors:" >&2; grep "Non-2xx" "$4" >&2
  fi
  rps "$4"
}

# ferrokms-bench paced at RATE against PORT, with the credentials of DIR; prints "p50 p99" in ms.
paced() { # name port dir rate
  ( # shellcheck disable=SC1091
    . "$3/data/admin-credentials"
    export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=us-east-1
    "$BIN/ferrokms-bench" --endpoint "http://127.0.0.1:$2" --workloads "$1" \
      -c "$CONNECTIONS" -s "$SECONDS_EACH" --rate "$4" --json ) |
    python3 -c 'import json, sys; r = json.load(sys.stdin)["results"][0]["ferrokms"]
print("%.2fms %.2fms %d" % (r["p50_ms"], r["p99_ms"], r["errors"]))'
}

echo "wrk, $CONNECTIONS connections, $SECONDS_EACH s per run, $(nproc) cores; strict mode (SigV4, identity policy, audit durable)"
header="%-18s %11s %11s %6s %9s %9s | %-24s"
if [ -n "$POSTGRES" ]; then header="$header | %11s %6s %9s"; fi
# shellcheck disable=SC2059
printf "$header\n" workload "ceiling r/s" "sqlite r/s" ratio p50 p99 "half load p50 p99 errors" \
  ${POSTGRES:+"postgres r/s" "pg/sq" "pg p99"}
for name in ${WORKLOADS//,/ }; do
  bytes=$(cat "$work/sqlite/wrk/$name.bytes")
  "$BIN/ferrokms-bench" --serve-ceiling "127.0.0.1:$CEILING_PORT=$bytes" > /dev/null &
  ceiling=$!
  sleep 0.3
  c=$(load "$name" "$CEILING_PORT" "$work/sqlite" "$work/ceiling.out")
  kill "$ceiling"; wait "$ceiling" 2>/dev/null || true
  f=$(load "$name" "$PORT" "$work/sqlite" "$work/sqlite.out")
  half=$(paced "$name" "$PORT" "$work/sqlite" "$(awk -v f="$f" 'BEGIN { print f / 2 }')")
  line=$(printf '%-18s %11.0f %11.0f %6.2f %9s %9s | %-24s' "$name" "$c" "$f" \
    "$(awk -v f="$f" -v c="$c" 'BEGIN { print f / c }')" \
    "$(pct "$work/sqlite.out" 50%)" "$(pct "$work/sqlite.out" 99%)" "$half")
  if [ -n "$POSTGRES" ]; then
    g=$(load "$name" "$POSTGRES_PORT" "$work/postgres" "$work/postgres.out")
    line="$line $(printf '| %11.0f %6.2f %9s' "$g" "$(awk -v g="$g" -v f="$f" 'BEGIN { print g / f }')" \
      "$(pct "$work/postgres.out" 99%)")"
  fi
  echo "$line"
done
