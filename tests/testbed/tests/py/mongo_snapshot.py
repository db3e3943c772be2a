"""pymongo's snapshot sessions against the testbed: every read of a session opened
with snapshot=True is at the cluster time of its first read (the driver sends
readConcern {level: "snapshot"} first, then atClusterTime from the reply), so writes
made after the first read are invisible to it. Prints one JSON line, then OK."""
import json
import sys

from bson import Timestamp
from pymongo import MongoClient
from pymongo.errors import OperationFailure

client = MongoClient(sys.argv[1], w="majority")
items = client.shop.items
items.insert_many([{"_id": i, "v": i} for i in range(10)])

with client.start_session(snapshot=True) as s:
    first = list(items.find({}, session=s).sort("_id", 1))
    items.insert_one({"_id": 100, "v": 100})
    items.update_one({"_id": 0}, {"$set": {"v": -1}})
    items.delete_one({"_id": 9})
    second = list(items.find({}, session=s).sort("_id", 1))
    counted = items.count_documents({}, session=s)

now = list(items.find({}).sort("_id", 1))
reply = client.shop.command("find", "items", readConcern={"level": "snapshot"})
at = reply["cursor"]["atClusterTime"]
try:
    client.shop.command(
        "find", "items",
        readConcern={"level": "snapshot", "atClusterTime": Timestamp(at.time + 3600, 0)},
    )
    future = None
except OperationFailure as e:
    future = e.code

print(json.dumps({
    "first": first, "second": second, "counted": counted, "now": now,
    "at": [at.time, at.inc], "future_code": future,
}))
print("OK")
