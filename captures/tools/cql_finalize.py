#!/usr/bin/env python3
"""Complete NAME.truth.json after a recording: add messages_by_opcode (counted from the
responder's own frame log), check that the responder saw as many write statements as
the truth lists, and cross-check the opcode counts with tshark's CQL dissector.

usage: cql_finalize.py TRUTH RESPONDER_LOG PCAP
Also checks that the pcap holds every byte the responder received and sent.
Exit status 1 if the responder's write count disagrees with the truth, or the capture
is incomplete.
"""
import collections
import json
import re
import subprocess
import sys

OPCODE_NAMES = {0x00: "ERROR", 0x01: "STARTUP", 0x02: "READY", 0x03: "AUTHENTICATE",
                0x05: "OPTIONS", 0x06: "SUPPORTED", 0x07: "QUERY", 0x08: "RESULT",
                0x09: "PREPARE", 0x0A: "EXECUTE", 0x0B: "REGISTER", 0x0C: "EVENT",
                0x0D: "BATCH", 0x0E: "AUTH_CHALLENGE", 0x0F: "AUTH_RESPONSE",
                0x10: "AUTH_SUCCESS"}
WRITE_RE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|TRUNCATE)\b", re.I)


def sorted_counts(counter):
    return {k: counter[k] for k in sorted(counter)}


def responder_counts(log_path):
    by_dir = {"c2s": collections.Counter(), "s2c": collections.Counter()}
    conns, writes, segments = set(), 0, {"c2s": collections.Counter(), "s2c": collections.Counter()}
    errors, nbytes = [], {"c2s": 0, "s2c": 0}
    for line in open(log_path):
        e = json.loads(line)
        if "error" in e:
            errors.append(e["error"])
        if "bytes" in e:
            for d in ("c2s", "s2c"):
                nbytes[d] += e["bytes"][d]
        if "segments" in e:
            for d in ("c2s", "s2c"):
                segments[d].update(e["segments"][d])
        if "opcode" not in e:
            continue
        conns.add(e["conn"])
        by_dir[e["dir"]][e["opcode"]] += 1
        if e["dir"] == "c2s" and e["opcode"] in ("QUERY", "EXECUTE") and WRITE_RE.match(e.get("query") or ""):
            writes += 1
        if e["dir"] == "c2s" and e["opcode"] == "BATCH":
            writes += len(e["queries"])
    return by_dir, len(conns), writes, segments, errors, nbytes


def pcap_bytes(pcap, server_port):
    """TCP payload bytes per direction in the capture (no CQL dissection needed)."""
    out = subprocess.run(["tshark", "-r", pcap, "-Y", "tcp.len > 0 && !tcp.analysis.retransmission",
                          "-T", "fields", "-e", "tcp.srcport", "-e", "tcp.len"],
                         capture_output=True, text=True, check=True).stdout
    total = {"c2s": 0, "s2c": 0}
    for line in out.splitlines():
        src, n = line.split("\t")
        total["s2c" if int(src) == server_port else "c2s"] += int(n)
    return total


def tshark_counts(pcap, server_port):
    out = subprocess.run(["tshark", "-r", pcap, "-Y", "cql", "-T", "fields",
                          "-e", "tcp.srcport", "-e", "cql.opcode"],
                         capture_output=True, text=True, check=True).stdout
    by_dir = {"c2s": collections.Counter(), "s2c": collections.Counter()}
    for line in out.splitlines():
        if not line.strip():
            continue
        src, _, opcodes = line.partition("\t")
        d = "s2c" if int(src) == server_port else "c2s"
        for op in filter(None, opcodes.split(",")):
            by_dir[d][OPCODE_NAMES.get(int(op, 0), op)] += 1
    return by_dir


def main():
    truth_path, log_path, pcap = sys.argv[1:4]
    text = open(truth_path).read()  # spliced as text to keep big numbers verbatim
    truth = json.loads(text)
    by_dir, conns, writes_seen, segments, errors, nbytes = responder_counts(log_path)
    port = int(truth["server"].rsplit(":", 1)[1])
    shark = tshark_counts(pcap, port)
    messages = {d: sorted_counts(by_dir[d]) for d in ("c2s", "s2c")}
    shark_view = {d: sorted_counts(shark[d]) for d in ("c2s", "s2c")}
    extra = collections.OrderedDict()
    extra["connections"] = conns
    extra["messages_by_opcode"] = messages
    if any(segments[d] for d in segments):
        extra["v5_segments"] = {d: sorted_counts(segments[d]) for d in ("c2s", "s2c")}
    dissected = any(shark_view[d] for d in shark_view)
    extra["tshark_check"] = {"tshark": "TShark 4.0 CQL dissector (-Y cql -e cql.opcode)",
                             "messages_by_opcode": shark_view,
                             "agrees": (shark_view == messages) if dissected else None}
    if not dissected:
        extra["tshark_check"]["note"] = "tshark dissected no CQL here (it does not handle protocol v5)"
    captured = pcap_bytes(pcap, port)
    extra["pcap_check"] = {"tcp_payload_bytes": captured, "responder_bytes": nbytes,
                           "complete": captured == nbytes}
    nwrites = len(truth["writes"])
    extra["responder_check"] = {"write_statements_seen": writes_seen, "agrees": writes_seen == nwrites,
                                "responder_errors": errors}
    # splice the new fields in before "writes", keeping the workload's number formatting
    head, sep, tail = text.partition('\n "writes": ')
    block = json.dumps(extra, indent=1)[1:-2]  # drop the braces
    with open(truth_path, "w") as f:
        f.write(head + block + "," + sep + tail)
    json.load(open(truth_path))  # still valid JSON
    print("%s: %d connections, c2s %s, s2c %s" % (truth["capture"], conns, messages["c2s"], messages["s2c"]))
    print("  writes: truth %d, responder saw %d; tshark agrees: %s" % (
        nwrites, writes_seen, extra["tshark_check"]["agrees"]))
    if dissected and shark_view != messages:
        print("  tshark counted: %s" % shark_view)
    if errors:
        print("  responder errors: %s" % errors)
    if captured != nbytes:
        print("  INCOMPLETE capture: pcap has %s TCP payload bytes, responder moved %s" % (captured, nbytes))
    sys.exit(0 if writes_seen == nwrites and captured == nbytes else 1)


if __name__ == "__main__":
    main()
