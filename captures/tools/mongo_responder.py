#!/usr/bin/env python3
"""A small MongoDB responder: answers the real pymongo driver as the primary of a
single-member replica set, and writes ground truth of what it saw and answered.

Wire: OP_MSG (body + kind-1 document sequences, moreToCome, exhaustAllowed, a
checksum is accepted and ignored), OP_COMPRESSED (snappy, zlib, zstd; replies are
compressed with the request's compressor), OP_QUERY isMaster (legacy, answered
with OP_REPLY). Storage is an in-memory dict per namespace (mongo_store.py).

Designated faults, so the captures hold the cases tidemark must decide:
- a write whose writeConcern has wtimeout == 1 gets writeConcernError 64
  (WriteConcernFailed, wtimeout) after being applied;
- the first attempt of a retryable insert of {_id: "drop-connection-once"} is applied
  and then the connection is closed without a reply (the driver retries with the
  same lsid + txnNumber; the retry is answered from the stored result, not re-applied).

On SIGTERM/SIGINT it writes --truth (see mongo_truth.py for the file's shape).
"""
import argparse
import datetime
import select
import signal
import socket
import struct
import threading
import time
import zlib

import bson
from bson import ObjectId
from bson.int64 import Int64
from bson.timestamp import Timestamp

from mongo_store import DuplicateKey, Store, StoreError, matches
from mongo_truth import Truth, write_entry

OPCODES = {1: "OP_REPLY", 2004: "OP_QUERY", 2012: "OP_COMPRESSED", 2013: "OP_MSG"}
COMPRESSORS = {"snappy": 1, "zlib": 2, "zstd": 3}
CHECKSUM, MORE_TO_COME, EXHAUST_ALLOWED = 1, 2, 1 << 16
GENERIC = {"$db", "lsid", "$clusterTime", "txnNumber", "autocommit", "startTransaction",
           "writeConcern", "readConcern", "$readPreference", "apiVersion", "comment"}


def compress(name, data):
    if name == "zlib":
        return zlib.compress(data)
    if name == "zstd":
        import zstandard
        return zstandard.ZstdCompressor().compress(data)
    import snappy
    return snappy.compress(data)


def decompress(cid, data, size):
    if cid == 2:
        return zlib.decompress(data)
    if cid == 3:
        import zstandard
        # Some drivers (the Rust crate) write zstd frames without a content size;
        # the OP_COMPRESSED header's uncompressed size bounds the output instead.
        return zstandard.ZstdDecompressor().decompress(data, max_output_size=size)
    if cid == 1:
        import snappy
        return snappy.uncompress(data)
    if cid == 0:
        return data
    raise ValueError(f"unknown compressor id {cid}")


def parse_op_msg(body):
    """Return (flags, command document with kind-1 sequences merged in, sequence names)."""
    flags = struct.unpack_from("<I", body)[0]
    end = len(body) - (4 if flags & CHECKSUM else 0)
    pos, cmd, seqs = 4, None, {}
    while pos < end:
        kind = body[pos]
        pos += 1
        size = struct.unpack_from("<i", body, pos)[0]
        if kind == 0:
            cmd = bson.decode(body[pos:pos + size])
        else:
            sec = body[pos + 4:pos + size]
            ident, _, docs = sec.partition(b"\x00")
            seqs[ident.decode()] = bson.decode_all(docs)
        pos += size
    cmd.update(seqs)
    return flags, cmd, list(seqs)


