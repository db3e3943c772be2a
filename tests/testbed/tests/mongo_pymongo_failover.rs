//! The real `pymongo` driver through a failover (`tests/py/mongo_failover.py`):
//! w:1 writes acknowledged by a partitioned primary, a new primary elected,
//! the old one healed and rolled back, the driver carrying on against the
//! new primary by itself. The ground truth must show exactly which
//! acknowledged writes were lost: the acknowledged w:1 inserts missing from
//! the final data are precisely the rolled-back inserts, and no
//! w:"majority"-acknowledged insert is lost. Needs pymongo (through `require`).

#[path = "../../require/mod.rs"]
mod require;

use serde_json::Value;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tidemark_testbed::{MongoReplicaSet, ReplSetConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::ChildStdout;

const WAIT: Duration = Duration::from_secs(90);

async fn expect_line(lines: &mut Lines<BufReader<ChildStdout>>, want: &str) -> String {
    loop {
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {want}"))
            .expect("read driver output")
            .unwrap_or_else(|| panic!("driver exited before {want}"));
        if want.is_empty() || line.trim() == want {
            return line;
        }
        eprintln!("driver: {line}");
    }
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymongo_failover_loses_exactly_the_rolled_back_w1_writes() {
    if !require::python_modules(&["pymongo"]) {
        return;
    }
    let set = MongoReplicaSet::start(ReplSetConfig {
        base_addr: Ipv4Addr::new(127, 0, 53, 1),
        port: 0,
        max_await: Duration::from_secs(5),
        election_timeout: Duration::from_secs(3),
        heartbeat_interval: Duration::from_millis(300),
        ..ReplSetConfig::default()
    })
    .await
    .expect("start");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/mongo_failover.py");
    let mut child = tokio::process::Command::new("python3")
        .args([script, &set.uri()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run python3");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();

    expect_line(&mut lines, "PHASE_A_DONE").await;
    let old = set.primary().expect("a primary");
    set.partition(old).expect("partition");
    stdin.write_all(b"go\n").await.expect("signal");
    expect_line(&mut lines, "PHASE_B_DONE").await;
    until("a new primary", || set.primary().is_some_and(|p| p != old)).await;
    let new = set.primary().expect("primary");
    set.heal(old).expect("heal");
    stdin.write_all(b"go\n").await.expect("signal");
    let report: Value = serde_json::from_str(&expect_line(&mut lines, "").await).expect("json");
    eprintln!("driver report: {report}");
    expect_line(&mut lines, "OK").await;
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("driver exit")
        .expect("status");
    assert!(status.success());
    assert_eq!(
        report["new_primary"][0].as_str(),
        Some(set.shared().members[new].addr.ip().to_string().as_str()),
        "the driver found the new primary: {report}"
    );

    until("the old primary to roll back and catch up", || {
        !set.rollbacks().is_empty() && set.oplog(old) == set.oplog(new)
    })
    .await;
    let acked: Vec<(i64, String)> = report["acked"]
        .as_array()
        .expect("acked")
        .iter()
        .map(|a| (a["_id"].as_i64().unwrap_or(-1), a["w"].to_string()))
        .collect();
    let final_ids: BTreeSet<i64> = set
        .documents(new, "t.c")
        .iter()
        .filter_map(|d| {
            d.get("_id")
                .and_then(|v| v.as_i32().map(i64::from).or(v.as_i64()))
        })
        .collect();
    let lost: BTreeSet<i64> = acked
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !final_ids.contains(id))
        .collect();
    let rolled_back: BTreeSet<i64> = set
        .rollbacks()
        .iter()
        .flat_map(|r| r.entries.clone())
        .filter(|e| e.get_str("op").ok() == Some("i"))
        .filter_map(|e| {
            let id = e.get_document("o").ok()?.get("_id")?.clone();
            id.as_i32().map(i64::from).or(id.as_i64())
        })
        .collect();
    assert_eq!(lost, rolled_back, "lost acknowledged writes = rolled back");
    assert!(
        set.rollbacks().iter().all(|r| r.member == old),
        "only the old primary had entries the majority never had"
    );
    assert!(
        lost.is_superset(&BTreeSet::from([10, 11, 12])),
        "the partitioned primary's w:1 writes are lost: {lost:?}"
    );
    for (id, w) in &acked {
        if w.contains("majority") {
            assert!(final_ids.contains(id), "w:majority insert {id} survives");
        }
    }
    assert_eq!(set.documents(old, "t.c"), set.documents(new, "t.c"));
    set.stop();
}
