#!/usr/bin/env python3
"""A small CQL native-protocol responder, written from the protocol specs, that answers
the real Python cassandra-driver well enough to record captures.

Supports protocol v4 (frame compression lz4 or snappy, negotiated in STARTUP) and v5
(segment framing with CRC24 header and CRC32 payload after READY/AUTHENTICATE, segments
lz4-compressed when negotiated), OPTIONS/SUPPORTED, STARTUP/READY, REGISTER,
PasswordAuthenticator (SASL PLAIN), system.local / system.peers(_v2) / system_schema
queries (schema tables answered with zero rows), USE, PREPARE (bind metadata with
partition key indexes, v5 result_metadata_id), EXECUTE, QUERY and BATCH.

Writes get RESULT Void; LWTs get Rows with [applied] (IF NOT EXISTS is applied when
the primary key was not written before, IF EXISTS when it was). Designated statements
get errors: a request whose body contains the marker
  __WTO_<WRITETYPE>_<received>_<blockfor>__  gets ERROR WriteTimeout,
  __UNAVAILABLE_<required>_<alive>__         gets ERROR Unavailable.
Every frame is logged (one JSON object per line) to --log.
"""
import argparse
import hashlib
import json
import os
import re
import socket
import socketserver
import struct
import sys
import threading
import zlib

import lz4.block
import snappy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cql_schema  # noqa: E402
from cql_system_tables import system_tables  # noqa: E402

OPCODES = {0x00: "ERROR", 0x01: "STARTUP", 0x02: "READY", 0x03: "AUTHENTICATE",
           0x05: "OPTIONS", 0x06: "SUPPORTED", 0x07: "QUERY", 0x08: "RESULT",
           0x09: "PREPARE", 0x0A: "EXECUTE", 0x0B: "REGISTER", 0x0C: "EVENT",
           0x0D: "BATCH", 0x0E: "AUTH_CHALLENGE", 0x0F: "AUTH_RESPONSE",
           0x10: "AUTH_SUCCESS"}
OP = {name: code for code, name in OPCODES.items()}
CONSISTENCY = ["ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM",
               "EACH_QUORUM", "SERIAL", "LOCAL_SERIAL", "LOCAL_ONE"]
TYPE_IDS = {"ascii": 0x01, "bigint": 0x02, "blob": 0x03, "boolean": 0x04,
            "counter": 0x05, "decimal": 0x06, "double": 0x07, "float": 0x08,
            "int": 0x09, "timestamp": 0x0B, "uuid": 0x0C, "text": 0x0D,
            "varchar": 0x0D, "varint": 0x0E, "timeuuid": 0x0F, "inet": 0x10,
            "date": 0x11, "time": 0x12, "smallint": 0x13, "tinyint": 0x14,
            "duration": 0x15, "list": 0x20, "map": 0x21, "set": 0x22,
            "udt": 0x30, "tuple": 0x31}
MARSHAL = {"float": "FloatType", "double": "DoubleType", "int": "Int32Type",
           "bigint": "LongType", "text": "UTF8Type", "smallint": "ShortType",
           "tinyint": "ByteType", "boolean": "BooleanType", "uuid": "UUIDType"}

RESULT_VOID, RESULT_ROWS, RESULT_SET_KEYSPACE, RESULT_PREPARED = 1, 2, 3, 4
ROWS_GLOBAL_SPEC, ROWS_NO_METADATA = 0x0001, 0x0004



# ---------------------------------------------------------------- primitives

def p_short(n):
    return struct.pack(">H", n)


def p_int(n):
    return struct.pack(">i", n)


def p_string(s):
    b = s.encode()
    return p_short(len(b)) + b


def p_long_string(s):
    b = s.encode()
    return p_int(len(b)) + b


def p_bytes(b):
    return p_int(-1) if b is None else p_int(len(b)) + b


def p_short_bytes(b):
    return p_short(len(b)) + b


