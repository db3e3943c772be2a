#!/usr/bin/env python3
"""Drive the real pymongo driver through the writes tidemark must decode.

Run against mongo_responder.py (or any replica set primary named rs0):
    mongo_workload.py --port 27017 [--compressors zlib] [--profile full|small]
Profiles: `full` (every case, for the uncompressed capture) and `small` (a core set:
types, document sequences, operators, a duplicate key, a transaction, w:0).
Values are fixed (explicit _ids and dates) so the ground truth is the same every run,
except where the driver itself makes an _id (noted in captures/mongo.md).
"""
import argparse
import datetime

from bson import Binary, Decimal128, Int64, ObjectId, Regex, Timestamp
from bson.binary import UuidRepresentation
from pymongo import (DeleteMany, DeleteOne, InsertOne, MongoClient, ReplaceOne,
                     ReturnDocument, UpdateMany, UpdateOne)
from pymongo.errors import BulkWriteError, DuplicateKeyError, WriteConcernError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

UTC = datetime.timezone.utc
T0 = datetime.datetime(2024, 3, 1, 12, 30, 45, 123000, tzinfo=UTC)


def oid(n):
    return ObjectId("65e1c0de%016x" % n)


def typed_doc():
    """One document holding many BSON types."""
    import uuid
    return {
        "_id": oid(1),
        "name": "Ada Lovelace",
        "i32": 42, "i64": Int64(9007199254740993), "dbl": 3.25,
        "dec": Decimal128("1234567.890123456789"),
        "flag": True, "nothing": None,
        "when": T0,
        "bin": Binary(b"\x00\x01\x02\xfe\xff", 0),
        "uuid": Binary.from_uuid(uuid.UUID("0b5e8f0e-1c2d-4e3f-9a8b-7c6d5e4f3a2b"),
                                 UuidRepresentation.STANDARD),
        "re": Regex("^ada.*lace$", "i"),
        "ts": Timestamp(1709296245, 7),
        "nested": {"a": {"b": {"c": [1, 2, {"d": "deep"}]}}},
        "tags": ["math", "engines", "poetry"],
        "scores": [{"k": "x", "v": 1}, {"k": "y", "v": 2}, {"k": "z", "v": 3}],
    }


