#!/usr/bin/env bash
# Runs every test of the workspace. Tests that need tshark or ../shared/captures skip
# with a printed reason when those are absent. Benchmarks are not run here (they live
# in bench/ and report ratios, see README); clippy --all-targets still compiles them.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --lib --bins --tests --no-fail-fast
cargo test --workspace --doc
