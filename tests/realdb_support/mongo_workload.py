"""The real pymongo driver against a real MongoDB-wire server (FerretDB): the writes
tidemark must decode, each printed with what the driver saw.

    mongo_workload.py write URI DB
        runs the workload in DB with the default write concern; prints one JSON line per
        document write: {"ns", "key", "op", "acknowledged", "applied"}, and for a write
        not applied "error": the server's write error code, or why it never ran
    mongo_workload.py read URI DB
        prints every document of every collection of DB: {"ns", "doc"} (Extended JSON,
        relaxed, as mongoexport writes it)

The expected outcomes come from the driver's results alone, never from tidemark.
"""

import json
import sys

from bson import json_util
from pymongo import MongoClient
from pymongo.errors import BulkWriteError, DuplicateKeyError


def emit(ns, key, op, acknowledged, applied=True, error=None):
    line = {"ns": ns, "key": key, "op": op, "acknowledged": acknowledged, "applied": applied}
    if error is not None:
        line["error"] = error
    print(json.dumps(line), flush=True)


def write(uri, dbname):
    client = MongoClient(uri, directConnection=True)
    db = client[dbname]
    docs = db["docs"]
    ns = f"{dbname}.docs"
    for i in range(20):
        r = docs.insert_one({"_id": i, "n": i, "s": f"doc-{i}", "tags": ["a", str(i)], "sub": {"x": i * 1.5}})
        emit(ns, {"_id": i}, "insert", r.acknowledged)
    r = docs.insert_many([{"_id": i, "n": i, "s": f"many-{i}"} for i in range(100, 110)])
    for i in range(100, 110):
        emit(ns, {"_id": i}, "insert", r.acknowledged)
    for i in range(0, 20, 5):
        r = docs.update_one({"_id": i}, {"$set": {"s": f"updated-{i}"}, "$inc": {"n": 1000}})
        emit(ns, {"_id": i}, "update", r.acknowledged, r.modified_count == 1)
    r = docs.replace_one({"_id": 3}, {"n": -3, "s": "replaced"})
    emit(ns, {"_id": 3}, "update", r.acknowledged, r.modified_count == 1)
    for i in (7, 104):
        r = docs.delete_one({"_id": i})
        emit(ns, {"_id": i}, "delete", r.acknowledged, r.deleted_count == 1)
    # A duplicate _id: the server refuses it (a write error), nothing is written.
    try:
        docs.insert_one({"_id": 1, "n": 1, "s": "duplicate"})
        emit(ns, {"_id": 1}, "insert", True, True)
    except DuplicateKeyError as e:
        emit(ns, {"_id": 1}, "insert", True, False, e.code)
    # An ordered bulk insert stopped by a duplicate: the documents before it landed.
    try:
        docs.insert_many([{"_id": 200, "n": 200}, {"_id": 2, "n": 2}, {"_id": 201, "n": 201}])
    except BulkWriteError as e:
        landed = e.details["nInserted"]
        codes = {w["index"]: w["code"] for w in e.details["writeErrors"]}
        for pos, i in enumerate((200, 2, 201)):
            why = codes.get(pos, None if pos < landed else "not executed: the ordered batch stopped")
            emit(ns, {"_id": i}, "insert", True, pos < landed, why)
    client.close()


def read(uri, dbname):
    client = MongoClient(uri, directConnection=True)
    db = client[dbname]
    for name in sorted(db.list_collection_names()):
        for doc in db[name].find().sort("_id", 1):
            rel = json.loads(json_util.dumps(doc, json_options=json_util.RELAXED_JSON_OPTIONS))
            print(json.dumps({"ns": f"{dbname}.{name}", "doc": rel}), flush=True)
    client.close()


if __name__ == "__main__":
    mode, uri, dbname = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "write":
        write(uri, dbname)
    elif mode == "read":
        read(uri, dbname)
    else:
        sys.exit(f"unknown mode {mode}")
