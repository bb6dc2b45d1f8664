#!/usr/bin/env bash
# What a first provision costs for the applications people run, beside
# the sample apps, on the same apps lab server: the sample Flask app and
# the sample PHP app, a Django project as `startproject` lays it out
# (inventory/lab-django.yml), and WordPress from Debian's packages
# (inventory/lab-wordpress.yml, its code base made by
# tests/fixtures/wordpress.sh). Each from a pristine server, interleaved,
# N runs each (default 3); medians of wall seconds, and how many steps
# changed.
#
#   bench/apps.sh [N]     (writes bench/apps-results.md)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-3}
scripts/host-setup.sh
cargo build --release --locked -q
F=$PWD/target/release/foobar
WORK=/var/lib/foobar/bench/apps
rm -rf "$WORK" && mkdir -p "$WORK"
tests/fixtures/wordpress.sh "$WORK/wordpress" > /dev/null
sed "s|/var/lib/foobar/lab-apps/wordpress|$WORK/wordpress|" inventory/lab-wordpress.yml > inventory/.bench-wordpress.yml
trap 'rm -f inventory/.bench-wordpress.yml' EXIT

apps=(flask php-markdown django wordpress)
inventory() {
  case $1 in
    wordpress) echo inventory/.bench-wordpress.yml ;;
    *) echo "inventory/lab-$1.yml" ;;
  esac
}
$F -i "$(inventory flask)" lab up > /dev/null

median() { tr ' ' '\n' | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

declare -A wall changed
for i in $(seq "$N"); do
  for app in "${apps[@]}"; do
    inv=$(inventory "$app")
    $F -i "$inv" lab reset apps1 > /dev/null
    t0=$(date +%s.%N)
    $F -i "$inv" --json provision > "$WORK/$app.json" 2> "$WORK/$app.err" || {
      cat "$WORK/$app.err" >&2
      echo "bench: provision of $app failed" >&2
      exit 1
    }
    t1=$(date +%s.%N)
    wall[$app]+="$(awk "BEGIN {printf \"%.2f\", $t1 - $t0}") "
    changed[$app]=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["totals"]["changed"])' "$WORK/$app.json")
  done
done
{
  echo "# bench/apps.sh: $(date -u +%Y-%m-%dT%H:%MZ), $(git rev-parse --short HEAD)"
  echo
  echo "A first provision of each application on a pristine apps lab server (one server: nginx, the app server, MariaDB, BIND), interleaved, $N runs each; wall seconds."
  echo
  echo "| application | median s | runs | steps changed |"
  echo "|---|---|---|---|"
  for app in "${apps[@]}"; do
    echo "| $app ($(inventory "$app" | sed 's|.bench-wordpress|lab-wordpress|')) | $(echo "${wall[$app]}" | median) | ${wall[$app]}| ${changed[$app]} |"
  done
} | tee bench/apps-results.md
