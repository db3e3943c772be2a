#!/usr/bin/env bash
# Record captures/mongo_failover.pcap + mongo_failover.truth.json: real pymongo against
# the tidemark testbed replica set (3 members, 127.0.0.1-3, same port) through a
# failover with a rollback (tools/mongo_failover_workload.py), the members' own traffic
# (oplog fetcher, reporter, heartbeats, votes, rollback reads) included. The truth is
# the testbed's ground truth (GET /truth on its control endpoint) plus what the driver
# saw acknowledged. tools/mongo_failover_check.py then checks the pcap against it.
# Usage: captures/tools/record_mongo_failover.sh
# Needs root (tcpdump on lo), cargo, pymongo. CARGO_TARGET_DIR is honoured.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${MONGO_CAPTURE_OUT:-$(cd "$HERE/.." && pwd)}
PORT=${MONGO_CAPTURE_PORT:-27017}
CTRL=${MONGO_CONTROL_PORT:-27080}
NAME=mongo_failover
pcap="$OUT/$NAME.pcap" truth="$OUT/$NAME.truth.json"

for ip in 127.0.0.1 127.0.0.2 127.0.0.3; do
  if ss -ltn "sport = :$PORT" | grep -q "$ip:$PORT\|\*:$PORT\|0.0.0.0:$PORT"; then
    echo "port $PORT is busy on $ip; set MONGO_CAPTURE_PORT" >&2; exit 1
  fi
done
cargo build --quiet -p tidemark-testbed --manifest-path "$ROOT/Cargo.toml"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/tidemark-testbed"

rm -f "$pcap" "$truth"
tcpdump -i lo -s 0 -U -w "$pcap" "tcp port $PORT" 2>"/tmp/$NAME.tcpdump.log" &
tcpdump_pid=$!
for _ in $(seq 50); do grep -q listening "/tmp/$NAME.tcpdump.log" && break; sleep 0.1; done
RUST_LOG=info "$BIN" mongo --members 3 --base-addr 127.0.0.1 --port "$PORT" --set-name rs0 \
  --election-timeout-ms 2000 --heartbeat-interval-ms 500 --control "127.0.0.1:$CTRL" \
  >"/tmp/$NAME.testbed.log" 2>&1 &
testbed_pid=$!
for _ in $(seq 100); do grep -q "control endpoint" "/tmp/$NAME.testbed.log" && break; sleep 0.1; done
rc=0
python3 "$HERE/mongo_failover_workload.py" \
  --uri "mongodb://127.0.0.1:$PORT,127.0.0.2:$PORT,127.0.0.3:$PORT/?replicaSet=rs0" \
  --control "http://127.0.0.1:$CTRL" --truth "$truth" || rc=$?
sleep 0.5
kill -INT "$testbed_pid"; wait "$testbed_pid" || true
sleep 0.5
kill -INT "$tcpdump_pid"; wait "$tcpdump_pid" || true
if [ "$rc" != 0 ]; then
  echo "$NAME: workload failed ($rc); testbed log in /tmp/$NAME.testbed.log" >&2; exit 1
fi
grep -E "captured|dropped" "/tmp/$NAME.tcpdump.log" | sed "s/^/$NAME: /"
python3 "$HERE/mongo_failover_check.py" "$pcap" "$truth" --port "$PORT"