class Responder:
    def __init__(self, port, host, compressors, truth, scram=None):
        self.port, self.host, self.compressors = port, host, compressors
        self.addr = f"{host}:{port}"
        self.truth, self.store, self.scram = truth, Store(), scram
        self.lock = threading.RLock()
        self.stop = threading.Event()
        self.next_id, self.next_conn, self.next_cursor = 1000, 1, 7000
        self.ts_sec, self.ts_inc = int(time.time()), 0
        self.process_id = ObjectId()
        self.cursors = {}      # id -> (ns, remaining docs)
        self.retry_cache = {}  # (lsid, txnNumber) -> reply
        self.txns = {}         # lsid -> {"txn": n, "entries": [...], "undo": store copy}
        self.dropped_once = False

    # ---- clock -------------------------------------------------------------------
    def tick(self):
        with self.lock:
            now = int(time.time())
            if now > self.ts_sec:
                self.ts_sec, self.ts_inc = now, 0
            self.ts_inc += 1
            return Timestamp(self.ts_sec, self.ts_inc)

    def now_ts(self):
        return Timestamp(self.ts_sec, max(self.ts_inc, 1))

    def gossip(self, reply, optime=None):
        t = optime or self.now_ts()
        reply["$clusterTime"] = {"clusterTime": t, "signature": {
            "hash": bson.Binary(b"\x00" * 20), "keyId": Int64(0)}}
        reply["operationTime"] = t
        return reply

    # ---- wire --------------------------------------------------------------------
    def serve(self):
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((self.host, self.port))
        srv.listen(16)
        srv.settimeout(0.2)
        print(f"mongo_responder listening on {self.addr}", flush=True)
        threads = []
        while not self.stop.is_set():
            try:
                s, peer = srv.accept()
            except socket.timeout:
                continue
            with self.lock:
                cid = self.next_conn
                self.next_conn += 1
            t = threading.Thread(target=self.connection, args=(s, peer, cid), daemon=True)
            t.start()
            threads.append(t)
        srv.close()
        for t in threads:
            t.join(1.0)

    def recv_exact(self, s, n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    def connection(self, s, peer, cid):
        conn = {"id": cid, "peer": f"{peer[0]}:{peer[1]}", "compressor": None, "sock": s}
        try:
            while not self.stop.is_set():
                hdr = self.recv_exact(s, 16)
                length, req_id, resp_to, opcode = struct.unpack("<iiii", hdr)
                body = self.recv_exact(s, length - 16)
                self.handle(conn, req_id, resp_to, opcode, body)
        except (ConnectionError, OSError):
            pass
        finally:
            s.close()

    def handle(self, conn, req_id, resp_to, opcode, body):
        inner, comp = opcode, None
        if opcode == 2012:
            inner, size, cid = struct.unpack_from("<iiB", body)
            body = decompress(cid, body[9:], size)
            comp = {v: k for k, v in COMPRESSORS.items()}.get(cid, "noop")
        rec = {"conn": conn["id"], "dir": "c2s", "opcode": OPCODES.get(opcode, str(opcode)),
               "request_id": req_id, "response_to": resp_to}
        if comp:
            rec.update(inner_opcode=OPCODES.get(inner, str(inner)), compressor=comp)
        if inner == 2004:
            rec["command"] = self.legacy_query(conn, req_id, body, rec)
            return
        if inner != 2013:
            rec["command"] = None
            self.truth.message(rec)
            return
        flags, cmd, seqs = parse_op_msg(body)
        name = next(iter(cmd))
        rec.update(command=name, flags=flags, sequences=seqs)
        self.truth.message(rec)
        ctx = {"conn": conn, "req_id": req_id, "flags": flags, "comp": comp}
        if name in ("hello", "isMaster", "ismaster") and "topologyVersion" in cmd:
            return self.awaitable_hello(conn, req_id, cmd, flags, comp)
        try:
            reply = self.dispatch(name, cmd, ctx)
        except StoreError as e:
            reply = {"ok": 0.0, "errmsg": str(e), "code": e.code, "codeName": e.code_name}
        if reply is None:  # connection deliberately dropped
            conn["sock"].shutdown(socket.SHUT_RDWR)
            raise ConnectionError("dropped")
        if flags & MORE_TO_COME:
            return
        self.send(conn, req_id, self.gossip(reply, ctx.get("optime")), comp)

    def send(self, conn, resp_to, doc, comp, flags=0):
        with self.lock:
            self.next_id += 1
            rid = self.next_id
        body = struct.pack("<IB", flags, 0) + bson.encode(doc)
        opcode = 2013
        rec = {"conn": conn["id"], "dir": "s2c", "opcode": "OP_MSG", "request_id": rid,
               "response_to": resp_to, "flags": flags,
               "ok": doc.get("ok"), "code": doc.get("code")}
        if comp:
            data = compress(comp, body)
            body = struct.pack("<iiB", 2013, len(body), COMPRESSORS[comp]) + data
            opcode = 2012
            rec.update(opcode="OP_COMPRESSED", inner_opcode="OP_MSG", compressor=comp)
        self.truth.message(rec)
        conn["sock"].sendall(struct.pack("<iiii", 16 + len(body), rid, resp_to, opcode) + body)
        return rid

    def legacy_query(self, conn, req_id, body, rec):
        ns_end = body.index(b"\x00", 4)
        q = bson.decode_all(body[ns_end + 9:])[0]
        q = q.get("$query", q)
        name = next(iter(q))
        rec["command"] = name
        self.truth.message(rec)
        reply = self.gossip(self.hello(conn, q, legacy=True))
        doc = bson.encode(reply)
        out = struct.pack("<iqii", 0, 0, 0, 1) + doc
        with self.lock:
            self.next_id += 1
            rid = self.next_id
        self.truth.message({"conn": conn["id"], "dir": "s2c", "opcode": "OP_REPLY",
                            "request_id": rid, "response_to": req_id, "ok": 1.0})
        conn["sock"].sendall(struct.pack("<iiii", 16 + len(out), rid, req_id, 1) + out)
        return name

    # ---- hello -------------------------------------------------------------------
    def hello(self, conn, cmd, legacy):
        if "compression" in cmd and conn["compressor"] is None:
            offered = [c for c in cmd["compression"] if c in self.compressors]
            conn["compressor"] = offered
        op = {"ts": self.now_ts(), "t": Int64(1)}
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        doc = {"topologyVersion": {"processId": self.process_id, "counter": Int64(0)},
               "hosts": [self.addr], "setName": "rs0", "setVersion": 1,
               ("ismaster" if legacy else "isWritablePrimary"): True, "secondary": False,
               "primary": self.addr, "me": self.addr,
               "electionId": ObjectId("7fffffff0000000000000001"),
               "lastWrite": {"opTime": op, "lastWriteDate": now,
                             "majorityOpTime": op, "majorityWriteDate": now},
               "maxBsonObjectSize": 16777216, "maxMessageSizeBytes": 48000000,
               "maxWriteBatchSize": 100000, "localTime": now,
               "logicalSessionTimeoutMinutes": 30, "connectionId": conn["id"],
               "minWireVersion": 0, "maxWireVersion": 21, "readOnly": False}
        if "helloOk" in cmd:
            doc["helloOk"] = True
        if conn["compressor"]:
            doc["compression"] = conn["compressor"]
        if self.scram:
            self.scram.hello_fields(conn, cmd, doc)
        doc["ok"] = 1.0
        return doc

    def awaitable_hello(self, conn, req_id, cmd, flags, comp):
        """Streaming SDAM: wait maxAwaitTimeMS (nothing changes), then reply; with
        exhaustAllowed keep replying with moreToCome, as mongod does."""
        wait = cmd.get("maxAwaitTimeMS", 10000) / 1000.0
        s, resp_to = conn["sock"], req_id
        while True:
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if self.stop.is_set():
                    return
                r, _, _ = select.select([s], [], [], 0.1)
                if r:  # client closed (or sent something): stop streaming
                    return
            more = MORE_TO_COME if flags & EXHAUST_ALLOWED else 0
            resp_to = self.send(conn, resp_to, self.gossip(self.hello(conn, cmd, False)),
                                comp, more)
            if not more:
                return

    # ---- commands ----------------------------------------------------------------
    def dispatch(self, name, cmd, ctx):
        db = cmd.get("$db", "admin")
        if name in ("hello", "isMaster", "ismaster"):
            return self.hello(ctx["conn"], cmd, legacy=name != "hello")
        if self.scram and not self.scram.allowed(ctx["conn"], name):
            return {"ok": 0.0, "errmsg": f"command {name} requires authentication",
                    "code": 13, "codeName": "Unauthorized"}
        if name in ("saslStart", "saslContinue") and self.scram:
            return self.scram.command(ctx["conn"], name, cmd)
        handler = getattr(self, "cmd_" + name, None)
        if handler is None:
            return {"ok": 0.0, "errmsg": f"no such command: '{name}'", "code": 59,
                    "codeName": "CommandNotFound"}
        with self.lock:
            return handler(db, cmd, ctx)

    def cmd_ping(self, db, cmd, ctx):
        return {"ok": 1.0}

    def cmd_buildInfo(self, db, cmd, ctx):
        return {"version": "7.0.0-tidemark-responder", "versionArray": [7, 0, 0, 0],
                "maxBsonObjectSize": 16777216, "ok": 1.0}

    cmd_buildinfo = cmd_buildInfo

    def cmd_endSessions(self, db, cmd, ctx):
        return {"ok": 1.0}

    # writes ----------------------------------------------------------------------
    def begin_write(self, cmd, ctx):
        """Session/transaction bookkeeping common to every write command. Returns the
        cached reply for a retry of an executed retryable write, else None."""
        lsid = cmd.get("lsid", {}).get("id")
        txn = cmd.get("txnNumber")
        ctx["session"] = {"lsid": lsid is not None, "txnNumber": txn,
                          "autocommit": cmd.get("autocommit"),
                          "startTransaction": cmd.get("startTransaction")}
        ctx["wc"] = cmd.get("writeConcern")
        if lsid is None or txn is None:
            return None
        key = (bytes(lsid.bytes) if hasattr(lsid, "bytes") else repr(lsid), int(txn))
        ctx["txn_key"] = key
        if cmd.get("autocommit") is False:
            if cmd.get("startTransaction"):
                self.txns[key[0]] = {"txn": key[1], "entries": [],
                                     "undo": self.store_snapshot()}
            if key[0] in self.txns:
                ctx["in_txn"] = self.txns[key[0]]
            return None
        if key in self.retry_cache:
            ctx["retry_of"] = self.retry_cache[key][1]
            return self.retry_cache[key][0]
        return None

    def store_snapshot(self):
        import copy
        return copy.deepcopy((self.store.colls, self.store.indexes))

    def finish_write(self, cmd, ctx, entries, reply, applied_flags):
        """Decide each statement's outcome as responded and record it."""
        optime = self.tick() if any(applied_flags) else self.now_ts()
        if "retry_of" in ctx:  # answered from the first attempt's result
            optime = reply.get("operationTime", optime)
            applied_flags = [True] * len(entries)
        ctx["optime"] = optime
        wc = ctx.get("wc")
        if wc and wc.get("wtimeout") == 1 and reply.get("ok") and "in_txn" not in ctx:
            reply["writeConcernError"] = {
                "code": 64, "codeName": "WriteConcernFailed",
                "errmsg": "waiting for replication timed out",
                "errInfo": {"wtimeout": True, "writeConcern": dict(wc, provenance="clientSupplied")}}
        if "txn_key" in ctx and "in_txn" not in ctx and "retry_of" not in ctx:
            self.retry_cache[ctx["txn_key"]] = (reply, ctx["req_id"])
        unack = bool(ctx["flags"] & MORE_TO_COME)
        errs = {e["index"]: e for e in reply.get("writeErrors", [])}
        for i, e in enumerate(entries):
            e.update(ctx["session"], write_concern=wc, request_id=ctx["req_id"],
                     connection=ctx["conn"]["id"], applied=applied_flags[i],
                     optime=optime if applied_flags[i] else None)
            if "retry_of" in ctx:
                e["retry_of_request_id"] = ctx["retry_of"]
                e["applied"] = False  # not applied again; optime is the first attempt's
            if ctx.get("drop"):
                e["outcome_as_responded"], e["reason"] = "in_doubt", \
                    "no_response: responder closed the connection after applying"
            elif unack:
                e["outcome_as_responded"], e["reason"] = "in_doubt", "unacknowledged (w:0, moreToCome)"
            elif not reply.get("ok"):
                e["outcome_as_responded"], e["reason"] = "rejected", \
                    f"command error {reply.get('code')} {reply.get('codeName')}: {reply.get('errmsg')}"
            elif i in errs:
                x = errs[i]
                e["outcome_as_responded"], e["reason"] = "rejected", \
                    f"writeError {x['code']} {x.get('codeName')}: {x['errmsg']}"
            elif not e.pop("_executed", True):
                e["outcome_as_responded"], e["reason"] = "rejected", \
                    "not executed: ordered batch stopped at an earlier writeError"
            elif "in_txn" in ctx:
                e["outcome_as_responded"], e["reason"] = "pending", "in transaction"
                ctx["in_txn"]["entries"].append(e)
            elif "writeConcernError" in reply:
                x = reply["writeConcernError"]
                e["outcome_as_responded"], e["reason"] = "pending", \
                    f"writeConcernError {x['code']} {x['codeName']}: {x['errmsg']}"
            elif wc and wc.get("w") == "majority":
                e["outcome_as_responded"], e["reason"] = "committed", None
            else:
                e["outcome_as_responded"] = "pending"
                e["reason"] = ("acknowledged w:%s" % wc["w"]) if wc and "w" in wc else \
                    "acknowledged with the default write concern"
            e.pop("_executed", None)
            self.truth.write(e)
        return reply

    def cmd_insert(self, db, cmd, ctx):
        cached = self.begin_write(cmd, ctx)
        ns = f"{db}.{cmd['insert']}"
        docs, ordered = cmd.get("documents", []), cmd.get("ordered", True)
        entries = [write_entry(ns, "insert", {"_id": d.get("_id")}, d) for d in docs]
        if cached is not None:
            return self.finish_write(cmd, ctx, entries, cached, [False] * len(docs))
        applied, errors = [], []
        for i, d in enumerate(docs):
            if errors and ordered:
                entries[i]["_executed"] = False
                applied.append(False)
                continue
            try:
                self.store.insert(ns, d)
                applied.append(True)
            except DuplicateKey as e:
                errors.append({"index": i, "code": 11000, "codeName": "DuplicateKey",
                               "keyPattern": {"_id": 1}, "keyValue": e.key_value,
                               "errmsg": str(e)})
                applied.append(False)
        reply = {"n": sum(applied), "ok": 1.0}
        if errors:
            reply["writeErrors"] = errors
        if (not self.dropped_once and "txn_key" in ctx and "in_txn" not in ctx
                and any(d.get("_id") == "drop-connection-once" for d in docs)):
            self.dropped_once = ctx["drop"] = True
            self.finish_write(cmd, ctx, entries, reply, applied)
            return None
        return self.finish_write(cmd, ctx, entries, reply, applied)

    def cmd_update(self, db, cmd, ctx):
        cached = self.begin_write(cmd, ctx)
        ns = f"{db}.{cmd['update']}"
        stmts, ordered = cmd.get("updates", []), cmd.get("ordered", True)
        entries = []
        for u in stmts:
            replacement = bool(u["u"]) and not isinstance(u["u"], list) and \
                not next(iter(u["u"])).startswith("$")
            e = write_entry(ns, "update", key_of(u["q"]), u["u"], filter=u["q"],
                            multi=u.get("multi", False), upsert=u.get("upsert", False),
                            replacement=replacement)
            if "arrayFilters" in u:
                e["array_filters"] = u["arrayFilters"]
            entries.append(e)
        if cached is not None:
            return self.finish_write(cmd, ctx, entries, cached, [False] * len(stmts))
        n = n_mod = 0
        upserted, errors, applied = [], [], []
        for i, u in enumerate(stmts):
            if errors and ordered:
                entries[i]["_executed"] = False
                applied.append(False)
                continue
            try:
                m, mod, up_id, _, _ = self.store.update(
                    ns, u["q"], u["u"], u.get("multi", False), u.get("upsert", False),
                    u.get("arrayFilters"))
            except StoreError as e:
                errors.append({"index": i, "code": e.code, "codeName": e.code_name,
                               "errmsg": str(e)})
                applied.append(False)
                continue
            n += m
            n_mod += mod
            if up_id is not None:
                upserted.append({"index": i, "_id": up_id})
                entries[i]["upserted_id"] = up_id
            entries[i]["result"] = {"n": m, "nModified": mod}
            applied.append(mod > 0 or up_id is not None)
        reply = {"n": n, "nModified": n_mod, "ok": 1.0}
        if upserted:
            reply["upserted"] = upserted
        if errors:
            reply["writeErrors"] = errors
        return self.finish_write(cmd, ctx, entries, reply, applied)

    def cmd_delete(self, db, cmd, ctx):
        cached = self.begin_write(cmd, ctx)
        ns = f"{db}.{cmd['delete']}"
        stmts = cmd.get("deletes", [])  # no delete can fail here, so ordered does not matter
        entries = [write_entry(ns, "delete", key_of(d["q"]), None, filter=d["q"],
                               limit=d.get("limit", 0)) for d in stmts]
        if cached is not None:
            return self.finish_write(cmd, ctx, entries, cached, [False] * len(stmts))
        n, applied = 0, []
        for i, d in enumerate(stmts):
            k, _ = self.store.delete(ns, d["q"], 1 if d.get("limit") else 0)
            entries[i]["result"] = {"n": k}
            n += k
            applied.append(k > 0)
        return self.finish_write(cmd, ctx, entries, {"n": n, "ok": 1.0}, applied)

    def cmd_findAndModify(self, db, cmd, ctx):
        cached = self.begin_write(cmd, ctx)
        ns = f"{db}.{cmd['findAndModify']}"
        q, remove = cmd.get("query", {}), cmd.get("remove", False)
        e = write_entry(ns, "findAndModify", key_of(q), None if remove else cmd.get("update"),
                        filter=q, remove=remove, upsert=cmd.get("upsert", False),
                        new=cmd.get("new", False))
        if "arrayFilters" in cmd:
            e["array_filters"] = cmd["arrayFilters"]
        if cached is not None:
            return self.finish_write(cmd, ctx, [e], cached, [False])
        if remove:
            n, old = self.store.delete(ns, q, 1)
            leo, value, applied = {"n": n}, old, n > 0
        else:
            n, mod, up_id, old, new = self.store.update(
                ns, q, cmd["update"], False, cmd.get("upsert", False), cmd.get("arrayFilters"))
            leo = {"n": n, "updatedExisting": old is not None}
            if up_id is not None:
                leo["upserted"] = up_id
                e["upserted_id"] = up_id
            value, applied = (new if cmd.get("new") else old), (mod > 0 or up_id is not None)
        e["result"] = leo
        return self.finish_write(cmd, ctx, [e], {"lastErrorObject": leo, "value": value,
                                                 "ok": 1.0}, [applied])

    # transactions -----------------------------------------------------------------
    def end_txn(self, cmd, ctx, commit):
        lsid = cmd["lsid"]["id"]
        key = bytes(lsid.bytes) if hasattr(lsid, "bytes") else repr(lsid)
        txn = self.txns.get(key)
        op = "commitTransaction" if commit else "abortTransaction"
        e = write_entry("admin.$cmd", op, None, {"txnNumber": cmd.get("txnNumber")})
        e.update(lsid=True, txnNumber=cmd.get("txnNumber"), autocommit=cmd.get("autocommit"),
                 write_concern=cmd.get("writeConcern"), request_id=ctx["req_id"],
                 connection=ctx["conn"]["id"])
        if txn is None or txn["txn"] != cmd.get("txnNumber"):
            reply = {"ok": 0.0, "errmsg": "Transaction not found", "code": 251,
                     "codeName": "NoSuchTransaction", "errorLabels": ["TransientTransactionError"]}
            e.update(outcome_as_responded="rejected", reason="NoSuchTransaction", applied=False)
        else:
            del self.txns[key]
            if not commit:
                self.store.colls, self.store.indexes = txn["undo"]
            ctx["optime"] = self.tick() if commit else self.now_ts()
            for w in txn["entries"]:
                w["outcome_as_responded"] = "committed" if commit else "rejected"
                w["reason"] = "transaction committed" if commit else "transaction aborted"
                w["optime"] = ctx["optime"] if commit else None
                w["applied"] = commit
            reply = {"ok": 1.0}
            e.update(outcome_as_responded="committed" if commit else "rejected",
                     reason=None if commit else "transaction aborted", applied=commit,
                     optime=ctx["optime"], statements=len(txn["entries"]))
        self.truth.write(e)
        return reply

    def cmd_commitTransaction(self, db, cmd, ctx):
        return self.end_txn(cmd, ctx, True)

    def cmd_abortTransaction(self, db, cmd, ctx):
        return self.end_txn(cmd, ctx, False)

    # reads -----------------------------------------------------------------------
    def cursor_reply(self, ns, docs, batch):
        out, rest = (docs[:batch], docs[batch:]) if batch else (docs, [])
        cid = 0
        if rest:
            self.next_cursor += 1
            cid = self.next_cursor
            self.cursors[cid] = (ns, rest)
        return {"cursor": {"id": Int64(cid), "ns": ns, "firstBatch": out}, "ok": 1.0}

    def cmd_find(self, db, cmd, ctx):
        ns = f"{db}.{cmd['find']}"
        docs = self.store.find(ns, cmd.get("filter", {}))
        for k, d in reversed(list((cmd.get("sort") or {}).items())):
            docs.sort(key=lambda x: (x.get(k) is None, x.get(k)), reverse=d < 0)
        docs = docs[cmd.get("skip", 0):]
        if cmd.get("limit"):
            docs = docs[:abs(cmd["limit"])]
        batch = 1 if cmd.get("singleBatch") else cmd.get("batchSize", 101)
        return self.cursor_reply(ns, docs, batch)

    def cmd_getMore(self, db, cmd, ctx):
        cid = int(cmd["getMore"])
        if cid not in self.cursors:
            return {"ok": 0.0, "errmsg": f"cursor id {cid} not found", "code": 43,
                    "codeName": "CursorNotFound"}
        ns, rest = self.cursors.pop(cid)
        batch = cmd.get("batchSize") or len(rest)
        out, rest = rest[:batch], rest[batch:]
        if rest:
            self.cursors[cid] = (ns, rest)
        return {"cursor": {"id": Int64(cid if rest else 0), "ns": ns, "nextBatch": out},
                "ok": 1.0}

    def cmd_killCursors(self, db, cmd, ctx):
        ids = [c for c in cmd.get("cursors", []) if self.cursors.pop(int(c), None)]
        return {"cursorsKilled": ids, "cursorsNotFound": [], "cursorsAlive": [],
                "cursorsUnknown": [], "ok": 1.0}

    def cmd_aggregate(self, db, cmd, ctx):
        ns = f"{db}.{cmd['aggregate']}"
        docs = self.store.find(ns, {})
        for stage in cmd.get("pipeline", []):
            (op, arg), = stage.items()
            if op == "$match":
                docs = [d for d in docs if matches(d, arg)]
            elif op == "$skip":
                docs = docs[arg:]
            elif op == "$limit":
                docs = docs[:arg]
            elif op == "$group" and list(arg.get("n", {}).keys()) == ["$sum"]:
                docs = [{"_id": arg["_id"], "n": len(docs)}] if docs else []
            else:
                raise StoreError(f"unsupported aggregation stage {op}")
        return self.cursor_reply(ns, docs, cmd.get("cursor", {}).get("batchSize", 101))

    def cmd_listCollections(self, db, cmd, ctx):
        docs = [{"name": ns.split(".", 1)[1], "type": "collection", "options": {},
                 "info": {"readOnly": False}, "idIndex": {"v": 2, "key": {"_id": 1},
                                                          "name": "_id_"}}
                for ns in self.store.colls if ns.split(".", 1)[0] == db]
        docs = [d for d in docs if matches(d, cmd.get("filter", {}))]
        return self.cursor_reply(f"{db}.$cmd.listCollections", docs, 0)

    def cmd_listIndexes(self, db, cmd, ctx):
        ns = f"{db}.{cmd['listIndexes']}"
        return self.cursor_reply(ns, self.store.indexes.get(ns, []), 0)

    # DDL ---------------------------------------------------------------------------
    def ddl(self, cmd, ctx, ns, op, body):
        self.begin_write(cmd, ctx)
        values = {k: v for k, v in cmd.items() if k not in GENERIC}
        e = write_entry(ns, op, None, values)
        ok = body.get("ok")
        return self.finish_write(cmd, ctx, [e], body, [bool(ok)])

    def cmd_create(self, db, cmd, ctx):
        ns = f"{db}.{cmd['create']}"
        if ns in self.store.colls:
            body = {"ok": 0.0, "errmsg": f"Collection {ns} already exists.", "code": 48,
                    "codeName": "NamespaceExists"}
        else:
            self.store.coll(ns)
            body = {"ok": 1.0}
        return self.ddl(cmd, ctx, ns, "create", body)

    def cmd_createIndexes(self, db, cmd, ctx):
        ns = f"{db}.{cmd['createIndexes']}"
        created = ns not in self.store.colls
        self.store.coll(ns)
        idx = self.store.indexes[ns]
        before = len(idx)
        for spec in cmd["indexes"]:
            if all(i["name"] != spec["name"] for i in idx):
                idx.append({"v": 2, **spec})
        return self.ddl(cmd, ctx, ns, "createIndexes", {
            "numIndexesBefore": before, "numIndexesAfter": len(idx),
            "createdCollectionAutomatically": created, "ok": 1.0})

    def cmd_dropIndexes(self, db, cmd, ctx):
        ns = f"{db}.{cmd['dropIndexes']}"
        idx = self.store.indexes.get(ns, [])
        was, name = len(idx), cmd.get("index")
        keep = [i for i in idx if i["name"] == "_id_" or (name != "*" and i["name"] != name)]
        if ns in self.store.indexes:
            self.store.indexes[ns] = keep
        body = {"nIndexesWas": was, "ok": 1.0} if len(keep) < was or name == "*" else {
            "ok": 0.0, "errmsg": f"index not found with name [{name}]", "code": 27,
            "codeName": "IndexNotFound"}
        return self.ddl(cmd, ctx, ns, "dropIndexes", body)

    def cmd_renameCollection(self, db, cmd, ctx):
        src, dst = cmd["renameCollection"], cmd["to"]
        if src not in self.store.colls:
            body = {"ok": 0.0, "errmsg": "source namespace does not exist", "code": 26,
                    "codeName": "NamespaceNotFound"}
        elif dst in self.store.colls and not cmd.get("dropTarget"):
            body = {"ok": 0.0, "errmsg": "target namespace exists", "code": 48,
                    "codeName": "NamespaceExists"}
        else:
            self.store.colls[dst] = self.store.colls.pop(src)
            self.store.indexes[dst] = self.store.indexes.pop(src)
            body = {"ok": 1.0}
        return self.ddl(cmd, ctx, src, "renameCollection", body)

    def cmd_drop(self, db, cmd, ctx):
        ns = f"{db}.{cmd['drop']}"
        was = len(self.store.indexes.get(ns, []))
        self.store.drop(ns)
        return self.ddl(cmd, ctx, ns, "drop", {"nIndexesWas": was, "ns": ns, "ok": 1.0})

    def cmd_dropDatabase(self, db, cmd, ctx):
        for ns in [n for n in self.store.colls if n.split(".", 1)[0] == db]:
            self.store.drop(ns)
        return self.ddl(cmd, ctx, f"{db}.$cmd", "dropDatabase", {"dropped": db, "ok": 1.0})


def key_of(flt):
    """`key` of a write line: {_id: v} when the filter fixes _id by equality."""
    v = (flt or {}).get("_id")
    if v is not None and not (isinstance(v, dict) and any(k.startswith("$") for k in v)):
        return {"_id": v}
    if isinstance(v, dict) and set(v) == {"$eq"}:
        return {"_id": v["$eq"]}
    return flt


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=27017)
    ap.add_argument("--compressors", default="snappy,zlib,zstd",
                    help="compressors the responder accepts, in preference order")
    ap.add_argument("--truth", required=True, help="where to write the truth JSON on exit")
    ap.add_argument("--capture", default="", help="capture name for the truth file")
    ap.add_argument("--scram", default="", help="USER:PASSWORD to require SCRAM-SHA-256")
    a = ap.parse_args()
    scram = None
    if a.scram:
        from mongo_scram import Scram
        scram = Scram(*a.scram.split(":", 1))
    truth = Truth(a.capture)
    r = Responder(a.port, a.host, [c for c in a.compressors.split(",") if c], truth, scram)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: r.stop.set())
    r.serve()
    truth.save(a.truth, r)


if __name__ == "__main__":
    main()
