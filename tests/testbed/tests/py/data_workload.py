"""Real cassandra-driver against a 3-node testbed: every statement kind the testbed
supports, at several consistency levels, read back exactly.

Usage: data_workload.py <contact ip> <port> <protocol version or 0> [compression]
       data_workload.py <contact ip> <port> <protocol> auth <user> <password>

Prints "READ_KV <json>" and "READ_COUNTERS <json>" (what the driver read, for the
Rust side to compare with the testbed's ground truth) and "OK" at the end.
"""
import json
import sys
import time
import uuid

from cassandra import ConsistencyLevel as CL
from cassandra import AuthenticationFailed
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
from cassandra.policies import RoundRobinPolicy, TokenAwarePolicy
from cassandra.query import BatchStatement, BatchType, SimpleStatement
from cassandra.util import uuid_from_time

ip, port, proto = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
mode = sys.argv[4] if len(sys.argv) > 4 else ""


def connect(auth=None, compression=True):
    profile = ExecutionProfile(load_balancing_policy=TokenAwarePolicy(RoundRobinPolicy()),
                               consistency_level=CL.QUORUM, request_timeout=15)
    kw = dict(contact_points=[ip], port=port, execution_profiles={EXEC_PROFILE_DEFAULT: profile},
              connect_timeout=5, control_connection_timeout=5, compression=compression)
    if proto:
        kw["protocol_version"] = proto
    if auth:
        kw["auth_provider"] = PlainTextAuthProvider(username=auth[0], password=auth[1])
    c = Cluster(**kw)
    return c, c.connect()


def st(q, cl=None, **kw):
    s = SimpleStatement(q, **kw)
    if cl is not None:
        s.consistency_level = cl
    return s


if mode == "auth":
    user, password = sys.argv[5], sys.argv[6]
    cluster, session = connect((user, password))
    assert session.execute("SELECT release_version FROM system.local").one()[0]
    cluster.shutdown()
    try:
        bad_cluster, _ = connect((user, password + "-wrong"))
        bad_cluster.shutdown()
        raise AssertionError("wrong password accepted")
    except NoHostAvailable as e:
        errs = list(e.errors.values())
        assert errs and all(isinstance(x, AuthenticationFailed) for x in errs), errs
        assert password not in str(e), "password echoed in the error"
    try:
        nocred, _ = connect(None)
        nocred.shutdown()
        raise AssertionError("connection without credentials accepted")
    except NoHostAvailable:
        pass
    print("OK")
    sys.exit(0)

compression = mode if mode in ("lz4", "snappy") else True
cluster, session = connect(compression=compression)
hosts = sorted(h.endpoint.address for h in cluster.metadata.all_hosts())
print("hosts", hosts, "protocol", cluster.protocol_version)
assert len(hosts) == 3, hosts

# --- schema -----------------------------------------------------------------
session.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
session.execute("USE ks")
session.execute("CREATE TYPE address (street text, zip int)")
session.execute("CREATE TABLE kv (k int, c int, v text, n bigint, PRIMARY KEY (k, c))")
session.execute("CREATE TABLE coll (k int PRIMARY KEY, l list<int>, s set<text>, m map<text, int>, fl frozen<list<int>>)")
session.execute("CREATE TABLE cnt (k text PRIMARY KEY, hits counter, misses counter)")
session.execute("CREATE TABLE users (id uuid PRIMARY KEY, name text, addr frozen<address>, tags frozen<set<text>>)")
session.execute("CREATE TABLE ev (k int, t timeuuid, v text, PRIMARY KEY (k, t))")
session.execute("CREATE TABLE rng (k int, c int, v text, PRIMARY KEY (k, c)) WITH CLUSTERING ORDER BY (c DESC)")
session.execute("CREATE TABLE big (k int, c int, v text, PRIMARY KEY (k, c))")
session.execute("CREATE TABLE people (id int PRIMARY KEY, home address)")
session.execute("CREATE TABLE st (k int, c int, s text STATIC, v text, PRIMARY KEY (k, c))")
session.execute("CREATE TABLE typed (k int PRIMARY KEY, a ascii, b blob, bo boolean, d double, f float, i inet, "
                "si smallint, ti tinyint, ts timestamp, u uuid, vi varint, dt date, tm time)")
