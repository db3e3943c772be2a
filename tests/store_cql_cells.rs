//! Stored CQL cells against the ground truth of real drivers (issue #11, store
//! format 3): every CQL capture in `captures/` is tapped, and each stored cell of a
//! known type must decode, with `tidemark_cql::Value::decode` and the type the cell
//! names, to the value the truth file gives for its write; the type it names must
//! be the column's type in the workload's schema (`captures/tools/cql_schema.py`,
//! read here, not tidemark's schema); element cells of non-frozen collections must
//! rebuild the truth's collection or collection operation; deletions must be the
//! row, partition or range the truth's key and range describe.
//!
//! Every capture's driver learns the schema (`system_schema` rows on connect), so
//! the truth has no write without a schema: no cell may fall back to JSON text.

mod commit_support;
mod common;
mod inspect_support;
mod truth_json;

use inspect_support::own_capture as own;
use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{json, Map, Value as Json};
use tidemark::commit::TrackerConfig;
use tidemark::decode::cql::schema::Schema;
use tidemark::store::envelope::Payload;
use tidemark::store::{Cell, CellKind, CellOp, CqlPayload, Mutation};
use tidemark_cql::{to_json, ColumnType, Value};

const CQL: [&str; 9] = [
    "cql_faults",
    "cql_testbed_v4_lz4",
    "cql_testbed_v4_snappy",
    "cql_testbed_v5",
    "cql_v4_auth",
    "cql_v4_lz4",
    "cql_v4_snappy",
    "cql_v5",
    "cql_v5_nocomp",
];

/// Every `("a", "b")` pair in `line`.
fn pairs(line: &str) -> Vec<(String, String)> {
    line.split("(\"")
        .skip(1)
        .filter_map(|p| {
            let (a, rest) = p.split_once("\", \"")?;
            let (b, _) = rest.split_once("\")")?;
            Some((a.to_string(), b.to_string()))
        })
        .collect()
}

/// The workload's schema: (table, column) → CQL type text, and the UDTs, from
/// `captures/tools/cql_schema.py` (and `cql_faults_workload.py`'s table).
struct WorkloadSchema {
    columns: BTreeMap<(String, String), String>,
    types: Schema,
}

fn workload_schema() -> WorkloadSchema {
    let text = std::fs::read_to_string(own("tools/cql_schema.py")).unwrap();
    let mut columns = BTreeMap::new();
    let mut types = Schema::default();
    let (mut in_tables, mut table) = (false, String::new());
    for line in text.lines() {
        if line.starts_with("TYPES = {") {
            in_tables = false;
        } else if line.starts_with("TABLES = {") {
            in_tables = true;
        } else if let Some(rest) = line.strip_prefix("    \"") {
            let name = rest.split('"').next().unwrap().to_string();
            if in_tables {
                table = name;
            } else {
                types.add_udt("tm", &name, pairs(line));
            }
        } else if in_tables && line.starts_with("            (\"") {
            for (c, t) in pairs(line) {
                columns.insert((table.clone(), c), t);
            }
        }
    }
    // `cql_faults` creates its own table through the driver.
    let faults = std::fs::read_to_string(own("tools/cql_faults_workload.py")).unwrap();
    let create = faults
        .split("CREATE TABLE tm.faults (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .expect("cql_faults_workload.py creates tm.faults");
    for def in create.split(',') {
        let mut words = def.split_whitespace();
        let (c, t) = (words.next().unwrap(), words.next().unwrap());
        columns.insert(("faults".to_string(), c.to_string()), t.to_string());
    }
    assert!(columns.len() >= 40, "{} columns read", columns.len());
    WorkloadSchema { columns, types }
}

impl WorkloadSchema {
    fn parse(&self, text: &str) -> ColumnType {
        self.types
            .parse_type("tm", text)
            .unwrap_or_else(|| panic!("type {text} does not parse"))
    }
}

/// Numbers and digit strings compare by their decimal value; containers by content.
fn same(a: &Json, b: &Json) -> bool {
    let digits = |j: &Json| match j {
        Json::Number(n) => truth_json::canonical(&n.to_string()),
        Json::String(s) => truth_json::canonical(s),
        _ => None,
    };
    match (a, b) {
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ if a == b => true,
        (Json::Number(_), _) | (_, Json::Number(_)) => {
            digits(a).is_some() && digits(a) == digits(b)
        }
        _ => false,
    }
}

fn decode(ty: &ColumnType, bytes: &[u8]) -> Json {
    let v = Value::decode(ty, &Bytes::copy_from_slice(bytes))
        .unwrap_or_else(|e| panic!("{bytes:02x?} does not decode as {ty:?}: {e}"));
    to_json(&v, ty)
}

fn sorted(mut items: Vec<Json>) -> Vec<Json> {
    items.sort_by_key(|j| j.to_string());
    items
}

/// Finds the truth write of a stored mutation: same client timestamp, statement
/// text and key (batch members share a timestamp, repeated statements a text).
fn truth_of<'t>(m: &Mutation, writes: &'t [Json], used: &mut Vec<usize>) -> &'t Json {
    let line = Json::Object(tidemark::commit::write_line(m).unwrap());
    let i = writes
        .iter()
        .enumerate()
        .position(|(i, w)| {
            !used.contains(&i)
                && w["client_timestamp"] == line["client_timestamp"]
                && w["cql"] == line["cql"]
                && same(&w["key"], &line["key"])
        })
        .unwrap_or_else(|| panic!("no truth write for {line}"));
    used.push(i);
    &writes[i]
}

