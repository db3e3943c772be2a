# Writes imp.l on one real Cassandra 5.0.9 node (see README.md): a list, a static
# column, a clustering range deletion; prints what the driver reads back.
from cassandra.cluster import Cluster
s = Cluster(['127.0.0.1']).connect()
s.execute("CREATE KEYSPACE IF NOT EXISTS imp WITH replication = {'class':'SimpleStrategy','replication_factor':1}")
s.execute("CREATE TABLE IF NOT EXISTS imp.l (k int, c int, s text static, l list<int>, v text, PRIMARY KEY (k, c))")
s.execute("INSERT INTO imp.l (k, c, s, l, v) VALUES (1, 1, 'st', [10, 20], 'a') USING TIMESTAMP 1700000000000010")
s.execute("UPDATE imp.l USING TIMESTAMP 1700000000000011 SET l = l + [30] WHERE k = 1 AND c = 1")
s.execute("UPDATE imp.l USING TIMESTAMP 1700000000000012 SET l = [5] + l WHERE k = 1 AND c = 1")
for c in range(2, 6):
    s.execute(f"INSERT INTO imp.l (k, c, v) VALUES (1, {c}, 'r{c}') USING TIMESTAMP 1700000000000013")
s.execute("DELETE FROM imp.l USING TIMESTAMP 1700000000000014 WHERE k = 1 AND c > 2 AND c <= 4")
s.execute("UPDATE imp.l USING TIMESTAMP 1700000000000015 SET s = 'only static' WHERE k = 2")
for r in s.execute("SELECT k, c, s, l, v, writetime(v), writetime(s) FROM imp.l"): print(r)
