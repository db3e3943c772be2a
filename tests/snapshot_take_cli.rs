//! `tidemark snapshot take` and the store and command line around it: a snapshot
//! taken while a writer holds the store's lock and appends, bad input exiting 2
//! with one line, and credentials never reaching the store or the output.

mod snapshot_support;
mod store_support;

use std::sync::Arc;

use snapshot_support::cql::{
    assert_cells_equal, cluster, fill, pk_columns, schema, session, truth,
};
use snapshot_support::{read, snapshot_cells, take, tidemark};

/// A tap holds the store's writer lock and appends group after group while the
/// snapshot is taken into the same store: neither refuses, both get all their
/// writes in (the snapshot's rows equal the cluster's, the log has every append).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_snapshot_while_a_writer_appends() {
    let cluster = cluster(107, None).await;
    let addr = cluster.addresses()[0];
    let s = session(addr, None).await;
    schema(&s).await;
    fill(&s, 20).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let writer =
        tidemark::store::Store::create(&store, &tidemark::store::StoreOptions::for_tests())
            .unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let appender = std::thread::spawn(move || {
        let mut n = 0u64;
        // At least one append lands after the snapshot finished (the flag is set
        // only then), so the two writers really overlap or follow each other.
        loop {
            let stop = flag.load(std::sync::atomic::Ordering::SeqCst);
            let batch: Vec<_> = (0..50)
                .map(|i| {
                    store_support::cql("shop.kv", &format!("{{\"k\":\"w{n}-{i}\"}}"), 1_000 + n, 2)
                })
                .collect();
            writer.append_batch(&batch).unwrap();
            n += 1;
            if stop {
                return (writer, n * 50);
            }
        }
    });
    let summary = take(&format!("cql://{addr}"), &store, &[]).await;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (writer, appended) = appender.join().unwrap();
    assert_eq!(writer.reader().unwrap().len().unwrap(), appended);
    drop(writer);
    assert_eq!(summary["finished"], true);
    let (_, rows) = read(&store, 1);
    let snap = snapshot_cells(&rows, &pk_columns());
    assert_cells_equal(&snap, &truth(cluster.shared()));
    eprintln!("{appended} mutations appended while the snapshot ran");
}

async fn fails_with_2(args: &[&str], message: &str) {
    let out = tidemark(args).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("tidemark: ") && err.contains(message),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_exits_2_and_credentials_stay_out() {
    let creds = Some(("snapuser", "pw-S3CRET-42"));
    let cluster = cluster(106, creds).await;
    let addr = cluster.addresses()[0];
    let s = session(addr, creds).await;
    schema(&s).await;
    fill(&s, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let st = store.to_str().unwrap();
    let good = format!("cql://snapuser:pw-S3CRET-42@{addr}");
    fails_with_2(
        &["snapshot", "take", "--from", "http://x", "--store", st],
        "invalid --from",
    )
    .await;
    fails_with_2(
        &[
            "snapshot",
            "take",
            "--from",
            "cql://127.0.0.1:notaport",
            "--store",
            st,
        ],
        "bad port",
    )
    .await;
    fails_with_2(
        &[
            "snapshot",
            "take",
            "--from",
            "cql://127.0.0.1:1",
            "--store",
            st,
        ],
        "cannot connect",
    )
    .await;
    fails_with_2(
        &[
            "snapshot",
            "take",
            "--from",
            &good,
            "--store",
            st,
            "--keyspace",
            "nosuch",
        ],
        "unknown keyspace \"nosuch\"",
    )
    .await;
    fails_with_2(
        &[
            "snapshot",
            "take",
            "--from",
            &good,
            "--store",
            st,
            "--table",
            "shop.nosuch",
        ],
        "unknown table",
    )
    .await;
    fails_with_2(
        &[
            "snapshot",
            "take",
            "--from",
            &good,
            "--store",
            st,
            "--consistency",
            "MOST",
        ],
        "invalid --consistency",
    )
    .await;
    fails_with_2(
        &[
            "snapshot", "take", "--from", &good, "--store", st, "--resume",
        ],
        "to resume",
    )
    .await;
    fails_with_2(&["snapshot", "show", "7", "--store", st], "no snapshot 7").await;
    let wrong = format!("cql://snapuser:wrong-pw@{addr}");
    let out = tidemark(&["snapshot", "take", "--from", &wrong, "--store", st]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("wrong-pw"));
    // With the right password: a snapshot of `shop.kv` only, and no trace of it.
    let out = tidemark(&[
        "snapshot", "take", "--from", &good, "--store", st, "--table", "kv", "--json",
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (infos, rows) = read(&store, 1);
    assert_eq!(infos[0].source, format!("cql://{addr}"));
    assert!(rows.iter().all(|r| r.namespace == "shop.kv") && rows.len() == 3);
    let list = tidemark(&["snapshot", "list", "--store", st, "--json"]).await;
    let show = tidemark(&["snapshot", "show", "1", "--store", st]).await;
    for o in [&out, &list, &show] {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            !text.contains("S3CRET") && !text.contains("snapuser"),
            "{text}"
        );
    }
    for f in std::fs::read_dir(&store).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(6).any(|w| w == b"S3CRET"),
            "password in the store"
        );
        assert!(
            !bytes.windows(8).any(|w| w == b"snapuser"),
            "user in the store"
        );
    }
}