/// What one capture's cells showed.
#[derive(Default)]
struct Seen {
    whole: usize,
    elements: usize,
    counters: usize,
    tombstones: usize,
    deletions: usize,
    json: usize,
}

fn element_types(ty: &ColumnType) -> (ColumnType, ColumnType) {
    match ty.effective() {
        ColumnType::Map(k, v) => ((**k).clone(), (**v).clone()),
        ColumnType::Set(e) => ((**e).clone(), ColumnType::Blob),
        ColumnType::List(e) => (ColumnType::Int, (**e).clone()),
        other => panic!("element cell of {other:?}"),
    }
}

/// Checks the cells of one column against the truth write `w`.
fn check_column(
    ws: &WorkloadSchema,
    table: &str,
    col: &str,
    cells: &[&Cell],
    w: &Json,
    seen: &mut Seen,
) {
    let want_text = &ws.columns[&(table.to_string(), col.to_string())];
    let want_ty = ws.parse(want_text);
    let first = cells[0];
    let ty = ws.parse(&first.cql_type);
    assert_eq!(
        ty, want_ty,
        "{table}.{col}: {} vs {want_text}",
        first.cql_type
    );
    assert_eq!(
        first.cql_type.starts_with("frozen<"),
        want_text.starts_with("frozen<"),
        "{table}.{col}: {} vs {want_text}",
        first.cql_type
    );
    let ops: Vec<&Json> = w["collection_ops"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["column"] == col)
        .collect();
    let ts = w["timestamp"].as_i64();
    for c in cells {
        if let Some(ts) = ts {
            let offset = if c.op == CellOp::Tombstone && cells.len() > 1 {
                1
            } else {
                0
            };
            assert_eq!(c.timestamp, ts - offset, "{table}.{col} timestamp: {c:?}");
        }
    }
    // A whole value (simple or frozen column), or its deletion.
    if cells.len() == 1 && first.path.is_none() && ops.is_empty() {
        let value = &w["values"][col];
        let deleted = w["columns_deleted"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == col);
        if first.op == CellOp::Tombstone {
            assert!(
                value.is_null() || deleted,
                "{table}.{col}: tombstone for {value}"
            );
            assert_eq!(first.kind, CellKind::Tombstone);
            seen.tombstones += 1;
            return;
        }
        assert_eq!(first.op, CellOp::Set);
        let got = decode(&ty, &first.value);
        assert!(
            same(&got, value),
            "{table}.{col}: stored {got}, truth {value}"
        );
        seen.whole += 1;
        return;
    }
    // A counter change.
    if first.kind == CellKind::CounterShard {
        assert_eq!((cells.len(), ops.len()), (1, 1), "{table}.{col}");
        let delta = i64::from_be_bytes(first.value[..].try_into().unwrap());
        let v = ops[0]["value"].as_i64().unwrap();
        let want = if ops[0]["op"] == "decrement" { -v } else { v };
        assert_eq!(delta, want, "{table}.{col}");
        seen.counters += 1;
        return;
    }
    // Elements of a non-frozen collection.
    let (kt, vt) = element_types(&ty);
    let elems: Vec<&&Cell> = cells.iter().filter(|c| c.op != CellOp::Tombstone).collect();
    seen.elements += elems.len();
    if ops.is_empty() {
        // A whole-collection overwrite: the collection deletion, then the elements.
        assert_eq!(
            cells[0].op,
            CellOp::Tombstone,
            "{table}.{col}: no collection deletion"
        );
        assert_eq!(cells[0].path, None);
        let value = &w["values"][col];
        let got = match ty.effective() {
            ColumnType::List(_) => {
                Json::Array(elems.iter().map(|c| decode(&vt, &c.value)).collect())
            }
            ColumnType::Set(_) => Json::Array(sorted(
                elems
                    .iter()
                    .map(|c| decode(&kt, c.path.as_ref().unwrap()))
                    .collect(),
            )),
            _ => Json::Object(
                elems
                    .iter()
                    .map(|c| {
                        let k = decode(&kt, c.path.as_ref().unwrap());
                        let k = k.as_str().map(str::to_string).unwrap_or(k.to_string());
                        (k, decode(&vt, &c.value))
                    })
                    .collect::<Map<_, _>>(),
            ),
        };
        let value = match value {
            Json::Array(a) if matches!(ty.effective(), ColumnType::Set(_)) => {
                Json::Array(sorted(a.clone()))
            }
            v => v.clone(),
        };
        assert!(
            same(&got, &value),
            "{table}.{col}: stored {got}, truth {value}"
        );
        return;
    }
    assert_eq!(
        ops.len(),
        1,
        "{table}.{col}: one operation per column in the workload"
    );
    let op = &ops[0];
    let name = op["op"].as_str().unwrap();
    let (want_op, got) = match name {
        "append" | "prepend" => (
            if name == "append" {
                CellOp::Append
            } else {
                CellOp::Prepend
            },
            Json::Array(elems.iter().map(|c| decode(&vt, &c.value)).collect()),
        ),
        "remove" => (
            CellOp::Remove,
            Json::Array(
                elems
                    .iter()
                    .map(|c| decode(&kt, c.path.as_ref().unwrap()))
                    .collect(),
            ),
        ),
        "put_all" => (
            CellOp::Put,
            Json::Object(
                elems
                    .iter()
                    .map(|c| {
                        let k = decode(&kt, c.path.as_ref().unwrap());
                        (k.as_str().unwrap().to_string(), decode(&vt, &c.value))
                    })
                    .collect(),
            ),
        ),
        "put" => {
            assert_eq!(elems.len(), 1);
            let c = elems[0];
            let k = decode(&kt, c.path.as_ref().unwrap());
            assert!(
                same(&k, &op["key"]),
                "{table}.{col}: key {k} vs {}",
                op["key"]
            );
            (CellOp::Put, decode(&vt, &c.value))
        }
        "remove_key" | "remove_index" => {
            assert_eq!(elems.len(), 1);
            let k = decode(&kt, elems[0].path.as_ref().unwrap());
            assert_eq!(elems[0].kind, CellKind::Tombstone);
            (CellOp::Remove, json!(k))
        }
        other => panic!("{table}.{col}: operation {other} not in the workload"),
    };
    for c in &elems {
        assert_eq!(c.op, want_op, "{table}.{col} {name}");
    }
    let want = match name {
        "remove_key" | "remove_index" => &op["key"],
        _ => &op["value"],
    };
    assert!(
        same(&got, want),
        "{table}.{col} {name}: stored {got}, truth {want}"
    );
}

