#!/usr/bin/env bash
# Record real-server traffic for tests without a JVM or FerretDB: the realdb workloads
# (tests/realdb_support/*.py) against the servers the project's scripts start, tapped
# with tcpdump on loopback.
#
#   captures/tools/record_realdb.sh [cassandra5_v4_lz4] [ferretdb_pymongo]   (default: both)
#
# cassandra5_v4_lz4  Python cassandra-driver, protocol v4 + lz4, against a 3-node
#                    Apache Cassandra 5.0.9 cluster at RF 3 (scripts/cassandra.sh start 3)
# ferretdb_pymongo   pymongo against FerretDB 1.24.2 on 127.0.0.1:27018 (scripts/ferretdb.sh)
#
# Each writes captures/NAME.pcap and NAME.truth.json: "writes" is what the driver saw
# (one line per write: namespace, key, op, applied, and for a write not applied the
# error), "held" what the server held afterwards (Cassandra: each written key read at
# ALL; FerretDB: every document of the database). A server this script started is
# stopped again by the project's script; tcpdump is stopped by its pid.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${REALDB_CAPTURE_OUT:-$ROOT/captures}
WL="$ROOT/tests/realdb_support"
LOGDIR=$(mktemp -d)
STARTED=()

cleanup() {
    [ -n "${TCPDUMP_PID:-}" ] && kill -INT "$TCPDUMP_PID" 2>/dev/null && wait "$TCPDUMP_PID" || true
    for s in "${STARTED[@]+"${STARTED[@]}"}"; do bash "$ROOT/scripts/$s" stop || true; done
    rm -rf "$LOGDIR"
}
trap cleanup EXIT

# own_server SCRIPT: remembers to stop SCRIPT's server at exit if it is not running yet
# (called before `start`, outside the command substitution that reads its output).
own_server() {
    if ! bash "$ROOT/scripts/$1" status >/dev/null 2>&1; then
        STARTED+=("$1")
    fi
}

# tcpdump_start NAME PORT: full-snaplen capture of one TCP port on lo, unbuffered.
tcpdump_start() {
    rm -f "$OUT/$1.pcap" "$OUT/$1.truth.json"
    # --immediate-mode: libpcap hands each packet over at once; without it the packets
    # still in the ring buffer when SIGINT comes are never written.
    tcpdump -i lo -s 0 -U --immediate-mode -w "$OUT/$1.pcap" "tcp port $2" 2>"$LOGDIR/$1.tcpdump" &
    TCPDUMP_PID=$!
    for _ in $(seq 50); do grep -q listening "$LOGDIR/$1.tcpdump" && break; sleep 0.1; done
}

tcpdump_stop() {
    sleep 1 # the last replies and FINs reach the capture
    kill -INT "$TCPDUMP_PID"
    wait "$TCPDUMP_PID" || true
    TCPDUMP_PID=
    grep -E "captured|dropped" "$LOGDIR/$1.tcpdump" | sed "s/^/$1: /"
}

# truth NAME WRITES HELD META_JSON: the truth file from the driver's and the read's lines.
truth() {
    python3 - "$@" <<'PY'
import json, os, sys
name, writes, held, meta = sys.argv[1:]
lines = lambda p: [json.loads(l) for l in open(p) if l.strip()]
t = {"capture": name, **json.loads(meta), "writes": lines(writes), "held": lines(held)}
with open(os.path.join(os.environ["OUT"], f"{name}.truth.json"), "w") as f:
    json.dump(t, f, indent=1)
    f.write("\n")
print(f"{name}: {len(t['writes'])} writes, {len(t['held'])} held")
PY
}
export OUT

record_cassandra() {
    local name=cassandra5_v4_lz4 ks=capture_v4 hosts
    own_server cassandra.sh
    hosts=$(bash "$ROOT/scripts/cassandra.sh" start 3)
    tcpdump_start "$name" 9042
    python3 "$WL/cql_workload.py" write "$ks" 4 lz4 "$hosts" >"$LOGDIR/writes"
    tcpdump_stop "$name"
    # Every key the driver wrote, read at ALL (after the capture: reads are not writes).
    python3 - "$LOGDIR/writes" >"$LOGDIR/keys" <<'PY'
import json, sys
seen = []
for l in open(sys.argv[1]):
    w = json.loads(l)
    k = {"ns": w["ns"], "key": w["key"]}
    if k not in seen:
        seen.append(k)
for k in seen:
    print(json.dumps(k))
PY
    python3 "$WL/cql_workload.py" read "$ks" "$hosts" <"$LOGDIR/keys" >"$LOGDIR/held"
    local driver
    driver=$(python3 -c 'import cassandra; print(cassandra.__version__)')
    truth "$name" "$LOGDIR/writes" "$LOGDIR/held" \
        "{\"driver\": \"cassandra-driver $driver\", \"protocol\": 4, \"compression\": \"lz4\", \"server\": \"Apache Cassandra 5.0.9, 3 nodes 127.0.0.1-3:9042, RF 3\", \"keyspace\": \"$ks\"}"
}

record_ferretdb() {
    local name=ferretdb_pymongo db=capture_pymongo uri
    own_server ferretdb.sh
    uri=$(bash "$ROOT/scripts/ferretdb.sh" start)
    tcpdump_start "$name" 27018
    python3 "$WL/mongo_workload.py" write "$uri" "$db" >"$LOGDIR/writes"
    tcpdump_stop "$name"
    python3 "$WL/mongo_workload.py" read "$uri" "$db" >"$LOGDIR/held"
    local driver
    driver=$(python3 -c 'import pymongo; print(pymongo.version)')
    truth "$name" "$LOGDIR/writes" "$LOGDIR/held" \
        "{\"driver\": \"pymongo $driver\", \"server\": \"FerretDB 1.24.2 (SQLite backend), standalone, 127.0.0.1:27018\", \"database\": \"$db\"}"
}

for name in "${@:-cassandra5_v4_lz4 ferretdb_pymongo}"; do
    for n in $name; do
        case "$n" in
        cassandra5_v4_lz4) record_cassandra ;;
        ferretdb_pymongo) record_ferretdb ;;
        *) echo "unknown capture $n" >&2; exit 2 ;;
        esac
    done
done
