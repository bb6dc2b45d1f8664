#!/usr/bin/env bash
# The whole test suite, both tiers: formatting; lints, of the hermetic tier
# as plain `cargo test` builds it and of everything with the lab tier; then
# `cargo test --features lab`: the hermetic tier (unit, snapshot and the
# other tests that need no server) and the lab tier (tests/lab_*.rs: the
# integration tests that drive the real binary against real lab servers;
# they bring the lab up themselves and reuse it when it is already up).
# Plain `cargo test` runs the hermetic tier only.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/host-setup.sh
export RUST_BACKTRACE=0
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo clippy --all-targets --all-features --locked -- -D warnings
cargo test --locked --features lab
