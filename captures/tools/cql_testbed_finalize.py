#!/usr/bin/env python3
"""Complete NAME.truth.json of a testbed capture from the pcap itself, with a CQL
framing parser written here (independent of tidemark and of the testbed): reassemble
each TCP direction, walk v4 frames or, after STARTUP/READY on v5 connections, v5
segments (lz4 or stored, CRCs checked) and the envelopes inside, and count messages
per direction and opcode. Adds `connections`, `messages_by_opcode`, `v5_segments`
(v5 only), `pcap_check` (every direction complete: SYN to FIN without holes) and
`tshark_check` (tshark's own CQL counts where it dissects, i.e. v4).

usage: cql_testbed_finalize.py TRUTH PCAP
Exit status 1 if the capture is incomplete, a CRC fails, or tshark disagrees.
"""
import collections
import json
import struct
import subprocess
import sys
import zlib

import lz4.block

OPCODES = {0x00: "ERROR", 0x01: "STARTUP", 0x02: "READY", 0x03: "AUTHENTICATE",
           0x05: "OPTIONS", 0x06: "SUPPORTED", 0x07: "QUERY", 0x08: "RESULT",
           0x09: "PREPARE", 0x0A: "EXECUTE", 0x0B: "REGISTER", 0x0C: "EVENT",
           0x0D: "BATCH", 0x0E: "AUTH_CHALLENGE", 0x0F: "AUTH_RESPONSE",
           0x10: "AUTH_SUCCESS"}


def packets(path):
    """(sport, dport, flags, seq, ack, payload) of each TCP/IPv4 packet."""
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    pos = 24
    while pos + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[pos + 8:pos + 12])[0]
        frame = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        if linktype == 1:  # Ethernet (what tcpdump -i lo writes on Linux)
            if frame[12:14] != b"\x08\x00":
                continue
            ip = frame[14:]
        elif linktype == 113:  # Linux cooked
            ip = frame[16:]
        else:
            ip = frame
        if ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        tcp = ip[ihl:total]
        sport, dport, seq, ack = struct.unpack(">HHII", tcp[:12])
        off = (tcp[12] >> 4) * 4
        yield (sport, dport, tcp[13], seq, ack, tcp[off:])


def streams(path, server_port):
    """{(client_port, dir): bytes} per connection direction, and whether the capture
    is complete: every direction starts with its SYN, has no hole, and every byte
    in it was acknowledged by the peer inside the capture (nothing sent went
    missing at the end)."""
    segs = collections.defaultdict(dict)
    syn, acked = {}, collections.defaultdict(int)
    for sport, dport, flags, seq, ack, payload in packets(path):
        to_server = dport == server_port
        key = (sport, "c2s") if to_server else (dport, "s2c")
        peer = (sport, "s2c") if to_server else (dport, "c2s")
        if flags & 0x02:
            syn[key] = seq + 1
        if flags & 0x10 and peer in syn:  # ACK: bytes of the other direction received
            acked[peer] = max(acked[peer], (ack - syn[peer]) % 2**32)
        if payload:
            segs[key].setdefault(seq, payload)
    out, complete = {}, True
    for key in set(segs) | set(syn):
        start = syn.get(key)
        if start is None:
            complete = False
            continue
        buf, nxt = bytearray(), start
        for seq in sorted(segs[key], key=lambda s: (s - start) % 2**32):
            p = segs[key][seq]
            rel = (seq - nxt) % 2**32
            if rel > 2**31:  # overlap (retransmission of bytes we have)
                p = p[(nxt - seq) % 2**32:]
                rel = 0
            if rel != 0:
                complete = False
                break
            buf += p
            nxt = (nxt + len(p)) % 2**32
        if acked[key] < len(buf):
            complete = False
        out[key] = bytes(buf)
    return out, complete


def crc24(data):
    crc = 0x875060
    for b in data:
        crc ^= b << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1974F0B
    return crc & 0xFFFFFF


CRC32_INITIAL = b"\xfa\x2d\x55\xca"


def segments(buf, compressed):
    """Payloads of the v5 segments in `buf`; counts lz4/stored segments."""
    out, counts, pos = bytearray(), collections.Counter(), 0
    hlen = 8 if compressed else 6
    while pos < len(buf):
        h = buf[pos:pos + hlen]
        fields = int.from_bytes(h[:hlen - 3], "little")
        if crc24(h[:hlen - 3]) != int.from_bytes(h[hlen - 3:], "little"):
            raise ValueError("segment header CRC24 mismatch at %d" % pos)
        clen = fields & 0x1FFFF
        ulen = (fields >> 17) & 0x1FFFF if compressed else 0
        payload = buf[pos + hlen:pos + hlen + clen]
        crc = int.from_bytes(buf[pos + hlen + clen:pos + hlen + clen + 4], "little")
        if zlib.crc32(CRC32_INITIAL + payload) != crc:
            raise ValueError("segment payload CRC32 mismatch at %d" % pos)
        if compressed and ulen:
            payload = lz4.block.decompress(payload, uncompressed_size=ulen)
            counts["lz4"] += 1
        else:
            counts["stored"] += 1
        out += payload
        pos += hlen + clen + 4
    return bytes(out), counts


