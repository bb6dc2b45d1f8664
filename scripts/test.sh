#!/usr/bin/env bash
# The whole test suite, both tiers: formatting; lints, of the hermetic tier
# as plain `cargo test` builds it and of everything with the lab tier; then
# `cargo test --features lab`: the hermetic tier (unit, snapshot and the
# other tests that need no server) and the lab tier (tests/lab_*.rs: the
# integration tests that drive the real binary against real lab servers;
# they bring the lab up themselves and reuse it when it is already up).
# Plain `cargo test` runs the hermetic tier only.
#
# The lab tier runs as groups side by side, one per set of lab servers
# (each lab has its own subnet and folder; a group's binaries share its
# servers, so they run one after another). Each group's output goes to
# its log, printed when all are done; a failing binary does not stop the
# others of its group (--no-fail-fast).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/host-setup.sh
export RUST_BACKTRACE=0
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo clippy --all-targets --all-features --locked -- -D warnings
cargo test --locked --features lab --no-run

# The hermetic tier: the library, the binary and every test file that is
# not a lab test.
hermetic=(--lib --bins)
for t in tests/*.rs; do
  name=$(basename "$t" .rs)
  case "$name" in lab_*) ;; *) hermetic+=(--test "$name") ;; esac
done
cargo test --locked --features lab "${hermetic[@]}"

# Lab groups, by the lab they use: the main lab (and the small ones the
# same tests bring up), the HA lab with the backup lab, the apps lab.
groups=(
  "lab_provision lab_restart lab_faults lab_interrupt lab_app_kinds lab_dns lab_lab lab_init lab_json lab_security lab_ssh"
  "lab_ha lab_backup"
  "lab_apps lab_https lab_firewall"
)
# Every lab test is in exactly one group.
for t in tests/lab_*.rs; do
  name=$(basename "$t" .rs)
  [[ " ${groups[*]} " == *" $name "* ]] || { echo "scripts/test.sh: $name is in no lab group" >&2; exit 1; }
done
logs=$(mktemp -d)
pids=()
for i in "${!groups[@]}"; do
  args=()
  for name in ${groups[$i]}; do args+=(--test "$name"); done
  cargo test --locked --features lab --no-fail-fast "${args[@]}" > "$logs/$i.log" 2>&1 &
  pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then failed=1; fi
  echo "=== lab group $((i + 1)): ${groups[$i]}"
  cat "$logs/$i.log"
done
rm -rf "$logs"
exit "$failed"
