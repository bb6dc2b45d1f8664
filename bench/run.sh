#!/usr/bin/env bash
# foobar beside Ansible and pyinfra: the same stack job against the same lab
# server, interleaved in one run (foobar, pyinfra, Ansible, foobar, ...).
# Per tool and run: a first run on a pristine server, a no-op rerun, and a
# rerun after one template changed; wall time and the SSH sessions the run
# opened, counted from the server's sshd log (LogLevel VERBOSE).
#
#   bench/run.sh [RUNS]     (default 5; writes bench/results.md)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
WORK=/var/lib/foobar/bench
VENV=$WORK/venv
LAB=inventory/lab.yml

scripts/host-setup.sh
if [ ! -x "$VENV/bin/ansible-playbook" ] || [ ! -x "$VENV/bin/pyinfra" ]; then
  # ansible-core 2.21 needs Python 3.12+; Debian 12 has 3.11.
  # A pyenv shim may be on PATH without its interpreter: try each candidate.
  py=
  for c in python3.13 python3.12 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3; do
    if "$c" -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null; then py=$c; break; fi
  done
  [ -n "$py" ] || { echo "bench: ansible-core needs Python 3.12 or newer: install python3.12 (or pyenv install 3.12)" >&2; exit 1; }
  "$py" -m venv "$VENV"
  "$VENV/bin/pip" install -q 'ansible>=14,<15' 'pyinfra>=3.10,<4'
fi
cargo build --release --locked -q
FOOBAR=$PWD/target/release/foobar
$FOOBAR -i $LAB lab up
export FOOBAR_DB_PASSWORD
FOOBAR_DB_PASSWORD=$(cat /var/lib/foobar/lab/secrets/mysql_password)

# foobar works on a copy of the project, whose nginx template the
# template-change runs edit; Ansible and pyinfra deploy the files foobar
# renders, with the same edit.
rm -rf "$WORK/project" "$WORK/render" "$WORK/ansible-cp"
mkdir -p "$WORK/project" "$WORK/ansible-cp"
cp -r inventory playbooks templates apps "$WORK/project/"
$FOOBAR -i $LAB render --out "$WORK/render" > /dev/null
export RENDERED=$WORK/render/web1 APP_SOURCE=$PWD/apps/python
SAMPLES=$WORK/samples.tsv
: > "$SAMPLES"

on_server() { $FOOBAR -i $LAB lab ssh web1 "$1"; }
sessions() { on_server "journalctl -t sshd -o cat --no-pager | grep -c 'Starting session' || true"; }

# Lab servers log at LogLevel VERBOSE: one `Starting session` line a session.
pristine() { $FOOBAR -i $LAB lab reset web1 > /dev/null; }

run_tool() {
  case $1 in
    foobar) $FOOBAR -i "$WORK/project/inventory/lab.yml" --project "$WORK/project" provision ;;
    ansible) (cd bench/ansible && "$VENV/bin/ansible-playbook" site.yml) ;;
    pyinfra) "$VENV/bin/pyinfra" -y bench/pyinfra/inventory.py bench/pyinfra/deploy.py ;;
  esac
}

close_masters() {
  # Every run starts cold: no SSH master left from the previous one.
  for s in "$WORK"/ansible-cp/*; do [ -S "$s" ] && ssh -O exit -S "$s" x 2>/dev/null || true; done
}

change_template() {
  case $1 in
    foobar) echo "# bench change $2" >> "$WORK/project/templates/nginx/site.conf.j2" ;;
    *) echo "# bench change $2" >> "$RENDERED/etc/nginx/sites-enabled/foobar.conf" ;;
  esac
}

measure() { # tool scenario run
  local before after t0 t1 status=ok
  before=$(sessions)
  t0=$(date +%s.%N)
  run_tool "$1" > "$WORK/last-$1-$2.log" 2>&1 || status=failed
  t1=$(date +%s.%N)
  close_masters
  after=$(sessions)
  # The counting command's own session is not the tool's.
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(awk "BEGIN{printf \"%.3f\", $t1 - $t0}")" "$((after - before - 1))" "$status" >> "$SAMPLES"
  echo "bench: run $3 $1 $2: $(awk "BEGIN{printf \"%.3f\", $t1 - $t0}") s, $((after - before - 1)) SSH sessions, $status"
}

for run in $(seq 1 "$RUNS"); do
  for tool in foobar pyinfra ansible; do
    pristine
    measure "$tool" first "$run"
    measure "$tool" noop "$run"
    change_template "$tool" "$run"
    measure "$tool" template "$run"
  done
done

python3 bench/summarise.py "$SAMPLES" "$RUNS" > bench/results.md
cat bench/results.md
