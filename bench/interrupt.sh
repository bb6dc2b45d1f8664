#!/usr/bin/env bash
# The whole interruption matrix (tests/interrupt.rs, --ignored): a first
# provision of a pristine lab server interrupted at every step boundary and
# inside every long step, by an SSH cut, a clean reboot and a kill of the
# server; after each, the rerun must converge and a third run change
# nothing. Takes over an hour; writes bench/interrupt-results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/host-setup.sh
rows=$(mktemp)
status=0
FOOBAR_INTERRUPT_RESULTS=$rows cargo test --release --locked --test interrupt -- \
  --ignored --nocapture a_first_provision_interrupted_at_every_moment_converges || status=$?
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
