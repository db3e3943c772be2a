"""pymongo through a failover of the tidemark testbed replica set.

Driven by the Rust test over stdin/stdout (one line each way per step):
  A: w:"majority" inserts 1..3, prints PHASE_A_DONE, waits for a line
     (meanwhile the test partitions the primary);
  B: w:1 inserts 10..12 — the partitioned primary still acknowledges them —
     prints PHASE_B_DONE, waits for a line (the test waits for the new
     primary and heals the old one);
  C: w:"majority" inserts 20..24, retried on errors with a deadline (the
     driver must find the new primary by itself); prints a JSON line with
     every acknowledged insert and its write concern, then OK.
Usage: mongo_failover.py URI
"""
import json
import sys
import time

from pymongo import MongoClient, WriteConcern
from pymongo.errors import PyMongoError


def step(name):
    print(name, flush=True)
    if not sys.stdin.readline():
        sys.exit("test went away")


def main():
    uri = sys.argv[1]
    client = MongoClient(uri, serverSelectionTimeoutMS=60000, heartbeatFrequencyMS=500)
    db = client.get_database("t")
    majority = db.get_collection("c", write_concern=WriteConcern(w="majority", wtimeout=30000))
    w1 = db.get_collection("c", write_concern=WriteConcern(w=1))
    acked = []
    for i in range(1, 4):
        majority.insert_one({"_id": i, "phase": "A"})
        acked.append({"_id": i, "w": "majority"})
    old_primary = client.primary
    step("PHASE_A_DONE")
    for i in range(10, 13):
        w1.insert_one({"_id": i, "phase": "B"})
        acked.append({"_id": i, "w": 1})
    step("PHASE_B_DONE")
    deadline = time.monotonic() + 60
    errors = []
    for i in range(20, 25):
        while True:
            try:
                majority.insert_one({"_id": i, "phase": "C"})
                acked.append({"_id": i, "w": "majority"})
                break
            except PyMongoError as e:  # NotPrimaryError, AutoReconnect, ...
                errors.append(type(e).__name__)
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    new_primary = client.primary
    print(json.dumps({"acked": acked, "old_primary": list(old_primary),
                      "new_primary": list(new_primary), "errors": errors}), flush=True)
    print("OK", flush=True)


if __name__ == "__main__":
    main()
