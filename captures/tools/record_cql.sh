#!/usr/bin/env bash
# Record the CQL captures: the real Python cassandra-driver (cql_workload.py) against
# cql_responder.py on HOST:9042, captured on the loopback with tcpdump.
#
#   captures/tools/record_cql.sh            # all captures
#   captures/tools/record_cql.sh cql_v5     # only the named ones
#
# Writes captures/NAME.pcap and captures/NAME.truth.json. Needs root (tcpdump), tshark,
# and pip packages cassandra-driver, lz4, python-snappy.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="$(dirname "$HERE")"
HOST="${CQL_HOST:-127.0.0.95}"
PORT=9042                      # tshark's CQL dissector is registered on 9042
AUTH="tidemark_writer:S3cret-Tide!42"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# name            protocol compression profile
CAPTURES="
cql_v4_lz4        4 lz4    full
cql_v4_snappy     4 snappy full
cql_v5            5 lz4    full
cql_v5_nocomp     5 none   full
cql_v4_auth       4 none   auth
"

wait_for() {  # wait_for SECONDS COMMAND...: poll until the command succeeds
    local t=$(( $1 * 10 )); shift
    until "$@"; do
        t=$((t - 1)); [ "$t" -gt 0 ] || { echo "timed out waiting for: $*" >&2; return 1; }
        sleep 0.1
    done
}

record() {
    local name=$1 proto=$2 comp=$3 profile=$4
    local pcap="$OUT/$name.pcap" truth="$OUT/$name.truth.json" log="$WORK/$name.responder.jsonl"
    local auth_args=()
    [ "$profile" = auth ] && auth_args=(--auth "$AUTH")
    rm -f "$pcap" "$truth" "$WORK/ready"

    tcpdump -i lo -U -s 0 -w "$pcap" "host $HOST and tcp port $PORT" 2>"$WORK/tcpdump.err" &
    local dump=$!
    wait_for 10 grep -q "listening on" "$WORK/tcpdump.err"

    python3 "$HERE/cql_responder.py" --host "$HOST" --port "$PORT" --log "$log" \
        --ready-file "$WORK/ready" "${auth_args[@]}" &
    local resp=$!
    wait_for 10 test -e "$WORK/ready"

    local status=0
    python3 "$HERE/cql_workload.py" --host "$HOST" --port "$PORT" --protocol "$proto" \
        --compression "$comp" --profile "$profile" --capture "$name.pcap" --truth "$truth" \
        "${auth_args[@]}" || status=$?

    sleep 0.5                       # let the last FIN/ACKs reach the capture
    kill -TERM "$resp"; wait "$resp" 2>/dev/null || true
    kill -INT "$dump"; wait "$dump" 2>/dev/null || true
    [ "$status" -eq 0 ] || { echo "workload failed for $name" >&2; return 1; }

    grep -h "dropped" "$WORK/tcpdump.err" | sed 's/^/  tcpdump: /'
    python3 "$HERE/cql_finalize.py" "$truth" "$log" "$pcap" || return 1
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

echo "$CAPTURES" | while read -r name proto comp profile; do
    [ -n "$name" ] || continue
    if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then continue; fi
    record_checked "$name" "$proto" "$comp" "$profile"
done
