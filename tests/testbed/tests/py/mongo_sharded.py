"""Real pymongo against the sharded testbed through its routers (a mongos
topology): sharding commands, inserts spanning shards, bulk writes with a
duplicate key on each shard (ordered and unordered: the error indexes are
the client's), broadcast and targeted updates and deletes, a hashed
collection, and a transaction touching two shards. Prints every document
of both collections as read back through a router (canonical extended
JSON, one line each: "READ <ns> <json>"), then OK.

usage: mongo_sharded.py <uri>
"""
import sys

import pymongo
from bson import json_util
from bson.json_util import CANONICAL_JSON_OPTIONS
from pymongo.errors import BulkWriteError

client = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=20000,
                             connectTimeoutMS=5000, socketTimeoutMS=20000,
                             heartbeatFrequencyMS=500)
hello = client.admin.command("hello")
assert hello.get("msg") == "isdbgrid", hello
assert "setName" not in hello, hello
client.admin.command("ping")
assert client.is_mongos, "pymongo sees a mongos topology"

client.admin.command("enableSharding", "py")
client.admin.command("shardCollection", "py.ranged", key={"k": 1})
client.admin.command("split", "py.ranged", middle={"k": 100})
client.admin.command("moveChunk", "py.ranged", find={"k": 150}, to="shard1")
client.admin.command("shardCollection", "py.hashed", key={"k": "hashed"})
shards = client.admin.command("listShards")["shards"]
assert [s["_id"] for s in shards] == ["shard0", "shard1"], shards

ranged = client.py.ranged
ranged.insert_many([{"_id": i, "k": i, "v": 0} for i in range(200)])

try:
    ranged.insert_many([{"_id": 1000, "k": 10}, {"_id": 5, "k": 5},
                        {"_id": 1001, "k": 150}, {"_id": 150, "k": 150},
                        {"_id": 1002, "k": 20}], ordered=False)
    raise AssertionError("duplicates accepted")
except BulkWriteError as e:
    idx = [w["index"] for w in e.details["writeErrors"]]
    assert idx == [1, 3], e.details
    assert all(w["code"] == 11000 for w in e.details["writeErrors"]), e.details
    assert e.details["nInserted"] == 3, e.details
try:
    ranged.insert_many([{"_id": 2000, "k": 30}, {"_id": 2001, "k": 160},
                        {"_id": 7, "k": 7}, {"_id": 2002, "k": 40}])
    raise AssertionError("duplicate accepted")
except BulkWriteError as e:
    assert [w["index"] for w in e.details["writeErrors"]] == [2], e.details
    assert e.details["nInserted"] == 2, e.details
assert ranged.find_one({"_id": 2002}) is None

# a mixed bulk spanning both shards, unordered: indexes map back
r = ranged.bulk_write([
    pymongo.UpdateOne({"k": 3}, {"$set": {"b": 1}}),
    pymongo.InsertOne({"_id": 3000, "k": 170}),
    pymongo.DeleteOne({"k": 180}),
    pymongo.UpdateOne({"k": 555}, {"$set": {"b": 2}}, upsert=True),
], ordered=False)
assert (r.matched_count, r.inserted_count, r.deleted_count, r.upserted_count) == (1, 1, 1, 1), r.bulk_api_result
assert list(r.upserted_ids.keys()) == [3], r.upserted_ids

r = ranged.update_many({}, {"$inc": {"v": 1}})
assert r.matched_count == r.modified_count == ranged.count_documents({}), r.raw_result
r = ranged.delete_many({"k": {"$gte": 190, "$lt": 200}})
assert r.deleted_count == 10, r.raw_result
doc = ranged.find_one_and_update({"k": 42}, {"$set": {"fam": 1}},
                                 return_document=pymongo.ReturnDocument.AFTER)
assert doc["fam"] == 1, doc
top = [d["k"] for d in ranged.find({"k": {"$lt": 1000}}).sort("k", -1).limit(3)]
assert top == [555, 189, 188], top

hashed = client.py.hashed
hashed.insert_many([{"_id": i, "k": i} for i in range(100)])
assert hashed.delete_one({"k": 17}).deleted_count == 1
assert hashed.count_documents({}) == 99

# a transaction touching both shards of py.ranged
with client.start_session() as s:
    with s.start_transaction():
        ranged.insert_one({"_id": 5000, "k": 10}, session=s)
        ranged.insert_one({"_id": 5001, "k": 150}, session=s)
        ranged.update_one({"k": 43}, {"$set": {"t": 1}}, session=s)
        assert ranged.count_documents({"_id": {"$in": [5000, 5001]}}, session=s) == 2
assert ranged.count_documents({"_id": {"$in": [5000, 5001]}}) == 2

for ns, coll in (("py.ranged", ranged), ("py.hashed", hashed)):
    for d in coll.find({}).sort("_id", 1):
        print("READ", ns, json_util.dumps(d, json_options=CANONICAL_JSON_OPTIONS))
print("OK")