meta = cluster.metadata.keyspaces["ks"]
assert set(meta.tables) >= {"kv", "coll", "cnt", "users", "ev", "rng", "big", "typed"}, meta.tables.keys()
assert "address" in meta.user_types, meta.user_types
assert meta.user_types["address"].field_names == ["street", "zip"]
assert meta.tables["coll"].columns["m"].cql_type == "map<text, int>"
# Token-aware routing: the driver's token map gives every key all 3 replicas.
assert len(cluster.metadata.get_replicas("ks", b"\x00\x00\x00\x01")) == 3

# --- INSERT / UPDATE / DELETE at several consistency levels ------------------
ins = session.prepare("INSERT INTO kv (k, c, v, n) VALUES (?, ?, ?, ?)")
levels = [CL.ONE, CL.TWO, CL.THREE, CL.QUORUM, CL.ALL, CL.LOCAL_QUORUM, CL.LOCAL_ONE, CL.ANY, CL.EACH_QUORUM]
expected = {}
for k in range(12):
    for c in (-2, 0, 3):
        ins.consistency_level = levels[(k + c) % len(levels)]
        session.execute(ins, (k, c, f"v{k}:{c}", k * 1000 + c))
        expected[(k, c)] = f"v{k}:{c}"
sel = session.prepare("SELECT c, v, n FROM kv WHERE k = ?")
for k in range(12):
    for cl in (CL.ONE, CL.QUORUM, CL.ALL, CL.LOCAL_QUORUM):
        sel.consistency_level = cl
        rows = [tuple(r) for r in session.execute(sel, (k,))]
        assert rows == [(c, f"v{k}:{c}", k * 1000 + c) for c in (-2, 0, 3)], rows
# Client timestamps: an older write loses; a newer one wins; WRITETIME shows it.
session.execute(st("UPDATE kv USING TIMESTAMP 5 SET v = 'old' WHERE k = 0 AND c = 0", CL.ALL))
assert session.execute("SELECT v FROM kv WHERE k = 0 AND c = 0").one()[0] == "v0:0"
future = int(time.time() * 1e6) + 60_000_000
session.execute(st(f"UPDATE kv USING TIMESTAMP {future} SET v = 'new' WHERE k = 0 AND c = 0", CL.QUORUM))
expected[(0, 0)] = "new"
r = session.execute("SELECT v, WRITETIME(v), TTL(v) FROM kv WHERE k = 0 AND c = 0").one()
assert tuple(r) == ("new", future, None), r
# TTL
session.execute("UPDATE kv USING TTL 500 SET v = 'ttl' WHERE k = 1 AND c = 0")
expected[(1, 0)] = "ttl"
t = session.execute("SELECT TTL(v) FROM kv WHERE k = 1 AND c = 0").one()[0]
assert 490 <= t <= 500, t
session.execute("INSERT INTO kv (k, c, v) VALUES (1, 99, 'short') USING TTL 1")
deadline = time.time() + 20
while session.execute("SELECT v FROM kv WHERE k = 1 AND c = 99").one() is not None:
    assert time.time() < deadline, "TTL 1 cell still visible after 20 s"
    time.sleep(0.2)
# Deletes: cell, row, IN, partition
session.execute(st("DELETE n FROM kv WHERE k = 2 AND c = 3", CL.ALL))
assert session.execute("SELECT n FROM kv WHERE k = 2 AND c = 3").one()[0] is None
session.execute(st("DELETE FROM kv WHERE k = 3 AND c = -2", CL.ONE))
del expected[(3, -2)]
session.execute(session.prepare("DELETE FROM kv WHERE k IN ? AND c = 0"), ([4, 5],))
del expected[(4, 0)], expected[(5, 0)]
session.execute("DELETE FROM kv WHERE k = 6")
for c in (-2, 0, 3):
    del expected[(6, c)]
assert list(session.execute("SELECT * FROM kv WHERE k = 6")) == []
# SELECT with IN on the partition key and on the clustering column
rows = sorted((r.k, r.c) for r in session.execute("SELECT k, c FROM kv WHERE k IN (7, 8) AND c IN (0, 3)"))
assert rows == [(7, 0), (7, 3), (8, 0), (8, 3)], rows
# Full scan by token ranges (what drivers and Spark do) adds up to the whole table
lo, edges = -(2 ** 63), [-(2 ** 63), -(2 ** 62), 0, 2 ** 62, 2 ** 63 - 1]
by_range = session.prepare("SELECT k, c FROM kv WHERE token(k) > ? AND token(k) <= ?")
scanned = []
for a, b in zip(edges, edges[1:]):
    scanned += [(r.k, r.c) for r in session.execute(by_range, (a, b))]
