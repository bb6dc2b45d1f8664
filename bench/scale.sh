#!/usr/bin/env bash
# foobar over many servers: a no-op provision over 1, 10 and 30 lab servers
# (s0 holds the whole stack, the others are web/app servers using its
# database), over new connections and over the ones the run before kept,
# and the first run over 10 pristine servers. Per run: wall time,
# SSH sessions opened (from the servers' sshd logs), and CPU seconds apart
# for the controller (foobar and its ssh processes, in a cgroup of their
# own) and the servers (the rest of the machine's CPU time, from
# /proc/stat; the servers share this machine's cores).
#
#   bench/scale.sh [RUNS]     (default 3; writes bench/scale-results.md)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
scripts/host-setup.sh
cargo build --release --locked -q
F=$PWD/target/release/foobar
WORK=/var/lib/foobar/bench/scale
mkdir -p "$WORK"

inventory() { # N [ssh_config] -> the inventory of s0 .. s(N-1)
  local n=$1 out=$WORK/scale-$1${2:+-classic}.yml
  {
    echo "lab: {bridge_address: 10.248.0.1, dir: /var/lib/foobar/lab-scale}"
    echo "ssh: {known_hosts: /var/lib/foobar/lab-scale/known_hosts${2:+, config: $2}}"
    echo "servers:"
    for i in $(seq 0 $((n - 1))); do
      if [ "$i" = 0 ]; then roles="[web, app, db, dns]"; else roles="[web, app]"; fi
      echo "  - {name: s$i, address: 10.248.0.$((10 + i)), roles: $roles, ssh: {user: root, identity_file: /var/lib/foobar/lab-scale/id_ed25519}}"
    done
    echo "domain: {zone: foobar.com}"
    echo "app: {kind: gunicorn, source: $PWD/apps/python}"
    echo "mysql: {database: foobar, user: foobar, password: file:/var/lib/foobar/lab-scale/secrets/mysql_password}"
  } > "$out"
  echo "$out"
}

# CPU time in seconds: the whole machine (all cores), and the controller's
# cgroup.
machine_cpu() { awk '/^cpu / {printf "%.3f", ($2 + $3 + $4 + $7 + $8) / 100}' /proc/stat; }
CG=/sys/fs/cgroup/cpuacct/foobar-bench
mkdir -p "$CG"
controller_cpu() { awk '{printf "%.3f", $1 / 1e9}' "$CG/cpuacct.usage"; }
in_cgroup() { (echo "$BASHPID" > "$CG/cgroup.procs"; exec "$@"); }

close_masters() {
  for s in "$HOME"/.cache/foobar/ssh/*; do [ -S "$s" ] && ssh -O exit -S "$s" x 2>/dev/null || true; done
}

sessions() { # N -> SSH sessions so far on s0 .. s(N-1)
  local total=0 i
  for i in $(seq 0 $(($1 - 1))); do
    total=$((total + $($F -i "$INV30" lab ssh "s$i" "journalctl -t sshd -o cat --no-pager | grep -c 'Starting session' || true")))
  done
  echo "$total"
}

INV30=$(inventory 30)
$F -i "$INV30" lab up > /dev/null
ROWS=$WORK/rows.md
: > "$ROWS"

measure() { # label, N, command...
  local label=$1 n=$2
  shift 2
  local s0 m0 c0 t0 t1 m1 c1 s1
  s0=$(sessions "$n")
  m0=$(machine_cpu)
  c0=$(controller_cpu)
  t0=$(date +%s.%N)
  in_cgroup "$@" > "$WORK/last.log" 2>&1 || echo "bench: $label failed: $(tail -3 "$WORK/last.log")" >&2
  t1=$(date +%s.%N)
  m1=$(machine_cpu)
  c1=$(controller_cpu)
  s1=$(sessions "$n")
  # The counting commands' own sessions are not the run's.
  awk -v l="$label" -v n="$n" -v w="$(awk "BEGIN{print $t1 - $t0}")" -v m="$(awk "BEGIN{print $m1 - $m0}")" \
      -v c="$(awk "BEGIN{print $c1 - $c0}")" -v s="$((s1 - s0 - n))" \
      'BEGIN {printf "| %s | %d | %.2f s | %d | %.0f ms | %.0f ms | %.0f ms |\n", l, n, w, s / n, 1000 * c / n, 1000 * (m - c) / n, 1000 * m / n}' | tee -a "$ROWS"
}

# The first run over 10 pristine servers.
INV10=$(inventory 10)
for i in $(seq 0 9); do $F -i "$INV30" lab reset "s$i" > /dev/null; done
measure "first run (pristine)" 10 "$F" -i "$INV10" provision
# The other 20 get the stack too, unmeasured.
$F -i "$INV30" provision > /dev/null

for n in 1 10 30; do
  inv=$(inventory "$n")
  # Unmeasured: s0 alone keeps its database on localhost, with others it
  # serves them over the network, so the first run after a change of N
  # rewrites s0's config.
  "$F" -i "$inv" provision > /dev/null 2>&1
  for run in $(seq 1 "$RUNS"); do
    close_masters
    measure "no-op, new connections, run $run" "$n" "$F" -i "$inv" provision
    # The masters the run before made live in the controller's cgroup, so
    # their share of this run counts as the controller's.
    measure "no-op, connections kept, run $run" "$n" "$F" -i "$inv" provision
  done
done

# The same no-op with the pre-quantum key exchange, which a user can pick
# with an ssh_config file (foobar keeps OpenSSH's default).
CLASSIC=$WORK/ssh_config-classic
echo "KexAlgorithms curve25519-sha256" > "$CLASSIC"
inv=$(inventory 30 "$CLASSIC")
"$F" -i "$inv" provision > /dev/null 2>&1
for run in $(seq 1 "$RUNS"); do
  close_masters
  measure "no-op, new connections, curve25519 key exchange, run $run" 30 "$F" -i "$inv" provision
done

{
  echo "\`bench/scale.sh\` on this $(nproc)-core machine: the lab servers share its cores. CPU per server: the controller's (foobar and its ssh processes) and the servers' (sshd, the fact script, the checks' requests) apart."
  echo
  echo "| run | servers | wall | SSH sessions per server | controller CPU per server | server CPU per server | total CPU per server |"
  echo "|---|---|---|---|---|---|---|"
  cat "$ROWS"
} > bench/scale-results.md
cat bench/scale-results.md
