//! The committed failover capture (`captures/mongo_failover.pcap`) agrees with
//! its ground truth, checked by `captures/tools/mongo_failover_check.py` (its
//! own pcap/TCP/OP_MSG reader, independent of tidemark): fetched oplog entries,
//! commit points on the wire, votes, the lost acknowledged inserts, one rollback
//! on the old primary. Needs python3 with pymongo's `bson` (through `require`).

#[path = "../../require/mod.rs"]
mod require;

use std::path::Path;
use std::process::Command;

#[test]
fn failover_capture_agrees_with_its_truth() {
    if !require::python_modules(&["bson"]) {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let captures = root.join("captures");
    let out = Command::new("python3")
        .arg(captures.join("tools/mongo_failover_check.py"))
        .arg(captures.join("mongo_failover.pcap"))
        .arg(captures.join("mongo_failover.truth.json"))
        .output()
        .expect("run the check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("lost acknowledged inserts [10, 11, 12, 13, 14]"),
        "{stdout}"
    );
}
