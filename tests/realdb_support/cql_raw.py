"""A raw CQL native-protocol v4 client for the fidelity test (tests/realdb_fidelity.rs).

It builds the request frames itself and parses the answers itself, so what it prints is
what is on the wire: RESULT metadata flags, column specs with their type options, raw
cell bytes, error codes with the fields of their bodies, paging states, and the
SCHEMA_CHANGE events a REGISTERed connection receives. The same script talks to the real
Cassandra node and to the testbed; the Rust side compares the two outputs.

    python3 cql_raw.py HOST PORT [VERSION] < steps.json   (one JSON array of steps)

VERSION is 4 (default) or 5; under 5 every frame after READY travels in uncompressed
self-contained segments (protocol v5 spec section 2), EXECUTE carries the result
metadata id and RESULT metadata may say METADATA_CHANGED.

A step is {"name", "op", ...}; op is
  query    {"cql", "values"?: [hex|null], "page_size"?, "paging_from"?: step, "timestamp"?,
            "consistency"?: code (ONE by default), "skip_metadata"?: bool}
  prepare  {"cql"}
  execute  {"prepared": step, "values": [hex|null], "page_size"?, "paging_from"?, "id"?: hex}
  events   {}  the SCHEMA_CHANGE events received since the last `events` step
  execute's "metadata_from"?: step  (v5) the result metadata id of that PREPARE answer
Output: one JSON line per step, {"step": name, ...the parsed answer}.
"""

import json
import socket
import struct
import sys
import time

import zlib

VERSION = 4  # set by main from the command line
OP = {"ERROR": 0x00, "STARTUP": 0x01, "READY": 0x02, "OPTIONS": 0x05, "SUPPORTED": 0x06,
      "QUERY": 0x07, "RESULT": 0x08, "PREPARE": 0x09, "EXECUTE": 0x0A, "REGISTER": 0x0B,
      "EVENT": 0x0C}
NATIVE = {0x01: "ascii", 0x02: "bigint", 0x03: "blob", 0x04: "boolean", 0x05: "counter",
          0x06: "decimal", 0x07: "double", 0x08: "float", 0x09: "int", 0x0B: "timestamp",
          0x0C: "uuid", 0x0D: "varchar", 0x0E: "varint", 0x0F: "timeuuid", 0x10: "inet",
          0x11: "date", 0x12: "time", 0x13: "smallint", 0x14: "tinyint", 0x15: "duration"}
CL_ONE = 0x0001


class Reader:
    def __init__(self, b):
        self.b, self.i = b, 0

    def take(self, n):
        if n < 0 or self.i + n > len(self.b):
            raise ValueError("body too short")
        out = self.b[self.i:self.i + n]
        self.i += n
        return out

    def byte(self):
        return self.take(1)[0]

    def short(self):
        return struct.unpack(">H", self.take(2))[0]

    def int(self):
        return struct.unpack(">i", self.take(4))[0]

    def string(self):
        return self.take(self.short()).decode("utf-8", "replace")

    def string_list(self):
        return [self.string() for _ in range(self.short())]

    def bytes(self):
        n = self.int()
        return None if n < 0 else self.take(n)

    def short_bytes(self):
        return self.take(self.short())

    def option(self):
        t = self.short()
        if t == 0x0000:
            return "custom(" + self.string() + ")"
        if t in NATIVE:
            return NATIVE[t]
        if t == 0x20:
            return "list<" + self.option() + ">"
        if t == 0x22:
            return "set<" + self.option() + ">"
        if t == 0x21:
            return "map<" + self.option() + "," + self.option() + ">"
        if t == 0x30:
            ks, name = self.string(), self.string()
            fields = [self.string() + " " + self.option() for _ in range(self.short())]
            return "udt(" + ks + "." + name + "{" + ",".join(fields) + "})"
        if t == 0x31:
            return "tuple<" + ",".join(self.option() for _ in range(self.short())) + ">"
        raise ValueError("unknown type option 0x%04x" % t)


def col_specs(r, flags, count):
    cols = []
    gks = gtable = None
    if flags & 0x0001:
        gks, gtable = r.string(), r.string()
    for _ in range(count):
        ks, table = (gks, gtable) if flags & 0x0001 else (r.string(), r.string())
        name = r.string()
        cols.append({"ks": ks, "table": table, "name": name, "type": r.option()})
    return cols


def rows_metadata(r):
    flags = r.int()
    count = r.int()
    out = {"flags": flags, "column_count": count}
    if flags & 0x0002:
        ps = r.bytes()
        out["paging_state"] = ps.hex() if ps is not None else None
    if flags & 0x0008:
        out["new_metadata_id"] = r.short_bytes().hex()
    if not flags & 0x0004:
        out["columns"] = col_specs(r, flags, count)
    return out


