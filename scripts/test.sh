#!/usr/bin/env bash
# Runs every test of the workspace. Tests that need tshark or ../shared/captures skip
# with a printed reason when those are absent.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-targets --no-fail-fast
cargo test --workspace --doc