assert sorted(scanned) == sorted(expected), (sorted(scanned), sorted(expected))

# token() as a selector agrees with the driver's own Murmur3 token of the key.
import struct
from cassandra.metadata import Murmur3Token
for r in session.execute("SELECT k, token(k) FROM kv"):
    assert r[1] == Murmur3Token.from_key(struct.pack(">i", r[0])).value, tuple(r)
# ORDER BY (reversed clustering), with IN merged across partitions; DISTINCT; JSON.
assert [r.c for r in session.execute("SELECT c FROM kv WHERE k = 7 ORDER BY c DESC")] == [3, 0, -2]
assert [r.c for r in session.execute("SELECT c FROM kv WHERE k IN (7, 8) ORDER BY c DESC")] == [3, 3, 0, 0, -2, -2]
assert sorted(r.k for r in session.execute("SELECT DISTINCT k FROM kv")) == sorted({k for k, _ in expected})
got = sorted((r.k, r.c) for r in session.execute("SELECT k, c FROM kv WHERE k IN (7, 8) PER PARTITION LIMIT 1"))
assert got == [(7, -2), (8, -2)], got
doc = json.loads(session.execute("SELECT JSON k, c, v FROM kv WHERE k = 7 AND c = 0").one()[0])
assert doc == {"k": 7, "c": 0, "v": "v7:0"}, doc

