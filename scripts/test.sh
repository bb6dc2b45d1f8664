#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and snapshot tests, and the
# integration tests that drive the real binary against real lab servers
# (they bring the lab up themselves and reuse it when it is already up).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/host-setup.sh
export RUST_BACKTRACE=0
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
