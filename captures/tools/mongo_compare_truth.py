#!/usr/bin/env python3
"""Compare the committed captures/mongo_*.truth.json with another run's (reproducibility).
    MONGO_CAPTURE_OUT=/tmp/rep captures/tools/record_mongo.sh
    captures/tools/mongo_compare_truth.py /tmp/rep
Ignores what differs every run: request ids, connection numbers, optimes. Prints,
per capture, whether opcode and command counts are equal and which writes differ."""
import json
import os
import sys
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
NAMES = ["mongo_opmsg", "mongo_zlib", "mongo_zstd", "mongo_snappy", "mongo_scram"]
VOLATILE = {"request_id", "connection", "retry_of_request_id", "optime"}


def commands(doc):
    return Counter((m["dir"], m.get("command")) for m in doc["messages"])


def main():
    other = sys.argv[1]
    for n in NAMES:
        a = json.load(open(os.path.join(HERE, "..", f"{n}.truth.json")))
        b = json.load(open(os.path.join(other, f"{n}.truth.json")))
        wa = [{k: v for k, v in w.items() if k not in VOLATILE} for w in a["writes"]]
        wb = [{k: v for k, v in w.items() if k not in VOLATILE} for w in b["writes"]]
        diffs = [(i, {k: (x.get(k), y.get(k)) for k in x if x.get(k) != y.get(k)})
                 for i, (x, y) in enumerate(zip(wa, wb)) if x != y]
        print(f"{n}: opcode counts equal: {a['messages_by_opcode'] == b['messages_by_opcode']}, "
              f"command counts equal: {commands(a) == commands(b)}, "
              f"writes {len(wa)}/{len(wb)}, differing: {len(diffs)}")
        for d in diffs:
            print("   ", d)


if __name__ == "__main__":
    main()
