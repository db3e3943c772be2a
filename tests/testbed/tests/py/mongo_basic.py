"""Real pymongo against the testbed replica set: discovery through a
replica-set URI, then inserts, updates, deletes and reads, checking every
result. Prints OK on success; any failure raises (non-zero exit).

usage: mongo_basic.py <uri> [compressors]
"""
import sys
import time

import pymongo
from pymongo.errors import BulkWriteError, DuplicateKeyError

uri = sys.argv[1]
kwargs = dict(serverSelectionTimeoutMS=20000, connectTimeoutMS=5000,
              socketTimeoutMS=20000, heartbeatFrequencyMS=500)
if len(sys.argv) > 2 and sys.argv[2]:
    kwargs["compressors"] = sys.argv[2]

client = pymongo.MongoClient(uri, **kwargs)
client.admin.command("ping")
assert client.primary is not None, "no primary discovered"
# A ping needs only the primary; each secondary is found by its own monitor, so
# give discovery a bounded moment before checking it found both.
deadline = time.monotonic() + 10
while len(client.secondaries) < 2 and time.monotonic() < deadline:
    time.sleep(0.05)
assert len(client.secondaries) == 2, f"secondaries: {client.secondaries}"
print("primary", client.primary, "secondaries", sorted(client.secondaries))

coll = client.shop.items
coll.insert_one({"_id": 1, "name": "apple", "qty": 5})
coll.insert_many([{"_id": i, "name": f"item{i}", "qty": i} for i in range(2, 12)])
auto = coll.insert_one({"name": "auto"}).inserted_id

try:
    coll.insert_one({"_id": 1, "name": "dup"})
    raise AssertionError("duplicate _id accepted")
except DuplicateKeyError as e:
    assert e.code == 11000, e.details

try:
    coll.insert_many([{"_id": 100}, {"_id": 2}, {"_id": 101}, {"_id": 3}], ordered=False)
    raise AssertionError("unordered duplicates accepted")
except BulkWriteError as e:
    d = e.details
    assert d["nInserted"] == 2, d
    assert [w["index"] for w in d["writeErrors"]] == [1, 3], d

try:
    coll.insert_many([{"_id": 200}, {"_id": 2}, {"_id": 201}], ordered=True)
    raise AssertionError("ordered duplicate accepted")
except BulkWriteError as e:
    assert e.details["nInserted"] == 1, e.details
    assert [w["index"] for w in e.details["writeErrors"]] == [1], e.details

r = coll.update_one({"_id": 1}, {"$set": {"color": "red"}, "$inc": {"qty": 2}})
assert (r.matched_count, r.modified_count) == (1, 1), r.raw_result
r = coll.update_many({"qty": {"$gte": 10}}, {"$unset": {"name": ""}})
assert r.modified_count == 2, r.raw_result
r = coll.replace_one({"_id": 2}, {"name": "pear", "qty": 20})
assert r.modified_count == 1, r.raw_result
r = coll.update_one({"_id": 500}, {"$set": {"qty": 1}}, upsert=True)
assert r.upserted_id == 500, r.raw_result

# w:majority waits for the secondaries' replSetUpdatePosition
from pymongo.write_concern import WriteConcern
majority = coll.with_options(write_concern=WriteConcern(w="majority", wtimeout=10000))
majority.insert_one({"_id": 600, "name": "durable"})

r = coll.delete_one({"_id": 3})
assert r.deleted_count == 1
r = coll.delete_many({"_id": {"$in": [100, 101, 200]}})
assert r.deleted_count == 3

assert coll.find_one({"_id": 1}) == {"_id": 1, "name": "apple", "qty": 7, "color": "red"}
assert coll.find_one({"_id": 2}) == {"_id": 2, "name": "pear", "qty": 20}
assert coll.find_one({"_id": 3}) is None
assert coll.find_one({"_id": auto})["name"] == "auto"
assert coll.find_one({"name": "item5"})["qty"] == 5
ids = sorted(d["_id"] for d in coll.find({"_id": {"$ne": auto}}))
assert ids == [1, 2] + list(range(4, 12)) + [500, 600], ids
assert [d["_id"] for d in coll.find({"qty": {"$gte": 10}})] == [2, 10, 11]
assert "name" not in coll.find_one({"_id": 11})

# a secondary refuses writes; pymongo reports NotWritablePrimary
host, port = sorted(client.secondaries)[0]
direct = pymongo.MongoClient(host, port, directConnection=True, serverSelectionTimeoutMS=5000)
try:
    direct.shop.items.insert_one({"_id": 9999})
    raise AssertionError("secondary accepted a write")
except pymongo.errors.NotPrimaryError as e:
    assert "not primary" in str(e), e
direct.close()
client.close()
print("OK")
