"""Real pymongo against the testbed replica set: every data command the
testbed implements, with w:1, w:"majority" and transactions, each result
checked by reading back exactly what was written. Optionally authenticates
with SCRAM-SHA-256 (user from argv, password from the environment variable
TESTBED_SCRAM_PASSWORD, so it never appears in a command line) and first
checks that a wrong password is refused with AuthenticationFailed (18).

On success prints one line `STATE <canonical extended JSON>` with the final
documents of every collection it left behind (what the test compares with
the testbed's ground truth), then `OK`. Any failure raises (non-zero exit).

usage: mongo_commands.py <uri> [user]
"""
import datetime
import os
import re
import sys
import time

import pymongo
from bson import SON, Int64, json_util
from bson.json_util import CANONICAL_JSON_OPTIONS
from pymongo import (DeleteMany, DeleteOne, InsertOne, ReplaceOne, UpdateMany,
                     UpdateOne, ReturnDocument)
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

uri = sys.argv[1]
user = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None
kwargs = dict(serverSelectionTimeoutMS=20000, connectTimeoutMS=5000,
              socketTimeoutMS=20000, heartbeatFrequencyMS=500)

if user:
    password = os.environ["TESTBED_SCRAM_PASSWORD"]
    # a wrong password is refused with AuthenticationFailed
    bad = pymongo.MongoClient(uri, username=user, password=password + "-wrong",
                              authMechanism="SCRAM-SHA-256", **kwargs)
    try:
        bad.admin.command("ping")
        bad.shop.items.find_one()
        raise AssertionError("wrong password accepted")
    except OperationFailure as e:
        assert e.code == 18, e.details
    bad.close()
    # no credentials at all: reads are refused with Unauthorized
    anon = pymongo.MongoClient(uri, **kwargs)
    try:
        anon.shop.items.find_one()
        raise AssertionError("unauthenticated read accepted")
    except OperationFailure as e:
        assert e.code == 13, e.details
    anon.close()
    kwargs.update(username=user, password=password, authMechanism="SCRAM-SHA-256")

client = pymongo.MongoClient(uri, **kwargs)
client.admin.command("ping")
deadline = time.monotonic() + 10
while len(client.secondaries) < 2 and time.monotonic() < deadline:
    time.sleep(0.05)
assert client.primary is not None and len(client.secondaries) == 2, client.nodes

db = client.shop
items = db.items
majority = WriteConcern(w="majority", wtimeout=60000)

# --- inserts: single, many, duplicate _id, ordered/unordered batches
items.insert_one({"_id": 1, "name": "apple", "qty": 5, "tags": ["red"],
                  "dims": {"w": 2, "h": 3}})
items.insert_many([{"_id": i, "name": f"item{i}", "qty": i, "grp": i % 3,
                    "scores": [i, i + 10, i + 20]} for i in range(2, 30)])
try:
    items.insert_one({"_id": 1})
    raise AssertionError("duplicate accepted")
except DuplicateKeyError as e:
    assert e.code == 11000 and "E11000" in str(e), e.details
try:
    items.insert_many([{"_id": 100}, {"_id": 2}, {"_id": 101}, {"_id": 3}], ordered=False)
    raise AssertionError("unordered duplicates accepted")
except BulkWriteError as e:
    assert e.details["nInserted"] == 2, e.details
    assert [w["index"] for w in e.details["writeErrors"]] == [1, 3], e.details
    assert all(w["code"] == 11000 for w in e.details["writeErrors"])

# --- bulk_write, ordered (stops at the duplicate) and unordered (mixed ops)
try:
    items.bulk_write([InsertOne({"_id": 200}), InsertOne({"_id": 1}),
                      InsertOne({"_id": 201})], ordered=True)
    raise AssertionError("ordered bulk duplicate accepted")
except BulkWriteError as e:
    assert e.details["nInserted"] == 1, e.details
    assert [w["index"] for w in e.details["writeErrors"]] == [1], e.details
try:
    items.bulk_write([
        InsertOne({"_id": 300, "qty": 1}),
        InsertOne({"_id": 300}),
        UpdateMany({"_id": {"$in": [100, 101]}}, {"$set": {"bulk": True}}),
        ReplaceOne({"_id": 400}, {"name": "upserted"}, upsert=True),
        DeleteOne({"_id": 200}),
        UpdateOne({"_id": 300}, {"$inc": {"qty": 1}}),
    ], ordered=False)
    raise AssertionError("unordered bulk duplicate accepted")
