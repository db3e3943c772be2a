//! Helpers shared by the `tidemark repo` command tests (`repo_cli`, `repo_merge`,
//! `repo_prune`, `repo_s3_cli`, `repo_backends`): running the binary with a backend's
//! environment, reading its JSON lines, and a store of cluster writes whose log a
//! pull must give back. A test file using it also declares `mod store_support;`.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

use tidemark::store::{Envelope, Mutation, Store, StoreOptions, TxnExtras};

use crate::store_support;

/// Commit time of write 0 of the generated stores (ns).
pub const T0: u64 = 1_800_000_000_000_000_000;

/// Runs `tidemark ARGS` with `env` added to its environment.
pub fn run<K: AsRef<OsStr>, V: AsRef<OsStr>>(env: &[(K, V)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
        .output()
        .expect("the tidemark binary runs")
}

/// [`run`], which must succeed; returns stdout.
pub fn ok<K: AsRef<OsStr>, V: AsRef<OsStr>>(env: &[(K, V)], args: &[&str]) -> String {
    checked_ok(run(env, args), args)
}

/// Asserts `out` (of `tidemark ARGS`) succeeded; returns its stdout.
pub fn checked_ok(out: Output, args: &[&str]) -> String {
    assert!(
        out.status.success(),
        "tidemark {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// No extra environment.
pub const NO_ENV: &[(&str, &str)] = &[];

/// Every line of `s` as JSON.
pub fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A store with `n` writes (CQL with client timestamps, retryable MongoDB inserts
/// every third), complete (tidemark) up to the last.
pub fn make_store(path: &Path, n: u64) {
    let store = Store::create(path, &StoreOptions::default()).unwrap();
    let ms: Vec<Mutation> = (1..=n)
        .map(|i| {
            let t = T0 + i * 1_000_000;
            if i % 3 == 0 {
                let mut m = store_support::mongo("app.users", i, t, 200);
                if let tidemark::store::Payload::Mongo(op) = &mut m.payload {
                    op.txn_number = Some(i as i64);
                }
                m
            } else {
                let mut m = store_support::cql("ks.t", &format!("{{\"id\":{i}}}"), t, 3);
                m.write_timestamp = Some(1_700_000_000_000_000 + i as i64);
                m
            }
        })
        .collect();
    store
        .append_batch_with(
            &ms,
            &TxnExtras {
                tidemark: Some(T0 + n * 1_000_000),
                ..TxnExtras::default()
            },
        )
        .unwrap();
}

/// Every envelope of a store's log, in seq order.
pub fn log_of(path: &Path) -> Vec<Envelope> {
    let s = Store::open_side(path, &StoreOptions::default()).unwrap();
    let r = s.reader().unwrap();
    r.seq_range(1..).unwrap().map(Result::unwrap).collect()
}
