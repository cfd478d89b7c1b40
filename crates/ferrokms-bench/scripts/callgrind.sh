#!/usr/bin/env bash
# Instructions per request, a figure that does not move with machine noise: runs a
# strict-mode ferrokms under callgrind, replays one signed request of WORKLOAD with wrk for
# SECONDS after zeroing the counters, and divides the instructions of every server thread
# by the requests answered.
#
# usage: crates/ferrokms-bench/scripts/callgrind.sh [WORKLOAD] [SECONDS] [FERROKMS-BINARY]
# after: cargo build --release -p ferrokms -p ferrokms-bench; apt-get install wrk valgrind
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$HERE/../../../target/release}
WORKLOAD=${1:-encrypt-4k}
SECONDS_EACH=${2:-10}
SERVER=${3:-$BIN/ferrokms}
PORT=4599

work=$(mktemp -d /tmp/ferrokms-callgrind-XXXX)
cleanup() {
  kill "${server:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

STORE=()
# shellcheck source=serve.sh
. "$HERE/serve.sh"
start_strict "$work" "$PORT" "$WORKLOAD" 60 \
  valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.%p" "$SERVER"
# Warm the caches, then count from zero.
wrk -t1 -c8 -d2s -s "$work/wrk/$WORKLOAD.lua" "http://127.0.0.1:$PORT/" > /dev/null
callgrind_control --zero "$server" > /dev/null 2>&1
wrk -t1 -c8 -d"${SECONDS_EACH}s" -s "$work/wrk/$WORKLOAD.lua" "http://127.0.0.1:$PORT/" > "$work/wrk.out"
callgrind_control --dump "$server" > /dev/null 2>&1
sleep 1
requests=$(awk '/requests in/ {print $1}' "$work/wrk.out")
errors=$(awk '/Non-2xx/ {print $5}' "$work/wrk.out")
dump=$(ls -t "$work"/callgrind.* | head -n 1)
instructions=$(awk '/^summary:/ {print $2}' "$dump")
echo "$WORKLOAD: $requests requests (${errors:-0} errors), $instructions instructions: $((instructions / requests)) per request"