except BulkWriteError as e:
    d = e.details
    assert [w["index"] for w in d["writeErrors"]] == [1], d
    assert (d["nInserted"], d["nMatched"], d["nModified"], d["nUpserted"], d["nRemoved"]) \
        == (1, 3, 3, 1, 1), d

# --- updates: every operator
r = items.update_one({"_id": 1}, {"$set": {"dims.d": 4, "color": "red"},
                                  "$inc": {"qty": 2}, "$mul": {"dims.w": 3}})
assert (r.matched_count, r.modified_count) == (1, 1), r.raw_result
items.update_one({"_id": 1}, {"$min": {"qty": 3}, "$max": {"dims.h": 10}})
items.update_one({"_id": 1}, {"$rename": {"color": "colour"}, "$unset": {"dims.d": ""}})
items.update_one({"_id": 1}, {"$push": {"tags": {"$each": ["a", "b", "c"], "$position": 0,
                                                 "$slice": 3}}})
items.update_one({"_id": 1}, {"$addToSet": {"tags": {"$each": ["a", "z"]}}})
items.update_one({"_id": 1}, {"$pop": {"tags": -1}})
items.update_one({"_id": 1}, {"$pull": {"tags": {"$in": ["z"]}}})
items.update_one({"_id": 1}, {"$currentDate": {"seen": True}})
one = items.find_one({"_id": 1})
assert isinstance(one.pop("seen"), datetime.datetime), one
assert one == {"_id": 1, "name": "apple", "qty": 3, "tags": ["b", "c"],
               "dims": {"w": 6, "h": 10}, "colour": "red"}, one
items.update_one({"_id": 1}, {"$unset": {"seen": ""}})
# positional $ and arrayFilters
items.update_one({"_id": 5, "scores": 15}, {"$set": {"scores.$": 150}})
items.update_one({"_id": 6}, {"$inc": {"scores.$[s]": 1000}},
                 array_filters=[{"s": {"$gte": 16}}])
items.update_many({"_id": {"$in": [7, 8]}}, {"$mul": {"scores.$[]": 2}})
assert items.find_one({"_id": 5})["scores"] == [5, 150, 25]
assert items.find_one({"_id": 6})["scores"] == [6, 1016, 1026]
assert items.find_one({"_id": 8})["scores"] == [16, 36, 56]
# replacement, upsert with $setOnInsert, and a refused pipeline update
items.replace_one({"_id": 2}, {"name": "pear", "qty": 20})
r = items.update_one({"_id": 500}, {"$set": {"qty": 1}, "$setOnInsert": {"new": True}},
                     upsert=True)
assert r.upserted_id == 500, r.raw_result
items.update_one({"_id": 500}, {"$setOnInsert": {"ignored": 1}, "$inc": {"qty": 1}},
                 upsert=True)
assert items.find_one({"_id": 500}) == {"_id": 500, "qty": 2, "new": True}
try:
    items.update_one({"_id": 2}, [{"$set": {"x": 1}}])
    raise AssertionError("pipeline update accepted")
except OperationFailure as e:
    assert "pipeline" in str(e), e.details
try:
    items.update_one({"_id": 2}, {"$set": {"_id": 3}})
    raise AssertionError("_id change accepted")
except OperationFailure as e:
    assert e.code == 66, e.details

# --- deletes
assert items.delete_one({"_id": 3}).deleted_count == 1
assert items.delete_many({"_id": {"$in": [100, 101, 201]}}).deleted_count == 2

# --- findAndModify
doc = items.find_one_and_update({"_id": 4}, {"$inc": {"qty": 1}},
                                return_document=ReturnDocument.AFTER)
assert doc["qty"] == 5, doc
doc = items.find_one_and_update({"grp": 2}, {"$set": {"first": True}},
                                sort=[("qty", -1)], projection={"qty": 1})
assert doc == {"_id": 29, "qty": 29}, doc
doc = items.find_one_and_replace({"_id": 9}, {"name": "nine"},
                                 return_document=ReturnDocument.AFTER)