/// Checks row, partition and range deletions against the truth's key and range.
fn check_deletions(ws: &WorkloadSchema, table: &str, p: &CqlPayload, w: &Json, seen: &mut Seen) {
    let whole_rows = w["op"] == "delete"
        && w["columns_deleted"].as_array().unwrap().is_empty()
        && w["collection_ops"].as_array().unwrap().is_empty();
    if !whole_rows {
        assert!(p.row_deletion.is_none() && p.partition_deletion.is_none());
        assert!(p.range_deletions.is_empty());
        return;
    }
    seen.deletions += 1;
    let key = w["key"].as_object().unwrap();
    let has_ck = key.contains_key("seq") || key.contains_key("bucket") || key.contains_key("ck");
    match &w["range"] {
        Json::Null if has_ck => assert!(p.row_deletion.is_some(), "{w}"),
        Json::Null => assert!(p.partition_deletion.is_some(), "{w}"),
        Json::Object(r) => {
            let [rd] = &p.range_deletions[..] else {
                panic!("one range deletion for {w}: {p:?}")
            };
            let (col, ops) = r.iter().next().unwrap();
            let ty = ws.parse(&ws.columns[&(table.to_string(), col.clone())]);
            for (bound, is_start) in [(&rd.start, true), (&rd.end, false)] {
                let op = ops
                    .as_object()
                    .unwrap()
                    .iter()
                    .find(|(o, _)| o.starts_with(if is_start { '>' } else { '<' }))
                    .unwrap();
                let got = decode(&ty, bound.prefix.last().unwrap());
                assert!(same(&got, op.1), "{col} {}: {got}", op.0);
                assert_eq!(bound.inclusive, op.0.ends_with('='), "{col} {}", op.0);
            }
        }
        other => panic!("range {other}"),
    }
}

