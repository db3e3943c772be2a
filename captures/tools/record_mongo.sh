#!/usr/bin/env bash
# Record real-driver MongoDB wire traffic against mongo_responder.py on loopback.
# Writes captures/mongo_{opmsg,zlib,zstd,snappy,scram}.pcap (pymongo) and
# captures/mongo_rust{,_zlib,_zstd}.pcap (the Rust `mongodb` crate, tools/rust-driver), each
# with NAME.truth.json.
# Usage: captures/tools/record_mongo.sh [NAME...]   (default: all)
# Needs root (tcpdump on lo), pymongo, python-snappy, zstandard, backports.zstd; for the
# Rust captures cargo (the workload is built with --locked; CARGO_TARGET_DIR is honoured).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${MONGO_CAPTURE_OUT:-$(cd "$HERE/.." && pwd)}
PORT=${MONGO_CAPTURE_PORT:-27017}
SCRAM_USER=tidemark
SCRAM_PASS='Wire-Secret-7f3a9c'   # recorded in mongo_scram.truth.json on purpose

RUST_DIR="$HERE/rust-driver"
RUST_BIN="${CARGO_TARGET_DIR:-$RUST_DIR/target}/debug/tidemark-mongo-rust-workload"

# name profile compressors [extra workload args...]; profile rust runs the Rust workload,
# which offers zlib,zstd,snappy: the responder accepts only `compressors`, so that one wins.
record() {
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
  local rc=0
  if [ "$profile" = rust ]; then
    "$RUST_BIN" --port "$PORT" ${comp:+--compressors zlib,zstd,snappy} || rc=$?
  else
    python3 "$HERE/mongo_workload.py" --port "$PORT" --profile "$profile" \
      ${comp:+--compressors "$comp"} "$@" || rc=$?
  fi
  if [ "$rc" != 0 ]; then  # leave no responder or tcpdump behind
    kill -TERM "$responder_pid"; kill -INT "$tcpdump_pid"; wait || true
    echo "$name: workload failed ($rc)" >&2; exit 1
  fi
  sleep 0.5
  kill -TERM "$responder_pid"; wait "$responder_pid"
  sleep 0.5
  kill -INT "$tcpdump_pid"; wait "$tcpdump_pid" || true
  grep -E "captured|dropped" "/tmp/$name.tcpdump.log" | sed "s/^/$name: /"
  if [ "$profile" = rust ]; then  # the responder names pymongo; say which driver it was
    python3 - "$truth" "$RUST_DIR/Cargo.lock" <<'PY'
import re, sys
truth, lock = sys.argv[1:]
v = re.search(r'name = "mongodb"\nversion = "([^"]+)"', open(lock).read()).group(1)
text = open(truth).read()
open(truth, "w").write(re.sub(r'"driver": "[^"]*"', f'"driver": "rust mongodb {v}"', text, count=1))
PY
  fi
  python3 "$HERE/mongo_crosscheck.py" "$pcap" "$truth" --port "$PORT"
}

NAMES=${*:-mongo_opmsg mongo_zlib mongo_zstd mongo_snappy mongo_scram mongo_rust mongo_rust_zlib mongo_rust_zstd}
case " $NAMES " in
  *" mongo_rust"*) cargo build --locked --quiet --manifest-path "$RUST_DIR/Cargo.toml" ;;
esac
for n in $NAMES; do
  case $n in
    mongo_opmsg)  record mongo_opmsg full "" ;;
    mongo_zlib)   record mongo_zlib small zlib ;;
    mongo_zstd)   record mongo_zstd small zstd ;;
    mongo_snappy) record mongo_snappy small snappy ;;
    mongo_scram)  record mongo_scram auth "" --user "$SCRAM_USER" --password "$SCRAM_PASS" ;;
    mongo_rust)      record mongo_rust rust "" ;;
    mongo_rust_zlib) record mongo_rust_zlib rust zlib ;;
    mongo_rust_zstd) record mongo_rust_zstd rust zstd ;;
    *) echo "unknown capture $n" >&2; exit 1 ;;
  esac
done
