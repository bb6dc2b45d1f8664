#!/usr/bin/env bash
# The main job on the local lab: boot a Debian 12 lab server, provision the
# whole stack on it (BIND, MariaDB, gunicorn, nginx), and show the page.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/host-setup.sh
cargo build --release --locked
foobar=target/release/foobar
$foobar lab up
$foobar provision
echo
echo "== http://www.foobar.com/ (static, from nginx) =="
curl -sS --max-time 5 -H 'Host: www.foobar.com' http://10.250.0.10/
echo "== http://www.foobar.com/visits (dynamic: gunicorn -> MariaDB) =="
curl -sS --max-time 5 -H 'Host: www.foobar.com' http://10.250.0.10/visits
