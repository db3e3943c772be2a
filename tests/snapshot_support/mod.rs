//! Helpers of the snapshot tests: run `tidemark snapshot …` as a process, read a
//! store's snapshots back, and the testbed's ground truth keyed like them.
#![allow(dead_code)]

pub mod cql;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use tidemark::snapshot::store as snapstore;
use tidemark::snapshot::{SnapshotInfo, SnapshotRow};
use tidemark::store::{Store, StoreOptions};

/// Runs the tidemark binary with `args`.
pub async fn tidemark(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .await
        .expect("tidemark runs")
}

/// `snapshot take --from FROM --store STORE --json EXTRA…`, which must succeed; the
/// summary line.
pub async fn take(from: &str, store: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["snapshot", "take", "--from", from, "--store"];
    let s = store.to_str().unwrap();
    args.push(s);
    args.push("--json");
    args.extend_from_slice(extra);
    let out = tidemark(&args).await;
    assert!(
        out.status.success(),
        "take failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().expect("a summary line");
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["type"], "summary");
    v
}

/// The store's snapshots and the rows of snapshot `id` (read-only open, closed again).
pub fn read(store: &Path, id: u64) -> (Vec<SnapshotInfo>, Vec<SnapshotRow>) {
    let s = Store::open(store, &StoreOptions::default().read_only()).unwrap();
    let infos = snapstore::list_snapshots(&s).unwrap();
    let rows = snapstore::rows(&s, id, None)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (infos, rows)
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A key column's JSON value as CQL bytes (the test tables key by int or text).
pub fn key_bytes(v: &serde_json::Value) -> Vec<u8> {
    match v {
        serde_json::Value::Number(n) => (n.as_i64().unwrap() as i32).to_be_bytes().to_vec(),
        serde_json::Value::String(s) => s.as_bytes().to_vec(),
        other => panic!("unexpected key value {other}"),
    }
}

/// One cell, keyed as the testbed's logical state keys it: (table, partition key
/// hex, clustering hex, column or `column[path hex]`).
pub type CellKey = (String, String, String, String);

/// Snapshot rows as cells keyed like [`CellKey`]; `pk` names each table's partition
/// key columns (the other key columns are clustering). Static cells are keyed with
/// an empty clustering, as the testbed keys them.
pub fn snapshot_cells(
    rows: &[SnapshotRow],
    pk: &BTreeMap<&str, Vec<&str>>,
) -> BTreeMap<CellKey, tidemark::store::Cell> {
    let mut out = BTreeMap::new();
    for r in rows {
        let table = r.namespace.split_once('.').unwrap().1.to_string();
        let key: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&r.key).unwrap();
        let pkcols = &pk[table.as_str()];
        let mut p = String::new();
        let mut c = String::new();
        for (name, v) in &key {
            if pkcols.contains(&name.as_str()) {
                p.push_str(&hex(&key_bytes(v)));
            } else {
                c.push_str(&hex(&key_bytes(v)));
            }
        }
        let tidemark::snapshot::RowData::Cql {
            cells,
            static_cells,
        } = &r.data
        else {
            panic!("a CQL row")
        };
        let name = |cell: &tidemark::store::Cell| match &cell.path {
            Some(path) => format!("{}[{}]", cell.column, hex(path)),
            None => cell.column.to_string(),
        };
        for cell in cells {
            let k = (table.clone(), p.clone(), c.clone(), name(cell));
            assert!(out.insert(k, cell.clone()).is_none(), "one cell once");
        }
        for cell in static_cells {
            let k = (table.clone(), p.clone(), String::new(), name(cell));
            assert!(
                out.insert(k, cell.clone()).is_none(),
                "one static cell once"
            );
        }
    }
    out
}
