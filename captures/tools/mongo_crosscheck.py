#!/usr/bin/env python3
"""Compare a capture's message counts as tshark dissects them with the responder's
own counts in NAME.truth.json. Prints one line per direction and opcode; exit 1 on
any disagreement.
    mongo_crosscheck.py CAPTURE.pcap CAPTURE.truth.json [--port 27017]
"""
import argparse
import json
import subprocess
import sys
from collections import Counter

NAMES = {"1": "OP_REPLY", "2004": "OP_QUERY", "2012": "OP_COMPRESSED", "2013": "OP_MSG"}


def tshark_counts(pcap, port):
    fields = ["tcp.srcport", "mongo.opcode", "mongo.compression.original_opcode",
              "mongo.compression.unsupported_compressed",
              "mongo.msg.sections.section.doc_sequence_id"]
    cmd = ["tshark", "-r", pcap, "-d", f"tcp.port=={port},mongo", "-Y", "mongo",
           "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=;"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    by = {"c2s": Counter(), "s2c": Counter()}
    inner = {"c2s": Counter(), "s2c": Counter()}
    undecompressed, seqs = 0, Counter()
    for line in out.splitlines():
        src, ops, orig, unsup, seq = (line.split("\t") + [""] * 5)[:5]
        d = "s2c" if src == str(port) else "c2s"
        for op in filter(None, ops.split(";")):
            by[d][NAMES.get(op, op)] += 1
        for op in filter(None, orig.split(";")):
            inner[d][NAMES.get(op, op)] += 1
        undecompressed += len([u for u in unsup.split(";") if u])
        for s in filter(None, seq.split(";")):
            seqs[f"{d}:{s}"] += 1
    return by, inner, undecompressed, seqs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pcap")
    ap.add_argument("truth")
    ap.add_argument("--port", type=int, default=27017)
    a = ap.parse_args()
    truth = json.load(open(a.truth))
    by, inner, undecompressed, seqs = tshark_counts(a.pcap, a.port)
    bad = 0
    for d in ("c2s", "s2c"):
        t = truth["messages_by_opcode"][d]
        for op in sorted(set(t) | set(by[d])):
            same = t.get(op, 0) == by[d].get(op, 0)
            bad += not same
            print(f"{a.truth.split('/')[-1]}: {d} {op}: responder {t.get(op, 0)}, "
                  f"tshark {by[d].get(op, 0)}{'' if same else '  <-- DISAGREE'}")
        ti = truth["compressed_inner_by_opcode"][d]
        if ti or inner[d]:
            print(f"  {d} compressed inner: responder {ti}, tshark {dict(inner[d])}")
    if undecompressed:
        print(f"  tshark could not decompress {undecompressed} messages")
    print(f"  tshark document sequences: {dict(seqs)}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
