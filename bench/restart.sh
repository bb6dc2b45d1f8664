#!/usr/bin/env bash
# Requests dropped while a service restarts: foobar's restarts beside a
# plain `systemctl restart` (what Ansible's `service: state=restarted`
# runs), under load from wrk against the lab server through nginx; the
# app server in each of its three kinds.
#
#   bench/restart.sh     (writes bench/restart-results.md)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/host-setup.sh
cargo build --release --locked -q
F=$PWD/target/release/foobar
$F lab up
WORK=/var/lib/foobar/bench
mkdir -p "$WORK"

measure() { # label, command run 3 s into 8 s of load
  local out=$WORK/wrk.out
  wrk -t2 -c16 -d8s --timeout 5s -s bench/count.lua http://10.250.0.10/visits > "$out" 2>&1 &
  local load=$!
  sleep 3
  bash -c "$2" > /dev/null 2>&1 || echo "bench: '$2' failed" >&2
  wait "$load"
  local ok maint other sock total
  ok=$(awk '$1 == "count" && $2 ~ /^2/ {s += $3} END {print s + 0}' "$out")
  maint=$(awk '$1 == "count" && $2 == "maintenance" {s += $3} END {print s + 0}' "$out")
  other=$(awk '$1 == "count" && $2 !~ /^2/ && $2 != "maintenance" {s += $3} END {print s + 0}' "$out")
  sock=$(awk '$1 == "socket_errors" {print $2}' "$out")
  total=$((ok + maint + other + sock))
  echo "| $1 | $total | $ok | $maint | $other | $sock | $((other + sock)) |"
  sleep 2
}

app_server() { # inventory, kind label, service
  $F -i "$1" provision > /dev/null 2>&1
  measure "foobar restart app ($2)" "$F -i $1 restart app --force"
  measure "systemctl restart $3 ($2)" "$F lab ssh web1 systemctl restart $3"
}

{
  echo "wrk -t2 -c16 -d8s on /visits (nginx -> app server -> MariaDB), the action 3 s in (\`bench/restart.sh\`)."
  echo
  echo "| action | requests | 2xx | maintenance page (503 + Retry-After) | other non-2xx | socket errors | failed |"
  echo "|---|---|---|---|---|---|---|"
  app_server inventory/lab-php.yml php-fpm php8.2-fpm
  app_server inventory/lab-ruby.yml puma foobar-puma
  app_server inventory/lab.yml gunicorn foobar-app
  measure "foobar restart web" "$F restart web --force"
  measure "systemctl restart nginx" "$F lab ssh web1 systemctl restart nginx"
  measure "foobar restart db" "$F restart db --force"
  measure "systemctl restart mariadb" "$F lab ssh web1 systemctl restart mariadb"
} | tee bench/restart-results.md
