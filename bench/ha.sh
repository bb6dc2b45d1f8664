#!/usr/bin/env bash
# The HA design under load: wrk through the floating address (16
# connections, /visits: HAProxy -> nginx -> gunicorn -> HAProxy -> the
# Galera cluster's writer) while foobar restarts app, web, lb and db
# servers, while a web server is killed without warning (its nspawn
# stopped) and booted again, and while the cluster's writer is killed.
# Counts every failed request (non-2xx and socket errors), and times how
# long HAProxy takes to mark the killed server down and to put it back.
#
#   bench/ha.sh     (writes bench/ha-results.md)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/host-setup.sh
cargo build --release --locked -q
F=$PWD/target/release/foobar
HA=inventory/lab-ha.yml
$F -i $HA lab up
$F -i $HA provision > /dev/null
WORK=/var/lib/foobar/bench
mkdir -p "$WORK"
URL=http://10.249.0.10/visits

counts() { # wrk output -> "requests | 2xx | maintenance page | failed"
  awk '$1 == "count" && $2 ~ /^2/ {ok += $3} $1 == "count" && $2 == "maintenance" {m += $3}
       $1 == "count" && $2 !~ /^2/ && $2 != "maintenance" {bad += $3}
       $1 == "socket_errors" {sock = $2}
       END {printf "%d | %d | %d | %d", ok + m + bad + sock, ok, m, bad + sock}' "$1"
}

measure() { # label, command run 3 s into 12 s of load
  local out=$WORK/wrk-ha.out
  wrk -t2 -c16 -d12s --timeout 5s -s bench/count.lua "$URL" > "$out" 2>&1 &
  local load=$!
  sleep 3
  bash -c "$2" > /dev/null 2>&1 || echo "bench: '$2' failed" >&2
  wait "$load"
  echo "| $1 | $(counts "$out") |"
  sleep 2
}

holder() { # the load balancer that holds the floating address
  for lb in lb1 lb2; do
    if $F -i $HA lab ssh $lb "ip -4 -o addr show dev eth0" | grep -q "10.249.0.10/"; then echo $lb; return; fi
  done
}

state() { # HAProxy's view of a server at the holder: backend, server
  $F -i $HA lab ssh "$(holder)" "echo 'show stat' | socat stdio /run/haproxy/admin.sock | awk -F, '\$1 == \"$1\" && \$2 == \"$2\" {print \$18}'"
}

wait_state() { # backend, server, state -> seconds waited (0.1 s steps)
  local t0 t1
  t0=$(date +%s.%N)
  until [ "$(state "$1" "$2")" = "$3" ]; do sleep 0.1; done
  t1=$(date +%s.%N)
  awk "BEGIN {printf \"%.1f\", $t1 - $t0}"
}

kill_and_back() {
  local out=$WORK/wrk-ha.out down up
  wrk -t2 -c16 -d25s --timeout 5s -s bench/count.lua "$URL" > "$out" 2>&1 &
  local load=$!
  sleep 3
  $F -i $HA lab kill web2 > /dev/null 2>&1
  down=$(wait_state web web2 DOWN)
  sleep 3
  local t0 t1
  t0=$(date +%s.%N)
  $F -i $HA lab up > /dev/null 2>&1
  until [ "$(state web web2)" = UP ]; do sleep 0.1; done
  t1=$(date +%s.%N)
  up=$(awk "BEGIN {printf \"%.1f\", $t1 - $t0}")
  wait "$load"
  echo "| web2 killed (nspawn stopped, no warning), then \`lab up\` | $(counts "$out") |"
  echo
  echo "web2 marked down by HAProxy ${down} s after the kill; back in the pool ${up} s after \`foobar lab up\` began (boot included)."
}

kill_writer() { # the member taking the writes killed under load
  local out=$WORK/wrk-ha.out writer down
  writer=$($F -i $HA lab ssh "$(holder)" "echo 'show table mysql' | socat stdio /run/haproxy/admin.sock" | sed -n 's/.*server_key=\([^ ]*\).*/\1/p')
  wrk -t2 -c16 -d12s --timeout 5s -s bench/count.lua "$URL" > "$out" 2>&1 &
  local load=$!
  sleep 3
  $F -i $HA lab kill "$writer" > /dev/null 2>&1
  down=$(wait_state mysql "$writer" DOWN)
  wait "$load"
  echo "| the cluster's writer ($writer) killed | $(counts "$out") |"
  $F -i $HA lab up > /dev/null 2>&1
  $F -i $HA provision > /dev/null
  echo
  echo "$writer marked down by HAProxy ${down} s after the kill (at its first refused connection, or two failed checks a second apart); the next connection went to another member."
}

{
  echo "wrk -t2 -c16 on /visits through the floating address (HAProxy -> nginx -> gunicorn -> MariaDB), the action 3 s in (\`bench/ha.sh\`); failed = other non-2xx + socket errors."
  echo
  echo "| action | requests | 2xx | maintenance page (503 + Retry-After) | failed |"
  echo "|---|---|---|---|---|"
  measure "foobar restart app (3 web servers, one at a time)" "$F -i $HA restart app --force"
  measure "foobar restart web" "$F -i $HA restart web --force"
  measure "foobar restart lb (2 load balancers, one at a time)" "$F -i $HA restart lb --force"
  measure "foobar restart db (3 Galera members, one at a time out of HAProxy)" "$F -i $HA restart db --force"
  kill_and_back
  kill_writer
} | tee bench/ha-results.md
