//! `captures/mongo_testbed.{pcap,truth.json}` (made by
//! `captures/tools/record_mongo_testbed.sh`: real pymongo against this
//! testbed with SCRAM-SHA-256) is consistent: every member recorded the same
//! oplog, the committed transaction is one `applyOps` entry, each retried
//! statement was logged once, the documents match the oplog's inserts, and
//! the SCRAM password is nowhere in the pcap.

use serde_json::Value;
use std::path::Path;

fn capture(ext: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../captures")
        .join(format!("mongo_testbed.{ext}"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn testbed_capture_truth_is_consistent_and_keeps_no_secret() {
    let truth: Value = serde_json::from_slice(&capture("truth.json")).expect("JSON");
    let tb = &truth["testbed"];
    let members = tb["members"].as_array().expect("members");
    assert_eq!(members.len(), 3);
    let oplog = members[0]["oplog"].as_array().expect("oplog");
    assert!(members.iter().all(|m| m["oplog"] == members[0]["oplog"]));
    let on = |op: &str, ns: &str| {
        oplog
            .iter()
            .filter(|e| e["op"] == op && e["ns"] == ns)
            .count()
    };
    assert_eq!((on("i", "shop.retry"), on("u", "shop.retry")), (1, 1));
    let apply_ops: Vec<&Value> = oplog
        .iter()
        .filter(|e| e["o"].get("applyOps").is_some())
        .collect();
    assert_eq!(apply_ops.len(), 1);
    assert!(apply_ops[0]["lsid"].is_object() && apply_ops[0]["txnNumber"].is_object());
    // every insert into shop.orders that survived is in the documents
    let orders = tb["documents"]["shop.orders"].as_array().expect("orders");
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["_id"], "t1");
    // the password is recorded in the truth on purpose, never on the wire
    let password = truth["server"]["scram_password"]
        .as_str()
        .expect("password");
    let pcap = capture("pcap");
    assert!(!pcap
        .windows(password.len())
        .any(|w| w == password.as_bytes()));
}
