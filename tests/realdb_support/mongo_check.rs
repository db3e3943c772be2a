//! The MongoDB comparison of the realdb tests, live and from saved captures: tidemark's
//! log against what the driver saw and against what the server held afterwards.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{driver_tally, log_tally};

/// What a document becomes under one logged write: an insert's values, an update's
/// `$set`/`$inc`/`$push` or a replacement, a delete (None).
fn apply(doc: Option<Value>, l: &Value) -> Option<Value> {
    match l["op"].as_str().unwrap() {
        "insert" => Some(l["values"].clone()),
        "delete" => None,
        "update" => {
            let mut d = doc.expect("update of a document that exists");
            let upd = l["values"].as_object().unwrap();
            if upd.keys().any(|k| k.starts_with('$')) {
                let obj = d.as_object_mut().unwrap();
                for (f, v) in upd
                    .get("$set")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    obj.insert(f.clone(), v.clone());
                }
                for (f, v) in upd
                    .get("$inc")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    let sum = obj[f].as_i64().unwrap() + v.as_i64().unwrap();
                    obj.insert(f.clone(), sum.into());
                }
                for (f, v) in upd
                    .get("$push")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    obj[f].as_array_mut().unwrap().push(v.clone());
                }
            } else {
                let mut r = Map::new();
                r.insert("_id".into(), d["_id"].clone());
                r.extend(upd.clone());
                d = Value::Object(r);
            }
            Some(d)
        }
        op => panic!("unexpected op {op}"),
    }
}

/// The log's writes in `db` against the driver's (`driver`, one line per document
/// write) and against what the server held afterwards (`held`: `mongo_workload.py
/// read` lines, `{"ns", "doc"}`).
pub fn log_matches_driver_and_server(db: &str, driver: &[Value], log: &[Value], held: &[Value]) {
    let ours: Vec<&Value> = log
        .iter()
        .filter(|l| {
            l["namespace"]
                .as_str()
                .is_some_and(|n| n.starts_with(&format!("{db}.")))
        })
        .collect();

    // Every write the driver made, with the outcome the driver saw, and nothing else.
    for d in driver {
        assert_eq!(d["acknowledged"], true);
    }
    let want = driver_tally(driver);
    let got = log_tally(ours.iter().copied());
    for l in &ours {
        // A standalone's acknowledged write: committed by the standalone rule.
        if l["outcome"] == "committed" {
            let why = l["reason"].as_str().unwrap_or("");
            assert!(why.starts_with("standalone"), "reason {why}");
        }
    }
    assert!(driver.len() >= 40, "workload made {} writes", driver.len());
    assert_eq!(got, want, "tidemark's log differs from what the driver saw");
    // The duplicate key says why; the insert after it in the ordered batch was never
    // executed.
    assert!(ours.iter().any(
        |l| l["outcome"] == "rejected" && l["reason"].as_str().unwrap_or("").contains("11000")
    ));

    // The log's committed writes, replayed in order, give exactly what the server holds.
    let mut model: BTreeMap<String, Option<Value>> = BTreeMap::new();
    for l in ours.iter().filter(|l| l["outcome"] == "committed") {
        let id = l["key"]["_id"].to_string();
        let before = model.remove(&id).flatten();
        model.insert(id, apply(before, l));
    }
    let expected: BTreeMap<String, Value> = model
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    let held: BTreeMap<String, Value> = held
        .iter()
        .map(|r| (r["doc"]["_id"].to_string(), r["doc"].clone()))
        .collect();
    eprintln!(
        "realdb: {db}: {} driver writes, {} logged, {} documents held",
        driver.len(),
        ours.len(),
        held.len()
    );
    assert_eq!(held, expected, "the server's documents vs the log replayed");
}