def bulk_docs(n, size=1000):
    return [{"_id": 1000 + i, "seq": i, "group": i % 7, "when": T0 + datetime.timedelta(seconds=i),
             "pad": ("%04d" % i) * (size // 4)} for i in range(n)]


def expect(exc_type, fn):
    try:
        fn()
    except exc_type as e:
        return e
    raise SystemExit(f"expected {exc_type.__name__}")


def run(db, client, profile):
    full = profile == "full"
    people, bulk = db.people, db.bulk

    # inserts: one document with many types; a batch large enough for a document sequence
    people.insert_one(typed_doc())
    bulk.insert_many(bulk_docs(200 if full else 40))
    people.insert_one({"name": "driver-made _id"})  # pymongo generates the ObjectId

    # updates with operators and array filters
    people.update_one({"_id": oid(1)}, {"$set": {"name": "Ada King", "nested.a.z": T0},
                                        "$inc": {"i32": 1, "dec": Decimal128("0.1")}})
    people.update_one({"_id": oid(1)}, {"$push": {"tags": {"$each": ["analyst", "writer"]}},
                                        "$unset": {"nothing": ""}})
    people.update_one({"_id": oid(1)}, {"$set": {"scores.$[hi].v": 100}},
                      array_filters=[{"hi.v": {"$gte": 2}}])
    bulk.update_many({"group": 3}, {"$inc": {"hits": 1}, "$set": {"seen": True}})
    people.replace_one({"_id": oid(1)}, {"name": "Ada", "born": datetime.datetime(
        1815, 12, 10, tzinfo=UTC), "i64": Int64(-1)})
    people.update_one({"_id": oid(2)}, {"$set": {"name": "Upserted by update"},
                                        "$setOnInsert": {"created": T0}}, upsert=True)
    people.replace_one({"email": "grace@example.org"}, {"email": "grace@example.org",
                                                       "name": "Grace"}, upsert=True)
    bulk.delete_one({"_id": 1000})
    bulk.delete_many({"group": 6})

    # findAndModify
    people.find_one_and_update({"_id": oid(2)}, {"$inc": {"visits": 1}},
                               return_document=ReturnDocument.AFTER)
    people.find_one_and_update({"_id": oid(3)}, {"$set": {"name": "fam upsert"}},
                               upsert=True, return_document=ReturnDocument.AFTER)

    # duplicate key: single insert, and unordered insert_many
    expect(DuplicateKeyError, lambda: people.insert_one({"_id": oid(2), "dup": True}))
    expect(BulkWriteError, lambda: people.insert_many(
        [{"_id": oid(10)}, {"_id": oid(2)}, {"_id": oid(11)}], ordered=False))

    # bulk_write, ordered (stops at the duplicate) and unordered (goes on)
    expect(BulkWriteError, lambda: people.bulk_write([
        InsertOne({"_id": oid(20), "k": "bw-ordered"}),
        UpdateOne({"_id": oid(20)}, {"$set": {"step": 2}}),
        InsertOne({"_id": oid(20), "k": "duplicate"}),
        InsertOne({"_id": oid(21), "k": "never sent to storage"}),
        DeleteOne({"_id": oid(3)}),
    ], ordered=True))

    # a transaction that commits
    with client.start_session() as s:
        s.start_transaction(write_concern=WriteConcern("majority"))
        people.insert_one({"_id": oid(40), "txn": "commit"}, session=s)
        people.update_one({"_id": oid(2)}, {"$set": {"txn": "commit"}}, session=s)
        s.commit_transaction()

    # unacknowledged (w:0) writes: OP_MSG with moreToCome, no reply
    w0 = people.with_options(write_concern=WriteConcern(w=0))
    w0.insert_one({"_id": oid(50), "w": 0})
    w0.update_one({"_id": oid(50)}, {"$set": {"w0": "update"}})

    if not full:
        return

    expect(BulkWriteError, lambda: people.bulk_write([
        InsertOne({"_id": oid(22), "k": "bw-unordered"}),
        InsertOne({"_id": oid(20), "k": "duplicate"}),
        UpdateMany({"k": {"$in": ["bw-ordered", "bw-unordered"]}}, {"$set": {"bw": True}}),
        ReplaceOne({"_id": oid(23)}, {"k": "replace-upsert"}, upsert=True),
        DeleteMany({"k": "nothing matches"}),
    ], ordered=False))
    people.find_one_and_delete({"_id": oid(21)})
    people.find_one_and_replace({"_id": oid(22)}, {"k": "replaced by fam"})

    # a transaction that aborts
    with client.start_session() as s:
        s.start_transaction(read_concern=ReadConcern("snapshot"))
        people.insert_one({"_id": oid(41), "txn": "abort"}, session=s)
        people.delete_one({"_id": oid(40)}, session=s)
        s.abort_transaction()

    # write concerns
    people.with_options(write_concern=WriteConcern(w=1)).insert_one({"_id": oid(51), "w": 1})
    people.with_options(write_concern=WriteConcern("majority")).insert_one(
        {"_id": oid(52), "w": "majority"})
    people.with_options(write_concern=WriteConcern(w=1, j=True)).update_one(
        {"_id": oid(51)}, {"$set": {"j": True}})
    wce = WriteConcern("majority", wtimeout=1)  # the responder answers writeConcernError
    expect(WriteConcernError, lambda: people.with_options(write_concern=wce).insert_one(
        {"_id": oid(53), "w": "majority", "wtimeout": 1}))
    w0.delete_one({"_id": oid(50)})

    # retryable write: the responder applies the first attempt, then drops the connection;
    # pymongo retries with the same lsid and txnNumber
    people.insert_one({"_id": "drop-connection-once", "retry": True})

    # reads: a cursor with getMore, and one closed early (killCursors)
    assert len(list(bulk.find({"group": {"$lt": 3}}, batch_size=25))) > 25
    cur = bulk.find({}, batch_size=5)
    next(cur)
    cur.close()
    people.count_documents({})

    # DDL
    db.create_collection("events")
    db.events.create_index([("when", 1), ("kind", -1)], name="when_kind")
    db.events.insert_one({"_id": oid(60), "kind": "ddl", "when": T0})
    db.events.drop_index("when_kind")
    db.events.rename("events_old")
    db.events_old.drop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=27017)
    ap.add_argument("--compressors", default="")
    ap.add_argument("--profile", choices=["full", "small", "auth"], default="full")
    ap.add_argument("--user", default="")
    ap.add_argument("--password", default="")
    a = ap.parse_args()
    opts = "replicaSet=rs0&retryWrites=true&appname=tidemark-capture"
    if a.compressors:
        opts += "&compressors=" + a.compressors
    cred = ""
    if a.user:
        cred = f"{a.user}:{a.password}@"
        opts += "&authSource=admin&authMechanism=SCRAM-SHA-256"
    client = MongoClient(f"mongodb://{cred}{a.host}:{a.port}/?{opts}",
                         serverSelectionTimeoutMS=10000)
    db = client.tm
    if a.profile == "auth":
        db.secrets.insert_one({"_id": oid(70), "note": "written after SCRAM-SHA-256"})
        db.secrets.update_one({"_id": oid(70)}, {"$set": {"seen": True}})
    else:
        run(db, client, a.profile)
    client.close()
    print("workload done", flush=True)


if __name__ == "__main__":
    main()
