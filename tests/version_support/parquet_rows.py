"""Reads tidemark's Parquet export with pyarrow (an independent reader) and prints
every row as JSON in the `SELECT JSON` spelling the truth files use, one object per
line: {"ns": ..., "types": {column: arrow type}, "row": {...}}."""
import datetime
import json
import os
import sys

import pyarrow.parquet as pq


def value(v):
    if isinstance(v, bytes):
        return "0x" + v.hex()
    if isinstance(v, datetime.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S.") + f"{v.microsecond // 1000:03d}Z"
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, datetime.time):
        return v.strftime("%H:%M:%S.%f") + "000"
    return v


for name in sorted(os.listdir(sys.argv[1])):
    table = pq.read_table(os.path.join(sys.argv[1], name))
    types = {f.name: str(f.type) for f in table.schema}
    for row in table.to_pylist():
        print(json.dumps({"ns": name[: -len(".parquet")], "types": types,
                          "row": {k: value(v) for k, v in row.items()}}))
