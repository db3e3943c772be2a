"""The system tables cql_responder.py answers: system.local, system.peers(_v2), and
system_schema as Cassandra 4.1 would show the workload's schema (cql_schema.py)."""
import uuid

import cql_schema

HOST_ID = uuid.UUID("5f2c9a1e-7d4b-4c1a-9e3f-1a2b3c4d5e6f")
SCHEMA_VERSION = uuid.UUID("e84b6a60-24cf-30ca-9b58-452d92911703")


def system_tables(host, port, dc, rack):
    local = [
        ("key", "text", "local"), ("bootstrapped", "text", "COMPLETED"),
        ("broadcast_address", "inet", host), ("broadcast_port", "int", 7000),
        ("cluster_name", "text", "tidemark-capture"), ("cql_version", "text", "3.4.6"),
        ("data_center", "text", dc), ("gossip_generation", "int", 1700000000),
        ("host_id", "uuid", HOST_ID), ("listen_address", "inet", host),
        ("listen_port", "int", 7000), ("native_protocol_version", "text", "5"),
        ("partitioner", "text", "org.apache.cassandra.dht.Murmur3Partitioner"),
        ("rack", "text", rack), ("release_version", "text", "4.1.3"),
        ("rpc_address", "inet", host), ("rpc_port", "int", port),
        ("schema_version", "uuid", SCHEMA_VERSION),
        ("tokens", "set<text>", ["-9223372036854775808", "0", "4611686018427387904"]),
        ("truncated_at", "map<uuid, blob>", {}),
    ]
    peers_v2 = [("peer", "inet"), ("peer_port", "int"), ("data_center", "text"),
                ("host_id", "uuid"), ("native_address", "inet"), ("native_port", "int"),
                ("preferred_ip", "inet"), ("preferred_port", "int"), ("rack", "text"),
                ("release_version", "text"), ("schema_version", "uuid"),
                ("tokens", "set<text>")]
    peers = [("peer", "inet"), ("data_center", "text"), ("host_id", "uuid"),
             ("preferred_ip", "inet"), ("rack", "text"), ("release_version", "text"),
             ("rpc_address", "inet"), ("schema_version", "uuid"), ("tokens", "set<text>")]
    tables = {
        ("system", "local"): ([(n, t) for n, t, _ in local], [[v for _, _, v in local]]),
        ("system", "peers_v2"): (peers_v2, []),
        ("system", "peers"): (peers, []),
    }
    tables.update(schema_tables(dc))
    return tables


def schema_tables(dc):
    """system_schema (and system_virtual_schema) as Cassandra 4.1 would answer for the
    workload's schema: real rows for keyspaces, tables, columns and types; no rows for
    the rest."""
    ks = cql_schema.KEYSPACE
    text_map, text_list = "frozen<map<text, text>>", "frozen<list<text>>"
    col_cols = [("keyspace_name", "text"), ("table_name", "text"), ("column_name", "text"),
                ("clustering_order", "text"), ("column_name_bytes", "blob"), ("kind", "text"),
                ("position", "int"), ("type", "text")]
    table_cols = [("keyspace_name", "text"), ("table_name", "text"),
                  ("additional_write_policy", "text"), ("bloom_filter_fp_chance", "double"),
                  ("caching", text_map), ("cdc", "boolean"), ("comment", "text"),
                  ("compaction", text_map), ("compression", text_map),
                  ("crc_check_chance", "double"), ("default_time_to_live", "int"),
                  ("extensions", "frozen<map<text, blob>>"), ("flags", "frozen<set<text>>"),
                  ("gc_grace_seconds", "int"), ("id", "uuid"), ("max_index_interval", "int"),
                  ("memtable_flush_period_in_ms", "int"), ("min_index_interval", "int"),
                  ("read_repair", "text"), ("speculative_retry", "text")]
    table_rows, column_rows = [], []
    for name, t in cql_schema.TABLES.items():
        counter = any(ct == "counter" for _, ct in t["columns"])
        table_rows.append([
            ks, name, "99p", 0.01, {"keys": "ALL", "rows_per_partition": "NONE"}, None, "",
            {"class": "org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy",
             "max_threshold": "32", "min_threshold": "4"},
            {"chunk_length_in_kb": "16", "class": "org.apache.cassandra.io.compress.LZ4Compressor"},
            1.0, 0, {}, ["compound", "counter"] if counter else ["compound"], 864000,
            uuid.uuid5(uuid.NAMESPACE_URL, "tidemark/%s/%s" % (ks, name)), 2048, 0, 128,
            "BLOCKING", "99p"])
        for col, ctype in t["columns"]:
            if col in t["partition_key"]:
                kind, pos, order = "partition_key", t["partition_key"].index(col), "none"
            elif col in t["clustering"]:
                kind, pos, order = "clustering", t["clustering"].index(col), "asc"
            else:
                kind, pos, order = "regular", -1, "none"
            column_rows.append([ks, name, col, order, col.encode(), kind, pos, ctype])
    type_rows = [[ks, n, [f for f, _ in fields], [ft for _, ft in fields]]
                 for n, fields in cql_schema.TYPES.items()]
    return {
        ("system_schema", "keyspaces"): (
            [("keyspace_name", "text"), ("durable_writes", "boolean"), ("replication", text_map)],
            [[ks, True, {"class": "org.apache.cassandra.locator.NetworkTopologyStrategy", dc: "3"}]]),
        ("system_schema", "tables"): (table_cols, table_rows),
        ("system_schema", "columns"): (col_cols, column_rows),
        ("system_schema", "types"): (
            [("keyspace_name", "text"), ("type_name", "text"), ("field_names", text_list),
             ("field_types", text_list)], type_rows),
        ("system_schema", "functions"): (
            [("keyspace_name", "text"), ("function_name", "text"), ("argument_types", text_list),
             ("argument_names", text_list), ("body", "text"), ("called_on_null_input", "boolean"),
             ("language", "text"), ("return_type", "text")], []),
        ("system_schema", "aggregates"): (
            [("keyspace_name", "text"), ("aggregate_name", "text"), ("argument_types", text_list),
             ("final_func", "text"), ("initcond", "text"), ("return_type", "text"),
             ("state_func", "text"), ("state_type", "text")], []),
        ("system_schema", "triggers"): (
            [("keyspace_name", "text"), ("table_name", "text"), ("trigger_name", "text"),
             ("options", text_map)], []),
        ("system_schema", "indexes"): (
            [("keyspace_name", "text"), ("table_name", "text"), ("index_name", "text"),
             ("kind", "text"), ("options", text_map)], []),
        ("system_schema", "views"): (
            [("keyspace_name", "text"), ("view_name", "text"), ("base_table_id", "uuid"),
             ("base_table_name", "text"), ("include_all_columns", "boolean"),
             ("where_clause", "text")], []),
        ("system_virtual_schema", "keyspaces"): ([("keyspace_name", "text")], []),
        ("system_virtual_schema", "tables"): (
            [("keyspace_name", "text"), ("table_name", "text"), ("comment", "text")], []),
        ("system_virtual_schema", "columns"): (col_cols, []),
    }
