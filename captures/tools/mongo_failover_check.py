#!/usr/bin/env python3
"""Check captures/mongo_failover.pcap against its truth file, independently of
tidemark: a small pcap/TCP/OP_MSG reader (pymongo's `bson` decodes documents).

Member-to-member connections are recognised by their first command, a hello from
client driver "NetworkInterfaceTL" (the testbed's internal client); everything else
is the pymongo application. Checks:
  - every oplog entry a member fetched (find/getMore replies on local.oplog.rs) is in
    the truth: in some member's final oplog or in a rollback's undone entries;
  - every entry of a member's final oplog written in a term it was not primary in
    was fetched by it over the wire;
  - every non-zero $replData.lastOpCommitted is in the commit point history;
  - the replSetRequestVotes granted in the capture elected the recorded primary;
  - the w:1 inserts the truth calls lost were acknowledged (ok, n: 1) on the wire.
Usage: mongo_failover_check.py PCAP TRUTH [--port 27017]
"""
import argparse
import json
import struct
import sys
from collections import defaultdict

import bson


def packets(path):
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    end = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(end + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(end + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if linktype == 1:
            if frame[12:14] != b"\x08\x00":
                continue
            ip = frame[14:]
        elif linktype == 113:  # Linux cooked
            ip = frame[16:]
        else:
            sys.exit(f"unsupported link type {linktype}")
        if ip[9] != 6:
            continue
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        tcp = ip[ihl:total]
        src, dst = ".".join(map(str, ip[12:16])), ".".join(map(str, ip[16:20]))
        sport, dport, seq = struct.unpack(">HHI", tcp[:8])
        doff = (tcp[12] >> 4) * 4
        flags = tcp[13]
        yield (src, sport, dst, dport), seq, flags, tcp[doff:]


def streams(path):
    """flow -> bytes, in sequence order (loopback: no loss; retransmissions dropped)."""
    out, nxt = defaultdict(bytearray), {}
    for flow, seq, flags, payload in packets(path):
        if flags & 0x02:  # SYN
            nxt[flow] = seq + 1
            continue
        if not payload or flow not in nxt:
            continue
        if seq == nxt[flow]:
            out[flow] += payload
            nxt[flow] = seq + len(payload)
    return out


def messages(b):
    off = 0
    while off + 16 <= len(b):
        length, rid, rto, op = struct.unpack("<iiii", b[off:off + 16])
        if length < 16 or off + length > len(b):
            break
        body = b[off + 16:off + length]
        off += length
        if op != 2013:  # only OP_MSG is expected (the workload asks for no compression)
            continue
        flags = struct.unpack("<I", body[:4])[0]
        end = len(body) - (4 if flags & 1 else 0)
        pos, cmd, seqs = 4, None, {}
        while pos < end:
            kind = body[pos]
            n = struct.unpack("<i", body[pos + 1:pos + 5])[0]
            if kind == 0:
                cmd = bson.decode(body[pos + 1:pos + 1 + n])
                pos += 1 + n
            else:  # kind 1: size, identifier, documents
                sec = body[pos + 5:pos + 1 + n]
                ident, docs = sec.split(b"\0", 1)
                seqs[ident.decode()] = bson.decode_all(docs)
                pos += 1 + n
        if cmd is not None:
            cmd.update(seqs)
            yield rid, rto, cmd


def optime(d):
    return (d["t"], d["ts"].time, d["ts"].inc) if d and "ts" in d else None


def jopt(o):
    return (o["t"], o["ts"][0], o["ts"][1])


def entry_optime_json(e):
    ts = e["ts"]["$timestamp"]
    return (e["t"], ts["t"], ts["i"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pcap")
    ap.add_argument("truth")
    ap.add_argument("--port", type=int, default=27017)
    a = ap.parse_args()
    truth = json.load(open(a.truth))
    hosts = [h.split(":")[0] for h in truth["hosts"]]
    s = streams(a.pcap)
    known = {entry_optime_json(e) for log in truth["oplogs"] for e in log}
    known |= {entry_optime_json(e) for r in truth["rollbacks"] for e in r["entries"]}
    history = {jopt(c["commit_point"]) for c in truth["commit_point_history"]}
    fetched = defaultdict(set)
    bad, stats = 0, defaultdict(int)
    votes = defaultdict(int)  # (candidate, term) -> granted
    acked_inserts = set()
    for flow, req_bytes in list(s.items()):
        src, sport, dst, dport = flow
        if dport != a.port:
            continue
        reqs = list(messages(req_bytes))
        reps = {rto: d for _, rto, d in messages(s.get((dst, dport, src, sport), b""))}
        if not reqs:
            continue
        internal = reqs[0][2].get("client", {}).get("driver", {}).get("name") == "NetworkInterfaceTL"
        member = hosts.index(src) if internal and src in hosts else None
        stats["member connections" if internal else "application connections"] += 1
        for rid, _, cmd in reqs:
            name = next(iter(cmd))
            rep = reps.get(rid)
            if rep is None:
                continue
            rd = rep.get("$replData")
            if rd and optime(rd.get("lastOpCommitted")) not in history | {(0, 0, 0)}:
                print(f"commit point {rd.get('lastOpCommitted')} not in the history")
                bad += 1
            if internal and name in ("find", "getMore") and "cursor" in rep:
                batch = rep["cursor"].get("firstBatch", rep["cursor"].get("nextBatch", []))
                for e in batch:
                    o = optime(e)
                    stats["oplog entries fetched"] += 1
                    fetched[member].add(o)
                    if o not in known:
                        print(f"fetched entry {o} is in no oplog and no rollback")
                        bad += 1
            if internal and name == "replSetRequestVotes" and not cmd.get("dryRun"):
                if rep.get("voteGranted"):
                    votes[(cmd["candidateIndex"], cmd["term"])] += 1
            if internal and name == "replSetHeartbeat":
                stats["heartbeats"] += 1
            if not internal and name == "insert" and rep.get("ok") == 1 and rep.get("n") == 1:
                for d in cmd.get("documents", []):
                    acked_inserts.add(d["_id"])
    missing = set(truth["lost_acknowledged_inserts"]) - acked_inserts
    if missing or not truth["lost_acknowledged_inserts"]:
        print(f"lost inserts not acknowledged on the wire: {sorted(missing)}")
        bad += 1
    for m, log in enumerate(truth["oplogs"]):
        primaries = {e["term"]: e["member"] for e in truth["elections"]}
        primaries.setdefault(1, 0)
        for e in log:
            o = entry_optime_json(e)
            if primaries.get(o[0]) != m and o not in fetched[m]:
                print(f"member {m} holds {o} but never fetched it")
                bad += 1
    if [r["member"] for r in truth["rollbacks"]] != [truth["old_primary"]]:
        print(f"expected one rollback, on the old primary: {[r['member'] for r in truth['rollbacks']]}")
        bad += 1
    for e in truth["elections"]:
        granted = votes.get((e["member"], e["term"]), 0) + 1
        if granted != e["votes"]:
            print(f"election of {e['member']} in term {e['term']}: {granted} votes on the wire, truth {e['votes']}")
            bad += 1
    print(f"{a.pcap}: {dict(stats)}; elections {[(e['member'], e['term']) for e in truth['elections']]}; "
          f"lost acknowledged inserts {truth['lost_acknowledged_inserts']}; "
          f"{'OK' if not bad else f'{bad} DISAGREEMENTS'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
