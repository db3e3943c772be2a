#!/usr/bin/env bash
# Every capture at hand through tidemark: build it, inspect every capture this
# project recorded (captures/) and, when present, the third-party captures in
# ../shared/captures, then tap each into a fresh store, show its status and log, cut a
# version at its tidemark and export it as JSON lines.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
shopt -s nullglob
files=(captures/*.pcap ../shared/captures/*/*.pcap)
if [ "${#files[@]}" -eq 0 ]; then
    echo "demo: no captures found in captures/ or ../shared/captures" >&2
    exit 1
fi
for f in "${files[@]}"; do
    echo "== $f"
    "${CARGO_TARGET_DIR:-target}/release/tidemark" inspect "$f" || echo "(inspect exited $?)"
done

tm="${CARGO_TARGET_DIR:-target}/release/tidemark"
stores="$(mktemp -d)"
trap 'rm -rf "$stores"' EXIT
for f in "${files[@]}"; do
    store="$stores/$(basename "$f" .pcap)"
    echo "== tap $f"
    "$tm" tap --pcap "$f" --store "$store" || { echo "(tap exited $?)"; continue; }
    "$tm" status --store "$store"
    "$tm" log --store "$store" | head -20
    if "$tm" version create --store "$store" --at latest --name end; then
        "$tm" export --store "$store" --version end --format jsonl --out "$store.export" \
            || echo "(export exited $?)"
        for x in "$store.export"/*.jsonl; do
            echo "-- $(basename "$x"): first rows"
            head -3 "$x"
        done
    else
        echo "(version create exited $?)"
    fi
done
