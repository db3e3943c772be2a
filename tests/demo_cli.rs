//! `tidemark demo` as the README runs it: the whole story on loopback, narrated step
//! by step, ending with both restores verified equal and nothing left running.
//!
//! What is checked is what the demo itself measures against independent references:
//! the drivers' own counts before the mistake and after the restore (QUORUM,
//! majority), and the replica set's rolled-back writes absent; the JSON steps name
//! what happened. The demo's clusters live in its own process; "nothing left running"
//! is that no process still names the demo's store (its `tidemark tap` child).

mod require;

use std::process::Command;

use serde_json::Value;

#[test]
fn the_demo_restores_the_moment_before_the_mistake_and_verifies_it_equal() {
    if !require::live_capture() {
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["demo", "--json"])
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed ({:?}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let steps: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(steps.iter().all(|s| s["type"] == "demo_step"), "{stdout}");
    let step = |name: &str| {
        steps
            .iter()
            .find(|s| s["step"] == name)
            .unwrap_or_else(|| panic!("no step {name}: {stdout}"))
            .clone()
    };
    let names: Vec<&str> = steps.iter().filter_map(|s| s["step"].as_str()).collect();
    assert_eq!(
        names,
        [
            "clusters",
            "tap",
            "workload",
            "snapshot",
            "changes",
            "node_added",
            "failover",
            "mistake",
            "tidemark",
            "version",
            "diff",
            "restore",
            "verify",
            "done"
        ]
    );
    assert_eq!(step("node_added")["nodes"], 4);
    assert_eq!(
        step("failover")["rolled_back"].as_array().map(Vec::len),
        Some(3)
    );
    // 1000 accounts, 20 closed after the snapshot
    assert_eq!(step("mistake")["truncated_rows"], 980);
    // 500 orders − 20 deleted + 100 new + 10 after the election
    assert_eq!(step("mistake")["deleted_documents"], 590);
    assert_eq!(step("version")["uncertain"], 0);
    assert_eq!(step("diff")["removed"]["demo.accounts"], 980);
    assert_eq!(step("diff")["removed"]["shop.orders"], 590);
    let verify = step("verify");
    assert_eq!(verify["cql_equal"], true, "{verify}");
    assert_eq!(verify["mongodb_equal"], true, "{verify}");
    assert_eq!(verify["counts_equal"], true, "{verify}");
    assert_eq!(verify["rolled_back_present"], 0, "{verify}");
    assert_eq!(step("done")["equal"], true);
    assert_eq!(step("restore")["cql"]["failed"], 0);
    assert_eq!(step("restore")["mongodb"]["failed"], 0);
    let store = step("tap")["store"].as_str().expect("store").to_string();
    let survivors: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&store))
        .collect();
    assert!(survivors.is_empty(), "still running: {survivors:?}");
}
