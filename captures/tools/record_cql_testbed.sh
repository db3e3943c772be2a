#!/usr/bin/env bash
# Record CQL captures of the real Python cassandra-driver against tidemark-testbed
# (the simulated Cassandra cluster, one node): the same workload as record_cql.sh
# (cql_workload.py --profile full), so every statement kind, prepared statements of
# every type, batches, LWT, counters, TTL, with the testbed's real responses.
#
#   captures/tools/record_cql_testbed.sh                        # all
#   captures/tools/record_cql_testbed.sh cql_testbed_v5         # only the named ones
#   CQL_TESTBED_HOST=127.0.0.99 captures/tools/record_cql_testbed.sh
#
# Writes captures/NAME.pcap and captures/NAME.truth.json. Needs root (tcpdump),
# cargo, tshark (optional cross-check), and pip packages cassandra-driver, lz4,
# python-snappy.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="$(dirname "$HERE")"
ROOT="$(dirname "$OUT")"
HOST="${CQL_TESTBED_HOST:-127.0.0.97}"
PORT=9042                      # tshark's CQL dissector is registered on 9042
DC=dc1                         # cql_workload.py routes with DCAwareRoundRobinPolicy(local_dc="dc1")
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# name                  protocol compression
CAPTURES="
cql_testbed_v4_lz4      4 lz4
cql_testbed_v4_snappy   4 snappy
cql_testbed_v5          5 lz4
"

(cd "$ROOT" && cargo build -q -p tidemark-testbed)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/tidemark-testbed"

wait_for() {  # wait_for SECONDS COMMAND...: poll until the command succeeds
    local t=$(( $1 * 10 )); shift
    until "$@"; do
        t=$((t - 1)); [ "$t" -gt 0 ] || { echo "timed out waiting for: $*" >&2; return 1; }
        sleep 0.1
    done
}

port_open() {
    python3 -c "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()" "$HOST" "$PORT" 2>/dev/null
}

record() {
    local name=$1 proto=$2 comp=$3
    local pcap="$OUT/$name.pcap" truth="$OUT/$name.truth.json"
    rm -f "$pcap" "$truth"

    # A fresh one-node cluster per capture, with the schema made before tcpdump starts.
    RUST_LOG=warn "$BIN" cql --nodes 1 --base-addr "$HOST" --port "$PORT" --datacenter "$DC" \
        >"$WORK/testbed.log" 2>&1 &
    local tb=$!
    wait_for 20 port_open
    python3 "$HERE/cql_testbed_schema.py" "$HOST" "$PORT" "$DC"

    tcpdump -i lo --immediate-mode -U -s 0 -w "$pcap" "host $HOST and tcp port $PORT" 2>"$WORK/tcpdump.err" &
    local dump=$!
    wait_for 10 grep -q "listening on" "$WORK/tcpdump.err"

    local status=0
    python3 "$HERE/cql_workload.py" --host "$HOST" --port "$PORT" --protocol "$proto" \
        --compression "$comp" --profile full --capture "$name.pcap" --truth "$truth" || status=$?

    sleep 0.5                       # let the last FIN/ACKs reach the capture
    kill -INT "$dump"; wait "$dump" 2>/dev/null || true
    kill -TERM "$tb"; wait "$tb" 2>/dev/null || true
    [ "$status" -eq 0 ] || { echo "workload failed for $name" >&2; return 1; }

    grep -h "dropped" "$WORK/tcpdump.err" | sed 's/^/  tcpdump: /'
    python3 "$HERE/cql_testbed_finalize.py" "$truth" "$pcap" || return 1
    echo "  $(stat -c %s "$pcap") bytes in $pcap"
}

record_checked() {  # a capture that misses bytes (tcpdump stopped early) is made again
    local try
    for try in 1 2 3; do
        record "$@" && return 0
        echo "  $1: attempt $try failed, recording again" >&2
    done
    return 1
}

echo "$CAPTURES" | while read -r name proto comp; do
    [ -n "$name" ] || continue
    if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then continue; fi
    record_checked "$name" "$proto" "$comp"
done