def p_string_list(items):
    return p_short(len(items)) + b"".join(p_string(s) for s in items)


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("truncated body")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def byte(self):
        return self.take(1)[0]

    def short(self):
        return struct.unpack(">H", self.take(2))[0]

    def int(self):
        return struct.unpack(">i", self.take(4))[0]

    def long(self):
        return struct.unpack(">q", self.take(8))[0]

    def string(self):
        return self.take(self.short()).decode()

    def long_string(self):
        return self.take(self.int()).decode()

    def bytes(self):
        n = self.int()
        return None if n < 0 else self.take(n)

    def short_bytes(self):
        return self.take(self.short())

    def value(self):
        n = self.int()
        if n == -2:
            return "UNSET"
        return None if n < 0 else self.take(n)

    def string_map(self):
        return {self.string(): self.string() for _ in range(self.short())}


# ---------------------------------------------------------------- types

def type_option(ctype):
    """CQL type string -> [option] bytes (spec section 4.2.5.2)."""
    head, args = cql_schema.split_type(ctype)
    if head == "frozen":
        return type_option(args[0])
    if head == "vector":
        sub, dim = args
        cls = "org.apache.cassandra.db.marshal.VectorType(org.apache.cassandra.db.marshal.%s,%s)" % (
            MARSHAL[sub.strip()], dim.strip())
        return p_short(0) + p_string(cls)
    if head in ("list", "set"):
        return p_short(TYPE_IDS[head]) + type_option(args[0])
    if head == "map":
        return p_short(TYPE_IDS[head]) + type_option(args[0]) + type_option(args[1])
    if head == "tuple":
        return p_short(TYPE_IDS[head]) + p_short(len(args)) + b"".join(type_option(a) for a in args)
    if head in cql_schema.TYPES:
        fields = cql_schema.TYPES[head]
        return (p_short(TYPE_IDS["udt"]) + p_string(cql_schema.KEYSPACE) + p_string(head)
                + p_short(len(fields))
                + b"".join(p_string(n) + type_option(t) for n, t in fields))
    return p_short(TYPE_IDS[head])


def encode_value(ctype, v):
    """Serialize the few types the responder's own system rows need."""
    if v is None:
        return None
    head, args = cql_schema.split_type(ctype)
    if head == "frozen":
        return encode_value(args[0], v)
    if head in ("text", "ascii", "varchar"):
        return v.encode()
    if head == "double":
        return struct.pack(">d", v)
    if head == "bigint":
        return struct.pack(">q", v)
    if head == "int":
        return struct.pack(">i", v)
    if head == "boolean":
        return b"\x01" if v else b"\x00"
    if head in ("uuid", "timeuuid"):
        return v.bytes
    if head == "inet":
        return socket.inet_aton(v)
    if head == "blob":
        return v
    if head in ("set", "list"):
        return p_int(len(v)) + b"".join(p_bytes(encode_value(args[0], x)) for x in v)
    if head == "map":
        return p_int(len(v)) + b"".join(
            p_bytes(encode_value(args[0], k)) + p_bytes(encode_value(args[1], x)) for k, x in v.items())
    raise ValueError("no encoder for " + ctype)


# ---------------------------------------------------------------- CQL analysis

TOKEN_RE = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|<=|>=|!=|[A-Za-z_0-9.\-]+|\S")


