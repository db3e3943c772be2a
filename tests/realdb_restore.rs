//! `tidemark restore` into real Apache Cassandra 5.0 (`scripts/cassandra.sh`): the
//! version of a 3-node testbed workload (tests/restore_support) restored into a real
//! 1-node and then a real 3-node cluster (each started once for this binary, one
//! after the other: they share 127.0.0.1..3:9042). The reference is the source read
//! through the `scylla` driver at QUORUM with the same queries: every row equal,
//! values and WRITETIME, TTL still counting down.

mod realdb_support;
mod restore_support;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use realdb_support::server;
use restore_support::*;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::value::CqlValue;

static ONE: OnceLock<Result<String, String>> = OnceLock::new();
static THREE: OnceLock<Result<String, String>> = OnceLock::new();

/// The queries compared, with the positions of their TTL columns.
const QUERIES: [(&str, &[usize]); 5] = [
    ("SELECT pk, ck, v, writetime(v), ttl(v), n, writetime(n), ttl(n), f, writetime(f), ttl(f), m, s FROM rsrc.t", &[4, 7, 10]),
    ("SELECT pk, ck, s, writetime(s), v, writetime(v), ttl(v) FROM rsrc.st", &[6]),
    ("SELECT pk, a FROM rsrc.u", &[]),
    ("SELECT pk, hits FROM rsrc.c", &[]),
    ("SELECT pk, l FROM rsrc.l", &[]),
];

/// Target rows equal the source's: every column, except TTLs, which must still be
/// counting (positive) and at most the TTL written (the workload's are 1 h and 2 h).
fn assert_same(
    query: &str,
    ttls: &[usize],
    src: &BTreeMap<String, Vec<Option<CqlValue>>>,
    dst: &BTreeMap<String, Vec<Option<CqlValue>>>,
) {
    assert_eq!(
        src.keys().collect::<Vec<_>>(),
        dst.keys().collect::<Vec<_>>(),
        "{query}: rows"
    );
    for (k, a) in src {
        let b = &dst[k];
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            if ttls.contains(&i) {
                match (x, y) {
                    (None, None) => {}
                    (Some(CqlValue::Int(_)), Some(CqlValue::Int(t))) => {
                        assert!(*t > 0 && *t <= 7200, "{query} {k}: ttl {t}")
                    }
                    _ => panic!("{query} {k}: ttl {x:?} in the source, {y:?} in the target"),
                }
            } else {
                assert_eq!(x, y, "{query} {k}: column {i}");
            }
        }
    }
}

async fn connect(hosts: &str) -> Session {
    SessionBuilder::new()
        .known_nodes(hosts.split(',').map(|h| format!("{}:9042", h.trim())))
        .build()
        .await
        .expect("driver connects to Cassandra")
}

#[test]
fn a_testbed_version_restores_into_real_one_and_three_node_cassandra() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let source = rt.block_on(testbed(3, 160, 77, None));
    let addr = source.addresses()[0];
    rt.block_on(async { workload(&session(addr).await).await });
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    version_of(&format!("cql://{addr}"), &store);
    let src_session = rt.block_on(session(addr));
    let mut want = Vec::new();
    for (q, _) in QUERIES {
        want.push(rt.block_on(read_at_quorum(&src_session, q)));
    }
    assert!(want[0].len() as i32 >= PARTITIONS * ROWS_EACH);

    for (cell, nodes) in [(&ONE, "1"), (&THREE, "3")] {
        let Some(contact) = server(cell, "cassandra.sh", &[nodes]) else {
            return;
        };
        let hosts: Vec<&str> = contact
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let uri = format!(
            "cql://{}",
            hosts
                .iter()
                .map(|h| format!("{h}:9042"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let out = restore(&store, &uri, &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r = report(&out);
        assert_eq!(r["total"]["failed"], 0, "{r}");
        let rows = r["total"]["written"].as_f64().unwrap();
        let secs = r["seconds"].as_f64().unwrap();
        let mb = r["total"]["bytes"].as_f64().unwrap() / 1e6;
        eprintln!(
            "realdb restore into {nodes} node(s): {rows} rows in {secs:.2} s = {:.0} rows/s, {:.3} MB/s",
            rows / secs,
            mb / secs
        );
        let dst = rt.block_on(connect(&hosts.join(",")));
        for ((q, ttls), src) in QUERIES.iter().zip(&want) {
            let got = rt.block_on(read_at_quorum(&dst, q));
            assert_same(q, ttls, src, &got);
        }
        drop(dst);
        // tidemark's own verify agrees with the reads above: equal, write times too.
        let v = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args([
                "verify",
                "--version",
                "v1",
                "--timestamps",
                "--json",
                "--against",
                &uri,
            ])
            .arg("--store")
            .arg(&store)
            .output()
            .unwrap();
        let verdict = String::from_utf8_lossy(&v.stdout);
        assert!(
            v.status.success(),
            "verify against {nodes} real node(s): {verdict} {}",
            String::from_utf8_lossy(&v.stderr)
        );
        assert!(verdict.contains("\"equal\":true"), "{verdict}");
        if nodes == "1" {
            // the 3-node cluster takes the same addresses
            let stopped = std::process::Command::new("bash")
                .arg(realdb_support::root().join("scripts/cassandra.sh"))
                .arg("stop")
                .status()
                .unwrap();
            assert!(stopped.success());
        }
    }
    source.stop();
}
