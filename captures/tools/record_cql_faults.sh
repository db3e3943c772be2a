#!/usr/bin/env bash
# Record captures/cql_faults.pcap: the real Python cassandra-driver against a 3-node
# tidemark testbed (tidemark-testbed cql) while cql_faults_workload.py injects faults
# through the testbed's control endpoint; tcpdump on the loopback.
#
#   captures/tools/record_cql_faults.sh
#
# Needs root (tcpdump), tshark, cargo, and pip package cassandra-driver.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="$(dirname "$HERE")"
ROOT="$(dirname "$OUT")"
BASE="${CQL_FAULTS_BASE:-127.0.0.101}"          # nodes BASE, BASE+1, BASE+2
PORT=9042                                      # tshark's CQL dissector is registered on 9042
CONTROL="${CQL_FAULTS_CONTROL:-127.0.0.100:8042}"
NAME=cql_faults
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

IFS=. read -r a b c d <<<"$BASE"
NODES="$a.$b.$c.$d,$a.$b.$c.$((d + 1)),$a.$b.$c.$((d + 2))"

wait_for() {  # wait_for SECONDS COMMAND...: poll until the command succeeds
    local t=$(( $1 * 10 )); shift
    until "$@"; do
        t=$((t - 1)); [ "$t" -gt 0 ] || { echo "timed out waiting for: $*" >&2; return 1; }
        sleep 0.1
    done
}

cargo build -q -p tidemark-testbed --manifest-path "$ROOT/Cargo.toml"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/tidemark-testbed"

pcap="$OUT/$NAME.pcap" truth="$OUT/$NAME.truth.json"
rm -f "$pcap" "$truth"
"$BIN" cql --nodes 3 --base-addr "$BASE" --port "$PORT" --control "$CONTROL" \
    --write-timeout-ms 500 >"$WORK/testbed.out" 2>"$WORK/testbed.err" &
testbed=$!
wait_for 30 grep -q "control endpoint on" "$WORK/testbed.out"

filter="tcp port $PORT and (host ${NODES//,/ or host })"
tcpdump -i lo -U -s 0 -w "$pcap" "$filter" 2>"$WORK/tcpdump.err" &
dump=$!
wait_for 10 grep -q "listening on" "$WORK/tcpdump.err"

status=0
python3 "$HERE/cql_faults_workload.py" --nodes "$NODES" --port "$PORT" \
    --control "http://$CONTROL" --capture "$NAME.pcap" --truth "$truth" || status=$?

sleep 0.5                       # let the last FIN/ACKs reach the capture
kill -INT "$dump"; wait "$dump" 2>/dev/null || true
kill -INT "$testbed"; wait "$testbed" 2>/dev/null || true
[ "$status" -eq 0 ] || { echo "workload failed" >&2; exit 1; }
grep -h "dropped" "$WORK/tcpdump.err" | sed 's/^/  tcpdump: /'
(cd "$HERE" && python3 cql_faults_finalize.py "$truth" "$pcap")
echo "  $(stat -c %s "$pcap") bytes in $pcap"
