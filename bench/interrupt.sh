#!/usr/bin/env bash
# The whole interruption matrix (tests/lab_interrupt.rs, --ignored): a first
# provision of a pristine lab server interrupted at every step boundary and
# inside every long step, by an SSH cut, a clean reboot and a kill of the
# server; after each, the rerun must converge and a third run change
# nothing. Two shards run side by side, each on a lab of its own
# (tests/fixtures/lab-matrix-{a,b}.yml); about 45 minutes on 2 cores.
# Writes bench/interrupt-results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/host-setup.sh
cargo test --release --locked --features lab --test lab_interrupt --no-run -q
rows=$(mktemp)
rm -f "$rows".a "$rows".b
status=0
pids=()
for shard in a:0 b:1; do
  lab=${shard%%:*} k=${shard##*:}
  FOOBAR_INTERRUPT_LAB=tests/fixtures/lab-matrix-$lab.yml FOOBAR_INTERRUPT_SHARD=$k/2 \
  FOOBAR_INTERRUPT_RESULTS=$rows.$lab cargo test --release --locked --features lab --test lab_interrupt -- \
    --ignored --nocapture a_first_provision_interrupted_at_every_moment_converges \
    > "bench/interrupt-$lab.log" 2>&1 &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
cat "$rows".a "$rows".b > "$rows" 2>/dev/null || true
{
  echo "A first provision interrupted at each moment, in each way (\`bench/interrupt.sh\`):"
  echo "converged = the rerun exited 0 with every check passing, a third run changed nothing,"
  echo "and no temp file or half-unpacked release was left."
  echo
  echo "| moment | SSH cut | reboot | killed |"
  echo "|---|---|---|---|"
  awk -F'\t' '{ r[$1] = r[$1] ? r[$1] : ""; v[$1, $2] = $3; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
    END { for (i = 1; i <= n; i++) { m = order[i]; printf "| %s | %s | %s | %s |\n", m, v[m, "SSH cut"], v[m, "reboot"], v[m, "killed"] } }' "$rows"
} > bench/interrupt-results.md
cat bench/interrupt-results.md
exit $status
