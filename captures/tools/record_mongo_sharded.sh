#!/usr/bin/env bash
# Record captures/mongo_sharded.pcap + mongo_sharded.truth.json: real pymongo through
# the two routers of the tidemark testbed's sharded cluster (config set of 3, 2 shards
# of 3 members, all on consecutive loopback addresses from 127.0.180.1, one port) while
# chunks move (tools/mongo_sharded_workload.py). Every layer is on the wire:
# client→router, router→shard, the migrations' _migrateClone/_transferMods, the sets'
# oplog fetches (fromMigrate entries, range-deleter deletes), heartbeats. The truth is
# the testbed's ground truth (GET /truth on its control endpoint) plus what the driver
# saw acknowledged.
# Usage: captures/tools/record_mongo_sharded.sh
# Needs root (tcpdump on lo), cargo, pymongo. Env: MONGO_CAPTURE_OUT (directory,
# default captures/), MONGO_CAPTURE_BASE (default 127.0.180.1), MONGO_CAPTURE_PORT
# (27017), MONGO_CONTROL_PORT (27080). CARGO_TARGET_DIR is honoured.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${MONGO_CAPTURE_OUT:-$(cd "$HERE/.." && pwd)}
BASE=${MONGO_CAPTURE_BASE:-127.0.180.1}
PORT=${MONGO_CAPTURE_PORT:-27017}
CTRL=${MONGO_CONTROL_PORT:-27080}
NAME=mongo_sharded
pcap="$OUT/$NAME.pcap" truth="$OUT/$NAME.truth.json"
NET=${BASE%.*}
FIRST=${BASE##*.}
# 3 config servers, 2 × 3 shard members, then 2 routers
addr() { echo "$NET.$((FIRST + $1))"; }
R0=$(addr 9) R1=$(addr 10)
LOG=$(mktemp -d /tmp/$NAME.XXXXXX)

for i in $(seq 0 10); do
  if ss -ltn "sport = :$PORT" | grep -q "$(addr "$i"):$PORT"; then
    echo "port $PORT is busy on $(addr "$i"); set MONGO_CAPTURE_BASE" >&2; exit 1
  fi
done
cargo build --quiet -p tidemark-testbed --manifest-path "$ROOT/Cargo.toml"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/tidemark-testbed"

rm -f "$pcap" "$truth"
# only this cluster's addresses: others may run clusters on the same port
tcpdump -i lo -s 0 -U -w "$pcap" "tcp port $PORT and net $NET.0/24" 2>"$LOG/tcpdump.log" &
tcpdump_pid=$!
for _ in $(seq 50); do grep -q listening "$LOG/tcpdump.log" && break; sleep 0.1; done
RUST_LOG=info "$BIN" mongo-sharded --shards 2 --members 3 --routers 2 --base-addr "$BASE" \
  --port "$PORT" --range-deleter-delay-ms 300 --control "$BASE:$CTRL" \
  >"$LOG/testbed.log" 2>&1 &
testbed_pid=$!
for _ in $(seq 300); do grep -q "control endpoint" "$LOG/testbed.log" && break; sleep 0.1; done
rc=0
python3 "$HERE/mongo_sharded_workload.py" --routers "$R0:$PORT,$R1:$PORT" \
  --control "http://$BASE:$CTRL" --truth "$truth" || rc=$?
sleep 0.5
kill -INT "$testbed_pid"; wait "$testbed_pid" || true
sleep 0.5
kill -INT "$tcpdump_pid"; wait "$tcpdump_pid" || true
if [ "$rc" != 0 ]; then
  echo "$NAME: workload failed ($rc); logs in $LOG" >&2; exit 1
fi
grep -E "captured|dropped" "$LOG/tcpdump.log" | sed "s/^/$NAME: /"
ls -l "$pcap" "$truth"
rm -rf "$LOG"