# --- typed values through prepared statements ----------------------------------
import datetime
import decimal
import ipaddress
from cassandra.util import Date, Time
typed = session.prepare("INSERT INTO typed (k, a, b, bo, d, f, i, si, ti, ts, u, vi, dt, tm) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
u1 = uuid.uuid4()
when = datetime.datetime(2024, 5, 6, 7, 8, 9, 123000)
vals = (1, "asc", b"\x00\xff", True, -1.5, 2.5, "10.1.2.3", -7, 5, when, u1, 123456789012345678901234567890,
        Date(datetime.date(2020, 2, 29)), Time(3723000000123))
session.execute(typed, vals)
got = tuple(session.execute("SELECT k, a, b, bo, d, f, i, si, ti, ts, u, vi, dt, tm FROM typed WHERE k = 1").one())
assert got == vals, (got, vals)

# --- collections ---------------------------------------------------------------
session.execute("INSERT INTO coll (k, l, s, m, fl) VALUES (1, [1, 2], {'a', 'b'}, {'x': 1}, [7, 8])")
session.execute("UPDATE coll SET l = l + [3], s = s + {'c'}, m['y'] = 2 WHERE k = 1")
session.execute("UPDATE coll SET l = [0] + l WHERE k = 1")
session.execute("UPDATE coll SET s = s - {'a'}, m = m - {'x'} WHERE k = 1")
session.execute("UPDATE coll SET l[1] = 10 WHERE k = 1")
session.execute("DELETE l[0] FROM coll WHERE k = 1")
session.execute(session.prepare("UPDATE coll SET l = l - ?, m[?] = ? WHERE k = ?"), ([2], "z", 26, 1))
r = session.execute("SELECT l, s, m, fl FROM coll WHERE k = 1").one()
assert list(r.l) == [10, 3], r.l
assert set(r.s) == {"b", "c"}, r.s
assert dict(r.m) == {"y": 2, "z": 26}, r.m
assert list(r.fl) == [7, 8], r.fl
up = session.prepare("UPDATE coll SET s = ?, fl = ? WHERE k = ?")
session.execute(up, ({"p", "q"}, [9], 2))
r = session.execute("SELECT s, fl, l FROM coll WHERE k = 2").one()
assert set(r.s) == {"p", "q"} and list(r.fl) == [9] and r.l is None, r
assert [r.k for r in session.execute("SELECT k FROM coll WHERE s CONTAINS 'c' ALLOW FILTERING")] == [1]
assert [r.k for r in session.execute(session.prepare("SELECT k FROM coll WHERE m CONTAINS KEY ? ALLOW FILTERING"), ("z",))] == [1]
assert [r.k for r in session.execute("SELECT k FROM coll WHERE l CONTAINS 10 ALLOW FILTERING")] == [1]
session.execute("DELETE m FROM coll WHERE k = 1")
assert session.execute("SELECT m FROM coll WHERE k = 1").one().m is None
session.execute("INSERT INTO coll JSON '{\"k\": 3, \"l\": [5, 6], \"m\": {\"j\": 1}}'")
r = session.execute("SELECT l, m, s FROM coll WHERE k = 3").one()
assert list(r.l) == [5, 6] and dict(r.m) == {"j": 1} and r.s is None, r

# --- UDTs ----------------------------------------------------------------------
uid = uuid.uuid4()
session.execute(session.prepare("INSERT INTO users (id, name, addr, tags) VALUES (?, ?, ?, ?)"),
                (uid, "ann", ("Main St", 12345), {"x", "y"}))
session.execute("INSERT INTO users (id, name, addr) VALUES (%s, 'bob', {street: 'Side', zip: 7})" % uuid.UUID(int=1))
r = session.execute("SELECT name, addr, tags FROM users WHERE id = %s", (uid,)).one()
assert r.name == "ann" and r.addr.street == "Main St" and r.addr.zip == 12345 and set(r.tags) == {"x", "y"}, r
r = session.execute("SELECT addr FROM users WHERE id = %s" % uuid.UUID(int=1)).one()
assert (r.addr.street, r.addr.zip) == ("Side", 7), r

# Non-frozen UDT: whole value, then single fields set and deleted.
session.execute(session.prepare("INSERT INTO people (id, home) VALUES (?, ?)"), (1, ("Elm", 1)))
session.execute("UPDATE people SET home.zip = 99 WHERE id = 1")
session.execute(session.prepare("UPDATE people SET home.street = ? WHERE id = ?"), ("Oak", 1))
r = session.execute("SELECT home FROM people WHERE id = 1").one()
assert (r.home.street, r.home.zip) == ("Oak", 99), r
session.execute("DELETE home.street FROM people WHERE id = 1")
r = session.execute("SELECT home FROM people WHERE id = 1").one()
assert (r.home.street, r.home.zip) == (None, 99), r

# --- clustering order: timeuuid by time, DESC with a range deletion ---------------
base = 1_700_000_000
times = [base + 1000 * i for i in range(6)]  # time_low wraps: byte order != time order
evi = session.prepare("INSERT INTO ev (k, t, v) VALUES (1, ?, ?)")
for i, t in enumerate(reversed(times)):
    session.execute(evi, (uuid_from_time(t), f"e{len(times) - 1 - i}"))
got = [r.v for r in session.execute("SELECT v FROM ev WHERE k = 1")]
assert got == [f"e{i}" for i in range(6)], got
for c in range(10):
    session.execute("INSERT INTO rng (k, c, v) VALUES (1, %s, 'x')", (c,))
session.execute("DELETE FROM rng WHERE k = 1 AND c > 2 AND c <= 5")
got = [r.c for r in session.execute("SELECT c FROM rng WHERE k = 1")]
assert got == [9, 8, 7, 6, 2, 1, 0], got
got = [r.c for r in session.execute("SELECT c FROM rng WHERE k = 1 AND c >= 1 AND c < 8")]
assert got == [7, 6, 2, 1], got

# --- static columns: one value per partition ---------------------------------------
session.execute("INSERT INTO st (k, c, s, v) VALUES (1, 1, 'a', 'x')")
session.execute("INSERT INTO st (k, c, s, v) VALUES (1, 2, 'b', 'y')")
assert [tuple(r) for r in session.execute("SELECT c, s, v FROM st WHERE k = 1")] == [(1, "b", "x"), (2, "b", "y")]
session.execute("UPDATE st SET s = 'alone' WHERE k = 2")
assert [tuple(r) for r in session.execute("SELECT k, c, s, v FROM st WHERE k = 2")] == [(2, None, "alone", None)]
session.execute("DELETE FROM st WHERE k = 1 AND c = 1")
assert [tuple(r) for r in session.execute("SELECT c, s FROM st WHERE k = 1")] == [(2, "b")]

# --- counters and batches --------------------------------------------------------
inc = session.prepare("UPDATE cnt SET hits = hits + ? WHERE k = ?")
for i in range(10):
    inc.consistency_level = levels[i % 5]
    session.execute(inc, (i, "a"))
session.execute("UPDATE cnt SET hits = hits - 5, misses = misses + 2 WHERE k = 'a'")
cb = BatchStatement(batch_type=BatchType.COUNTER)
cb.add(inc, (100, "b"))
cb.add(SimpleStatement("UPDATE cnt SET misses = misses + 1 WHERE k = 'b'"))
cb.add(inc, (1, "a"))
session.execute(cb)
counters = {r.k: (r.hits, r.misses) for r in session.execute("SELECT k, hits, misses FROM cnt")}
assert counters == {"a": (41, 2), "b": (100, 1)}, counters
try:
    session.execute("UPDATE cnt SET hits = 3 WHERE k = 'a'")
    raise AssertionError("setting a counter accepted")
except Exception as e:  # InvalidRequest
    assert "counter" in str(e), e

logged = BatchStatement(batch_type=BatchType.LOGGED, consistency_level=CL.ALL)
logged.add(ins, (20, 1, "b1", 1))
logged.add(SimpleStatement("INSERT INTO kv (k, c, v) VALUES (%s, %s, %s)"), (21, 1, "b2"))
logged.add(session.prepare("UPDATE kv SET v = ? WHERE k = ? AND c = ?"), ("b3", 20, 2))
session.execute(logged)
unlogged = BatchStatement(batch_type=BatchType.UNLOGGED, consistency_level=CL.ONE)
unlogged.add(ins, (22, 1, "u1", 2))
unlogged.add(SimpleStatement("DELETE FROM kv WHERE k = 21 AND c = 1"))
session.execute(unlogged)
session.execute("BEGIN BATCH INSERT INTO kv (k, c, v) VALUES (23, 1, 't1'); "
                "UPDATE kv SET v = 't2' WHERE k = 23 AND c = 2; APPLY BATCH")
expected.update({(20, 1): "b1", (20, 2): "b3", (22, 1): "u1", (23, 1): "t1", (23, 2): "t2"})
wts = {r[0] for r in session.execute("SELECT WRITETIME(v) FROM kv WHERE k = 20")}
assert len(wts) == 1, wts  # one timestamp for the whole batch
try:
    bad = BatchStatement(batch_type=BatchType.LOGGED)
    bad.add(inc, (1, "a"))
    session.execute(bad)
    raise AssertionError("counter in a logged batch accepted")
except Exception as e:
    assert "counter" in str(e).lower(), e

# --- LWT ---------------------------------------------------------------------------
lwt = session.prepare("INSERT INTO kv (k, c, v) VALUES (?, ?, ?) IF NOT EXISTS")
rs = session.execute(lwt, (30, 1, "first"))
assert rs.was_applied, rs.one()
rs = session.execute(lwt, (30, 1, "second"))
assert not rs.was_applied
row = rs.one()
assert row.v == "first" and row.k == 30 and row.c == 1, row
s = SimpleStatement("UPDATE kv SET v = 'third' WHERE k = 30 AND c = 1 IF v = 'first'",
                    serial_consistency_level=CL.LOCAL_SERIAL)
assert session.execute(s).was_applied
rs = session.execute("UPDATE kv SET v = 'nope' WHERE k = 30 AND c = 1 IF v = 'first'")
assert not rs.was_applied and rs.one().v == "third", rs.one()
rs = session.execute("UPDATE kv SET v = 'x' WHERE k = 31 AND c = 1 IF EXISTS")
assert not rs.was_applied
rs = session.execute("DELETE FROM kv WHERE k = 30 AND c = 1 IF EXISTS")
assert rs.was_applied
rs = session.execute(lwt, (30, 1, "again"))
assert rs.was_applied
expected[(30, 1)] = "again"
rs = session.execute("UPDATE kv SET n = 5 WHERE k = 30 AND c = 1 IF v IN ('zzz', 'again') AND n = null")
assert rs.was_applied

# Conditional batch: one partition, all conditions checked, all or nothing.
cbatch = BatchStatement(batch_type=BatchType.LOGGED)
cbatch.add(SimpleStatement("INSERT INTO kv (k, c, v) VALUES (40, 1, 'p') IF NOT EXISTS"))
cbatch.add(SimpleStatement("INSERT INTO kv (k, c, v) VALUES (40, 2, 'q')"))
assert session.execute(cbatch).was_applied
rs = session.execute(cbatch)
assert not rs.was_applied and (rs.one().k, rs.one().c, rs.one().v) == (40, 1, "p"), rs.one()
cbatch = BatchStatement(batch_type=BatchType.UNLOGGED)
cbatch.add(SimpleStatement("UPDATE kv SET v = 'p2' WHERE k = 40 AND c = 1 IF v = 'nope'"))
cbatch.add(SimpleStatement("UPDATE kv SET v = 'q2' WHERE k = 40 AND c = 2"))
rs = session.execute(cbatch)
assert not rs.was_applied and rs.one().v == "p", rs.one()
assert session.execute("SELECT v FROM kv WHERE k = 40 AND c = 2").one().v == "q"
cbatch = BatchStatement()
cbatch.add(SimpleStatement("UPDATE kv SET v = 'p2' WHERE k = 40 AND c = 1 IF v = 'p'"))
cbatch.add(SimpleStatement("DELETE FROM kv WHERE k = 40 AND c = 2"))
assert session.execute(cbatch).was_applied
expected[(40, 1)] = "p2"
try:
    cbatch = BatchStatement()
    cbatch.add(SimpleStatement("UPDATE kv SET v = 'x' WHERE k = 41 AND c = 1 IF EXISTS"))
    cbatch.add(SimpleStatement("UPDATE kv SET v = 'y' WHERE k = 42 AND c = 1"))
    session.execute(cbatch)
    raise AssertionError("conditional batch over two partitions accepted")
except Exception as e:
    assert "partition" in str(e), e
# A SERIAL read sees the committed LWT state.
r = session.execute(st("SELECT v FROM kv WHERE k = 40 AND c = 1", CL.SERIAL)).one()
assert r.v == "p2", r

# --- paging through a large partition ------------------------------------------------
bi = session.prepare("INSERT INTO big (k, c, v) VALUES (1, ?, ?)")
for c in range(1000):
    session.execute(bi, (c, f"r{c}"))
rs = session.execute(SimpleStatement("SELECT c, v FROM big WHERE k = 1", fetch_size=37))
assert rs.has_more_pages and rs.paging_state is not None
assert len(rs.current_rows) == 37
got = [r.c for r in rs]
assert got == list(range(1000)), (len(got), got[:5])
bs = session.prepare("SELECT c FROM big WHERE k = ?")
bound = bs.bind((1,))
bound.fetch_size = 100
pages, got = 0, []
rs = session.execute(bound)
while True:
    got += [r.c for r in rs.current_rows]
    pages += 1
    if not rs.has_more_pages:
        break
    if pages == 1:
        # Between pages: delete two returned rows and add one before the position.
        # The paging state holds the last row's key, so nothing shifts.
        session.execute("DELETE FROM big WHERE k = 1 AND c IN (50, 60)")
        session.execute("INSERT INTO big (k, c, v) VALUES (1, -1, 'early')")
    rs = session.execute(bound, paging_state=rs.paging_state)
assert got == list(range(1000)) and pages == 10, (pages, len(got))

# --- TRUNCATE, ALTER ---------------------------------------------------------------------
session.execute("TRUNCATE big")
assert list(session.execute("SELECT c FROM big WHERE k = 1")) == []
session.execute("ALTER TABLE kv ADD extra text")
assert "extra" in cluster.metadata.keyspaces["ks"].tables["kv"].columns
session.execute("UPDATE kv SET extra = 'e' WHERE k = 7 AND c = 0")
assert session.execute("SELECT extra FROM kv WHERE k = 7 AND c = 0").one()[0] == "e"
session.execute("ALTER TABLE kv DROP extra")
session.execute("ALTER TABLE kv WITH default_time_to_live = 0")
session.execute("ALTER KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")

# --- what the driver reads, for the ground-truth comparison ---------------------------------
full = sorted((r.k, r.c, r.v, r.wt) for r in session.execute(
    st("SELECT k, c, v, WRITETIME(v) AS wt FROM kv", CL.ALL, fetch_size=10)))
assert sorted((k, c) for k, c, _, _ in full) == sorted(expected), "scan differs from expected keys"
assert {(k, c): v for k, c, v, _ in full} == expected
print("READ_KV " + json.dumps(full))
print("READ_COUNTERS " + json.dumps(counters))
coll = {}
for r in session.execute(st("SELECT k, l, s, m FROM coll", CL.ALL)):
    coll[r.k] = {"l": sorted(r.l or []), "s": sorted(r.s or []), "m": dict(r.m or {})}
print("READ_COLL " + json.dumps(coll))
cluster.shutdown()
print("OK")
