#!/usr/bin/env python3
"""Create the capture workload's schema (cql_schema.py: keyspace, UDT, tables) on a
running tidemark-testbed, with the real Python driver. Run before tcpdump starts, so
the captures hold only the workload.

usage: cql_testbed_schema.py HOST PORT DATACENTER
"""
import os
import sys

from cassandra.cluster import Cluster

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cql_schema  # noqa: E402


def statements(dc):
    ks = cql_schema.KEYSPACE
    yield ("CREATE KEYSPACE %s WITH replication = {'class': 'NetworkTopologyStrategy', '%s': 1}"
           % (ks, dc))
    for name, fields in cql_schema.TYPES.items():
        yield "CREATE TYPE %s.%s (%s)" % (ks, name, ", ".join("%s %s" % f for f in fields))
    for name, t in cql_schema.TABLES.items():
        cols = ", ".join("%s %s" % c for c in t["columns"])
        key = "(%s)" % ", ".join(t["partition_key"])
        if t["clustering"]:
            key += ", " + ", ".join(t["clustering"])
        yield "CREATE TABLE %s.%s (%s, PRIMARY KEY (%s))" % (ks, name, cols, key)


def main():
    host, port, dc = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    cluster = Cluster([host], port=port, protocol_version=4)
    session = cluster.connect()
    for q in statements(dc):
        session.execute(q)
    cluster.shutdown()


if __name__ == "__main__":
    main()
