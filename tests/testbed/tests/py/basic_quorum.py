"""Real cassandra-driver against the testbed: discover peers, create a keyspace with
RF 3 and a table, insert with prepared statements at QUORUM, read back.
Usage: basic_quorum.py <contact ip> <port> <protocol version or 0 for default>"""
import sys
from cassandra.cluster import Cluster, ExecutionProfile, EXEC_PROFILE_DEFAULT
from cassandra import ConsistencyLevel
from cassandra.policies import RoundRobinPolicy, TokenAwarePolicy

ip, port, proto = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
profile = ExecutionProfile(load_balancing_policy=TokenAwarePolicy(RoundRobinPolicy()),
                           consistency_level=ConsistencyLevel.QUORUM, request_timeout=10)
kw = dict(contact_points=[ip], port=port, execution_profiles={EXEC_PROFILE_DEFAULT: profile},
          connect_timeout=5, control_connection_timeout=5)
if proto:
    kw["protocol_version"] = proto
cluster = Cluster(**kw)
session = cluster.connect()
hosts = sorted(h.endpoint.address for h in cluster.metadata.all_hosts())
print("hosts", hosts, "protocol", cluster.protocol_version)
assert len(hosts) == 3, hosts
session.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
session.execute("CREATE TABLE ks.t (k int, c text, v text, n bigint, PRIMARY KEY (k, c))")
assert "t" in cluster.metadata.keyspaces["ks"].tables, "table metadata missing"
ins = session.prepare("INSERT INTO ks.t (k, c, v, n) VALUES (?, ?, ?, ?)")
for k in range(20):
    for c in ("a", "b"):
        session.execute(ins, (k, c, f"v{k}{c}", k * 1000))
sel = session.prepare("SELECT c, v, n FROM ks.t WHERE k = ?")
for k in range(20):
    rows = [tuple(r) for r in session.execute(sel, (k,))]
    assert rows == [("a", f"v{k}a", k * 1000), ("b", f"v{k}b", k * 1000)], rows
wt = session.execute("SELECT WRITETIME(v) FROM ks.t WHERE k = 1 AND c = 'a'").one()[0]
assert wt > 0, wt
upd = session.prepare("UPDATE ks.t USING TIMESTAMP ? SET v = ? WHERE k = ? AND c = ?")
session.execute(upd, (1, "old", 2, "a"))  # older than the insert: loses
assert session.execute(sel, (2,)).one()[1] == "v2a"
session.execute("DELETE FROM ks.t WHERE k = 3 AND c = 'a'")
assert [r[0] for r in session.execute(sel, (3,))] == ["b"]
cluster.shutdown()
print("OK")
