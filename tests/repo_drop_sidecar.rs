//! A sidecar that drops what it shipped and keeps running (issue #16): one
//! `tidemark proxy --repo file://… --push-every 0.5 --keep-local 0s` in front of a
//! 1-node CQL testbed, the scylla driver writing through it.
//!
//! - while it runs, its pushes drop the confirmed log locally (`status --json`:
//!   the local log empty, starting past every seq written so far) and it goes on
//!   deciding and shipping new writes after each drop;
//! - SIGKILLed with its local log dropped whole and started again on the same
//!   store, it resumes: new writes get the seqs that follow (the repository's chain
//!   of segments stays contiguous: `repo verify` clean, `repo pull` merges it), its
//!   last push at SIGTERM succeeds (exit 0);
//! - against the database: `repo pull` of the repository into an empty working
//!   store holds every write the driver made exactly once, committed, and those
//!   writes, applied by client timestamp, are exactly the testbed's live cells.

mod proxy_support;
mod ready_support;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use proxy_support::{common_port, output_within, start_proxy};
use serde_json::Value;
use tidemark_testbed::{ClusterConfig, CqlCluster};

const KS: &str = "dropks";

fn tidemark(args: &[&str]) -> std::process::Output {
    let out = output_within(
        Command::new(env!("CARGO_BIN_EXE_tidemark")).args(args),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "tidemark {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_lines(out: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn status(store: &Path) -> Value {
    json_lines(&tidemark(&[
        "status",
        "--store",
        store.to_str().unwrap(),
        "--json",
    ]))
    .remove(0)
}

/// Waits (20 s at most) until the sidecar's pushes have dropped its whole local
/// log past at least `past` seqs; returns where the log starts.
fn wait_dropped_past(store: &Path, past: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = status(store);
        let start = s["dropped"]["log_start"].as_u64().unwrap_or(1);
        if start > past && s["mutations"] == 0 {
            return start;
        }
        assert!(
            Instant::now() < deadline,
            "the sidecar did not drop its shipped log within 20 s: {s}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

type Session = scylla::client::session::Session;

async fn session(contact: SocketAddr) -> Session {
    scylla::client::session_builder::SessionBuilder::new()
        .known_node(contact.to_string())
        .build()
        .await
        .expect("scylla through the sidecar")
}

/// `count` inserts from id `from`, each with its own client timestamp.
async fn inserts(s: &Session, clock: &AtomicI64, from: i32, count: i32) {
    use scylla::statement::unprepared::Statement;
    for id in from..from + count {
        let mut st = Statement::new(format!("INSERT INTO {KS}.t (id, v) VALUES (?, ?)"));
        st.set_timestamp(Some(clock.fetch_add(1, Ordering::SeqCst)));
        s.query_unpaged(st, (id, format!("v{id}")))
            .await
            .expect("insert");
    }
}

async fn within<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), work)
        .await
        .expect("a driver's workload did not end within 60 s")
}

fn hex_int(h: &str) -> i64 {
    i64::from(u32::from_str_radix(h, 16).unwrap() as i32)
}

