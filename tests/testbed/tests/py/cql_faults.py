"""Real cassandra-driver against a 3-node testbed while faults are injected through
the testbed's control endpoint (JSON over HTTP):
  - one of three replicas slow: QUORUM writes succeed, ALL writes get WriteTimeout
    with received 2 / blockfor 3, and the data is on the two healthy replicas;
  - two nodes down: QUORUM gets Unavailable (required 2, alive 1), ONE succeeds;
  - after restarting them, hints make all replicas equal;
  - after adding a fourth node, the driver sees it and every key is readable at
    QUORUM; after removing it again, too.
Usage: cql_faults.py <contact ip> <port> <control base url>"""
import json
import sys
import time
import urllib.request

from cassandra import ConsistencyLevel, Unavailable, WriteTimeout
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
from cassandra.policies import RoundRobinPolicy, TokenAwarePolicy
from cassandra.query import SimpleStatement

ip, port, control = sys.argv[1], int(sys.argv[2]), sys.argv[3].rstrip("/")


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(control + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200, (path, r.status)
        return json.loads(r.read())


def wait_for(what, check, timeout=60.0):
    """Polls `check` until it returns a true value; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.2)


def cells(node, table="t"):
    """{(partition key hex, column): (value hex, timestamp)} on one node."""
    out = {}
    for c in call("GET", "/nodes/%d/dump" % node):
        if c["keyspace"] == "ks" and c["table"] == table and c["column"] == "v":
            out[tuple(c["partition_key"])] = (c["value"], c["timestamp"])
    return out


def key_hex(k):
    return (k.to_bytes(4, "big", signed=True).hex(),)


# The driver's request timeout (10 s) is longer than the coordinator's write timeout.
profile = ExecutionProfile(load_balancing_policy=TokenAwarePolicy(RoundRobinPolicy()),
                           consistency_level=ConsistencyLevel.QUORUM, request_timeout=10)
cluster = Cluster(contact_points=[ip], port=port, execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                  connect_timeout=5, control_connection_timeout=5)
session = cluster.connect()
assert len(cluster.metadata.all_hosts()) == 3
session.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
session.execute("CREATE TABLE ks.t (k int PRIMARY KEY, v text)")
ins = session.prepare("INSERT INTO ks.t (k, v) VALUES (?, ?)")
expected = {}


def write(k, v, cl):
    ins.consistency_level = cl
    session.execute(ins, (k, v))
    expected[k] = v


# 1. One of three replicas slow (slower than the write timeout).
call("POST", "/nodes/2/slow", {"delay_ms": 4000})
for k in range(10):
    write(k, "quorum-%d" % k, ConsistencyLevel.QUORUM)
try:
    write(100, "all-100", ConsistencyLevel.ALL)
    raise AssertionError("ALL write with a slow replica succeeded")
except WriteTimeout as e:
    print("WriteTimeout", e.consistency, e.received_responses, e.required_responses, e.write_type)
    assert e.consistency == ConsistencyLevel.ALL, e.consistency
    assert (e.received_responses, e.required_responses) == (2, 3), e
for node in (0, 1):
    assert cells(node).get(key_hex(100), (None,))[0] == "all-100".encode().hex(), node
expected[100] = "all-100"  # the write landed on two replicas: readable at QUORUM
# Acks lost (the replica applies the write): still received 2 of 3.
call("POST", "/nodes/2/slow", {"drop_acks": True})
try:
    write(101, "all-101", ConsistencyLevel.ALL)
    raise AssertionError("ALL write with lost acks succeeded")
except WriteTimeout as e:
    assert (e.received_responses, e.required_responses) == (2, 3), e
expected[101] = "all-101"
call("POST", "/nodes/2/heal")

# 2. Two replicas down: QUORUM is Unavailable, ONE is accepted (and hinted).
call("POST", "/nodes/1/stop")
call("POST", "/nodes/2/stop")
wait_for("the driver to see two hosts down",
         lambda: sum(1 for h in cluster.metadata.all_hosts() if not h.is_up) == 2)
try:
    write(200, "quorum-200", ConsistencyLevel.QUORUM)
    raise AssertionError("QUORUM write with two replicas down succeeded")
except (Unavailable, NoHostAvailable) as err:
    # The default retry policy retries an Unavailable once on the next host; with
    # only one host up that ends as NoHostAvailable carrying the Unavailable.
    e = err if isinstance(err, Unavailable) else list(err.errors.values())[-1]
    assert isinstance(e, Unavailable), err
    print("Unavailable", e.consistency, e.required_replicas, e.alive_replicas)
    assert (e.required_replicas, e.alive_replicas) == (2, 1), e
for k in range(200, 210):
    write(k, "one-%d" % k, ConsistencyLevel.ONE)
assert call("GET", "/state")["hints_pending"] >= 20

# 3. Restart: hints delivered, all replicas equal; the driver reconnects.
call("POST", "/nodes/1/start")
call("POST", "/nodes/2/start")
wait_for("all replicas equal after hints",
         lambda: cells(0) == cells(1) == cells(2) and len(cells(0)) == len(expected))
wait_for("the driver to see all hosts up",
         lambda: all(h.is_up for h in cluster.metadata.all_hosts()))
assert call("GET", "/state")["hints_pending"] == 0

sel = session.prepare("SELECT v FROM ks.t WHERE k = ?")
sel.consistency_level = ConsistencyLevel.QUORUM


def check_all_readable():
    for k, v in expected.items():
        row = session.execute(sel, (k,)).one()
        assert row is not None and row.v == v, (k, v, row)


check_all_readable()

# 4. Add a fourth node: the driver learns of it, data streams, QUORUM reads work.
added = call("POST", "/nodes/add")
new_ip = added["address"].rsplit(":", 1)[0]
wait_for("the driver to discover the new node",
         lambda: any(h.endpoint.address == new_ip and h.is_up for h in cluster.metadata.all_hosts()))
assert len(cells(added["index"])) > 0, "nothing streamed to the new node"
check_all_readable()
for k in range(300, 320):
    write(k, "after-add-%d" % k, ConsistencyLevel.QUORUM)
check_all_readable()
rows = session.execute(SimpleStatement("SELECT k, v FROM ks.t", consistency_level=ConsistencyLevel.QUORUM))
assert {r.k: r.v for r in rows} == expected

# 5. Remove it again: the driver forgets it, everything still readable.
call("POST", "/nodes/%d/remove" % added["index"])
wait_for("the driver to drop the removed node",
         lambda: all(h.endpoint.address != new_ip for h in cluster.metadata.all_hosts()))
check_all_readable()
cluster.shutdown()
print("OK", len(expected), "keys")
