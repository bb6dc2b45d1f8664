#!/usr/bin/env bash
# Installs what this machine needs to build foobar and run its lab: Debian
# packages, and ssh-audit from PyPI for the tests. Safe to run again. Says what it installs, one line each;
# apt's own output is shown only when it fails.
set -euo pipefail
declare -A why=(
  [debootstrap]="builds the lab's Debian 12 base image"
  [systemd-container]="systemd-nspawn boots the lab servers"
  [apt-cacher-ng]="passes Debian packages to the lab servers"
  [iproute2]="the lab's bridge and network namespaces"
  [openssh-client]="foobar reaches servers over SSH"
  [curl]="fetches in scripts and benchmarks"
  [ca-certificates]="TLS roots"
  [gcc]="links the Rust build"
  [wrk]="load for the restart benchmark"
  [librsvg2-bin]="renders foobar diagram's SVG to PNG in the tests"
  [nmap]="scans the lab servers' ports from outside in the firewall test"
  [pebble]="the lab's ACME CA (HTTPS certificates)"
)
missing=()
for p in debootstrap systemd-container apt-cacher-ng iproute2 openssh-client curl ca-certificates gcc wrk librsvg2-bin nmap pebble; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
done
if ((${#missing[@]})); then
  for p in "${missing[@]}"; do echo "host-setup: installing $p (${why[$p]})"; done
  log=$(mktemp)
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "host-setup: apt-get failed (its output is above)" >&2
    exit 1
  fi
  rm -f "$log"
fi
# foobar fetches Python apps' wheels with `python3 -m pip download` (the
# servers never reach a package index).
if ! python3 -m pip --version >/dev/null 2>&1; then
  echo "host-setup: installing python3-pip (pip fetches Python apps' wheels for the servers)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-pip >/dev/null
fi
# ssh-audit (PyPI), which auditors run, checks the lab servers' SSH
# algorithms in the tests; kept in a virtualenv of its own.
audit=/var/lib/foobar/tools/venv
if ! "$audit/bin/python3" -c 'import importlib.metadata as m; assert m.version("ssh-audit") == "3.9.0"' 2>/dev/null; then
  echo "host-setup: installing ssh-audit 3.9.0 from PyPI (audits the lab servers' SSH in the tests)"
  rm -rf "$audit"
  python3 -m venv "$audit"
  "$audit/bin/pip" install -q --disable-pip-version-check 'ssh-audit==3.9.0'
fi
# apt-cacher-ng's own service is not needed: foobar starts one for the lab.
command -v cargo >/dev/null || { echo "host-setup: cargo (Rust 1.88+) is needed" >&2; exit 1; }
