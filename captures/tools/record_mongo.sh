#!/usr/bin/env bash
# Record real-pymongo MongoDB wire traffic against mongo_responder.py on loopback.
# Writes captures/mongo_{opmsg,zlib,zstd,snappy,scram}.pcap and NAME.truth.json.
# Usage: captures/tools/record_mongo.sh [NAME...]   (default: all)
# Needs root (tcpdump on lo), pymongo, python-snappy, zstandard, backports.zstd.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${MONGO_CAPTURE_OUT:-$(cd "$HERE/.." && pwd)}
PORT=${MONGO_CAPTURE_PORT:-27017}
SCRAM_USER=tidemark
SCRAM_PASS='Wire-Secret-7f3a9c'   # recorded in mongo_scram.truth.json on purpose

record() {  # name profile compressors [extra workload args...]
  local name=$1 profile=$2 comp=$3; shift 3
  local pcap="$OUT/$name.pcap" truth="$OUT/$name.truth.json" scram=""
  if ss -ltn "sport = :$PORT" | grep -q LISTEN; then
    echo "port $PORT is busy; set MONGO_CAPTURE_PORT" >&2; exit 1
  fi
  [ "$profile" = auth ] && scram="$SCRAM_USER:$SCRAM_PASS"
  rm -f "$pcap" "$truth"
  tcpdump -i lo -s 0 -U -w "$pcap" "tcp port $PORT" 2>"/tmp/$name.tcpdump.log" &
  local tcpdump_pid=$!
  for _ in $(seq 50); do grep -q listening "/tmp/$name.tcpdump.log" && break; sleep 0.1; done
  python3 "$HERE/mongo_responder.py" --port "$PORT" --truth "$truth" --capture "$name" \
    --compressors "${comp:-snappy,zlib,zstd}" ${scram:+--scram "$scram"} &
  local responder_pid=$!
  sleep 1
  python3 "$HERE/mongo_workload.py" --port "$PORT" --profile "$profile" \
    ${comp:+--compressors "$comp"} "$@"
  sleep 0.5
  kill -TERM "$responder_pid"; wait "$responder_pid"
  sleep 0.5
  kill -INT "$tcpdump_pid"; wait "$tcpdump_pid" || true
  grep -E "captured|dropped" "/tmp/$name.tcpdump.log" | sed "s/^/$name: /"
  python3 "$HERE/mongo_crosscheck.py" "$pcap" "$truth" --port "$PORT"
}

NAMES=${*:-mongo_opmsg mongo_zlib mongo_zstd mongo_snappy mongo_scram}
for n in $NAMES; do
  case $n in
    mongo_opmsg)  record mongo_opmsg full "" ;;
    mongo_zlib)   record mongo_zlib small zlib ;;
    mongo_zstd)   record mongo_zstd small zstd ;;
    mongo_snappy) record mongo_snappy small snappy ;;
    mongo_scram)  record mongo_scram auth "" --user "$SCRAM_USER" --password "$SCRAM_PASS" ;;
    *) echo "unknown capture $n" >&2; exit 1 ;;
  esac
done
