#!/usr/bin/env bash
# foobar beside Ansible (forks = N) and pyinfra on N web/app servers of the
# lab bench/scale.sh builds (s1 .. sN, N up to 29; s0 holds their database): the no-op
# rerun, interleaved (foobar, pyinfra, Ansible, foobar, ...). All three
# deploy the same state (the files foobar renders per server, the code base
# under foobar's release name), so each one's rerun is a true no-op; that is
# checked before measuring. Per run: wall time, SSH sessions per server, CPU
# per server (controller and servers apart, as in bench/scale.sh).
#
#   bench/scale-tools.sh [RUNS] [SIZES]     (default 3 "1 10 29"; run bench/scale.sh first)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
SIZES=${2:-1 10 29}
F=$PWD/target/release/foobar
WORK=/var/lib/foobar/bench/scale
VENV=/var/lib/foobar/bench/venv
INV=$WORK/scale-30.yml
LAB=/var/lib/foobar/lab-scale
[ -f "$INV" ] || { echo "bench: run bench/scale.sh first" >&2; exit 1; }
$F -i "$INV" lab up > /dev/null 2>&1
$F -i "$INV" provision > /dev/null 2>&1

export RENDERED_ROOT=$WORK/render APP_SOURCE=$PWD/apps/python
rm -rf "$RENDERED_ROOT"
$F -i "$INV" render --out "$RENDERED_ROOT" > /dev/null
# render masks secrets; the tools deploy the real app.env (kept 0600).
for env in "$RENDERED_ROOT"/*/etc/foobar/app.env; do
  sed -i "s/^DB_PASSWORD=.*/DB_PASSWORD=$(cat $LAB/secrets/mysql_password)/" "$env"
  chmod 600 "$env"
done
RELEASE=$($F -i "$INV" lab ssh s1 readlink /srv/foobar/current)
export RELEASE=${RELEASE#releases/}

CG=/sys/fs/cgroup/cpuacct/foobar-bench
mkdir -p "$CG"
machine_cpu() { awk '/^cpu / {printf "%.3f", ($2 + $3 + $4 + $7 + $8) / 100}' /proc/stat; }
controller_cpu() { awk '{printf "%.3f", $1 / 1e9}' "$CG/cpuacct.usage"; }
in_cgroup() { (echo "$BASHPID" > "$CG/cgroup.procs"; exec "$@"); }
sessions() { # N -> SSH sessions so far on s1 .. sN
  local total=0 i
  for i in $(seq 1 "$1"); do
    total=$((total + $($F -i "$INV" lab ssh "s$i" "journalctl -t sshd -o cat --no-pager | grep -c 'Starting session' || true")))
  done
  echo "$total"
}

tool_files() { # N -> Ansible and pyinfra inventories of s1 .. sN
  local n=$1 i
  {
    echo "[web]"
    for i in $(seq 1 "$n"); do
      echo "s$i ansible_host=10.248.0.$((10 + i)) ansible_user=root ansible_ssh_private_key_file=$LAB/id_ed25519"
    done
  } > "$WORK/ansible-$n.ini"
  {
    echo "web = ["
    for i in $(seq 1 "$n"); do
      echo "    (\"s$i\", {\"ssh_hostname\": \"10.248.0.$((10 + i))\", \"ssh_user\": \"root\", \"ssh_key\": \"$LAB/id_ed25519\", \"ssh_known_hosts_file\": \"$LAB/known_hosts\", \"ssh_strict_host_key_checking\": \"yes\"}),"
    done
    echo "]"
  } > "$WORK/pyinfra_$n.py"
}

run_tool() { # tool N
  local n=$2 limits=() i
  case $1 in
    foobar)
      for i in $(seq 1 "$n"); do limits+=(--limit "s$i"); done
      $F -i "$INV" "${limits[@]}" provision ;;
    ansible)
      ANSIBLE_CONFIG=$PWD/bench/ansible/ansible.cfg ANSIBLE_FORKS=$n \
      ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=$LAB/known_hosts -o StrictHostKeyChecking=yes" \
        "$VENV/bin/ansible-playbook" -i "$WORK/ansible-$n.ini" bench/ansible/web.yml ;;
    pyinfra)
      "$VENV/bin/pyinfra" -y --parallel "$n" "$WORK/pyinfra_$n.py" bench/pyinfra/web.py ;;
  esac
}

close_masters() {
  # Every run starts cold: no connection kept by Ansible or foobar.
  for s in /var/lib/foobar/bench/ansible-cp/* "$HOME"/.cache/foobar/ssh/*; do [ -S "$s" ] && ssh -O exit -S "$s" x 2>/dev/null || true; done
}

ROWS=$WORK/tools-rows.md
: > "$ROWS"
for n in $SIZES; do
  tool_files "$n"
  # Each tool once, then foobar must find nothing to change: one state.
  for tool in ansible pyinfra; do
    run_tool "$tool" "$n" > "$WORK/converge-$tool.log" 2>&1 || { echo "bench: $tool failed, see $WORK/converge-$tool.log" >&2; exit 1; }
    close_masters
    after=$(run_tool foobar "$n" 2>&1)
    if grep -q "changed=[1-9]" <<< "$after"; then
      echo "bench: after $tool, foobar still finds changes: the states differ" >&2
      grep "changed" <<< "$after" >&2
      exit 1
    fi
  done
  for run in $(seq 1 "$RUNS"); do
    for tool in foobar pyinfra ansible; do
      s0=$(sessions "$n"); m0=$(machine_cpu); c0=$(controller_cpu); t0=$(date +%s.%N)
      in_cgroup bash -c "$(declare -f run_tool); F=$F INV=$INV WORK=$WORK VENV=$VENV LAB=$LAB run_tool $tool $n" > "$WORK/last-$tool.log" 2>&1 \
        || echo "bench: $tool failed: $(tail -3 "$WORK/last-$tool.log")" >&2
      t1=$(date +%s.%N); m1=$(machine_cpu); c1=$(controller_cpu)
      close_masters
      s1=$(sessions "$n")
      awk -v tool="$tool" -v run="$run" -v n="$n" -v w="$(awk "BEGIN{print $t1 - $t0}")" \
          -v m="$(awk "BEGIN{print $m1 - $m0}")" -v c="$(awk "BEGIN{print $c1 - $c0}")" -v s="$((s1 - s0 - n))" \
          'BEGIN {printf "| %s | %d | %d | %.2f s | %d | %.0f ms | %.0f ms | %.0f ms |\n", tool, n, run, w, s / n, 1000 * c / n, 1000 * (m - c) / n, 1000 * m / n}' | tee -a "$ROWS"
    done
  done
done

{
  echo "\`bench/scale-tools.sh\`: no-op rerun on N web/app servers, interleaved; Ansible with forks = N, pyinfra with --parallel N; $(nproc) cores shared with the servers."
  echo
  echo "| tool | servers | run | wall | SSH sessions per server | controller CPU per server | server CPU per server | total CPU per server |"
  echo "|---|---|---|---|---|---|---|---|"
  cat "$ROWS"
} > bench/scale-tools-results.md
cat bench/scale-tools-results.md
