#!/usr/bin/env python3
"""Drive the real Python cassandra-driver against cql_responder.py and write the ground
truth of every write it sent (NAME.truth.json, without messages_by_opcode, which
cql_finalize.py adds from the responder's frame log).

Profiles: `full` (every CQL type, simple and prepared writes, batches, LWT, counters,
collection updates, deletes, TTL/USING TIMESTAMP, several consistency levels, a
WriteTimeout and an Unavailable) and `auth` (PasswordAuthenticator login, a few writes).
"""
import argparse
import collections
import datetime
import decimal
import json
import os
import sys
import uuid

import cassandra
from cassandra import ConsistencyLevel as CL
from cassandra import Unavailable, WriteTimeout
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import UNSET_VALUE, BatchStatement, BatchType, SimpleStatement, bind_params
from cassandra.timestamps import MonotonicTimestampGenerator
from cassandra.util import Duration, SortedSet, Time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cql_schema  # noqa: E402

KS = cql_schema.KEYSPACE
Address = collections.namedtuple("Address", ["street", "city", "zip"])
CL_NAME = {v: k for k, v in CL.name_to_value.items()}


# ---------------------------------------------------------------- rendering

class Raw(str):
    """A JSON number written verbatim (decimal, varint beyond double precision)."""


def render(ctype, v):
    """A Python value of CQL type `ctype` as Cassandra's SELECT JSON renders it."""
    if v is None:
        return None
    head, args = cql_schema.split_type(ctype)
    if head == "frozen":
        return render(args[0], v)
    if head in cql_schema.TYPES:
        fields = cql_schema.TYPES[head]
        return {f: render(t, getattr(v, f)) for f, t in fields}
    if head in ("ascii", "text", "varchar", "inet"):
        return str(v)
    if head in ("int", "bigint", "smallint", "tinyint", "counter", "varint"):
        return int(v)
    if head == "decimal":
        return Raw(str(v))
    if head in ("double", "float"):
        return float(v)
    if head == "boolean":
        return bool(v)
    if head == "blob":
        return "0x" + bytes(v).hex()
    if head in ("uuid", "timeuuid"):
        return str(v)
    if head == "date":
        return v.isoformat() if isinstance(v, datetime.date) else str(v)
    if head == "time":
        ns = v.nanosecond_time if isinstance(v, Time) else v
        return "%02d:%02d:%02d.%09d" % (ns // 3600000000000, ns // 60000000000 % 60,
                                         ns // 1000000000 % 60, ns % 1000000000)
    if head == "timestamp":
        return v.strftime("%Y-%m-%d %H:%M:%S.") + "%03dZ" % (v.microsecond // 1000)
    if head == "duration":
        return render_duration(v)
    if head == "list":
        return [render(args[0], x) for x in v]
    if head == "set":
        return [render(args[0], x) for x in sorted(v, key=sort_key)]
    if head == "map":
        return {json_key(render(args[0], k)): render(args[1], x)
                for k, x in sorted(v.items(), key=lambda kv: sort_key(kv[0]))}
    if head == "tuple":
        return [render(t, x) for t, x in zip(args, v)]
    if head == "vector":
        return [render(args[0], x) for x in v]
    raise ValueError("cannot render " + ctype)


def sort_key(x):
    """Cassandra's order for the set/map keys used here: numbers by value, text by UTF-8."""
    return x.encode() if isinstance(x, str) else x


def json_key(k):
    return k if isinstance(k, str) else json.dumps(k)


def render_duration(d):
    """Cassandra's Duration.toString: 1y2mo3d4h5m6s7ms8us9ns."""
    out = "-" if (d.months < 0 or d.days < 0 or d.nanoseconds < 0) else ""
    months, days, ns = abs(d.months), abs(d.days), abs(d.nanoseconds)
    for n, unit in ((months // 12, "y"), (months % 12, "mo"), (days, "d")):
        if n:
            out += "%d%s" % (n, unit)
    for size, unit in ((3600000000000, "h"), (60000000000, "m"), (1000000000, "s"),
                       (1000000, "ms"), (1000, "us"), (1, "ns")):
        if ns >= size:
            out += "%d%s" % (ns // size, unit)
            ns %= size
    return out


def dumps(obj):
    """json.dumps with Raw strings emitted as bare numbers."""
    marks = {}

    def walk(o):
        if isinstance(o, Raw):
            token = "@@RAW%d@@" % len(marks)
            marks['"%s"' % token] = str(o)
            return token
        if isinstance(o, dict):
            return {k: walk(v) for k, v in o.items()}
        if isinstance(o, list):
            return [walk(v) for v in o]
        return o

    text = json.dumps(walk(obj), indent=1, ensure_ascii=False)
    for token, raw in marks.items():
        text = text.replace(token, raw)
    return text


# ---------------------------------------------------------------- truth

class RecordingTimestamps(MonotonicTimestampGenerator):
    """The driver's default client-side timestamp generator, remembering its last value
    so the truth can say which default timestamp each request carried."""

    last = None

    def __call__(self):
        self.last = super().__call__()
        return self.last


OUTCOME_BY_WRITE_TYPE = {  # ARCHITECTURE.md outcome rules for WriteTimeout
    "BATCH": ("committed", "batchlog_written"),
    "BATCH_LOG": ("in_doubt", "batchlog"),
    "UNLOGGED_BATCH": ("in_doubt", "timeout"),
    "CAS": ("in_doubt", "cas_unknown"),
}
WRITE_TYPE_NAME = {v: k for k, v in cassandra.WriteType.name_to_value.items()}


class Recorder:
    def __init__(self, session, stamps):
        self.session, self.stamps = session, stamps
        self.writes = []
        self.batches = 0

    def run(self, statement, params=None):
        """Execute; return (response, outcome, reason) as the driver saw them."""
        try:
            rs = self.session.execute(statement, params)
        except WriteTimeout as e:
            return self.timeout(e)
        except Unavailable as e:
            return self.unavailable(e)
        except NoHostAvailable as e:  # Unavailable goes through RETRY_NEXT_HOST first
            (err,) = e.errors.values()
            if isinstance(err, Unavailable):
                return self.unavailable(err)
            raise
        if rs.column_names and rs.column_names[0] == "[applied]":
            applied = rs.was_applied
            return ("RESULT Rows [applied]=%s" % str(applied).lower(),
                    "committed" if applied else "rejected", None if applied else "not_applied")
        return "RESULT Void", "committed", None

    @staticmethod
    def timeout(e):
        wtype = WRITE_TYPE_NAME[e.write_type]
        resp = "ERROR WriteTimeout %s received=%d blockfor=%d" % (
            wtype, e.received_responses, e.required_responses)
        if wtype in OUTCOME_BY_WRITE_TYPE:
            return (resp,) + OUTCOME_BY_WRITE_TYPE[wtype]
        if e.received_responses >= 1:
            return resp, "committed", "partial %d/%d" % (e.received_responses, e.required_responses)
        return resp, "in_doubt", "timeout"

    @staticmethod
    def unavailable(e):
        return ("ERROR Unavailable required=%d alive=%d" % (e.required_replicas, e.alive_replicas),
                "rejected", "unavailable")

    def entry(self, op, table, key, values=None, *, cql, prepared, cl, serial=None, rng=None,
              columns=None, ops=None, ttl=None, using_ts=None, lwt=None, batch=None):
        t = table.split(".")[-1]

        def r(col, v):
            return render(cql_schema.column_type(t, col), v)

        rendered_ops = []
        for o in ops or []:
            col, kind, val = o[0], o[1], o[2]
            ctype = cql_schema.unfrozen(cql_schema.column_type(t, col))
            head, args = cql_schema.split_type(ctype)
            item = {"column": col, "op": kind}
            if kind in ("remove_key", "remove_index"):
                item["key"] = render(args[0] if kind == "remove_key" else "int", val)
            elif kind == "put":  # m[k] = v
                item["key"], item["value"] = render(args[0], val[0]), render(args[1], val[1])
            elif kind in ("remove",) and head == "map":
                item["value"] = render("set<%s>" % args[0], val)
            else:
                item["value"] = render(ctype, val)
            rendered_ops.append(item)
        return {
            "proto": "cql",
            "namespace": table if "." in table else "%s.%s" % (KS, table),
            "op": op,
            "key": {c: r(c, v) for c, v in key.items()},
            "range": {c: {o: r(c, v) for o, v in bounds.items()} for c, bounds in (rng or {}).items()} or None,
            "values": {c: r(c, v) for c, v in (values or {}).items() if v is not UNSET_VALUE},
            "columns_deleted": columns or [],
            "collection_ops": rendered_ops,
            "timestamp": using_ts,
            "timestamp_source": "using" if using_ts is not None else "client",
            "ttl": ttl,
            "consistency": CL_NAME[cl],
            "serial_consistency": CL_NAME[serial] if serial is not None else None,
            "lwt": lwt,
            "batch": batch,
            "prepared": prepared,
            "cql": cql,
        }

    def write(self, statement, params, *entries):
        """Execute one statement whose writes are `entries`; record them with the outcome."""
        response, outcome, reason = self.run(statement, params)
        opcode = ("BATCH" if isinstance(statement, BatchStatement)
                  else "QUERY" if isinstance(statement, (str, SimpleStatement)) else "EXECUTE")
        for e in entries:
            e["client_timestamp"] = self.stamps.last
            if e["lwt"]:  # the write time of an LWT is its Paxos ballot, chosen by the server
                e["timestamp_source"] = "paxos_ballot"
            elif e["timestamp"] is None:
                e["timestamp"] = self.stamps.last
            e.update(opcode=opcode, response=response, outcome_as_responded=outcome, reason=reason)
            e["seq"] = len(self.writes)
            first = ("seq", "opcode", "proto", "namespace", "op", "key", "range", "values")
            last = ("outcome_as_responded", "reason", "response")
            middle = [k for k in e if k not in first + last]
            self.writes.append({k: e[k] for k in first + tuple(middle) + last})
        return outcome


# ---------------------------------------------------------------- workload

ROW1 = {
    "id": uuid.UUID("0b7e9a2c-3f51-4d8e-9c6a-5e4f3d2c1b0a"), "ck": 1,
    "ascii_c": "ascii-only", "bigint_c": -9007199254740993, "blob_c": b"\x00\x01\xfe\xff",
    "bool_c": True, "date_c": datetime.date(2024, 2, 29),
    "decimal_c": decimal.Decimal("12345.678901234567890123"), "double_c": 2.718281828459045,
    "duration_c": Duration(14, 3, 3723004005006), "float_c": 1.5, "inet_c": "192.168.1.10",
    "int_c": -2147483648, "smallint_c": 32767, "text_c": "h\u00e9llo w\u00f6rld \u2713",
    "time_c": Time(49530123456789), "ts_c": datetime.datetime(2024, 1, 2, 3, 4, 5, 678000),
    "timeuuid_c": uuid.UUID("d2177dd0-eaa2-11de-a572-001b779c76e3"), "tinyint_c": -128,
    "uuid_c": uuid.UUID("3c2b1a09-8f7e-4d6c-b5a4-938271605f4e"),
    "varint_c": 123456789012345678901234567890, "list_c": ["b", "a", "b"],
    "set_c": SortedSet([3, 1, 2]), "map_c": collections.OrderedDict([("two", 2), ("one", 1)]),
    "tuple_c": (7, "seven", 7.5), "udt_c": Address("1 Main St", "Springfield", 12345),
    "flist_c": [3, 1, 2], "fset_c": SortedSet(["y", "x"]),
    "fmap_c": collections.OrderedDict([(2, "two"), (1, "one")]),
    "nested_c": collections.OrderedDict([("a", [1, 2]), ("b", [3])]),
    "vec_c": [0.5, -1.25, 3.0],
}
ALL_COLS = [c for c, _ in cql_schema.TABLES["all_types"]["columns"]]
KEY_COLS = {"all_types": ["id", "ck"], "events": ["user", "day", "seq"],
            "counters": ["page", "bucket"], "users": ["name"]}


def split(table, row):
    key = {c: row[c] for c in KEY_COLS[table] if c in row}
    return key, {c: v for c, v in row.items() if c not in key}


def full(rec):
    s = rec.session
    D1, D2, D3 = datetime.date(2024, 3, 1), datetime.date(2024, 3, 2), datetime.date(2024, 3, 3)

    # --- prepared statements
    q_all = "INSERT INTO tm.all_types (%s) VALUES (%s)" % (", ".join(ALL_COLS), ", ".join("?" * len(ALL_COLS)))
    q_ttl = "INSERT INTO all_types (id, ck, text_c, int_c, list_c) VALUES (?, ?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?"
    q_map = "UPDATE tm.all_types USING TTL ? SET text_c = ?, map_c[?] = ? WHERE id = ? AND ck = ?"
    q_event = "INSERT INTO tm.events (user, day, seq, payload) VALUES (?, ?, ?, ?)"
    q_append = "UPDATE tm.events SET tags = tags + ?, attrs = attrs + ? WHERE user = ? AND day = ? AND seq = ?"
    q_prepend = "UPDATE tm.events SET tags = ? + tags, labels = labels - ? WHERE user = ? AND day = ? AND seq = ?"
    q_del_elem = "DELETE attrs[?], tags[?] FROM tm.events WHERE user = ? AND day = ? AND seq = ?"
    q_del_range = "DELETE FROM tm.events USING TIMESTAMP ? WHERE user = ? AND day = ? AND seq >= ? AND seq < ?"
    q_del_row = "DELETE FROM tm.events WHERE user = ? AND day = ? AND seq = ?"
    q_counter = "UPDATE tm.counters SET hits = hits + ?, bytes = bytes - ? WHERE page = ? AND bucket = ?"
    q_lwt_ins = "INSERT INTO tm.users (name, email, age) VALUES (?, ?, ?) IF NOT EXISTS"
    q_lwt_upd = "UPDATE tm.users SET email = ? WHERE name = ? IF EXISTS"
    p = {q: s.prepare(q) for q in (q_all, q_ttl, q_map, q_event, q_append, q_prepend, q_del_elem,
                                   q_del_range, q_del_row, q_counter, q_lwt_ins, q_lwt_upd)}

    def bound(q, values, cl, serial=None):
        b = p[q].bind(values)
        b.consistency_level = cl
        if serial is not None:
            b.serial_consistency_level = serial
        return b

    # every CQL type, all columns bound
    key, vals = split("all_types", ROW1)
    rec.write(bound(q_all, [ROW1[c] for c in ALL_COLS], CL.QUORUM), None,
              rec.entry("insert", "all_types", key, vals, cql=q_all, prepared=True, cl=CL.QUORUM))
    # nulls and an unset value
    row2 = {c: None for c in ALL_COLS}
    row2.update(id=ROW1["id"], ck=2, text_c="second", int_c=UNSET_VALUE, vec_c=[1.0, 2.0, 4.0])
    key, vals = split("all_types", row2)
    rec.write(bound(q_all, [row2[c] for c in ALL_COLS], CL.LOCAL_QUORUM), None,
              rec.entry("insert", "all_types", key, vals, cql=q_all, prepared=True, cl=CL.LOCAL_QUORUM))
    # bound TTL and TIMESTAMP, unqualified table (keyspace from USE)
    rec.write(bound(q_ttl, [ROW1["id"], 3, "ttl'd", 42, ["x"], 86400, 1700000000000000], CL.ONE), None,
              rec.entry("insert", "all_types", {"id": ROW1["id"], "ck": 3},
                        {"text_c": "ttl'd", "int_c": 42, "list_c": ["x"]},
                        cql=q_ttl, prepared=True, cl=CL.ONE, ttl=86400, using_ts=1700000000000000))
    # map put by bound key, TTL bound
    rec.write(bound(q_map, [600, "updated", "three", 3, ROW1["id"], 1], CL.ALL), None,
              rec.entry("update", "all_types", {"id": ROW1["id"], "ck": 1}, {"text_c": "updated"},
                        ops=[("map_c", "put", ("three", 3))], cql=q_map, prepared=True, cl=CL.ALL, ttl=600))
    for seq, cl in ((1, CL.ONE), (2, CL.LOCAL_ONE), (3, CL.TWO)):
        rec.write(bound(q_event, ["alice", D1, seq, "event %d" % seq], cl), None,
                  rec.entry("insert", "events", {"user": "alice", "day": D1, "seq": seq},
                            {"payload": "event %d" % seq}, cql=q_event, prepared=True, cl=cl))
    ek = {"user": "alice", "day": D1, "seq": 1}
    rec.write(bound(q_append, [["t1", "t2"], {"k1": "v1"}, "alice", D1, 1], CL.QUORUM), None,
              rec.entry("update", "events", ek, ops=[("tags", "append", ["t1", "t2"]),
                                                     ("attrs", "put_all", {"k1": "v1"})],
                        cql=q_append, prepared=True, cl=CL.QUORUM))
    rec.write(bound(q_prepend, [["t0"], SortedSet(["old"]), "alice", D1, 1], CL.QUORUM), None,
              rec.entry("update", "events", ek, ops=[("tags", "prepend", ["t0"]),
                                                     ("labels", "remove", SortedSet(["old"]))],
                        cql=q_prepend, prepared=True, cl=CL.QUORUM))
    rec.write(bound(q_del_elem, ["k1", 0, "alice", D1, 1], CL.ONE), None,
              rec.entry("delete", "events", ek, ops=[("attrs", "remove_key", "k1"), ("tags", "remove_index", 0)],
                        cql=q_del_elem, prepared=True, cl=CL.ONE))
    rec.write(bound(q_del_range, [1700000000000500, "alice", D1, 2, 4], CL.QUORUM), None,
              rec.entry("delete", "events", {"user": "alice", "day": D1}, rng={"seq": {">=": 2, "<": 4}},
                        cql=q_del_range, prepared=True, cl=CL.QUORUM, using_ts=1700000000000500))
    for bucket, cl in ((1, CL.ONE), (2, CL.LOCAL_QUORUM)):
        rec.write(bound(q_counter, [5, 1024, "/home", bucket], cl), None,
                  rec.entry("update", "counters", {"page": "/home", "bucket": bucket},
                            ops=[("hits", "increment", 5), ("bytes", "decrement", 1024)],
                            cql=q_counter, prepared=True, cl=cl))
    # LWT: applied, then not applied (same key), then IF EXISTS applied
    for serial in (CL.LOCAL_SERIAL, CL.SERIAL):
        rec.write(bound(q_lwt_ins, ["alice", "alice@example.com", 30], CL.QUORUM, serial), None,
                  rec.entry("insert", "users", {"name": "alice"}, {"email": "alice@example.com", "age": 30},
                            cql=q_lwt_ins, prepared=True, cl=CL.QUORUM, serial=serial, lwt="if_not_exists"))
    rec.write(bound(q_lwt_upd, ["alice@new.example.com", "alice"], CL.LOCAL_QUORUM, CL.LOCAL_SERIAL), None,
              rec.entry("update", "users", {"name": "alice"}, {"email": "alice@new.example.com"},
                        cql=q_lwt_upd, prepared=True, cl=CL.LOCAL_QUORUM, serial=CL.LOCAL_SERIAL, lwt="if_exists"))
    # designated failures
    for seq, marker in ((7, "__WTO_SIMPLE_1_2__"), (8, "__UNAVAILABLE_2_1__")):
        rec.write(bound(q_event, ["bob", D2, seq, marker], CL.QUORUM), None,
                  rec.entry("insert", "events", {"user": "bob", "day": D2, "seq": seq}, {"payload": marker},
                            cql=q_event, prepared=True, cl=CL.QUORUM))

    # --- simple statements with literals
    def simple(cql, cl):
        return SimpleStatement(cql, consistency_level=cl)

    q = ("INSERT INTO tm.events (user, day, seq, payload, tags, attrs, labels) VALUES "
         "('carol', '2024-03-02', 1, 'it''s here', ['a', 'b'], {'k1': 'v1', 'k0': 'v0'}, {'y', 'x'}) USING TTL 3600")
    rec.write(simple(q, CL.ONE), None,
              rec.entry("insert", "events", {"user": "carol", "day": D2, "seq": 1},
                        {"payload": "it's here", "tags": ["a", "b"], "attrs": {"k1": "v1", "k0": "v0"},
                         "labels": {"y", "x"}}, cql=q, prepared=False, cl=CL.ONE, ttl=3600))
    q = ("UPDATE tm.events USING TIMESTAMP 1700000000000100 SET payload = 'edited' "
         "WHERE user = 'carol' AND day = '2024-03-02' AND seq = 1")
    rec.write(simple(q, CL.QUORUM), None,
              rec.entry("update", "events", {"user": "carol", "day": D2, "seq": 1}, {"payload": "edited"},
                        cql=q, prepared=False, cl=CL.QUORUM, using_ts=1700000000000100))
    q = "UPDATE tm.events SET attrs['k2'] = 'v2', tags = tags + ['c'] WHERE user = 'carol' AND day = '2024-03-02' AND seq = 1"
    rec.write(simple(q, CL.EACH_QUORUM), None,
              rec.entry("update", "events", {"user": "carol", "day": D2, "seq": 1},
                        ops=[("attrs", "put", ("k2", "v2")), ("tags", "append", ["c"])],
                        cql=q, prepared=False, cl=CL.EACH_QUORUM))
    q = "DELETE payload, tags FROM tm.events WHERE user = 'carol' AND day = '2024-03-02' AND seq = 1"
    rec.write(simple(q, CL.ALL), None,
              rec.entry("delete", "events", {"user": "carol", "day": D2, "seq": 1}, columns=["payload", "tags"],
                        cql=q, prepared=False, cl=CL.ALL))
    q = "DELETE FROM tm.events WHERE user = 'carol' AND day = '2024-03-02' AND seq = 2"
    rec.write(simple(q, CL.ONE), None,
              rec.entry("delete", "events", {"user": "carol", "day": D2, "seq": 2}, cql=q, prepared=False, cl=CL.ONE))
    q = "DELETE FROM tm.events USING TIMESTAMP 1700000000000200 WHERE user = 'carol' AND day = '2024-03-02'"
    rec.write(simple(q, CL.QUORUM), None,
              rec.entry("delete", "events", {"user": "carol", "day": D2}, cql=q, prepared=False, cl=CL.QUORUM,
                        using_ts=1700000000000200))
    q = ("INSERT INTO tm.all_types (id, ck, bigint_c, blob_c, bool_c, uuid_c, ts_c, inet_c, decimal_c, "
         "varint_c, duration_c, date_c, time_c, set_c, tuple_c, udt_c) VALUES "
         "(6ab09bec-e68e-48d9-a5f8-97e6fb4c9b47, 10, 9223372036854775807, 0xcafe, false, "
         "uuid_literal_placeholder, '2024-01-02 03:04:05.678+0000', '10.0.0.1', -0.5, "
         "-98765432109876543210, 1mo2d3h, '1999-12-31', '23:59:59.999999999', {2, 1}, "
         "(1, 'one', 1.25), {street: 'Elm', city: 'Shelbyville', zip: 54321})")
    q = q.replace("uuid_literal_placeholder", "7f3e2d1c-0b9a-4887-a6b5-c4d3e2f1a0b9")
    rec.write(simple(q, CL.LOCAL_QUORUM), None,
              rec.entry("insert", "all_types", {"id": uuid.UUID("6ab09bec-e68e-48d9-a5f8-97e6fb4c9b47"), "ck": 10},
                        {"bigint_c": 9223372036854775807, "blob_c": b"\xca\xfe", "bool_c": False,
                         "uuid_c": uuid.UUID("7f3e2d1c-0b9a-4887-a6b5-c4d3e2f1a0b9"),
                         "ts_c": datetime.datetime(2024, 1, 2, 3, 4, 5, 678000), "inet_c": "10.0.0.1",
                         "decimal_c": decimal.Decimal("-0.5"), "varint_c": -98765432109876543210,
                         "duration_c": Duration(1, 2, 3 * 3600 * 10**9), "date_c": datetime.date(1999, 12, 31),
                         "time_c": Time(86399999999999), "set_c": {2, 1}, "tuple_c": (1, "one", 1.25),
                         "udt_c": Address("Elm", "Shelbyville", 54321)},
                        cql=q, prepared=False, cl=CL.LOCAL_QUORUM))
    q = "UPDATE tm.counters SET hits = hits + 1 WHERE page = '/about' AND bucket = 1"
    rec.write(simple(q, CL.ONE), None,
              rec.entry("update", "counters", {"page": "/about", "bucket": 1}, ops=[("hits", "increment", 1)],
                        cql=q, prepared=False, cl=CL.ONE))
    # the driver interpolates %s parameters into the text itself (no bind values on the wire)
    template = "INSERT INTO tm.users (name, email, age) VALUES (%s, %s, %s)"
    params = ("bob", "bob@example.com", 41)
    rec.write(SimpleStatement(template, consistency_level=CL.ONE), params,
              rec.entry("insert", "users", {"name": "bob"}, {"email": "bob@example.com", "age": 41},
                        cql=bind_params(template, params, s.encoder), prepared=False, cl=CL.ONE))
    # a read, to show that non-writes are not in the truth
    s.execute(SimpleStatement("SELECT * FROM tm.users WHERE name = 'bob'", consistency_level=CL.ONE))

    # --- batches
    def batch(kind, cl, members):
        """members: [(statement, params, entry)]; entry gets the batch tag."""
        rec.batches += 1
        b = BatchStatement(batch_type=kind, consistency_level=cl)
        names = {BatchType.LOGGED: "logged", BatchType.UNLOGGED: "unlogged", BatchType.COUNTER: "counter"}
        entries = []
        for i, (stmt, params, e) in enumerate(members):
            b.add(stmt, params)
            e["batch"] = {"id": rec.batches, "type": names[kind], "index": i, "size": len(members)}
            entries.append(e)
        rec.write(b, None, *entries)

    D3k = {"user": "dave", "day": D3}
    u2 = "UPDATE tm.events SET payload = 'b2' WHERE user = 'dave' AND day = '2024-03-03' AND seq = 2"
    batch(BatchType.LOGGED, CL.QUORUM, [
        (p[q_event], ["dave", D3, 1, "b1"],
         rec.entry("insert", "events", dict(D3k, seq=1), {"payload": "b1"}, cql=q_event, prepared=True, cl=CL.QUORUM)),
        (SimpleStatement(u2), None,
         rec.entry("update", "events", dict(D3k, seq=2), {"payload": "b2"}, cql=u2, prepared=False, cl=CL.QUORUM)),
        (p[q_del_row], ["dave", D3, 3],
         rec.entry("delete", "events", dict(D3k, seq=3), cql=q_del_row, prepared=True, cl=CL.QUORUM)),
    ])
    u3 = ("INSERT INTO tm.events (user, day, seq, payload) VALUES ('erin', '2024-03-03', 3, 'old') "
          "USING TIMESTAMP 1700000000000001")
    batch(BatchType.UNLOGGED, CL.ONE, [
        (p[q_event], ["erin", D3, 1, "u1"],
         rec.entry("insert", "events", {"user": "erin", "day": D3, "seq": 1}, {"payload": "u1"},
                   cql=q_event, prepared=True, cl=CL.ONE)),
        (p[q_event], ["frank", D3, 1, "u2"],
         rec.entry("insert", "events", {"user": "frank", "day": D3, "seq": 1}, {"payload": "u2"},
                   cql=q_event, prepared=True, cl=CL.ONE)),
        (SimpleStatement(u3), None,
         rec.entry("insert", "events", {"user": "erin", "day": D3, "seq": 3}, {"payload": "old"},
                   cql=u3, prepared=False, cl=CL.ONE, using_ts=1700000000000001)),
    ])
    batch(BatchType.COUNTER, CL.QUORUM, [
        (p[q_counter], [1, 10, "/home", 1],
         rec.entry("update", "counters", {"page": "/home", "bucket": 1},
                   ops=[("hits", "increment", 1), ("bytes", "decrement", 10)], cql=q_counter, prepared=True, cl=CL.QUORUM)),
        (p[q_counter], [2, 20, "/cart", 1],
         rec.entry("update", "counters", {"page": "/cart", "bucket": 1},
                   ops=[("hits", "increment", 2), ("bytes", "decrement", 20)], cql=q_counter, prepared=True, cl=CL.QUORUM)),
    ])
    marker = "__WTO_UNLOGGED_BATCH_0_2__"
    batch(BatchType.UNLOGGED, CL.QUORUM, [
        (p[q_event], ["gina", D3, 1, marker],
         rec.entry("insert", "events", {"user": "gina", "day": D3, "seq": 1}, {"payload": marker},
                   cql=q_event, prepared=True, cl=CL.QUORUM)),
        (p[q_event], ["hank", D3, 1, "plain"],
         rec.entry("insert", "events", {"user": "hank", "day": D3, "seq": 1}, {"payload": "plain"},
                   cql=q_event, prepared=True, cl=CL.QUORUM)),
    ])

    q = "TRUNCATE tm.counters"
    rec.write(simple(q, CL.ALL), None,
              rec.entry("truncate", "counters", {}, cql=q, prepared=False, cl=CL.ALL))


def auth(rec):
    s = rec.session
    q_event = "INSERT INTO tm.events (user, day, seq, payload) VALUES (?, ?, ?, ?)"
    ps = s.prepare(q_event)
    day = datetime.date(2024, 4, 1)
    for seq in (1, 2):
        b = ps.bind(["ivan", day, seq, "auth %d" % seq])
        b.consistency_level = CL.LOCAL_QUORUM
        rec.write(b, None, rec.entry("insert", "events", {"user": "ivan", "day": day, "seq": seq},
                                     {"payload": "auth %d" % seq}, cql=q_event, prepared=True, cl=CL.LOCAL_QUORUM))
    q = "UPDATE tm.users SET age = 52 WHERE name = 'ivan'"
    rec.write(SimpleStatement(q, consistency_level=CL.QUORUM), None,
              rec.entry("update", "users", {"name": "ivan"}, {"age": 52}, cql=q, prepared=False, cl=CL.QUORUM))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.95")
    ap.add_argument("--port", type=int, default=9042)
    ap.add_argument("--protocol", type=int, choices=(4, 5), required=True)
    ap.add_argument("--compression", choices=("lz4", "snappy", "none"), default="none")
    ap.add_argument("--auth", help="USER:PASSWORD for PlainTextAuthProvider")
    ap.add_argument("--profile", choices=("full", "auth"), default="full")
    ap.add_argument("--capture", required=True, help="capture file name, for the truth")
    ap.add_argument("--truth", required=True)
    args = ap.parse_args()

    stamps = RecordingTimestamps()
    profile = ExecutionProfile(load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc="dc1")))
    compression = {"none": False, "lz4": "lz4", "snappy": "snappy"}[args.compression]
    kwargs = {}
    if args.auth:
        user, password = args.auth.split(":", 1)
        kwargs["auth_provider"] = PlainTextAuthProvider(username=user, password=password)
    cluster = Cluster([args.host], port=args.port, protocol_version=args.protocol,
                      compression=compression, execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                      timestamp_generator=stamps, **kwargs)
    session = cluster.connect(KS)
    rec = Recorder(session, stamps)
    {"full": full, "auth": auth}[args.profile](rec)
    cluster.shutdown()

    truth = collections.OrderedDict([
        ("capture", args.capture),
        ("driver", "cassandra-driver %s" % cassandra.__version__),
        ("protocol_version", args.protocol),
        ("compression", None if args.compression == "none" else args.compression),
        ("server", "%s:%d" % (args.host, args.port)),
        ("keyspace_from_use", KS),
    ])
    if args.auth:
        truth["auth"] = {"authenticator": "org.apache.cassandra.auth.PasswordAuthenticator",
                         "username": args.auth.split(":", 1)[0], "password": args.auth.split(":", 1)[1],
                         "note": "the password is on the wire in AUTH_RESPONSE; it must never appear in tidemark's store or logs"}
    truth["writes"] = rec.writes
    with open(args.truth, "w") as f:
        f.write(dumps(truth) + "\n")
    outcomes = collections.Counter(w["outcome_as_responded"] for w in rec.writes)
    print("%s: %d writes %s" % (args.capture, len(rec.writes), dict(outcomes)))


if __name__ == "__main__":
    main()
