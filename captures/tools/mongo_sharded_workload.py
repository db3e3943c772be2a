#!/usr/bin/env python3
"""Sharded workload for captures/mongo_sharded.pcap: real pymongo through the two
routers of the tidemark testbed's sharded cluster (2 shards of 3 members, a config
server set of 3) while chunks move, ground truth fetched from the testbed's control
endpoint at the end.

  1. shardCollection tm.ranged on {k: 1}, split at k = 25, 50, 75, moveChunk of
     [50, 75) to the other shard (empty: a map change only); shardCollection
     tm.hashed on {k: "hashed"} (one chunk per shard);
  2. bulk inserts (insert_many, w:"majority") of RANGED documents into tm.ranged
     and HASHED into tm.hashed: both span both shards;
  3. a retryable insert: pymongo's (lsid + txnNumber), then the same command bytes
     sent again on a new connection, as a driver retries after a network error:
     executed once (the router answers the second from the session's record);
  4. clone batches paced (10 documents, 20 ms apart) from here on; an explicit
     moveChunk of [25, 50) with its documents (a clone) while a thread updates them
     by shard key through the second router (caught up by _transferMods);
  5. the balancer on (continuous: a random chunk every round) while a writer on the
     second router does w:"majority" inserts, updates by shard key, updates by _id
     alone and deletes on both collections until >= MIN_MOVES migrations and
     >= MIN_OPS writes; then the balancer off, migrations drained, every range
     deletion run;
  GET /truth, plus what the driver saw acknowledged, into --truth.

Usage: mongo_sharded_workload.py --routers H:P,H:P --control http://H:P --truth OUT
"""
import argparse
import json
import random
import socket
import struct
import threading
import time
import urllib.request

import bson
import pymongo
from bson.int64 import Int64
from pymongo import MongoClient, WriteConcern

MIN_MOVES = 5
MIN_OPS = 40
MAX_OPS = 300
RANGED = 100  # bulk-inserted documents
HASHED = 40


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


def op_msg(doc, request_id):
    """One OP_MSG (flags 0, a kind-0 section) carrying `doc`."""
    body = struct.pack("<I", 0) + b"\x00" + bson.encode(doc)
    return struct.pack("<iiii", 16 + len(body), request_id, 0, 2013) + body


