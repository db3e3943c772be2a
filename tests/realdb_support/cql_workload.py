"""The real Python cassandra-driver against a real Cassandra cluster: the writes
tidemark must decode, each printed with the outcome the driver saw.

    cql_workload.py write KEYSPACE PROTOCOL COMPRESSION HOSTS
        creates KEYSPACE (RF = number of hosts) and runs the workload; prints one JSON
        line per write: {"ns", "key", "op", "applied"}
    cql_workload.py bulk KEYSPACE COUNT HOSTS
        COUNT prepared INSERTs at QUORUM into KEYSPACE.bulk, concurrently
    cql_workload.py faults KEYSPACE NODE3_PID HOSTS
        node 3 paused and resumed under writes at ALL (see faults())
    cql_workload.py scan KEYSPACE.TABLE HOSTS
        every row at consistency ALL: {"ns", "row"}
    cql_workload.py read KEYSPACE HOSTS < keys.jsonl
        reads each {"ns", "key"} line at consistency ALL with SELECT JSON; prints
        {"ns", "key", "row"} (row null when absent)

The expected outcomes come from the driver alone (a result, or an LWT's [applied]
column), never from tidemark.
"""

import json
import sys
import uuid
from datetime import date, datetime, timezone
from datetime import time as dtime
from decimal import Decimal

from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import RoundRobinPolicy
from cassandra.query import BatchStatement, BatchType, SimpleStatement
from cassandra.util import Duration

QUORUM = ConsistencyLevel.QUORUM


class Addr:
    """A value of the UDT `addr` (the driver binds a UDT from attributes)."""

    def __init__(self, street, no):
        self.street = street
        self.no = no


def connect(hosts, protocol=4, compression=False):
    prof = ExecutionProfile(
        load_balancing_policy=RoundRobinPolicy(), request_timeout=30, consistency_level=QUORUM
    )
    cluster = Cluster(
        hosts,
        protocol_version=protocol,
        compression=compression,
        execution_profiles={EXEC_PROFILE_DEFAULT: prof},
    )
    return cluster, cluster.connect()


def emit(ns, key, op, applied=True):
    print(json.dumps({"ns": ns, "key": key, "op": op, "applied": applied}), flush=True)


