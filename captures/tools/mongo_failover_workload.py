#!/usr/bin/env python3
"""Failover workload for captures/mongo_failover.pcap: real pymongo against the
tidemark testbed replica set, faults injected through the testbed's control
endpoint (JSON over HTTP), ground truth fetched from it at the end.

  A  w:"majority" inserts 1..5 and one update (committed);
  -- POST /members/{primary}/partition: replication and heartbeats cut;
  B  w:1 inserts 10..14 and one update, acknowledged by the partitioned primary
     (these will be rolled back);
  -- POST /wait-primary until another member is primary (term 2), then heal;
  C  w:"majority" inserts 20..24 (the driver finds the new primary by itself);
  -- wait until the old primary has rolled back and caught up;
  GET /truth, plus what the driver saw acknowledged, into --truth.

Usage: mongo_failover_workload.py --uri URI --control http://HOST:PORT --truth OUT.json
"""
import argparse
import json
import time
import urllib.request

import pymongo
from pymongo import MongoClient, WriteConcern
from pymongo.errors import PyMongoError


def call(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=90) as r:
        return json.loads(r.read() or b"null")


def until(what, f, timeout=90):
    deadline = time.monotonic() + timeout
    while True:
        v = f()
        if v:
            return v
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", required=True)
    ap.add_argument("--control", required=True)
    ap.add_argument("--truth", required=True)
    a = ap.parse_args()
    ctl = a.control.rstrip("/")
    client = MongoClient(a.uri, serverSelectionTimeoutMS=60000, appname="tidemark-capture-failover")
    db = client.get_database("tm")
    maj = db.get_collection("failover", write_concern=WriteConcern(w="majority", wtimeout=30000))
    w1 = db.get_collection("failover", write_concern=WriteConcern(w=1))
    acked = []

    def record(phase, op, _id, w):
        acked.append({"phase": phase, "op": op, "_id": _id, "w": w})

    for i in range(1, 6):
        maj.insert_one({"_id": i, "phase": "A", "n": i})
        record("A", "insert", i, "majority")
    maj.update_one({"_id": 1}, {"$set": {"n": 100}})
    record("A", "update", 1, "majority")

    old = call(ctl, "GET", "/primary")["primary"]
    call(ctl, "POST", f"/members/{old}/partition")
    for i in range(10, 15):
        w1.insert_one({"_id": i, "phase": "B", "n": i})
        record("B", "insert", i, 1)
    w1.update_one({"_id": 2}, {"$set": {"n": 200}})
    record("B", "update", 2, 1)

    new = until("a new primary", lambda: (lambda p: p if p["primary"] not in (None, old) else None)(
        call(ctl, "GET", "/primary")))
    call(ctl, "POST", f"/members/{old}/heal")
    errors = []
    for i in range(20, 25):
        deadline = time.monotonic() + 60
        while True:
            try:
                maj.insert_one({"_id": i, "phase": "C", "n": i})
                record("C", "insert", i, "majority")
                break
            except PyMongoError as e:
                errors.append(type(e).__name__)
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def converged():
        ms = call(ctl, "GET", "/members")
        rbs = call(ctl, "GET", "/rollbacks")
        last = {json.dumps(m["last_applied"]) for m in ms}
        commit = {json.dumps(m["commit_point"]) for m in ms}
        return rbs and len(last) == 1 and last == commit
    until("rollback and convergence", converged)
    client.close()
    time.sleep(0.5)
    truth = call(ctl, "GET", "/truth")
    final_ids = {d["_id"] for d in truth["data"][new["primary"]].get("tm.failover", [])}
    truth["driver"] = f"pymongo {pymongo.version}"
    truth["capture"] = "mongo_failover"
    truth["old_primary"] = old
    truth["new_primary"] = new["primary"]
    truth["acknowledged"] = acked
    truth["driver_errors"] = errors
    truth["lost_acknowledged_inserts"] = sorted(
        x["_id"] for x in acked if x["op"] == "insert" and x["_id"] not in final_ids)
    json.dump(truth, open(a.truth, "w"), indent=1)
    print(f"old primary {old}, new primary {new['primary']} in term {new['term']}, "
          f"lost {truth['lost_acknowledged_inserts']}, rollbacks {len(truth['rollbacks'])}")


if __name__ == "__main__":
    main()
