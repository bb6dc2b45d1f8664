#!/usr/bin/env bash
# foobar beside Ansible and pyinfra: the same stack job against the same lab
# server, interleaved in one run (foobar, pyinfra, Ansible, foobar, ...).
# The same job as foobar's first run: the peers apply the security updates
# and install the same packages (no recommends), write the same hardening
# files, sysctl values, sshd drop-in and service sandboxes, and lay the
# release out as foobar does; after each peer's first run, foobar must find
# nothing to change (`provision --check`) and no security update pending.
# Per tool and run: a first run on a pristine server, a no-op rerun over a
# new connection, the same again over the connection the rerun kept
# (foobar and Ansible keep one 60 s by default; pyinfra does not), and a
# rerun after one template changed; wall time, and the SSH logins and
# sessions the run made, counted from the server's sshd log (LogLevel
# VERBOSE).
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
# Lab servers log at LogLevel VERBOSE: one `Accepted publickey` line a
# login, one `Starting session` line a session.
contacts() {
  on_server "journalctl -t sshd -o cat --no-pager > /tmp/.sshd.log; echo \$(grep -c 'Accepted publickey' /tmp/.sshd.log) \$(grep -c 'Starting session' /tmp/.sshd.log)"
}

pristine() { $FOOBAR -i $LAB lab reset web1 > /dev/null; }

# The peers lay the release out as foobar does: its id and its
# virtualenv's name, read off the server after foobar's first run (the id
# depends on the code base only).
release_names() {
  if [ -z "${RELEASE:-}" ]; then
    RELEASE=$(on_server 'readlink /srv/foobar/current')
    RELEASE=${RELEASE#releases/}
    RELEASE_VENV=$(on_server 'basename "$(readlink /srv/foobar/current/.venv)"')
    export RELEASE RELEASE_VENV
  fi
}

# After a peer's first run, the job is foobar's: foobar finds nothing to
# change, and no security update is pending (foobar trusts its stamp).
same_as_foobar() {
  if ! $FOOBAR -i $LAB provision --check > "$WORK/check-$1.log" 2>&1; then
    cat "$WORK/check-$1.log" >&2
    echo "bench: after $1's first run, foobar still finds changes" >&2
    exit 1
  fi
  local pending
  pending=$(on_server "apt-get -s -o Debug::NoLocking=1 dist-upgrade 2>/dev/null | grep -c '^Inst .*-security[] ,]' || true")
  [ "$pending" = 0 ] || { echo "bench: after $1's first run, $pending security updates are pending" >&2; exit 1; }
}

run_tool() {
  case $1 in
    foobar) $FOOBAR -i "$WORK/project/inventory/lab.yml" --project "$WORK/project" provision ;;
    ansible) (cd bench/ansible && "$VENV/bin/ansible-playbook" site.yml) ;;
    pyinfra) "$VENV/bin/pyinfra" -y bench/pyinfra/inventory.py bench/pyinfra/deploy.py ;;
  esac
}

close_masters() {
  # The run starts cold: no SSH connection kept from the one before.
  for s in "$WORK"/ansible-cp/* "$HOME"/.cache/foobar/ssh/*; do [ -S "$s" ] && ssh -O exit -S "$s" x 2>/dev/null || true; done
}

change_template() {
  case $1 in
    foobar) echo "# bench change $2" >> "$WORK/project/templates/nginx/site.conf.j2" ;;
    *) echo "# bench change $2" >> "$RENDERED/etc/nginx/sites-enabled/foobar.conf" ;;
  esac
}

measure() { # tool scenario run
  local before after t0 t1 status=ok
  before=$(contacts)
  t0=$(date +%s.%N)
  run_tool "$1" > "$WORK/last-$1-$2.log" 2>&1 || status=failed
  t1=$(date +%s.%N)
  after=$(contacts)
  # The counting command's own login and session are not the tool's.
  local l0 s0 l1 s1
  read -r l0 s0 <<< "$before"
  read -r l1 s1 <<< "$after"
  local logins=$((l1 - l0 - 1)) sessions=$((s1 - s0 - 1))
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(awk "BEGIN{printf \"%.3f\", $t1 - $t0}")" "$sessions" "$status" "$logins" >> "$SAMPLES"
  echo "bench: run $3 $1 $2: $(awk "BEGIN{printf \"%.3f\", $t1 - $t0}") s, $logins logins, $sessions SSH sessions, $status"
}

for run in $(seq 1 "$RUNS"); do
  for tool in foobar pyinfra ansible; do
    pristine
    close_masters
    if [ "$tool" != foobar ]; then
      # A fresh render: the peers' files as foobar's are now (the
      # template-change runs edit it).
      rm -rf "$WORK/render"
      $FOOBAR -i $LAB render --out "$WORK/render" > /dev/null
    fi
    measure "$tool" first "$run"
    close_masters
    case $tool in
      foobar) release_names ;;
      *) same_as_foobar "$tool"; close_masters ;;
    esac
    measure "$tool" noop "$run"
    measure "$tool" noop-kept "$run"
    close_masters
    change_template "$tool" "$run"
    measure "$tool" template "$run"
  done
done

python3 bench/summarise.py "$SAMPLES" "$RUNS" > bench/results.md
cat bench/results.md