fn check_capture(name: &str, ws: &WorkloadSchema) -> Seen {
    let text = std::fs::read_to_string(own(&format!("{name}.truth.json"))).unwrap();
    let truth: Json = truth_json::parse_exact(&text);
    let writes = truth["writes"].as_array().unwrap();
    let out = commit_support::tap_file(&own(&format!("{name}.pcap")), TrackerConfig::default());
    let mutations = out
        .log
        .iter()
        .map(|e| &e.mutation)
        .chain(out.undecided.iter().map(|u| &u.mutation));
    let mut used = Vec::new();
    let mut seen = Seen::default();
    for m in mutations {
        let Payload::Cql(p) = &m.payload else {
            continue;
        };
        if !matches!(m.op.as_str(), "insert" | "update" | "delete") {
            continue;
        }
        let w = truth_of(m, writes, &mut used);
        let table = m.namespace.strip_prefix("tm.").unwrap();
        let mut by_col: BTreeMap<&str, Vec<&Cell>> = BTreeMap::new();
        for c in &p.cells {
            if &*c.cql_type == "json" {
                seen.json += 1;
                continue;
            }
            by_col.entry(&c.column).or_default().push(c);
        }
        for (col, cells) in &by_col {
            check_column(ws, table, col, cells, w, &mut seen);
        }
        // Every assigned, deleted or operated column has its cells.
        let mut named: Vec<&str> = w["values"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        named.extend(
            w["columns_deleted"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Json::as_str),
        );
        named.extend(
            w["collection_ops"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|o| o["column"].as_str()),
        );
        for col in named {
            assert!(by_col.contains_key(col), "{name}: no cell for {col} of {w}");
        }
        check_deletions(ws, table, p, w, &mut seen);
    }
    let data_writes = writes
        .iter()
        .filter(|w| matches!(w["op"].as_str(), Some("insert" | "update" | "delete")))
        .count();
    assert_eq!(
        used.len(),
        data_writes,
        "{name}: every truth write has its mutation"
    );
    seen
}

#[test]
fn stored_cells_decode_to_the_truth_of_every_cql_capture() {
    let ws = workload_schema();
    let mut report = Vec::new();
    for name in CQL {
        let s = check_capture(name, &ws);
        assert_eq!(
            s.json, 0,
            "{name}: cells without a type, but every write had a schema"
        );
        report.push(format!(
            "{name}: {} whole, {} element, {} counter, {} tombstone cells, {} deletions",
            s.whole, s.elements, s.counters, s.tombstones, s.deletions
        ));
        assert!(s.whole > 0, "{name}: no value cell checked");
    }
    eprintln!("{}", report.join("\n"));
}
