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
# its log, printed when the group ends; a failing binary does not stop the
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
# CI stops the whole run at 90 min; the groups are stopped earlier, at
# LAB_DEADLINE_MIN minutes from the start of this script, so that a test that
# hangs is named in the output (libtest's "running for over 60 seconds") rather
# than lost with it. Each group's log is printed as soon as the group ends.
deadline=$(( ${LAB_DEADLINE_MIN:-80} * 60 - SECONDS ))
(( deadline > 60 )) || deadline=60
logs=$(mktemp -d)
declare -A group_of
for i in "${!groups[@]}"; do
  args=()
  for name in ${groups[$i]}; do args+=(--test "$name"); done
  timeout -k 60 "$deadline" cargo test --locked --features lab --no-fail-fast "${args[@]}" > "$logs/$i.log" 2>&1 &
  group_of[$!]=$i
done
failed=0
summary=()
for _ in "${!groups[@]}"; do
  status=0
  wait -n -p pid || status=$?
  i=${group_of[$pid]}
  echo "=== lab group $((i + 1)) ended after $((SECONDS / 60)) min (exit $status): ${groups[$i]}"
  cat "$logs/$i.log"
  if (( status == 124 || status == 137 )); then
    echo "=== lab group $((i + 1)) was stopped at the deadline (${LAB_DEADLINE_MIN:-80} min): the test running for longest above hung or is too slow"
  fi
  (( status == 0 )) || failed=1
  summary+=("lab group $((i + 1)): exit $status after $((SECONDS / 60)) min")
  # A test still running when its group was stopped: announced, never ended.
  while read -r name; do
    grep -q "^test $name \.\.\. " "$logs/$i.log" || summary+=("  unfinished: $name")
  done < <(sed -n 's/^test \(.*\) has been running for over 60 seconds$/\1/p' "$logs/$i.log")
  failed_tests=$(grep -E '^test .* FAILED$' "$logs/$i.log" | sed 's/^/  /' || true)
  [[ -z $failed_tests ]] || summary+=("$failed_tests")
done
rm -rf "$logs"
printf '%s\n' "=== summary" "${summary[@]}"
exit "$failed"
