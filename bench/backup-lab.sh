# Sourced by the backup benches: the release binary ($F), the lab of $INV
# (the backup lab unless the bench names another) up and provisioned, the
# bench's scratch folder ($WORK), the clock in milliseconds (ms) and the
# seconds between two of its readings (secs T0 T1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/host-setup.sh
cargo build --release --locked -q
F=$PWD/target/release/foobar
INV=${INV:-inventory/lab-backup.yml}
WORK=/var/lib/foobar/bench
mkdir -p "$WORK"
$F -i $INV lab up > /dev/null
$F -i $INV provision > /dev/null
ms() { date +%s%3N; }
secs() { awk "BEGIN {printf \"%.1f\", ($2 - $1) / 1000}"; }