assert doc == {"_id": 9, "name": "nine"}, doc
doc = items.find_one_and_update({"_id": 700}, {"$set": {"v": 1}}, upsert=True,
                                return_document=ReturnDocument.AFTER)
assert doc == {"_id": 700, "v": 1}, doc
doc = items.find_one_and_delete({"_id": 10})
assert doc["_id"] == 10
assert items.find_one_and_delete({"_id": 10}) is None

# --- w:1 and w:majority
items.with_options(write_concern=WriteConcern(w=1)).insert_one({"_id": 800, "w": 1})
items.with_options(write_concern=majority).insert_one({"_id": 801, "w": "majority"})
r = items.with_options(write_concern=majority).update_one({"_id": 801}, {"$set": {"ok": 1}})
assert r.modified_count == 1

# --- queries: equality, $in, comparisons, $and/$or on top-level and dotted fields
assert items.find_one({"dims.w": 6})["_id"] == 1
assert [d["_id"] for d in items.find({"_id": {"$in": [1, 2, 999]}}).sort("_id", 1)] == [1, 2]
assert [d["_id"] for d in items.find({"qty": {"$gt": 25, "$lte": 28}}).sort("qty", -1)] \
    == [28, 27, 26]
q = {"$or": [{"grp": 0, "qty": {"$lt": 8}}, {"dims.h": {"$gte": 10}}]}
assert sorted(d["_id"] for d in items.find(q)) == [1, 6]
q = {"$and": [{"scores": {"$gt": 40}}, {"grp": {"$ne": 1}}]}
assert sorted(d["_id"] for d in items.find(q)) == [5, 6, 8, 21, 23, 24, 26, 27, 29]
assert items.find_one({"scores": {"$elemMatch": {"$gt": 1000}}})["_id"] == 6
twenties = list(range(20, 30))
assert sorted(d["_id"] for d in items.find({"name": {"$regex": "^ITEM2", "$options": "i"}})) == twenties
assert sorted(d["_id"] for d in items.find({"name": re.compile("^item2")})) == twenties
assert [d["_id"] for d in items.find({"dims": {"$type": "object"}})] == [1]
assert [d["_id"] for d in items.find({"qty": {"$mod": [10, 7]}, "grp": {"$exists": True}})] == [7, 17, 27]

# --- sort, skip, limit, projection, cursors with getMore
sorted_ids = [d["_id"] for d in items.find({"grp": {"$exists": True}}, {"_id": 1})
              .sort([("grp", 1), ("qty", -1)])]
assert sorted_ids[:3] == [27, 24, 21], sorted_ids
page = list(items.find({}, {"name": 1, "_id": 0}).sort("_id", 1).skip(2).limit(3))
assert page == [{"name": "item4"}, {"name": "item5"}, {"name": "item6"}], page
excl = items.find_one({"_id": 1}, {"tags": 0, "dims.h": 0})
assert excl == {"_id": 1, "name": "apple", "qty": 3, "dims": {"w": 6}, "colour": "red"}, excl
cur = items.find({}).sort("_id", 1).batch_size(5)
all_docs = list(cur)
assert len(all_docs) == items.count_documents({}) and len(all_docs) > 20
assert [d["_id"] for d in all_docs] == sorted(d["_id"] for d in all_docs)
early = items.find({}).batch_size(2)
next(early)
early.close()   # killCursors
assert items.count_documents({"grp": 1}) == 8
assert items.count_documents({"qty": {"$gte": 20}}, skip=2, limit=3) == 3
assert items.estimated_document_count() == len(all_docs)
assert sorted(items.distinct("grp")) == [0, 1, 2]

# --- collections and databases
db.create_collection("made")
try:
    db.create_collection("made")
    raise AssertionError("create of an existing collection accepted")
except pymongo.errors.CollectionInvalid:
    pass
