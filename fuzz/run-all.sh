#!/usr/bin/env bash
# Runs every fuzz target over its committed corpus for SECONDS seconds each (default 5).
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain take them.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for target in $(cargo fuzz list); do
  echo "fuzzing $target for ${seconds}s"
  # A scratch copy: new inputs found in a short run are not committed by accident.
  scratch=$(mktemp -d)
  cp -r "fuzz/corpus/$target/." "$scratch/"
  log=$(mktemp)
  status=0
  cargo fuzz run -O "$target" "$scratch" -- -max_total_time="$seconds" -max_len=8192 \
    >"$log" 2>&1 || status=$?
  grep -E "^(Done|==|SUMMARY)|panicked|ERROR" "$log" || true
  rm -rf "$scratch" "$log"
  if [ "$status" -ne 0 ]; then
    echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
# The operations target's stores.
rm -rf "${TMPDIR:-/tmp}"/ferrokms-fuzz-*
