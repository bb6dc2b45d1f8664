# Sourced by the backup benches: the release binary ($F), the backup lab
# ($INV) up and provisioned, the bench's scratch folder ($WORK), and the
# clock in milliseconds (ms).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/host-setup.sh
cargo build --release --locked -q
F=$PWD/target/release/foobar
INV=inventory/lab-backup.yml
WORK=/var/lib/foobar/bench
mkdir -p "$WORK"
$F -i $INV lab up > /dev/null
$F -i $INV provision > /dev/null
ms() { date +%s%3N; }
