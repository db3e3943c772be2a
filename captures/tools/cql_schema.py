"""The schema of the CQL capture workload, shared by the workload and the responder.

Plain data, no driver import: the responder reads it to answer PREPARE with bind
metadata (column types, partition key indexes), the workload reads it to render
ground truth. Types are CQL type strings as written in CREATE TABLE.
"""

KEYSPACE = "tm"

# User-defined types: name -> [(field, type)], in declaration order.
TYPES = {
    "address": [("street", "text"), ("city", "text"), ("zip", "int")],
}

# Tables: name -> partition key, clustering columns, and every column with its type
# (key columns included), in declaration order.
TABLES = {
    "all_types": {
        "partition_key": ["id"],
        "clustering": ["ck"],
        "columns": [
            ("id", "uuid"),
            ("ck", "int"),
            ("ascii_c", "ascii"),
            ("bigint_c", "bigint"),
            ("blob_c", "blob"),
            ("bool_c", "boolean"),
            ("date_c", "date"),
            ("decimal_c", "decimal"),
            ("double_c", "double"),
            ("duration_c", "duration"),
            ("float_c", "float"),
            ("inet_c", "inet"),
            ("int_c", "int"),
            ("smallint_c", "smallint"),
            ("text_c", "text"),
            ("time_c", "time"),
            ("ts_c", "timestamp"),
            ("timeuuid_c", "timeuuid"),
            ("tinyint_c", "tinyint"),
            ("uuid_c", "uuid"),
            ("varint_c", "varint"),
            ("list_c", "list<text>"),
            ("set_c", "set<int>"),
            ("map_c", "map<text, int>"),
            ("tuple_c", "tuple<int, text, double>"),
            ("udt_c", "frozen<address>"),
            ("flist_c", "frozen<list<int>>"),
            ("fset_c", "frozen<set<text>>"),
            ("fmap_c", "frozen<map<int, text>>"),
            ("nested_c", "map<text, frozen<list<int>>>"),
            ("vec_c", "vector<float, 3>"),
        ],
    },
    "events": {
        "partition_key": ["user", "day"],
        "clustering": ["seq"],
        "columns": [
            ("user", "text"),
            ("day", "date"),
            ("seq", "int"),
            ("payload", "text"),
            ("tags", "list<text>"),
            ("attrs", "map<text, text>"),
            ("labels", "set<text>"),
        ],
    },
    "counters": {
        "partition_key": ["page"],
        "clustering": ["bucket"],
        "columns": [
            ("page", "text"),
            ("bucket", "int"),
            ("hits", "counter"),
            ("bytes", "counter"),
        ],
    },
    "users": {
        "partition_key": ["name"],
        "clustering": [],
        "columns": [
            ("name", "text"),
            ("email", "text"),
            ("age", "int"),
        ],
    },
}


def column_type(table, column):
    for name, ctype in TABLES[table]["columns"]:
        if name == column:
            return ctype
    raise KeyError("%s.%s" % (table, column))


def split_type(ctype):
    """'map<text, frozen<list<int>>>' -> ('map', ['text', 'frozen<list<int>>']);
    'int' -> ('int', [])."""
    ctype = ctype.strip()
    if "<" not in ctype:
        return ctype.lower(), []
    head, rest = ctype.split("<", 1)
    assert rest.endswith(">"), ctype
    rest = rest[:-1]
    args, depth, cur = [], 0, ""
    for ch in rest:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        if ch == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
        else:
            cur += ch
    args.append(cur.strip())
    return head.strip().lower(), args


def unfrozen(ctype):
    head, args = split_type(ctype)
    return unfrozen(args[0]) if head == "frozen" else ctype
