#!/usr/bin/env python3
"""The workload of captures/cql_faults.pcap: the real Python cassandra-driver against
a 3-node tidemark testbed, with faults injected through the testbed's control endpoint
(JSON over HTTP), producing WriteTimeout (received 2 / blockfor 3 at ALL with a slow
replica, and again with a replica whose acks are lost) and Unavailable (two replicas
down). Writes the ground truth (NAME.truth.json) in the style of the other CQL
captures, plus what each replica held right after each response (from the testbed's
per-replica dumps).

usage: cql_faults_workload.py --nodes IP1,IP2,IP3 --port 9042 --control URL
                              --capture NAME.pcap --truth PATH
"""
import argparse
import json
import time
import urllib.request

import cassandra
from cassandra import ConsistencyLevel, Unavailable, WriteTimeout
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import FallthroughRetryPolicy, WhiteListRoundRobinPolicy

CL_NAMES = {v: k for k, v in ConsistencyLevel.name_to_value.items()}


class RecordingTimestamps:
    """The driver's client timestamps (microseconds), remembered for the truth."""

    def __init__(self):
        self.last = 0

    def __call__(self):
        self.last = max(int(time.time() * 1e6), self.last + 1)
        return self.last


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", required=True)
    ap.add_argument("--port", type=int, default=9042)
    ap.add_argument("--control", required=True)
    ap.add_argument("--capture", required=True)
    ap.add_argument("--truth", required=True)
    a = ap.parse_args()
    nodes = a.nodes.split(",")
    control = a.control.rstrip("/")

    def call(method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(control + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def holders(k):
        """Addresses of the replicas holding key k's `v` cell right now."""
        key = k.to_bytes(4, "big", signed=True).hex()
        out = []
        for i, ip in enumerate(nodes):
            if any(c["table"] == "faults" and c["column"] == "v" and c["partition_key"] == [key]
                   for c in call("GET", "/nodes/%d/dump" % i)):
                out.append("%s:%d" % (ip, a.port))
        return out

    def wait_for(what, check, timeout=60.0):
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise SystemExit("timed out waiting for " + what)
            time.sleep(0.1)

    stamps = RecordingTimestamps()
    # Every request goes to node 0 (one pool connection), so writes are in send order
    # on one flow; the request timeout (10 s) is longer than the testbed's write
    # timeout (500 ms). No retries: each error reaches the application as sent.
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([nodes[0]]),
                               retry_policy=FallthroughRetryPolicy(), request_timeout=10)
    cluster = Cluster(contact_points=[nodes[0]], port=a.port, protocol_version=4,
                      compression=False, execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                      timestamp_generator=stamps, connect_timeout=5, control_connection_timeout=5)
    session = cluster.connect()
    session.execute("CREATE KEYSPACE tm WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 3}")
    session.execute("CREATE TABLE tm.faults (k int PRIMARY KEY, v text)")
    text = "INSERT INTO tm.faults (k, v) VALUES (?, ?)"
    insert = session.prepare(text)
    writes = []

    def write(k, cl, note):
        insert.consistency_level = cl
        value = "v%d" % k
        rec = {"seq": len(writes), "opcode": "EXECUTE", "proto": "cql", "namespace": "tm.faults",
               "op": "insert", "key": {"k": k}, "range": None, "values": {"v": value},
               "columns_deleted": [], "collection_ops": [], "timestamp": None,
               "timestamp_source": "client", "ttl": None, "consistency": CL_NAMES[cl],
               "serial_consistency": None, "lwt": None, "batch": None, "prepared": True,
               "cql": text}
        try:
            session.execute(insert, (k, value))
            outcome, reason, response = "committed", None, "RESULT Void"
        except WriteTimeout as e:
            rec_, req = e.received_responses, e.required_responses
            outcome = "committed" if rec_ > 0 else "in_doubt"
            reason = "partial %d/%d" % (rec_, req) if rec_ > 0 else "timeout"
            response = "ERROR WriteTimeout %s received=%d blockfor=%d" % (
                cassandra.WriteType.value_to_name[e.write_type], rec_, req)
        except Unavailable as e:
            outcome, reason = "rejected", "unavailable"
            response = "ERROR Unavailable required=%d alive=%d" % (e.required_replicas, e.alive_replicas)
        rec["timestamp"] = stamps.last
        rec["client_timestamp"] = stamps.last
        rec["outcome_as_responded"] = outcome
        rec["reason"] = reason
        rec["response"] = response
        rec["fault"] = note
        rec["replicas_holding_after_response"] = holders(k)
        writes.append(rec)
        print("  seq %d %s %s -> %s" % (rec["seq"], CL_NAMES[cl], note, response))

    for k in (1, 2, 3):
        write(k, ConsistencyLevel.QUORUM, "none")
    call("POST", "/nodes/2/slow", {"delay_ms": 3000})
    write(4, ConsistencyLevel.QUORUM, "node 2 slow (3000 ms)")
    write(5, ConsistencyLevel.ALL, "node 2 slow (3000 ms)")
    call("POST", "/nodes/2/slow", {"drop_acks": True})
    write(6, ConsistencyLevel.ALL, "node 2 drops acks")
    call("POST", "/nodes/2/heal")
    call("POST", "/nodes/1/stop")
    call("POST", "/nodes/2/stop")
    write(7, ConsistencyLevel.QUORUM, "nodes 1 and 2 down")
    write(8, ConsistencyLevel.ONE, "nodes 1 and 2 down")
    write(9, ConsistencyLevel.ALL, "nodes 1 and 2 down")
    call("POST", "/nodes/1/start")
    call("POST", "/nodes/2/start")

    def replicas_equal():
        dumps = [sorted((c["partition_key"][0], c["value"], c["timestamp"])
                        for c in call("GET", "/nodes/%d/dump" % i)
                        if c["table"] == "faults" and c["column"] == "v")
                 for i in range(len(nodes))]
        return all(d == dumps[0] for d in dumps) and dumps[0]

    wait_for("hints to make the replicas equal", replicas_equal)
    rows = sorted(tuple(r) for r in session.execute("SELECT k, v FROM tm.faults"))
    cluster.shutdown()

    expected = sorted((w["key"]["k"], w["values"]["v"]) for w in writes
                      if w["outcome_as_responded"] != "rejected")
    assert rows == expected, (rows, expected)
    final = sorted(w["key"]["k"] for w in writes if w["outcome_as_responded"] != "rejected")
    truth = {
        "capture": a.capture,
        "driver": "cassandra-driver %s" % cassandra.__version__,
        "protocol_version": 4,
        "compression": None,
        "server": "%s:%d" % (nodes[0], a.port),
        "cluster": ["%s:%d" % (ip, a.port) for ip in nodes],
        "testbed": {"write_timeout_ms": 500, "replication": "SimpleStrategy RF 3",
                    "note": "tidemark-testbed cql (simulated cluster); every request "
                            "is coordinated by the first node"},
        "keyspace_from_use": None,
        "final_state": {"keys": final, "replicas_equal_after_hints": True},
        "writes": writes,
    }
    with open(a.truth, "w") as f:
        json.dump(truth, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
