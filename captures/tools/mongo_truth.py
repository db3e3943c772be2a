"""Ground truth kept by mongo_responder.py and written as NAME.truth.json.

Shape (values in Extended JSON v2 relaxed, as mongoexport writes them):
{
  "capture": "mongo_opmsg", "driver": "pymongo 4.20.1", "compressor": null | "zlib" ...,
  "server": {"address", "setName", "maxWireVersion"},
  "messages_by_opcode": {"c2s": {"OP_MSG": n, "OP_COMPRESSED": n}, "s2c": {...}},
  "compressed_inner_by_opcode": {"c2s": {"OP_MSG": n}, "s2c": {...}},
  "messages": [ {conn, dir, opcode, [inner_opcode, compressor], request_id,
                 response_to, command | ok/code, flags, sequences}, ... ],
  "writes": [ write, ... ]      # one per document / statement, in the order received
}
A write: proto, namespace, op, key, values, write_concern, lsid (bool), txnNumber,
autocommit, startTransaction, request_id, connection, applied (did the responder
change its state), optime (operationTime answered, if applied), outcome_as_responded
(committed | rejected | pending | in_doubt), reason; per op also filter, multi, upsert,
replacement, array_filters, limit, remove, new, result, upserted_id,
retry_of_request_id, statements.
"""
import importlib.metadata
import json
import threading
from collections import Counter

from bson import json_util
from bson.json_util import RELAXED_JSON_OPTIONS


def write_entry(ns, op, key, values, **extra):
    e = {"proto": "mongo", "namespace": ns, "op": op, "key": key, "values": values}
    e.update(extra)
    return e


def relaxed(obj):
    return json.loads(json_util.dumps(obj, json_options=RELAXED_JSON_OPTIONS))


class Truth:
    def __init__(self, capture):
        self.capture = capture
        self.messages, self.writes = [], []
        self.lock = threading.Lock()

    def message(self, rec):
        with self.lock:
            self.messages.append(rec)

    def write(self, entry):
        with self.lock:
            self.writes.append(entry)

    def save(self, path, responder):
        by, inner = {"c2s": Counter(), "s2c": Counter()}, {"c2s": Counter(), "s2c": Counter()}
        comps = set()
        for m in self.messages:
            by[m["dir"]][m["opcode"]] += 1
            if "inner_opcode" in m:
                inner[m["dir"]][m["inner_opcode"]] += 1
                comps.add(m["compressor"])
        doc = {
            "capture": self.capture,
            "driver": "pymongo " + importlib.metadata.version("pymongo"),
            "compressor": ",".join(sorted(comps)) or None,
            "server": {"address": responder.addr, "setName": "rs0", "maxWireVersion": 21,
                       "scram_user": responder.scram.user if responder.scram else None,
                       "scram_password": responder.scram.password if responder.scram else None},
            "messages_by_opcode": {d: dict(sorted(c.items())) for d, c in by.items()},
            "compressed_inner_by_opcode": {d: dict(sorted(c.items())) for d, c in inner.items()},
            "messages": self.messages,
            "writes": self.writes,
        }
        doc = relaxed(doc)
        with open(path, "w") as f:  # one message / write per line, so diffs stay readable
            f.write("{\n")
            for i, (k, v) in enumerate(doc.items()):
                sep = "," if i < len(doc) - 1 else ""
                if isinstance(v, list):
                    rows = ",\n".join("  " + json.dumps(x) for x in v)
                    f.write(f' "{k}": [\n{rows}\n ]{sep}\n')
                else:
                    f.write(f' "{k}": {json.dumps(v)}{sep}\n')
            f.write("}\n")
