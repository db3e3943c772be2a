#!/usr/bin/env python3
"""Wrap the testbed's `--truth-out` ground truth into captures/mongo_testbed.truth.json:
capture metadata (driver, server, SCRAM user and password, so tests can assert the
password never reaches tidemark's output), the testbed's oplogs and documents, and a
`summary` that is the same on every re-recording (oplog entries by op and namespace,
applyOps entries, documents per namespace).

usage: mongo_testbed_truth.py TESTBED_JSON OUT --port P --user U --password PW
With --compare OTHER_TRUTH: print whether OTHER's summary equals OUT's (reproducibility)."""
import argparse
import json
from collections import Counter

import pymongo


def summary(tb):
    primary = tb["members"][tb["primary"]]
    ops = Counter()
    apply_ops = []
    for e in primary["oplog"]:
        o = e.get("o", {})
        if "applyOps" in o:
            apply_ops.append([f'{x["op"]} {x["ns"]}' for x in o["applyOps"]])
            continue
        kind = next(iter(o), "") if e["op"] == "c" else ""
        ops[f'{e["op"]} {e["ns"]} {kind}'.strip()] += 1
    retryable = sum(1 for e in primary["oplog"] if "stmtId" in e)
    return {
        "oplog_entries": len(primary["oplog"]),
        "oplog_by_op_ns": dict(sorted(ops.items())),
        "apply_ops": apply_ops,
        "retryable_entries": retryable,
        "members_equal_oplog": all(m["oplog"] == primary["oplog"] for m in tb["members"]),
        "documents_per_ns": {ns: len(d) for ns, d in sorted(tb["documents"].items())},
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("testbed")
    ap.add_argument("out")
    ap.add_argument("--port", type=int, default=27017)
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--compare")
    a = ap.parse_args()
    if a.compare:
        x = json.load(open(a.out))["summary"]
        y = json.load(open(a.compare))["summary"]
        print("summary equal:", x == y)
        for k in x:
            if x[k] != y.get(k):
                print("  differs:", k, x[k], y.get(k))
        return
    tb = json.load(open(a.testbed))
    truth = {
        "capture": "mongo_testbed",
        "driver": f"pymongo {pymongo.version}",
        "workload": "tests/testbed/tests/py/mongo_commands.py",
        "server": {
            "kind": "tidemark-testbed mongo (simulated replica set, wire 0-17)",
            "hosts": [m["host"] for m in tb["members"]],
            "port": a.port,
            "setName": tb["set_name"],
            "scram_user": a.user,
            "scram_password": a.password,
        },
        "summary": summary(tb),
        "testbed": tb,
    }
    with open(a.out, "w") as f:
        json.dump(truth, f, indent=1)
    print(f"mongo_testbed: truth written, {truth['summary']['oplog_entries']} oplog entries")


if __name__ == "__main__":
    main()
