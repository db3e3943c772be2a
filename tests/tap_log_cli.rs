//! `tidemark log` and `status` on a store made by `tidemark tap` from a real-driver
//! capture: every filter narrows exactly as asked, `mutation` lines carry the write
//! fields plus the log's own, and bad arguments fail with one line.

mod inspect_support;

use std::process::{Command, Output};

use serde_json::Value;

use inspect_support::{inspect_records, json_options, own_capture};

fn tidemark(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .output()
        .unwrap()
}

fn lines(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn one_line_failure(out: &Output, needle: &str) {
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(needle), "{err}");
}

#[test]
fn log_filters_and_mutation_lines() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let store = store.to_str().unwrap();
    let capture = own_capture("cql_v4_lz4.pcap");
    let out = tidemark(&[
        "tap",
        "--pcap",
        capture.to_str().unwrap(),
        "--store",
        store,
        "--json",
    ]);
    let report: Value = lines(&out).pop().unwrap();
    let all = lines(&tidemark(&["log", "--store", store, "--json"]));
    assert_eq!(report["appended"], all.len());

    // Every decided write of inspect is a mutation line with the same fields, plus
    // seq (dense from 1), commit_time, outcome and reason.
    let decided: Vec<Value> = inspect_records(&json_options(&capture))
        .into_iter()
        .filter(|r| {
            r["type"] == "write" && matches!(r["outcome"].as_str(), Some("committed" | "rejected"))
        })
        .collect();
    assert_eq!(decided.len(), all.len());
    for (i, (m, w)) in all.iter().zip(&decided).enumerate() {
        assert_eq!(m["type"], "mutation");
        assert_eq!(m["seq"], i as u64 + 1);
        for field in [
            "flow",
            "ts",
            "proto",
            "namespace",
            "op",
            "key",
            "values",
            "timestamp",
            "consistency",
            "outcome",
        ] {
            assert_eq!(m[field], w[field], "seq {}: {field}", i + 1);
        }
        assert!(m["commit_time"].as_str().unwrap().ends_with('Z'));
    }

    let events = lines(&tidemark(&[
        "log",
        "--store",
        store,
        "--json",
        "--ns",
        "tm.events",
    ]));
    assert!(!events.is_empty());
    assert!(events.iter().all(|m| m["namespace"] == "tm.events"));
    assert_eq!(
        events.len(),
        all.iter().filter(|m| m["namespace"] == "tm.events").count()
    );

    let key = r#"{"user": "alice", "day": "2024-03-01", "seq": 1}"#;
    let one = lines(&tidemark(&[
        "log",
        "--store",
        store,
        "--json",
        "--ns",
        "tm.events",
        "--key",
        key,
    ]));
    assert!(one.len() >= 2, "{one:?}");
    assert!(one
        .iter()
        .all(|m| m["key"] == serde_json::from_str::<Value>(key).unwrap()));

    let rejected = lines(&tidemark(&[
        "log",
        "--store",
        store,
        "--json",
        "--outcome",
        "rejected",
    ]));
    assert_eq!(
        rejected.len(),
        all.iter().filter(|m| m["outcome"] == "rejected").count()
    );
    assert!(!rejected.is_empty());

    // Time bounds are inclusive: from the 10th mutation's commit time up to the 20th's.
    let (t10, t20) = (
        all[9]["commit_time"].as_str().unwrap(),
        all[19]["commit_time"].as_str().unwrap(),
    );
    let window = lines(&tidemark(&[
        "log", "--store", store, "--json", "--since", t10, "--until", t20,
    ]));
    let expected: Vec<&Value> = all
        .iter()
        .filter(|m| {
            let t = m["commit_time"].as_str().unwrap();
            t >= t10 && t <= t20
        })
        .collect();
    assert_eq!(window.iter().collect::<Vec<_>>(), expected);

    let table = tidemark(&["log", "--store", store]);
    assert!(table.status.success());
    assert_eq!(
        String::from_utf8_lossy(&table.stdout).lines().count(),
        all.len() + 1
    );

    let status: Value = lines(&tidemark(&["status", "--store", store, "--json"]))
        .pop()
        .unwrap();
    assert_eq!(status["type"], "status");
    assert_eq!(status["mutations"], all.len());
    assert_eq!(status["last_run"], "complete");
    assert_eq!(status["policy"]["in_doubt_at_deadline"], "keep");
    let undecided = status["undecided"].as_array().unwrap();
    assert!(undecided
        .iter()
        .all(|u| u["reason"].as_str().is_some_and(|r| !r.is_empty())));

    for (args, needle) in [
        (vec!["--outcome", "maybe"], "invalid outcome"),
        (vec!["--since", "yesterday"], "invalid time"),
        (vec!["--key", r#"{"id":1}"#], "--key needs --ns"),
        (vec!["--ns", "a.b", "--key", "[1]"], "not a JSON object"),
    ] {
        let mut a = vec!["log", "--store", store];
        a.extend(args);
        one_line_failure(&tidemark(&a), needle);
    }
    let missing = dir.path().join("nope");
    one_line_failure(
        &tidemark(&["log", "--store", missing.to_str().unwrap()]),
        "no such directory",
    );
    one_line_failure(
        &tidemark(&["status", "--store", missing.to_str().unwrap()]),
        "no such directory",
    );
}