class Statement:
    """What the responder needs to know about one CQL statement."""

    def __init__(self, text, keyspace):
        self.text = text
        self.tokens = TOKEN_RE.findall(text)
        up = [t.upper() for t in self.tokens]
        self.kind = up[0] if up else ""
        self.keyspace, self.table = keyspace, None
        self.binds = []  # [(name, type)]
        self.lwt = None
        self.select_list = None
        if "IF" in up:
            i = up.index("IF")
            rest = up[i + 1:i + 3]
            self.lwt = ("if_not_exists" if rest == ["NOT", "EXISTS"]
                        else "if_exists" if rest[:1] == ["EXISTS"] else "if_condition")
        if self.kind == "SELECT" and "FROM" in up:
            self.select_list = [t for t in self.tokens[1:up.index("FROM")] if t != ","]
        anchor = {"INSERT": "INTO", "UPDATE": "UPDATE", "DELETE": "FROM", "SELECT": "FROM",
                  "TRUNCATE": "TRUNCATE"}.get(self.kind)
        if anchor and anchor in up:
            i = up.index(anchor) + 1
            if self.kind == "TRUNCATE" and up[i] == "TABLE":
                i += 1
            name = self.tokens[i].replace('"', "")
            if "." in name:
                self.keyspace, self.table = name.split(".", 1)
            else:
                self.table = name
            self._find_binds(i + 1)

    def is_write(self):
        return self.kind in ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "BEGIN")

    def col_type(self, col):
        if self.keyspace == cql_schema.KEYSPACE and self.table in cql_schema.TABLES:
            try:
                return cql_schema.column_type(self.table, col)
            except KeyError:
                pass
        return "blob"

    def _find_binds(self, start):
        toks, up = self.tokens, [t.upper() for t in self.tokens]
        insert_cols = []
        if self.kind == "INSERT" and start < len(toks) and toks[start] == "(":
            j = start + 1
            while toks[j] != ")":
                if toks[j] != ",":
                    insert_cols.append(toks[j].replace('"', ""))
                j += 1
        in_values, depth, position = False, 0, 0
        for i, tok in enumerate(toks):
            if self.kind == "INSERT" and up[i] == "VALUES":
                in_values = True
                continue
            if in_values and tok in "([{":
                depth += 1
            elif in_values and tok in ")]}":
                depth -= 1
                if depth == 0:
                    in_values = False
            elif in_values and depth == 1 and tok == ",":
                position += 1
            if tok != "?":
                continue
            prev, prev2 = up[i - 1], up[i - 2] if i >= 2 else ""
            if in_values and depth == 1:
                col = insert_cols[position]
                self.binds.append((col, self.col_type(col)))
            elif prev == "TTL":
                self.binds.append(("[ttl]", "int"))
            elif prev == "TIMESTAMP" and prev2 in ("USING", "AND"):
                self.binds.append(("[timestamp]", "bigint"))
            elif prev == "LIMIT":
                self.binds.append(("[limit]", "int"))
            elif prev == "[":  # m[?] or l[?]
                col = toks[i - 2]
                head, args = cql_schema.split_type(cql_schema.unfrozen(self.col_type(col)))
                if head == "map":
                    self.binds.append(("key(%s)" % col, args[0]))
                else:
                    self.binds.append(("idx(%s)" % col, "int"))
            elif prev in ("=", "<", ">", "<=", ">=", "!=", "CONTAINS"):
                if prev2 == "]":  # m[k] = ?
                    j = i - 2
                    while toks[j] != "[":
                        j -= 1
                    col = toks[j - 1]
                    head, args = cql_schema.split_type(cql_schema.unfrozen(self.col_type(col)))
                    self.binds.append(("value(%s)" % col, args[-1]))
                else:
                    col = toks[i - 2].replace('"', "")
                    self.binds.append((col, self.col_type(col)))
            elif prev in ("+", "-"):  # c = c + ?, l = l + ?, m = m - ?
                col = toks[i - 2].replace('"', "")
                ctype = self.col_type(col)
                head, args = cql_schema.split_type(cql_schema.unfrozen(ctype))
                if head == "map" and prev == "-":
                    ctype = "set<%s>" % args[0]
                self.binds.append((col, ctype))
            elif prev == "IN":
                col = toks[i - 2].replace('"', "")
                self.binds.append(("in(%s)" % col, "list<%s>" % self.col_type(col)))
            else:
                self.binds.append(("?%d" % len(self.binds), "blob"))

    def equalities(self):
        """(column, string literal) pairs from `col = 'literal'` in the statement."""
        out = []
        for i in range(2, len(self.tokens)):
            if self.tokens[i - 1] == "=" and self.tokens[i].startswith("'"):
                out.append((self.tokens[i - 2], self.tokens[i][1:-1].replace("''", "'")))
        return out

    def pk_indexes(self):
        if self.table not in cql_schema.TABLES:
            return []
        names = [n for n, _ in self.binds]
        pk = cql_schema.TABLES[self.table]["partition_key"]
        if not all(c in names for c in pk):
            return []
        return [names.index(c) for c in pk]

    def key_of(self, values):
        """The bound primary key as a tuple of raw bytes, or None."""
        if self.table not in cql_schema.TABLES:
            return None
        t = cql_schema.TABLES[self.table]
        names = [n for n, _ in self.binds]
        try:
            return (self.table,) + tuple(values[names.index(c)]
                                         for c in t["partition_key"] + t["clustering"])
        except (ValueError, IndexError):
            return None