def write(ks, protocol, compression, hosts):
    cluster, s = connect(hosts, protocol, compression)
    rf = len(hosts)
    s.execute(f"DROP KEYSPACE IF EXISTS {ks}")  # a cluster left from an earlier run
    s.execute(
        f"CREATE KEYSPACE {ks} WITH replication = "
        f"{{'class': 'SimpleStrategy', 'replication_factor': {rf}}}"
    )
    s.execute(
        f"CREATE TABLE {ks}.types (k int PRIMARY KEY, txt text, big bigint, d double, "
        "b boolean, u uuid, ts timestamp, bl blob, dec decimal, dt date, sm smallint)"
    )
    s.execute(f"CREATE TYPE {ks}.addr (street text, no int)")
    s.execute(
        f"CREATE TABLE {ks}.more (k int PRIMARY KEY, ti tinyint, f float, vi varint, ip inet, "
        "tm time, tu timeuuid, tp tuple<int, text>, ad frozen<addr>, du duration, "
        "fl frozen<list<int>>, a ascii, vc varchar)"
    )
    s.execute(f"CREATE TABLE {ks}.coll (k int PRIMARY KEY, l list<int>, s set<text>, m map<text, int>)")
    s.execute(f"CREATE TABLE {ks}.cnt (k int PRIMARY KEY, n counter)")
    s.execute(f"CREATE TABLE {ks}.lwt (k int PRIMARY KEY, v text)")
    s.execute(f"CREATE TABLE {ks}.opts (k int PRIMARY KEY, v text)")
    ns = lambda t: f"{ks}.{t}"

    ins = s.prepare(
        f"INSERT INTO {ks}.types (k, txt, big, d, b, u, ts, bl, dec, dt, sm) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    for k in range(40):
        s.execute(
            ins,
            (
                k,
                f"text-{k}",
                k * 1_000_000_007,
                k + 0.5,
                k % 2 == 0,
                uuid.UUID(int=k + 1),
                datetime(2026, 1, 1, 0, 0, k % 60, tzinfo=timezone.utc),
                bytes([k, 255 - k]),
                Decimal(f"{k}.25"),
                date(2026, 1, 1 + k % 28),
                k - 20,
            ),
        )
        emit(ns("types"), {"k": k}, "insert")
    more = s.prepare(
        f"INSERT INTO {ks}.more (k, ti, f, vi, ip, tm, tu, tp, ad, du, fl, a, vc) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    for k in range(10):
        s.execute(
            more,
            (
                k,
                k - 5,
                k + 0.25,
                k * 1000 - 3,  # within 64 bits: tidemark renders larger varints inexactly
                f"127.0.0.{k + 1}" if k % 2 else f"::{k + 1}",
                dtime(12, 30, k),
                uuid.UUID(f"d2177dd0-eaa2-11de-a572-001b779c76e{k}"),
                (k, f"t{k}"),
                Addr(f"street-{k}", k),
                Duration(1, 2, 3_000_000_000 + k),
                [k, k + 1],
                f"ascii-{k}",
                f"varchar-{k}",
            ),
        )
        emit(ns("more"), {"k": k}, "insert")
    upd = s.prepare(f"UPDATE {ks}.types SET txt = ?, big = ? WHERE k = ?")
    for k in range(0, 40, 4):
        s.execute(upd, (f"updated-{k}", -k, k))
        emit(ns("types"), {"k": k}, "update")
    dele = s.prepare(f"DELETE FROM {ks}.types WHERE k = ?")
    for k in range(1, 40, 10):
        s.execute(dele, (k,))
        emit(ns("types"), {"k": k}, "delete")

    batch = BatchStatement(batch_type=BatchType.LOGGED, consistency_level=QUORUM)
    for k in (100, 101, 102):
        batch.add(ins, (k, f"batch-{k}", k, 0.0, True, uuid.UUID(int=k), None, b"", Decimal(0), None, 0))
    s.execute(batch)
    for k in (100, 101, 102):
        emit(ns("types"), {"k": k}, "insert")

    lwt = s.prepare(f"INSERT INTO {ks}.lwt (k, v) VALUES (?, ?) IF NOT EXISTS")
    first = s.execute(lwt, (1, "first")).one()
    emit(ns("lwt"), {"k": 1}, "insert", bool(first[0]))
    second = s.execute(lwt, (1, "second")).one()
    emit(ns("lwt"), {"k": 1}, "insert", bool(second[0]))

    inc = s.prepare(f"UPDATE {ks}.cnt SET n = n + ? WHERE k = ?")
    s.execute(inc, (5, 1))
    emit(ns("cnt"), {"k": 1}, "update")

    col = s.prepare(f"INSERT INTO {ks}.coll (k, l, s, m) VALUES (?, ?, ?, ?)")
    s.execute(col, (1, [3, 1, 2], {"a", "b"}, {"x": 1, "y": 2}))
    emit(ns("coll"), {"k": 1}, "insert")
    add = s.prepare(f"UPDATE {ks}.coll SET l = l + ?, m[?] = ? WHERE k = ?")
    s.execute(add, ([4], "z", 3, 2))
    emit(ns("coll"), {"k": 2}, "update")

    ttl = s.prepare(f"INSERT INTO {ks}.opts (k, v) VALUES (?, ?) USING TTL 86400")
    s.execute(ttl, (1, "with-ttl"))
    emit(ns("opts"), {"k": 1}, "insert")
    stamp = s.prepare(f"INSERT INTO {ks}.opts (k, v) VALUES (?, ?) USING TIMESTAMP ?")
    s.execute(stamp, (2, "with-timestamp", 1_700_000_000_000_000))
    emit(ns("opts"), {"k": 2}, "insert")
    cluster.shutdown()


def bulk(ks, count, hosts):
    """`count` prepared INSERTs at QUORUM, 64 in flight; one line per write with
    the driver's outcome (applied, or the error's class name)."""
    from cassandra.concurrent import execute_concurrent_with_args

    cluster, s = connect(hosts)
    s.execute(f"DROP KEYSPACE IF EXISTS {ks}")  # a cluster left from an earlier run
    s.execute(
        f"CREATE KEYSPACE {ks} WITH replication = "
        f"{{'class': 'SimpleStrategy', 'replication_factor': {len(hosts)}}}"
    )
    s.execute(f"CREATE TABLE {ks}.bulk (k int PRIMARY KEY, v text)")
    ins = s.prepare(f"INSERT INTO {ks}.bulk (k, v) VALUES (?, ?)")
    args = [(k, f"v{k}") for k in range(count)]
    results = execute_concurrent_with_args(s, ins, args, concurrency=64, raise_on_first_error=False)
    for (k, _), (ok, res) in zip(args, results):
        print(
            json.dumps({"ns": f"{ks}.bulk", "key": {"k": k}, "op": "insert", "applied": ok,
                        "error": None if ok else type(res).__name__}),
            flush=True,
        )
    cluster.shutdown()


def scan(ns, hosts):
    """Every row of table `ns` at consistency ALL."""
    cluster, s = connect(hosts)
    stmt = SimpleStatement(f"SELECT JSON * FROM {ns}", consistency_level=ConsistencyLevel.ALL, fetch_size=5000)
    for row in s.execute(stmt):
        print(json.dumps({"ns": ns, "row": json.loads(row[0])}))
    cluster.shutdown()


def error_detail(e):
    """What the driver was told about a failed write, by the server's own fields."""
    from cassandra import Unavailable, WriteTimeout

    if isinstance(e, Unavailable):
        return {"error": "Unavailable", "required": e.required_replicas, "alive": e.alive_replicas}
    if isinstance(e, WriteTimeout):
        return {
            "error": "WriteTimeout",
            "received": e.received_responses,
            "blockfor": e.required_responses,
            "write_type": e.write_type,
        }
    return {"error": type(e).__name__, "message": str(e)}


def faults(ks, pid3, hosts):
    """Node 3 of a 3-node RF 3 cluster paused with SIGSTOP: writes at ALL through node 1
    (no driver retries) first time out (node 3 still counted alive), then are refused
    as Unavailable once node 1's failure detector marks it down; after SIGCONT writes
    succeed again. Then each write's key is read at ONE from each node alone."""
    import os
    import signal
    import time

    from cassandra.policies import FallthroughRetryPolicy, WhiteListRoundRobinPolicy

    node1 = ExecutionProfile(
        load_balancing_policy=WhiteListRoundRobinPolicy([hosts[0]]),
        retry_policy=FallthroughRetryPolicy(),
        consistency_level=ConsistencyLevel.ALL,
        request_timeout=30,
    )
    cluster = Cluster(hosts, execution_profiles={EXEC_PROFILE_DEFAULT: node1}, protocol_version=4)
    s = cluster.connect()
    s.execute(f"DROP KEYSPACE IF EXISTS {ks}")  # a cluster left from an earlier run
    s.execute(
        f"CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 3}}"
    )
    # No speculative retry: a read at ONE asks the pinned node alone.
    s.execute(f"CREATE TABLE {ks}.probe (k int PRIMARY KEY, v text) WITH speculative_retry = 'NONE'")
    ins = s.prepare(f"INSERT INTO {ks}.probe (k, v) VALUES (?, ?)")
    k = 0

    def probe():
        nonlocal k
        k += 1
        try:
            s.execute(ins, (k, f"p{k}"))
            out = {"applied": True}
        except Exception as e:  # noqa: BLE001 - every failure is reported as the driver saw it
            out = {"applied": False, **error_detail(e)}
        print(json.dumps({"ns": f"{ks}.probe", "key": {"k": k}, "op": "insert", **out}), flush=True)
        return out

    probe()  # all three up
    os.kill(pid3, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 90
        seen_unavailable = False
        while time.monotonic() < deadline:
            if probe().get("error") == "Unavailable":
                seen_unavailable = True
                break
        probe()  # a second Unavailable while it is down
    finally:
        os.kill(pid3, signal.SIGCONT)
    if not seen_unavailable:
        sys.exit("node 3 never marked down")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if probe()["applied"]:
            break
        time.sleep(1)
    cluster.shutdown()
    # What each node holds, asked alone at ONE.
    for h in hosts:
        pinned = ExecutionProfile(
            load_balancing_policy=WhiteListRoundRobinPolicy([h]), consistency_level=ConsistencyLevel.ONE
        )
        c = Cluster([h], execution_profiles={EXEC_PROFILE_DEFAULT: pinned}, protocol_version=4)
        cs = c.connect()
        rows = cs.execute(f"SELECT k FROM {ks}.probe")
        print(json.dumps({"node": h, "keys": sorted(r.k for r in rows)}), flush=True)
        c.shutdown()


def read(ks, hosts):
    cluster, s = connect(hosts)
    for line in sys.stdin:
        want = json.loads(line)
        ns, key = want["ns"], want["key"]
        where = " AND ".join(f"{c} = %s" for c in key)
        stmt = SimpleStatement(
            f"SELECT JSON * FROM {ns} WHERE {where}", consistency_level=ConsistencyLevel.ALL
        )
        row = s.execute(stmt, tuple(key.values())).one()
        print(json.dumps({"ns": ns, "key": key, "row": json.loads(row[0]) if row else None}), flush=True)
    cluster.shutdown()


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "write":
        write(sys.argv[2], int(sys.argv[3]), sys.argv[4] if sys.argv[4] != "none" else False, sys.argv[5].split(","))
    elif mode == "bulk":
        bulk(sys.argv[2], int(sys.argv[3]), sys.argv[4].split(","))
    elif mode == "faults":
        faults(sys.argv[2], int(sys.argv[3]), sys.argv[4].split(","))
    elif mode == "scan":
        scan(sys.argv[2], sys.argv[3].split(","))
    elif mode == "read":
        read(sys.argv[2], sys.argv[3].split(","))
    else:
        sys.exit(f"unknown mode {mode}")