#[test]
fn a_sidecar_that_drops_what_it_shipped_keeps_running_and_resumes_after_a_kill() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cluster = rt
        .block_on(CqlCluster::start(ClusterConfig {
            nodes: 1,
            base_addr: Ipv4Addr::new(127, 0, 219, 1),
            port: 0,
            ..ClusterConfig::default()
        }))
        .unwrap();
    let node = cluster.addresses()[0];
    let ip = Ipv4Addr::new(127, 0, 219, 101);
    let sidecar = SocketAddr::from((ip, common_port(&[ip], node.port())));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("sidecar");
    let repo = format!("file://{}", dir.path().join("repo").display());
    let args: Vec<String> = [
        "--listen",
        &sidecar.to_string(),
        "--upstream",
        &node.to_string(),
        "--map",
        &format!("{node}={sidecar}"),
        "--repo",
        &repo,
        "--push-every",
        "0.5",
        "--keep-local",
        "0s",
        "--source-id",
        "sc",
        "--resolve-after",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let clock = AtomicI64::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as i64,
    );

    // A: schema and 40 writes, shipped and dropped.
    let (mut proxy, err) = start_proxy(&args, &store, &[]);
    let s = rt.block_on(within(session(sidecar)));
    rt.block_on(within(async {
        for q in [
            format!("CREATE KEYSPACE {KS} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"),
            format!("CREATE TABLE {KS}.t (id int PRIMARY KEY, v text)"),
        ] {
            s.query_unpaged(q.as_str(), ()).await.expect("ddl");
        }
        inserts(&s, &clock, 0, 40).await;
    }));
    let start_a = wait_dropped_past(&store, 40);

    // B: the same run goes on after the drop.
    rt.block_on(within(inserts(&s, &clock, 40, 40)));
    let start_b = wait_dropped_past(&store, start_a + 39);
    assert!(start_b >= start_a + 40, "{start_a} → {start_b}");
    // Rounds with nothing new and the local log empty must push cleanly too.
    std::thread::sleep(Duration::from_millis(1500));

    // C: SIGKILL with the local log dropped whole; started again on the store.
    drop(s);
    let status_kill = proxy.signal_and_wait("KILL", Duration::from_secs(10));
    assert!(!status_kill.success());
    let mut said = err.rest();
    let (proxy, err) = start_proxy(&args, &store, &[]);
    // Restarted on an empty local log: a few rounds before any new write.
    std::thread::sleep(Duration::from_millis(1500));
    let s = rt.block_on(within(session(sidecar)));
    rt.block_on(within(inserts(&s, &clock, 80, 40)));
    drop(s);
    let (exit, out, rest) = proxy_support::stop(proxy, err);
    assert!(exit.success(), "the last push failed: {out} {rest:?}");
    let summary: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(summary["gap_bytes"], 0, "{summary}");
    said.extend(rest);
    let failures: Vec<&String> = said.iter().filter(|l| l.contains("failed")).collect();
    assert!(failures.is_empty(), "a push round failed: {failures:?}");
    let end = status(&store);
    assert!(
        end["dropped"]["log_start"].as_u64().unwrap() > start_b,
        "{end}"
    );

    // The repository: one contiguous chain, clean.
    let v = json_lines(&tidemark(&["repo", "verify", "--repo", &repo, "--json"]));
    assert_eq!(v.last().unwrap()["problems"], 0, "{v:?}");
    let merged = dir.path().join("merged");
    tidemark(&[
        "repo",
        "pull",
        "--repo",
        &repo,
        "--store",
        merged.to_str().unwrap(),
    ]);
    let log: Vec<Value> = json_lines(&tidemark(&[
        "log",
        "--json",
        "--store",
        merged.to_str().unwrap(),
    ]))
    .into_iter()
    .filter(|m| m["type"] == "mutation" && m["namespace"] == format!("{KS}.t"))
    .filter(|m| m["op"] == "insert")
    .collect();
    // Every write once, committed.
    let mut by_id: BTreeMap<i64, Vec<&Value>> = BTreeMap::new();
    for m in &log {
        by_id
            .entry(m["key"]["id"].as_i64().unwrap())
            .or_default()
            .push(m);
    }
    assert_eq!(by_id.len(), 120, "{} inserts merged", log.len());
    for (id, copies) in &by_id {
        assert_eq!(copies.len(), 1, "write {id}: {copies:?}");
        assert_eq!(copies[0]["outcome"], "committed", "{}", copies[0]);
    }
    // Against the database: each row's v cell and its write timestamp.
    let logged: BTreeMap<i64, i64> = by_id
        .iter()
        .map(|(id, c)| (*id, c[0]["timestamp"].as_i64().unwrap()))
        .collect();
    let truth: BTreeMap<i64, i64> = cluster
        .logical_state()
        .into_iter()
        .filter(|c| c.keyspace == KS && c.column == "v")
        .map(|c| (hex_int(&c.partition_key[0]), c.timestamp))
        .collect();
    assert_eq!(logged, truth, "the merged log against the testbed's cells");
    cluster.stop();
}