def schema_change(r):
    out = {"change": r.string(), "target": r.string(), "keyspace": r.string()}
    if out["target"] in ("TABLE", "TYPE"):
        out["name"] = r.string()
    elif out["target"] in ("FUNCTION", "AGGREGATE"):
        out["name"] = r.string()
        out["args"] = r.string_list()
    return out


def parse_error(r):
    out = {"kind": "error", "code": r.int(), "message": r.string()}
    c = out["code"]
    if c == 0x1000:
        out.update(cl=r.short(), required=r.int(), alive=r.int())
    elif c == 0x1100:
        out.update(cl=r.short(), received=r.int(), blockfor=r.int(), write_type=r.string())
    elif c == 0x1200:
        out.update(cl=r.short(), received=r.int(), blockfor=r.int(), data_present=r.byte())
    elif c == 0x2400:
        out.update(keyspace=r.string(), table=r.string())
    elif c == 0x2500:
        out.update(id=r.short_bytes().hex())
    out["trailing"] = len(r.b) - r.i
    return out


def parse_result(r):
    kind = r.int()
    if kind == 1:
        return {"kind": "void"}
    if kind == 2:
        meta = rows_metadata(r)
        n = r.int()
        rows = []
        for _ in range(n):
            row = []
            for _ in range(meta["column_count"]):
                v = r.bytes()
                row.append(None if v is None else v.hex())
            rows.append(row)
        return {"kind": "rows", "meta": meta, "rows": rows}
    if kind == 3:
        return {"kind": "set_keyspace", "keyspace": r.string()}
    if kind == 4:
        pid = r.short_bytes().hex()
        meta_id = r.short_bytes().hex() if VERSION >= 5 else None
        flags, count, pk_count = r.int(), r.int(), r.int()
        pk = [r.short() for _ in range(pk_count)]
        binds = col_specs(r, flags, count)
        out = {"kind": "prepared", "id": pid, "bind_flags": flags, "pk_indexes": pk,
               "binds": binds, "result": rows_metadata(r)}
        if meta_id is not None:
            out["result_metadata_id"] = meta_id
        return out
    if kind == 5:
        out = schema_change(r)
        out["kind"] = "schema_change"
        return out
    raise ValueError("unknown result kind %d" % kind)


