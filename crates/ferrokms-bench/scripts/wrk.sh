#!/usr/bin/env bash
# The share of this machine's ceiling that ferrokms reaches, measured with wrk (a generator
# that costs little): for each workload, wrk replays one SigV4-signed request at C
# connections against a bare hyper server answering a fixed body of the same size (the
# ceiling), then against a strict-mode ferrokms (every signature checked against the admin's
# secret, the admin's identity policy evaluated, audit on and durable, quotas off).
#
# usage: crates/ferrokms-bench/scripts/wrk.sh [SECONDS] [CONNECTIONS] [--store postgres://...]
# after: cargo build --release -p ferrokms -p ferrokms-bench; apt-get install wrk
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$HERE/../../../target/release}
SECONDS_EACH=${1:-10}
CONNECTIONS=${2:-64}
STORE=()
if [ "${3:-}" = "--store" ]; then STORE=(--store "$4"); fi
WORKLOADS=${WORKLOADS:-encrypt-4k,decrypt-4k,generate-data-key,generate-mac,sign-ecc-p256}
PORT=4599
CEILING_PORT=4600

work=$(mktemp -d /tmp/ferrokms-wrk-XXXX)
cleanup() {
  kill "${server:-}" "${ceiling:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=serve.sh
. "$HERE/serve.sh"
start_strict "$work" "$PORT" "$WORKLOADS" 10 "$BIN/ferrokms"

rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
pct() { awk -v p="$2" '$1 == p {print $2}' "$1"; }

echo "wrk, $CONNECTIONS connections, $SECONDS_EACH s per run, $(nproc) cores; strict mode${STORE[*]:+ on ${STORE[1]%%@*}@...}"
printf '%-20s %12s %12s %7s %9s %9s\n' workload "ceiling r/s" "ferrokms r/s" ratio "p50" "p99"
for name in ${WORKLOADS//,/ }; do
  bytes=$(cat "$work/wrk/$name.bytes")
  "$BIN/ferrokms-bench" --serve-ceiling "127.0.0.1:$CEILING_PORT=$bytes" > /dev/null &
  ceiling=$!
  sleep 0.3
  wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency -s "$work/wrk/$name.lua" \
    "http://127.0.0.1:$CEILING_PORT/" > "$work/ceiling.out"
  kill "$ceiling"; wait "$ceiling" 2>/dev/null || true
  wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency -s "$work/wrk/$name.lua" \
    "http://127.0.0.1:$PORT/" > "$work/ferrokms.out"
  if grep -q "Non-2xx" "$work/ferrokms.out"; then
    echo "$name: ferrokms answered errors:"; grep "Non-2xx" "$work/ferrokms.out"
  fi
  c=$(rps "$work/ceiling.out"); f=$(rps "$work/ferrokms.out")
  printf '%-20s %12.0f %12.0f %7.2f %9s %9s\n' "$name" "$c" "$f" "$(awk -v f="$f" -v c="$c" 'BEGIN { print f / c }')" \
    "$(pct "$work/ferrokms.out" 50%)" "$(pct "$work/ferrokms.out" 99%)"
done