db.made.insert_one({"_id": "m1"})
db.made.rename("renamed")
assert db.renamed.find_one() == {"_id": "m1"}
names = db.list_collection_names()
assert "renamed" in names and "made" not in names and "items" in names, names
colls = list(db.list_collections(filter={"name": "items"}))
assert len(colls) == 1 and colls[0]["info"]["uuid"] is not None, colls
client.scratch.tmp.insert_many([{"_id": i} for i in range(3)])
client.scratch.other.insert_one({"_id": 1})
assert "scratch" in client.list_database_names()
db.create_collection("gone")
db.gone.insert_one({"_id": 1})
db.drop_collection("gone")
assert "gone" not in db.list_collection_names()
client.drop_database("scratch")
assert "scratch" not in client.list_database_names()

# --- indexes: recorded, listed, dropped; a unique one is enforced
people = db.people
people.insert_many([{"_id": 1, "email": "a@x", "age": 30}, {"_id": 2, "email": "b@x"}])
assert people.create_index("email", unique=True) == "email_1"
try:
    people.insert_one({"_id": 3, "email": "a@x"})
    raise AssertionError("unique index not enforced on insert")
except DuplicateKeyError as e:
    assert "email_1" in str(e) and e.details["keyValue"] == {"email": "a@x"}, e.details
try:
    people.update_one({"_id": 2}, {"$set": {"email": "a@x"}})
    raise AssertionError("unique index not enforced on update")
except DuplicateKeyError as e:
    assert "email_1" in str(e), e.details
assert people.create_index([("age", -1)], name="by_age") == "by_age"
assert set(people.index_information()) == {"_id_", "email_1", "by_age"}
assert people.index_information()["email_1"].get("unique") is True
people.drop_index("by_age")
assert set(people.index_information()) == {"_id_", "email_1"}
db.create_collection("fresh").create_index("k")   # empty collection: one createIndexes entry

# --- retried statements through the driver: the same txnNumber on the same
# session is a retry; the server applies each statement once. Its own client:
# the session's txnNumber moved past what pymongo's session pool knows.
retry_client = pymongo.MongoClient(uri, **kwargs)
with retry_client.start_session() as s:
    rdb = retry_client.shop
    for _ in range(2):
        r = rdb.command(SON([("insert", "retry"), ("documents", [{"_id": 1, "n": 0}]),
                            ("txnNumber", Int64(1_000_007))]), session=s)
        assert r["n"] == 1 and "writeErrors" not in r, r
    for _ in range(2):
        r = rdb.command(SON([("update", "retry"),
                            ("updates", [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}}]),
                            ("txnNumber", Int64(1_000_008))]), session=s)
        assert (r["n"], r["nModified"]) == (1, 1), r
assert db.retry.find_one({"_id": 1}) == {"_id": 1, "n": 1}
retry_client.close()

# --- transactions: commit (w:majority) and abort
orders = db.orders
orders.insert_one({"_id": "pre"})
with client.start_session() as s:
    with s.start_transaction(write_concern=majority):
        orders.insert_one({"_id": "t1", "item": 1}, session=s)
        items.update_one({"_id": 1}, {"$inc": {"qty": -1}}, session=s)
        orders.delete_one({"_id": "pre"}, session=s)
        assert orders.find_one({"_id": "t1"}, session=s) is not None
        assert orders.count_documents({}, session=s) == 1
        # outside the transaction nothing of it is visible before the commit
        assert orders.find_one({"_id": "t1"}) is None
        assert orders.find_one({"_id": "pre"}) is not None
with client.start_session() as s:
    s.start_transaction(read_concern=ReadConcern("snapshot"))
    orders.insert_one({"_id": "t2"}, session=s)
    orders.delete_one({"_id": "t1"}, session=s)
    items.update_one({"_id": 1}, {"$set": {"aborted": True}}, session=s)
    s.abort_transaction()
assert orders.find_one({"_id": "t2"}) is None
assert orders.find_one({"_id": "t1"}) == {"_id": "t1", "item": 1}
assert orders.find_one({"_id": "pre"}) is None
assert "aborted" not in items.find_one({"_id": 1}) and items.find_one({"_id": 1})["qty"] == 2

# --- what is left, for the ground-truth comparison
state = {}
for dbname in ["shop"]:
    for cname in sorted(client[dbname].list_collection_names()):
        state[f"{dbname}.{cname}"] = list(client[dbname][cname].find({}))
print("STATE " + json_util.dumps(state, json_options=CANONICAL_JSON_OPTIONS))
client.close()
print("OK")