def parse_params(r, version):
    """<query_parameters> of QUERY and EXECUTE (spec 4.1.4)."""
    p = {"consistency": CONSISTENCY[r.short()], "values": []}
    flags = r.int() if version >= 5 else r.byte()
    if flags & 0x01:
        for _ in range(r.short()):
            if flags & 0x40:
                r.string()
            p["values"].append(r.value())
    if flags & 0x04:
        p["page_size"] = r.int()
    if flags & 0x08:
        r.bytes()
    if flags & 0x10:
        p["serial_consistency"] = CONSISTENCY[r.short()]
    if flags & 0x20:
        p["timestamp"] = r.long()
    if version >= 5 and flags & 0x80:
        p["keyspace"] = r.string()
    if version >= 5 and flags & 0x100:
        p["now_in_seconds"] = r.int()
    p["skip_metadata"] = bool(flags & 0x02)
    return p


MARKER_WTO = re.compile(rb"__WTO_([A-Z_]+?)_(\d+)_(\d+)__")
MARKER_UNAVAILABLE = re.compile(rb"__UNAVAILABLE_(\d+)_(\d+)__")


# ---------------------------------------------------------------- v5 segments

CRC24_INIT, CRC24_POLY = 0x875060, 0x1974F0B
CRC32_INIT = zlib.crc32(b"\xfa\x2d\x55\xca")
MAX_SEGMENT_PAYLOAD = 128 * 1024 - 1


def crc24(data):
    crc = CRC24_INIT
    for b in data:
        crc ^= b << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= CRC24_POLY
    return crc & 0xFFFFFF


def encode_segments(payload, compress, stats=None):
    out = b""
    chunks = [payload[i:i + MAX_SEGMENT_PAYLOAD] for i in range(0, len(payload), MAX_SEGMENT_PAYLOAD)]
    self_contained = 1 if len(chunks) == 1 else 0
    for chunk in chunks:
        if compress:
            packed = lz4.block.compress(chunk, store_size=False)
            if len(packed) < len(chunk):
                body, ulen = packed, len(chunk)
            else:
                body, ulen = chunk, 0
            header = (len(body) | ulen << 17 | self_contained << 34).to_bytes(5, "little")
        else:
            body, ulen = chunk, 0
            header = (len(body) | self_contained << 17).to_bytes(3, "little")
        if stats is not None:
            stats["lz4" if ulen else "stored"] += 1
        out += header + crc24(header).to_bytes(3, "little") + body
        out += zlib.crc32(body, CRC32_INIT).to_bytes(4, "little")
    return out


# ---------------------------------------------------------------- connection

