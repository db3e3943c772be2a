//! The Rust `scylla` crate's workload for the real Cassandra cluster: prepared
//! INSERT/UPDATE/DELETE over several types, a logged batch, an LWT that applies and one
//! that does not, a counter, collections, TTL and USING TIMESTAMP. Each write is
//! returned as the driver saw it, in the shape `cql_workload.py write` prints
//! (`{"ns", "key", "op", "applied"}`), so the same checks apply.

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::batch::Batch;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::Consistency;
use scylla::value::{Counter, CqlValue, Row};
use serde_json::{json, Value};

type Error = Box<dyn std::error::Error>;

fn seen(ns: &str, k: i32, op: &str, applied: bool) -> Value {
    json!({"ns": ns, "key": {"k": k}, "op": op, "applied": applied})
}

/// Prepares `text` at QUORUM (the writes every replica set of RF 3 must reach twice).
async fn prepare(s: &Session, text: String) -> Result<PreparedStatement, Error> {
    let mut p = s.prepare(text).await?;
    p.set_consistency(Consistency::Quorum);
    Ok(p)
}

/// `[applied]` of an LWT's result row, as the driver decoded it.
fn applied(r: scylla::response::query_result::QueryResult) -> Result<bool, Error> {
    let row: Row = r.into_rows_result()?.first_row()?;
    match row.columns.first() {
        Some(Some(CqlValue::Boolean(b))) => Ok(*b),
        other => Err(format!("no [applied] column: {other:?}").into()),
    }
}

/// Runs the workload in keyspace `ks` (RF = number of hosts, `hosts` comma-separated
/// addresses on port 9042).
pub async fn run(ks: &str, hosts: &str) -> Result<Vec<Value>, Error> {
    let nodes: Vec<String> = hosts.split(',').map(|h| format!("{h}:9042")).collect();
    let s = SessionBuilder::new().known_nodes(&nodes).build().await?;
    let rf = nodes.len();
    s.query_unpaged(format!("DROP KEYSPACE IF EXISTS {ks}"), ())
        .await?;
    s.query_unpaged(
        format!(
            "CREATE KEYSPACE {ks} WITH replication = \
             {{'class': 'SimpleStrategy', 'replication_factor': {rf}}}"
        ),
        (),
    )
    .await?;
    for t in [
        "types (k int PRIMARY KEY, txt text, big bigint, d double, b boolean, bl blob, sm smallint)",
        "coll (k int PRIMARY KEY, l list<int>, s set<text>, m map<text, int>)",
        "cnt (k int PRIMARY KEY, n counter)",
        "lwt (k int PRIMARY KEY, v text)",
        "opts (k int PRIMARY KEY, v text)",
    ] {
        s.query_unpaged(format!("CREATE TABLE {ks}.{t}"), ())
            .await?;
    }
    let ns = |t: &str| format!("{ks}.{t}");
    let mut out = Vec::new();

    let ins = prepare(
        &s,
        format!("INSERT INTO {ks}.types (k, txt, big, d, b, bl, sm) VALUES (?, ?, ?, ?, ?, ?, ?)"),
    )
    .await?;
    for k in 0..30i32 {
        let row = (
            k,
            format!("scylla-{k}"),
            i64::from(k) * 1_000_000_007,
            f64::from(k) + 0.5,
            k % 3 == 0,
            vec![k as u8, 255 - k as u8],
            (k - 15) as i16,
        );
        s.execute_unpaged(&ins, row).await?;
        out.push(seen(&ns("types"), k, "insert", true));
    }
    let upd = prepare(
        &s,
        format!("UPDATE {ks}.types SET txt = ?, big = ? WHERE k = ?"),
    )
    .await?;
    for k in (0..30i32).step_by(3) {
        s.execute_unpaged(&upd, (format!("updated-{k}"), -i64::from(k), k))
            .await?;
        out.push(seen(&ns("types"), k, "update", true));
    }
    let del = prepare(&s, format!("DELETE FROM {ks}.types WHERE k = ?")).await?;
    for k in [2i32, 13, 29] {
        s.execute_unpaged(&del, (k,)).await?;
        out.push(seen(&ns("types"), k, "delete", true));
    }

    // A logged batch of three prepared inserts.
    let mut batch = Batch::default();
    for _ in 0..3 {
        batch.append_statement(ins.clone());
    }
    batch.set_consistency(Consistency::Quorum);
    let rows: Vec<_> = (200..203i32)
        .map(|k| {
            (
                k,
                format!("batch-{k}"),
                i64::from(k),
                0.25,
                true,
                vec![1u8],
                0i16,
            )
        })
        .collect();
    s.batch(&batch, (rows[0].clone(), rows[1].clone(), rows[2].clone()))
        .await?;
    for k in 200..203 {
        out.push(seen(&ns("types"), k, "insert", true));
    }

    // Two LWTs on one key: the first applies, the second does not.
    let lwt = prepare(
        &s,
        format!("INSERT INTO {ks}.lwt (k, v) VALUES (?, ?) IF NOT EXISTS"),
    )
    .await?;
    for v in ["first", "second"] {
        let ok = applied(s.execute_unpaged(&lwt, (1i32, v)).await?)?;
        out.push(seen(&ns("lwt"), 1, "insert", ok));
    }

    let inc = prepare(&s, format!("UPDATE {ks}.cnt SET n = n + ? WHERE k = ?")).await?;
    s.execute_unpaged(&inc, (Counter(7), 1i32)).await?;
    out.push(seen(&ns("cnt"), 1, "update", true));

    let col = prepare(
        &s,
        format!("INSERT INTO {ks}.coll (k, l, s, m) VALUES (?, ?, ?, ?)"),
    )
    .await?;
    let m: std::collections::BTreeMap<String, i32> = [("x".into(), 1), ("y".into(), 2)].into();
    s.execute_unpaged(
        &col,
        (1i32, vec![3i32, 1, 2], vec!["a".to_string(), "b".into()], m),
    )
    .await?;
    out.push(seen(&ns("coll"), 1, "insert", true));
    let add = prepare(&s, format!("UPDATE {ks}.coll SET l = l + ? WHERE k = ?")).await?;
    s.execute_unpaged(&add, (vec![4i32], 2i32)).await?;
    out.push(seen(&ns("coll"), 2, "update", true));

    let ttl = prepare(
        &s,
        format!("INSERT INTO {ks}.opts (k, v) VALUES (?, ?) USING TTL 86400"),
    )
    .await?;
    s.execute_unpaged(&ttl, (1i32, "with-ttl")).await?;
    out.push(seen(&ns("opts"), 1, "insert", true));
    let stamp = prepare(
        &s,
        format!("INSERT INTO {ks}.opts (k, v) VALUES (?, ?) USING TIMESTAMP ?"),
    )
    .await?;
    s.execute_unpaged(&stamp, (2i32, "with-timestamp", 1_700_000_000_000_000i64))
        .await?;
    out.push(seen(&ns("opts"), 2, "insert", true));
    Ok(out)
}