def envelopes(buf):
    """(opcode name, body) of each frame/envelope in `buf` (header + body)."""
    pos = 0
    while pos + 9 <= len(buf):
        version, flags, stream, opcode, length = struct.unpack(">BBhBI", buf[pos:pos + 9])
        yield OPCODES.get(opcode, "0x%02x" % opcode), flags, buf[pos + 9:pos + 9 + length]
        pos += 9 + length
    if pos != len(buf):
        raise ValueError("truncated frame at %d of %d" % (pos, len(buf)))


def analyse(path, server_port):
    data, complete = streams(path, server_port)
    by_dir = {"c2s": collections.Counter(), "s2c": collections.Counter()}
    segs = {"c2s": collections.Counter(), "s2c": collections.Counter()}
    conns = sorted({port for port, _ in data})
    for port in conns:
        c2s, s2c = data.get((port, "c2s"), b""), data.get((port, "s2c"), b"")
        v5, uses_lz4 = False, False
        for direction, buf, switch_on in (("c2s", c2s, "STARTUP"), ("s2c", s2c, ("READY", "AUTHENTICATE"))):
            pos = 0
            # Walk legacy frames until the switch message (v5 only), then segments.
            while pos + 9 <= len(buf):
                version = buf[pos] & 0x7F
                length = struct.unpack(">I", buf[pos + 5:pos + 9])[0]
                opcode = OPCODES.get(buf[pos + 4], "?")
                body = buf[pos + 9:pos + 9 + length]
                by_dir[direction][opcode] += 1
                pos += 9 + length
                if opcode == "STARTUP" and version == 5:
                    v5 = True
                    uses_lz4 = b"lz4" in body
                if v5 and (opcode == switch_on or opcode in switch_on):
                    break
            if v5 and pos < len(buf):
                payload, counts = segments(buf[pos:], uses_lz4)
                segs[direction] += counts
                for opcode, _, _ in envelopes(payload):
                    by_dir[direction][opcode] += 1
            elif pos != len(buf):
                raise ValueError("truncated v4 frame in %s of port %d" % (direction, port))
    return conns, by_dir, segs, complete


def tshark_counts(path, port):
    try:
        out = subprocess.run(["tshark", "-r", path, "-d", "tcp.port==%d,cql" % port, "-T", "fields",
                              "-e", "tcp.dstport", "-e", "cql.opcode", "-Y", "cql"],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    by_dir = {"c2s": collections.Counter(), "s2c": collections.Counter()}
    for line in out.splitlines():
        dport, _, ops = line.partition("\t")
        for op in filter(None, ops.split(",")):
            by_dir["c2s" if int(dport) == port else "s2c"][OPCODES.get(int(op, 0), op)] += 1
    return by_dir


def main():
    truth_path, pcap = sys.argv[1], sys.argv[2]
    text = open(truth_path).read()  # spliced as text to keep big numbers verbatim
    truth = json.loads(text)
    port = int(truth["server"].rsplit(":", 1)[1])
    conns, by_dir, segs, complete = analyse(pcap, port)
    extra = collections.OrderedDict()
    extra["connections"] = len(conns)
    extra["messages_by_opcode"] = {d: dict(sorted(by_dir[d].items())) for d in ("c2s", "s2c")}
    if truth["protocol_version"] == 5:
        extra["v5_segments"] = {d: dict(sorted(segs[d].items())) for d in ("c2s", "s2c")}
    extra["pcap_check"] = {"parser": "captures/tools/cql_testbed_finalize.py",
                           "complete": complete, "segment_crcs_checked": truth["protocol_version"] == 5}
    ts = tshark_counts(pcap, port) if truth["protocol_version"] == 4 else None
    extra["tshark_check"] = {
        "messages_by_opcode": None if ts is None else {d: dict(sorted(ts[d].items())) for d in ts},
        "agrees": None if ts is None else all(ts[d] == by_dir[d] for d in ts),
    }
    head, sep, tail = text.partition('\n "writes": ')
    block = json.dumps(extra, indent=1)[1:-2]  # drop the braces
    with open(truth_path, "w") as f:
        f.write(head + block + "," + sep + tail)
    json.load(open(truth_path))  # still valid JSON
    print("  %s: %d connections, c2s %s, s2c %s, complete=%s, tshark agrees=%s"
          % (truth["capture"], len(conns), dict(by_dir["c2s"]), dict(by_dir["s2c"]), complete,
             extra["tshark_check"]["agrees"]))
    if not complete or extra["tshark_check"]["agrees"] is False:
        sys.exit(1)


if __name__ == "__main__":
    main()