class Conn:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=30)
        self.framed = False  # v5: segments from READY on
        self.inbuf = b""
        self.stream = 0
        self.events = []
        self.warnings = []
        got = self.request(OP["STARTUP"], string_map({"CQL_VERSION": "3.0.0"}))
        if got[0] != OP["READY"]:
            raise RuntimeError("STARTUP refused: %r" % (got,))
        self.framed = VERSION >= 5

    def recv_socket(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise RuntimeError("connection closed")
            buf += chunk
        return buf

    def recv_exact(self, n):
        """n bytes of frames: straight from the socket, or (v5 after READY) from the
        payloads of the segments that carry them."""
        if not self.framed:
            return self.recv_socket(n)
        while len(self.inbuf) < n:
            head = self.recv_socket(6)
            h = int.from_bytes(head[:3], "little")
            if crc24(h, 3) != int.from_bytes(head[3:], "little"):
                raise RuntimeError("segment header CRC24 mismatch")
            payload = self.recv_socket(h & 0x1FFFF)
            crc = int.from_bytes(self.recv_socket(4), "little")
            if crc != zlib.crc32(payload, zlib.crc32(CRC32_SEED)):
                raise RuntimeError("segment payload CRC32 mismatch")
            self.inbuf += payload
        out, self.inbuf = self.inbuf[:n], self.inbuf[n:]
        return out

    def send(self, frame):
        if not self.framed:
            self.s.sendall(frame)
            return
        if len(frame) > 0x1FFFF:
            raise ValueError("frame too large for one self-contained segment")
        h = len(frame) | (1 << 17)
        head = h.to_bytes(3, "little") + crc24(h, 3).to_bytes(3, "little")
        crc = zlib.crc32(frame, zlib.crc32(CRC32_SEED))
        self.s.sendall(head + frame + crc.to_bytes(4, "little"))

    def frame(self):
        """(stream, opcode, body, warnings): the body starts after the tracing id,
        warnings and custom payload the header flags announce."""
        head = self.recv_exact(9)
        _ver, flags, stream, op, length = struct.unpack(">BBhBI", head)
        r = Reader(self.recv_exact(length))
        warnings = []
        if flags & 0x02:
            r.take(16)
        if flags & 0x08:
            warnings = r.string_list()
        if flags & 0x04:
            for _ in range(r.short()):
                r.string()
                r.bytes()
        return stream, op, r.b[r.i:], warnings

    def request(self, op, body):
        self.stream = (self.stream + 1) % 32000
        self.send(struct.pack(">BBhBI", VERSION, 0, self.stream, op, len(body)) + body)
        while True:
            stream, rop, rbody, warnings = self.frame()
            if stream == -1 and rop == OP["EVENT"]:
                self.events.append(rbody)
                continue
            if stream == self.stream:
                self.warnings = warnings
                return rop, rbody

    def wait_event(self, secs):
        """Bounded wait for one more event frame (none may come)."""
        self.s.settimeout(secs)
        try:
            stream, op, body, _ = self.frame()
            if stream == -1 and op == OP["EVENT"]:
                self.events.append(body)
        except socket.timeout:
            pass
        finally:
            self.s.settimeout(30)


# Cassandra's segment checksums (org.apache.cassandra.net.Crc): CRC24 of the header
# bits, CRC32 of the payload seeded with these four bytes.
CRC32_SEED = bytes([0xFA, 0x2D, 0x55, 0xCA])


def crc24(value, nbytes):
    crc = 0x875060
    for _ in range(nbytes):
        crc ^= (value & 0xFF) << 16
        value >>= 8
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1974F0B
    return crc & 0xFFFFFF


def string_map(m):
    out = struct.pack(">H", len(m))
    for k, v in m.items():
        out += sstring(k) + sstring(v)
    return out


def sstring(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def long_string(s):
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def params(step, answers):
    flags = 0
    tail = b""
    values = step.get("values")
    if values is not None:
        flags |= 0x01
        tail += struct.pack(">H", len(values))
        for v in values:
            if v is None:
                tail += struct.pack(">i", -1)
            else:
                b = bytes.fromhex(v)
                tail += struct.pack(">i", len(b)) + b
    if step.get("skip_metadata"):
        flags |= 0x02
    if "page_size" in step:
        flags |= 0x04
        tail += struct.pack(">i", step["page_size"])
    if "paging_from" in step:
        ps = answers[step["paging_from"]]["meta"]["paging_state"]
        flags |= 0x08
        b = bytes.fromhex(ps)
        tail += struct.pack(">i", len(b)) + b
    if "timestamp" in step:
        flags |= 0x20
        tail += struct.pack(">q", step["timestamp"])
    cl = step.get("consistency", CL_ONE)
    if VERSION >= 5:
        return struct.pack(">HI", cl, flags) + tail
    return struct.pack(">HB", cl, flags) + tail


def answer(op, body):
    r = Reader(body)
    if op == OP["ERROR"]:
        return parse_error(r)
    if op == OP["RESULT"]:
        return parse_result(r)
    return {"kind": "opcode_%d" % op}


def main():
    global VERSION
    host, port = sys.argv[1], int(sys.argv[2])
    VERSION = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    steps = json.load(sys.stdin)
    conn = Conn(host, port)
    listener = Conn(host, port)
    rop, _ = listener.request(OP["REGISTER"], struct.pack(">H", 1) + sstring("SCHEMA_CHANGE"))
    if rop != OP["READY"]:
        raise RuntimeError("REGISTER refused")
    answers = {}
    for step in steps:
        op = step["op"]
        conn.warnings = []
        prev = answers.get(step.get("paging_from"), {})
        if "paging_from" in step and "paging_state" not in prev.get("meta", {}):
            # The page it continues was the last one: nothing to continue.
            got = {"kind": "no_paging_state"}
        elif op == "query":
            got = answer(*conn.request(OP["QUERY"], long_string(step["cql"]) + params(step, answers)))
        elif op == "prepare":
            body = long_string(step["cql"])
            if VERSION >= 5:
                body += struct.pack(">I", 0)  # v5 PREPARE flags: no keyspace
            got = answer(*conn.request(OP["PREPARE"], body))
        elif op == "execute":
            pid = step.get("id") or answers[step["prepared"]]["id"]
            b = bytes.fromhex(pid)
            body = struct.pack(">H", len(b)) + b
            if VERSION >= 5:
                # The result metadata id the client holds: from this PREPARE, or
                # (to provoke METADATA_CHANGED) from an older one.
                held = answers[step.get("metadata_from", step["prepared"])]
                mid = held.get("result_metadata_id", "")
                m = bytes.fromhex(mid)
                body += struct.pack(">H", len(m)) + m
            got = answer(*conn.request(OP["EXECUTE"], body + params(step, answers)))
        elif op == "events":
            # Events of a change are sent before its answer on the other connection;
            # an OPTIONS round trip here collects those already queued, and a bounded
            # wait covers a server that sends them a little later.
            listener.request(OP["OPTIONS"], b"")
            if not listener.events:
                listener.wait_event(5)
            listener.request(OP["OPTIONS"], b"")
            evs = []
            for body in listener.events:
                r = Reader(body)
                etype = r.string()
                ev = schema_change(r) if etype == "SCHEMA_CHANGE" else {}
                ev["type"] = etype
                evs.append(ev)
            listener.events = []
            got = {"kind": "events", "events": evs}
        else:
            raise ValueError("unknown op " + op)
        if op != "events" and conn.warnings:
            got["warnings"] = conn.warnings
        answers[step["name"]] = got
        got = dict(got)
        got["step"] = step["name"]
        print(json.dumps(got), flush=True)


if __name__ == "__main__":
    main()
