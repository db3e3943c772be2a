#!/usr/bin/env python3
"""Complete cql_faults.truth.json after recording: parse the pcap independently of
tidemark (a minimal pcap/IPv4/TCP reader and CQL v4 frame parser here), add
connections and messages_by_opcode, check that the ERROR frames the server sent are
exactly the WriteTimeout/Unavailable responses the truth lists (with the same
received/blockfor and required/alive), and cross-check the opcode counts with
tshark's CQL dissector.

usage: cql_faults_finalize.py TRUTH PCAP
Exit status 1 when the pcap disagrees with the truth.
"""
import collections
import json
import struct
import sys

from cql_finalize import OPCODE_NAMES, sorted_counts, tshark_counts

CL = {0: "ANY", 1: "ONE", 2: "TWO", 3: "THREE", 4: "QUORUM", 5: "ALL", 6: "LOCAL_QUORUM",
      7: "EACH_QUORUM", 8: "SERIAL", 9: "LOCAL_SERIAL", 10: "LOCAL_ONE"}


def tcp_streams(path):
    """{(src, sport, dst, dport): payload bytes in sequence order} of an Ethernet pcap."""
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    assert linktype == 1, "expected Ethernet (tcpdump -i lo), got linktype %d" % linktype
    off, segs = 24, collections.defaultdict(dict)
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(pkt) < 34 or pkt[12:14] != b"\x08\x00":
            continue
        ip = pkt[14:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        if ip[9] != 6:
            continue
        src, dst = ".".join(map(str, ip[12:16])), ".".join(map(str, ip[16:20]))
        tcp = ip[ihl:total]
        sport, dport, seq = struct.unpack(">HHI", tcp[:8])
        payload = tcp[(tcp[12] >> 4) * 4:]
        if payload:
            segs[(src, sport, dst, dport)].setdefault(seq, payload)  # first copy wins
    streams = {}
    for flow, by_seq in segs.items():
        first = min(by_seq)
        buf, expect = bytearray(), first
        for seq in sorted(by_seq):
            p = by_seq[seq]
            if seq > expect:
                raise SystemExit("gap in %s at %d" % (flow, expect))
            buf += p[expect - seq:]
            expect = max(expect, seq + len(p))
        streams[flow] = bytes(buf)
    return streams


def frames(stream):
    off = 0
    while off + 9 <= len(stream):
        version, flags, sid, opcode, length = struct.unpack(">BBhBI", stream[off:off + 9])
        yield version & 0x7F, sid, opcode, stream[off + 9:off + 9 + length]
        off += 9 + length


def error_text(body):
    code = struct.unpack(">i", body[:4])[0]
    mlen = struct.unpack(">H", body[4:6])[0]
    rest = body[6 + mlen:]
    if code == 0x1100:
        cl, received, blockfor = struct.unpack(">Hii", rest[:10])
        wlen = struct.unpack(">H", rest[10:12])[0]
        wtype = rest[12:12 + wlen].decode()
        return CL[cl], "ERROR WriteTimeout %s received=%d blockfor=%d" % (wtype, received, blockfor)
    if code == 0x1000:
        cl, required, alive = struct.unpack(">Hii", rest[:10])
        return CL[cl], "ERROR Unavailable required=%d alive=%d" % (required, alive)
    return None, "ERROR 0x%04x" % code


def main():
    truth_path, pcap = sys.argv[1:3]
    truth = json.load(open(truth_path))
    port = int(truth["server"].rsplit(":", 1)[1])
    by_dir = {"c2s": collections.Counter(), "s2c": collections.Counter()}
    conns, errors, executes = set(), [], 0
    for (src, sport, dst, dport), data in sorted(tcp_streams(pcap).items()):
        d = "s2c" if sport == port else "c2s"
        conns.add((dst, dport) if d == "s2c" else (src, sport))
        for version, _, opcode, body in frames(data):
            assert version == 4, version
            name = OPCODE_NAMES.get(opcode, hex(opcode))
            by_dir[d][name] += 1
            if d == "s2c" and opcode == 0x00:
                errors.append(error_text(body))
            if d == "c2s" and opcode == 0x0A:
                executes += 1
    messages = {d: sorted_counts(by_dir[d]) for d in ("c2s", "s2c")}
    shark = tshark_counts(pcap, port)
    shark_view = {d: sorted_counts(shark[d]) for d in ("c2s", "s2c")}
    want_errors = [(w["consistency"], w["response"]) for w in truth["writes"]
                   if w["response"].startswith("ERROR")]
    ok = errors == want_errors and executes == len(truth["writes"])
    extra = {
        "connections": len(conns),
        "messages_by_opcode": messages,
        "error_responses_in_pcap": ["%s at %s" % (r, cl) for cl, r in errors],
        "pcap_check": {"execute_frames": executes, "writes_in_truth": len(truth["writes"]),
                       "errors_agree_with_truth": errors == want_errors},
        "tshark_check": {"tshark": "TShark 4.0 CQL dissector (-Y cql -e cql.opcode)",
                         "messages_by_opcode": shark_view, "agrees": shark_view == messages},
    }
    writes = truth.pop("writes")
    truth.update(extra)
    truth["writes"] = writes
    with open(truth_path, "w") as f:
        json.dump(truth, f, indent=1)
        f.write("\n")
    print("%s: %d connections, c2s %s, s2c %s" % (truth["capture"], len(conns),
                                                   messages["c2s"], messages["s2c"]))
    print("  errors in pcap: %s" % errors)
    print("  tshark agrees: %s" % (shark_view == messages))
    if not ok:
        print("  DISAGREES with the truth: want errors %s, %d writes" % (want_errors, len(writes)))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
