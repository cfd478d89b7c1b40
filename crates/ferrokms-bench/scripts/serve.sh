# Sourced by wrk.sh and callgrind.sh: starts a strict-mode ferrokms on a fresh data directory
# and prepares the wrk scripts of the workloads.
#
# start_strict WORK PORT WORKLOADS SECONDS_TO_WAIT COMMAND...: runs COMMAND (a ferrokms binary,
# perhaps under a tool) as `serve` on WORK/data and 127.0.0.1:PORT; sets `server` to its pid,
# exports the admin's credentials and writes WORK/wrk/<workload>.lua for each of WORKLOADS.
start_strict() {
  local work=$1 port=$2 workloads=$3 wait_seconds=$4
  mkdir -p "$work"
  shift 4
  "$@" serve --data-dir "$work/data" --listen "127.0.0.1:$port" --quotas off "${STORE[@]}" \
    > "$work/serve.log" 2> "$work/serve.err" &
  server=$!
  for _ in $(seq $((wait_seconds * 10))); do
    grep -q '^try:' "$work/serve.log" 2>/dev/null && break
    sleep 0.1
  done
  if ! grep -q '^try:' "$work/serve.log"; then
    echo "ferrokms did not start (is port $port taken?):" >&2
    cat "$work/serve.log" "$work/serve.err" >&2
    exit 1
  fi
  # shellcheck disable=SC1091
  . "$work/data/admin-credentials"
  export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=us-east-1
  "$BIN/ferrokms-bench" --endpoint "http://127.0.0.1:$port" --wrk "$work/wrk" --workloads "$workloads"
}
