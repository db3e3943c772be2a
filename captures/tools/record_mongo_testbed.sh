#!/usr/bin/env bash
# Record real pymongo traffic against the tidemark testbed's simulated 3-member
# MongoDB replica set (SCRAM-SHA-256 required) on loopback:
# captures/mongo_testbed.pcap and captures/mongo_testbed.truth.json (the testbed's
# ground truth: every member's oplog and the primary's documents at shutdown).
# The workload is tests/testbed/tests/py/mongo_commands.py, the one the testbed's
# own test runs: every data command, retryable writes, transactions, w:1/majority,
# a refused wrong password and a refused unauthenticated read.
# Usage: captures/tools/record_mongo_testbed.sh      (root for tcpdump; pymongo)
# MONGO_CAPTURE_OUT=DIR writes elsewhere, MONGO_CAPTURE_PORT overrides 27017;
# CARGO_TARGET_DIR is honoured for the testbed build.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${MONGO_CAPTURE_OUT:-$ROOT/captures}
PORT=${MONGO_CAPTURE_PORT:-27017}
NAME=mongo_testbed
SCRAM_USER=tidemark
SCRAM_PASS='Wire-Secret-7f3a9c'   # recorded in the truth file on purpose
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/tidemark-testbed"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

cargo build --quiet --manifest-path "$ROOT/Cargo.toml" -p tidemark-testbed --bin tidemark-testbed
for i in 1 2 3; do
  if ss -ltn "sport = :$PORT" | grep -q "127.0.0.$i:$PORT"; then
    echo "port $PORT is busy on 127.0.0.$i; set MONGO_CAPTURE_PORT" >&2; exit 1
  fi
done
pcap="$OUT/$NAME.pcap"; truth="$OUT/$NAME.truth.json"
rm -f "$pcap" "$truth"
tcpdump -i lo -s 0 -U -w "$pcap" "tcp port $PORT" 2>"$TMP/tcpdump.log" &
tcpdump_pid=$!
for _ in $(seq 50); do grep -q listening "$TMP/tcpdump.log" && break; sleep 0.1; done
TIDEMARK_TESTBED_SCRAM_PASSWORD="$SCRAM_PASS" RUST_LOG=warn "$BIN" mongo --members 3 \
  --base-addr 127.0.0.1 --port "$PORT" --scram-user "$SCRAM_USER" \
  --truth-out "$TMP/testbed.json" >"$TMP/testbed.log" 2>&1 &
testbed_pid=$!
for _ in $(seq 100); do grep -q "connection string" "$TMP/testbed.log" && break; sleep 0.1; done
uri="mongodb://127.0.0.1:$PORT,127.0.0.2:$PORT,127.0.0.3:$PORT/?replicaSet=rs0&appname=tidemark-capture-testbed"
rc=0
TESTBED_SCRAM_PASSWORD="$SCRAM_PASS" python3 "$ROOT/tests/testbed/tests/py/mongo_commands.py" \
  "$uri" "$SCRAM_USER" >"$TMP/workload.out" || rc=$?
sleep 0.5
kill -INT "$testbed_pid"; wait "$testbed_pid" || true
sleep 0.5
kill -INT "$tcpdump_pid"; wait "$tcpdump_pid" || true
if [ "$rc" != 0 ] || ! grep -qx OK "$TMP/workload.out"; then
  cat "$TMP/workload.out" "$TMP/testbed.log" >&2
  echo "$NAME: workload failed ($rc)" >&2; exit 1
fi
grep -E "captured|dropped" "$TMP/tcpdump.log" | sed "s/^/$NAME: /"
python3 "$HERE/mongo_testbed_truth.py" "$TMP/testbed.json" "$truth" \
  --port "$PORT" --user "$SCRAM_USER" --password "$SCRAM_PASS"