class State:
    """Shared across connections: prepared statements, written keys, the log."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.prepared = {}
        self.keys = set()
        self.log = open(args.log, "w") if args.log else None
        self.conn_ids = 0
        self.system = system_tables(args.host, args.port, args.dc, args.rack)

    def write_log(self, entry):
        if self.log:
            with self.lock:
                self.log.write(json.dumps(entry) + "\n")
                self.log.flush()


class Handler(socketserver.BaseRequestHandler):
    def setup(self):
        st = self.server.state
        with st.lock:
            st.conn_ids += 1
            self.conn = st.conn_ids
        self.version = None
        self.compression = None
        self.framing = False
        self.keyspace = None
        self.raw = b""      # bytes off the socket
        self.frames = b""   # frame bytes (after segment decoding, in v5)
        self.segments = {"c2s": {"lz4": 0, "stored": 0}, "s2c": {"lz4": 0, "stored": 0}}

        self.bytes = {"c2s": 0, "s2c": 0}

    def finish(self):
        entry = {"conn": self.conn, "bytes": self.bytes}
        if self.framing:
            entry["segments"] = self.segments
        self.server.state.write_log(entry)

    def handle(self):
        sock = self.request
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            self.bytes["c2s"] += len(data)
            self.raw += data
            try:
                self.pump()
            except (BrokenPipeError, ConnectionResetError):
                break
            except Exception as exc:  # a bug here should be visible, not silent
                self.server.state.write_log({"conn": self.conn, "error": repr(exc)})
                raise

    def pump(self):
        while True:
            if not self.framing:
                self.frames += self.raw
                self.raw = b""
            if len(self.frames) >= 9:
                version, flags, stream, opcode, length = struct.unpack(">BBhBi", self.frames[:9])
                if len(self.frames) >= 9 + length:
                    body = self.frames[9:9 + length]
                    self.frames = self.frames[9 + length:]
                    self.dispatch(version, flags, stream, opcode, body)
                    continue
            if self.framing and self.unsegment():
                continue
            return

    def unsegment(self):
        """Move one whole v5 segment from raw into frames; False if incomplete."""
        compressed = self.compression == "lz4"
        hlen = 5 if compressed else 3
        if len(self.raw) < hlen + 3:
            return False
        header = self.raw[:hlen]
        h = int.from_bytes(header, "little")
        plen = h & MAX_SEGMENT_PAYLOAD
        ulen = (h >> 17) & MAX_SEGMENT_PAYLOAD if compressed else 0
        total = hlen + 3 + plen + 4
        if len(self.raw) < total:
            return False
        crc_ok = int.from_bytes(self.raw[hlen:hlen + 3], "little") == crc24(header)
        payload = self.raw[hlen + 3:hlen + 3 + plen]
        crc_ok &= int.from_bytes(self.raw[total - 4:total], "little") == zlib.crc32(payload, CRC32_INIT)
        if not crc_ok:
            self.server.state.write_log({"conn": self.conn, "error": "segment crc mismatch"})
        self.segments["c2s"]["lz4" if compressed and ulen > 0 else "stored"] += 1
        if compressed and ulen > 0:
            payload = lz4.block.decompress(payload, uncompressed_size=ulen)
        self.raw = self.raw[total:]
        self.frames += payload
        return True

    # -- sending

    def send(self, stream, opcode, body, request=None, note=None):
        flags = 0
        if self.version < 5 and self.compression and body:
            if self.compression == "lz4":
                body = struct.pack(">i", len(body)) + lz4.block.compress(body, store_size=False)
            else:
                body = snappy.compress(body)
            flags |= 0x01
        frame = struct.pack(">BBhBi", 0x80 | self.version, flags, stream, opcode, len(body)) + body
        if self.framing:
            frame = encode_segments(frame, self.compression == "lz4", self.segments["s2c"])
        self.request.sendall(frame)
        self.bytes["s2c"] += len(frame)
        entry = {"conn": self.conn, "dir": "s2c", "opcode": OPCODES[opcode], "stream": stream,
                 "version": self.version, "compressed": bool(flags & 1), "segment": self.framing}
        if note:
            entry.update(note)
        self.server.state.write_log(entry)

    def error(self, stream, code, message, extra=b"", note=None):
        self.send(stream, OP["ERROR"], p_int(code) + p_string(message) + extra, note=note)

    def rows(self, stream, keyspace, table, columns, rows, note=None):
        body = p_int(RESULT_ROWS) + p_int(ROWS_GLOBAL_SPEC) + p_int(len(columns))
        body += p_string(keyspace) + p_string(table)
        body += b"".join(p_string(n) + type_option(t) for n, t in columns)
        body += p_int(len(rows))
        for row in rows:
            body += b"".join(p_bytes(v) for v in row)
        self.send(stream, OP["RESULT"], body, note=note)

    # -- receiving

    def dispatch(self, version, flags, stream, opcode, body):
        st = self.server.state
        name = OPCODES.get(opcode, "0x%02x" % opcode)
        compressed = bool(flags & 0x01) and version < 5
        if compressed:
            if self.compression == "lz4":
                n = struct.unpack(">i", body[:4])[0]
                body = lz4.block.decompress(body[4:], uncompressed_size=n)
            else:
                body = snappy.decompress(body)
        if self.version is None:
            self.version = version & 0x7F
        entry = {"conn": self.conn, "dir": "c2s", "opcode": name, "stream": stream,
                 "version": version, "compressed": compressed, "segment": self.framing}
        r = Reader(body)
        if flags & 0x04:  # custom payload
            for _ in range(r.short()):
                r.string()
                r.bytes()
        handler = getattr(self, "on_" + name.lower(), None)
        if handler is None:
            st.write_log(entry)
            self.error(stream, 0x000A, "unsupported opcode " + name)
            return
        handler(stream, r, body, entry)

    def on_options(self, stream, r, body, entry):
        self.server.state.write_log(entry)
        self.send(stream, OP["SUPPORTED"],
                  p_short(3)
                  + p_string("CQL_VERSION") + p_string_list(["3.4.6"])
                  + p_string("COMPRESSION") + p_string_list(["snappy", "lz4"])
                  + p_string("PROTOCOL_VERSIONS") + p_string_list(["3/v3", "4/v4", "5/v5"]))

    def on_startup(self, stream, r, body, entry):
        opts = r.string_map()
        entry["options"] = opts
        self.server.state.write_log(entry)
        self.compression = opts.get("COMPRESSION")
        if self.server.state.args.auth:
            self.send(stream, OP["AUTHENTICATE"],
                      p_string("org.apache.cassandra.auth.PasswordAuthenticator"))
        else:
            self.send(stream, OP["READY"], b"")
        if self.version >= 5:
            self.framing = True

    def on_auth_response(self, stream, r, body, entry):
        token = r.bytes() or b""
        parts = token.split(b"\x00")
        user = parts[1].decode() if len(parts) == 3 else None
        entry["user"] = user  # the password is never logged
        self.server.state.write_log(entry)
        expected = self.server.state.args.auth
        if len(parts) == 3 and (parts[1] + b":" + parts[2]).decode() == expected:
            self.send(stream, OP["AUTH_SUCCESS"], p_bytes(None))
        else:
            self.error(stream, 0x0100, "Provided username and/or password are incorrect")

    def on_register(self, stream, r, body, entry):
        entry["events"] = [r.string() for _ in range(r.short())]
        self.server.state.write_log(entry)
        self.send(stream, OP["READY"], b"")

    def on_prepare(self, stream, r, body, entry):
        text = r.long_string()
        keyspace = self.keyspace
        if self.version >= 5 and r.int() & 0x01:
            keyspace = r.string()
        stmt = Statement(text, keyspace)
        qid = hashlib.md5(((stmt.keyspace or "") + text).encode()).digest()
        meta_id = hashlib.md5(b"no result metadata").digest()
        with self.server.state.lock:
            self.server.state.prepared[qid] = stmt
        entry["query"] = text
        self.server.state.write_log(entry)
        pk = stmt.pk_indexes()
        out = p_int(RESULT_PREPARED) + p_short_bytes(qid)
        if self.version >= 5:
            out += p_short_bytes(meta_id)
        out += p_int(ROWS_GLOBAL_SPEC) + p_int(len(stmt.binds)) + p_int(len(pk))
        out += b"".join(p_short(i) for i in pk)
        out += p_string(stmt.keyspace or "") + p_string(stmt.table or "")
        out += b"".join(p_string(n) + type_option(t) for n, t in stmt.binds)
        out += p_int(ROWS_NO_METADATA) + p_int(0)  # result metadata: none for writes
        self.send(stream, OP["RESULT"], out, note={"result": "Prepared"})

    def on_query(self, stream, r, body, entry):
        text = r.long_string()
        params = parse_params(r, self.version)
        entry.update(query=text, consistency=params["consistency"])
        self.server.state.write_log(entry)
        stmt = Statement(text, params.get("keyspace", self.keyspace))
        if stmt.kind == "USE":
            self.keyspace = stmt.tokens[1].replace('"', "")
            self.send(stream, OP["RESULT"], p_int(RESULT_SET_KEYSPACE) + p_string(self.keyspace),
                      note={"result": "Set_keyspace"})
        elif stmt.kind == "SELECT":
            self.select(stream, stmt)
        elif stmt.is_write():
            self.write(stream, body, stmt, params, [])
        else:
            self.send(stream, OP["RESULT"], p_int(RESULT_VOID), note={"result": "Void"})

    def on_execute(self, stream, r, body, entry):
        qid = r.short_bytes()
        if self.version >= 5:
            r.short_bytes()  # result_metadata_id
        params = parse_params(r, self.version)
        stmt = self.server.state.prepared.get(qid)
        entry.update(query=stmt.text if stmt else None, consistency=params["consistency"])
        self.server.state.write_log(entry)
        if stmt is None:
            self.error(stream, 0x2500, "Prepared query with ID %s not found" % qid.hex(),
                       p_short_bytes(qid), note={"result": "Unprepared"})
        elif stmt.kind == "SELECT":
            self.select(stream, stmt)
        else:
            self.write(stream, body, stmt, params, params["values"])

    def on_batch(self, stream, r, body, entry):
        kind = r.byte()
        members = []
        for _ in range(r.short()):
            if r.byte() == 0:
                members.append(r.long_string())
            else:
                qid = r.short_bytes()
                stmt = self.server.state.prepared.get(qid)
                members.append(stmt.text if stmt else "?unprepared " + qid.hex())
            for _ in range(r.short()):
                r.value()
        consistency = CONSISTENCY[r.short()]
        entry.update(batch_type=["LOGGED", "UNLOGGED", "COUNTER"][kind], queries=members,
                     consistency=consistency)
        self.server.state.write_log(entry)
        self.write(stream, body, None, {"consistency": consistency}, [])

    # -- answers

    def select(self, stream, stmt):
        st = self.server.state
        found = st.system.get((stmt.keyspace, stmt.table))
        if found is None and stmt.keyspace == cql_schema.KEYSPACE and stmt.table in cql_schema.TABLES:
            found = (cql_schema.TABLES[stmt.table]["columns"], [])  # user tables: no rows
        if found is None:  # anything else: no rows (the driver cannot take zero columns)
            found = ([("[json]", "text")], [])
        columns, rows = found
        names = [n for n, _ in columns]
        for col, literal in stmt.equalities():
            if col in names and col != "key":
                i = names.index(col)
                rows = [row for row in rows if row[i] == literal]
        if stmt.select_list and stmt.select_list != ["*"]:
            names = [n for n, _ in columns]
            picks = [names.index(c) for c in stmt.select_list if c in names]
            columns = [columns[i] for i in picks]
            rows = [[row[i] for i in picks] for row in rows]
        encoded = [[encode_value(t, v) for (_, t), v in zip(columns, row)] for row in rows]
        self.rows(stream, stmt.keyspace, stmt.table, columns, encoded,
                  note={"result": "Rows", "rows": len(rows)})

    def write(self, stream, body, stmt, params, values):
        cl = CONSISTENCY.index(params["consistency"])
        m = MARKER_WTO.search(body)
        if m:
            wtype, received, blockfor = m.group(1).decode(), int(m.group(2)), int(m.group(3))
            extra = p_short(cl) + p_int(received) + p_int(blockfor) + p_string(wtype)
            if wtype == "CAS" and self.version >= 5:
                extra += p_short(0)  # contentions
            self.error(stream, 0x1100, "Operation timed out - received only %d responses." % received,
                       extra, note={"result": "WriteTimeout", "write_type": wtype})
            return
        m = MARKER_UNAVAILABLE.search(body)
        if m:
            required, alive = int(m.group(1)), int(m.group(2))
            self.error(stream, 0x1000, "Cannot achieve consistency level %s" % CONSISTENCY[cl],
                       p_short(cl) + p_int(required) + p_int(alive), note={"result": "Unavailable"})
            return
        st = self.server.state
        key = stmt.key_of(values) if stmt is not None and values else None
        if stmt is not None and stmt.lwt:
            with st.lock:
                exists = key in st.keys
                applied = (not exists) if stmt.lwt == "if_not_exists" else exists
                if applied and stmt.kind == "INSERT":
                    st.keys.add(key)
            columns, row = [("[applied]", "boolean")], [encode_value("boolean", applied)]
            if not applied and exists:  # echo the existing primary key, as Cassandra echoes the row
                t = cql_schema.TABLES[stmt.table]
                for i, c in enumerate(t["partition_key"] + t["clustering"]):
                    columns.append((c, cql_schema.column_type(stmt.table, c)))
                    row.append(key[1 + i])
            self.rows(stream, stmt.keyspace, stmt.table, columns, [row],
                      note={"result": "Rows", "applied": applied})
            return
        if key is not None and stmt.kind == "INSERT":
            with st.lock:
                st.keys.add(key)
        self.send(stream, OP["RESULT"], p_int(RESULT_VOID), note={"result": "Void"})


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.95")
    ap.add_argument("--port", type=int, default=9042)
    ap.add_argument("--dc", default="dc1")
    ap.add_argument("--rack", default="rack1")
    ap.add_argument("--auth", help="USER:PASSWORD; require PasswordAuthenticator login")
    ap.add_argument("--log", help="write one JSON line per frame here")
    ap.add_argument("--ready-file", help="touch this file once listening")
    args = ap.parse_args()
    server = Server((args.host, args.port), Handler)
    server.state = State(args)
    if args.ready_file:
        open(args.ready_file, "w").close()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
