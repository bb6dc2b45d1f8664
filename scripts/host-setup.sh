#!/usr/bin/env bash
# Installs what this machine needs to build foobar and run its lab: Debian
# packages only. Safe to run again.
set -euo pipefail
packages=(debootstrap systemd-container apt-cacher-ng iproute2 openssh-client curl ca-certificates gcc wrk)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "host-setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# apt-cacher-ng's own service is not needed: foobar starts one for the lab.
command -v cargo >/dev/null || { echo "host-setup: cargo (Rust 1.88+) is needed" >&2; exit 1; }