def raw_command(addr, doc, request_id):
    """Sends `doc` as one OP_MSG on a fresh connection; returns the reply document."""
    host, port = addr.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(op_msg(doc, request_id))
        head = b""
        while len(head) < 16:
            head += s.recv(16 - len(head))
        n = struct.unpack("<i", head[:4])[0]
        rest = b""
        while len(rest) < n - 16:
            rest += s.recv(n - 16 - len(rest))
    return bson.decode(rest[5:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--routers", required=True, help="H:P,H:P")
    ap.add_argument("--control", required=True)
    ap.add_argument("--truth", required=True)
    ap.add_argument("--seed", type=int, default=17)
    a = ap.parse_args()
    ctl = a.control.rstrip("/")
    routers = a.routers.split(",")
    rng = random.Random(a.seed)
    c0 = MongoClient(f"mongodb://{routers[0]}/", serverSelectionTimeoutMS=30000,
                     appname="tidemark-capture-sharded-admin")
    c1 = MongoClient(f"mongodb://{routers[-1]}/", serverSelectionTimeoutMS=30000,
                     appname="tidemark-capture-sharded-writer")
    shards = [s["id"] for s in call(ctl, "GET", "/shards")]
    acked = []

    def record(phase, op, ns, _id, result):
        acked.append({"phase": phase, "op": op, "ns": ns, "_id": _id, "result": result})

    def coll(c, name):
        return c.tm.get_collection(name, write_concern=WriteConcern(w="majority", wtimeout=30000))

    def other_shard(k):
        # the shard not owning the tm.ranged chunk that starts at k
        owner = next(ch["shard"] for t in call(ctl, "GET", "/chunks") if t["ns"] == "tm.ranged"
                     for ch in t["chunks"] if ch["min"] in ({"$numberInt": str(k)}, k))
        return next(s for s in shards if s != owner)

    # 1. the collections and their maps
    adm = c0.admin
    adm.command("shardCollection", "tm.ranged", key={"k": 1})
    for at in (25, 50, 75):
        adm.command("split", "tm.ranged", middle={"k": at})
    adm.command("moveChunk", "tm.ranged", find={"k": 50}, to=other_shard(50))
    adm.command("shardCollection", "tm.hashed", key={"k": "hashed"})

    # 2. bulk inserts spanning both shards
    ranged0, hashed0 = coll(c0, "ranged"), coll(c0, "hashed")
    r = ranged0.insert_many([{"_id": i, "k": i, "v": 0} for i in range(RANGED)])
    for i in r.inserted_ids:
        record("bulk", "insert", "tm.ranged", i, {"n": 1})
    r = hashed0.insert_many([{"_id": i, "k": i, "v": 0} for i in range(HASHED)])
    for i in r.inserted_ids:
        record("bulk", "insert", "tm.hashed", i, {"n": 1})
    live = {"tm.ranged": list(range(RANGED)), "tm.hashed": list(range(HASHED))}

    # 3. a retryable write, sent twice with the same lsid/txnNumber
    ranged0.insert_one({"_id": 1000, "k": 1000, "v": 0})
    record("retryable", "insert", "tm.ranged", 1000, {"n": 1})
    live["tm.ranged"].append(1000)
    lsid = {"id": bson.Binary(bytes(range(16)), 4)}
    retry = {"insert": "ranged", "documents": [{"_id": 1001, "k": 1001, "v": 0}],
             "ordered": True, "lsid": lsid, "txnNumber": Int64(1),
             "writeConcern": {"w": "majority"}, "$db": "tm"}
    replies = [raw_command(routers[0], retry, 9001 + n) for n in range(2)]
    for rep in replies:
        if rep.get("ok") != 1 or rep.get("n") != 1:
            raise SystemExit(f"retryable insert: {rep}")
    record("retryable", "insert", "tm.ranged", 1001, {"n": 1, "sent": 2})
    live["tm.ranged"].append(1001)

    # 4. an explicit move with data, while updates reach its chunk (_transferMods).
    # Clone batches are small and paced from here on, so a move lasts long enough.
    call(ctl, "POST", "/migration-pacing", {"clone_batch_docs": 10, "clone_batch_pause_ms": 20})
    moving = threading.Event()
    ranged1 = coll(c1, "ranged")

    def during_move():
        n = 0
        while not moving.is_set():
            i = 25 + n % 25
            r = ranged1.update_one({"_id": i, "k": i}, {"$inc": {"v": 1}})
            assert r.modified_count == 1, i
            record("explicit move", "update", "tm.ranged", i, {"n": 1, "by": "shard key"})
            n += 1
            time.sleep(0.005)
    t = threading.Thread(target=during_move)
    t.start()
    try:
        adm.command("moveChunk", "tm.ranged", find={"k": 25}, to=other_shard(25))
    finally:
        moving.set()
        t.join()

    # 5. the balancer moves chunks while the writer writes through the other router
    call(ctl, "POST", "/balancer", {"enabled": True, "mode": "continuous", "interval_ms": 200})
    colls = {"tm.ranged": coll(c1, "ranged"), "tm.hashed": coll(c1, "hashed")}
    next_id = {"tm.ranged": 2000, "tm.hashed": 2000}
    ops = 0
    started = time.monotonic()
    while ops < MAX_OPS:
        moves = len(call(ctl, "GET", "/migrations"))
        if ops >= MIN_OPS and moves >= MIN_MOVES:
            break
        if time.monotonic() - started > 120:
            raise SystemExit(f"only {moves} moves and {ops} writes in 120 s")
        ns = rng.choice(["tm.ranged", "tm.ranged", "tm.hashed"])
        c, ids = colls[ns], live[ns]
        choice, pick = rng.randrange(10), rng.choice(ids)
        if choice <= 3:
            i = next_id[ns]
            next_id[ns] += 1
            c.insert_one({"_id": i, "k": i, "v": 0})
            record("moving", "insert", ns, i, {"n": 1})
            ids.append(i)
        elif choice <= 5:
            r = c.update_one({"_id": pick, "k": pick}, {"$inc": {"v": 1}})
            assert r.matched_count == 1 and r.modified_count == 1, (ns, pick)
            record("moving", "update", ns, pick, {"n": 1, "by": "shard key"})
        elif choice <= 7:
            r = c.update_one({"_id": pick}, {"$inc": {"w": 1}})
            assert r.matched_count == 1 and r.modified_count == 1, (ns, pick)
            record("moving", "update", ns, pick, {"n": 1, "by": "_id"})
        elif len(ids) > 30:
            r = c.delete_one({"_id": pick, "k": pick})
            assert r.deleted_count == 1, (ns, pick)
            record("moving", "delete", ns, pick, {"n": 1})
            ids.remove(pick)
        else:
            continue
        ops += 1
        # paced: the moves, not the write rate, set how long this phase lasts
        time.sleep(0.015)
    call(ctl, "POST", "/balancer", {"enabled": False})

    def settled():
        # no move in flight for a second, every range deletion run
        before = len(call(ctl, "GET", "/migrations"))
        time.sleep(1.0)
        after = call(ctl, "GET", "/migrations")
        dels = call(ctl, "GET", "/range-deletions")
        return len(after) == before and all(d["deleted"] is not None for d in dels)
    until("migrations and range deletions to finish", settled)
    c0.close()
    c1.close()
    time.sleep(1.0)
    truth = call(ctl, "GET", "/truth")
    truth["capture"] = "mongo_sharded"
    truth["driver"] = f"pymongo {pymongo.version}"
    truth["routers_used"] = routers
    truth["user_namespaces"] = ["tm.hashed", "tm.ranged"]
    truth["acknowledged"] = acked
    # The driver's own model of the final state must be the testbed's logical state.
    for ns, ids in live.items():
        got = sorted(d["_id"]["$numberInt"] if isinstance(d["_id"], dict) else d["_id"]
                     for d in truth["logical_state"].get(ns, []))
        got = sorted(int(x) for x in got)
        if got != sorted(ids):
            raise SystemExit(f"{ns}: logical state ids differ from the driver's model")
    json.dump(truth, open(a.truth, "w"), indent=1)
    ms = truth["migrations"]
    print(f"{len(acked)} acknowledged writes, {len(ms)} migrations "
          f"(cloned {sum(m['cloned'] for m in ms)}, transferred "
          f"{sum(m['transferred'] for m in ms)}), {len(truth['range_deletions'])} range "
          f"deletions (deleted {sum(d['deleted'] or 0 for d in truth['range_deletions'])}), "
          f"{len(truth['chunk_map_history'])} chunk-map changes")


if __name__ == "__main__":
    main()
