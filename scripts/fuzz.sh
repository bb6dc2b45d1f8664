#!/usr/bin/env bash
# Fuzzes the inventory loader, the playbook loader, template rendering and
# the step kinds' fact parsers for a bounded time each (default 60 s):
# `scripts/fuzz.sh [SECONDS]`.
# cargo-fuzz wants nightly flags; RUSTC_BOOTSTRAP lets the stable
# toolchain accept them. Crashes land in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for target in inventory playbook template facts; do
  mkdir -p "fuzz/corpus/$target"
  echo "fuzz: $target for $secs s"
  cargo fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 2>&1 |
    grep -E '^(#[0-9]+\s+DONE|Done|==[0-9]+==|SUMMARY|INFO: Running|artifact_prefix|Test unit written)' || true
  if ls "fuzz/artifacts/$target"/crash-* "fuzz/artifacts/$target"/timeout-* >/dev/null 2>&1; then
    echo "fuzz: $target found a failure: see fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
