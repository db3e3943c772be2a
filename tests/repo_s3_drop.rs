//! Dropping pushed segments from the local store against a real S3 server (Ceph's
//! radosgw, `scripts/radosgw.sh` through `tests/repo_support`).
//!
//! With radosgw stopped, `repo push --drop-pushed` fails and drops nothing — not the
//! new segments it could not upload, and not the ones an earlier push confirmed
//! either, since the repository's manifests (the proof) cannot be read: the local
//! log is untouched. With radosgw back, the same command pushes the rest and drops
//! everything; the bucket, read directly with an S3 client, holds every dropped
//! seq equal to the log before the drop, and a version cut from the repository on
//! an empty working store equals the one cut locally before the drop.

mod repo_cli_support;
mod repo_support;
mod store_support;

use futures_util::TryStreamExt;
use object_store::ObjectStore;
use repo_cli_support::{json_lines, log_of, make_store, ok, run};
use tidemark::repo::segment::{self, Manifest};
use tidemark::store::{Envelope, Store, StoreOptions, TxnExtras};

/// Every segment of `source` under `prefix`, read from the bucket with the test's
/// own S3 client and checked against its manifest, in seq order.
fn segments_in_bucket(
    s3: &object_store::aws::AmazonS3,
    prefix: &str,
    source: &str,
) -> Vec<(Manifest, Vec<Envelope>)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = object_store::path::Path::from(format!("{prefix}/sources/{source}/segments"));
        let mut names: Vec<_> = s3
            .list(Some(&dir))
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.location)
            .filter(|p| p.as_ref().ends_with(".json"))
            .collect();
        names.sort();
        let mut out = Vec::new();
        for p in names {
            let bytes = s3.get(&p).await.unwrap().bytes().await.unwrap();
            let m: Manifest = serde_json::from_slice(&bytes).unwrap();
            let object = s3
                .get(&dir.child(m.object.as_str()))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let envs = segment::read(&object, &m, None).unwrap();
            out.push((m, envs));
        }
        out
    })
}

fn version_of(store: &std::path::Path, name: &str) -> Vec<String> {
    let s = Store::open_side(store, &StoreOptions::default()).unwrap();
    let mut rows = Vec::new();
    tidemark::version::stored::for_each_row(&s, name, |ns, key, row| {
        rows.push(format!("{ns} {key} {}", serde_json::to_string(&row)?));
        Ok(true)
    })
    .unwrap();
    tidemark::version::stored::for_each_deletion(&s, name, |ns, key, d| {
        rows.push(format!(
            "deletion {ns} {key} {}",
            serde_json::to_string(&d)?
        ));
        Ok(true)
    })
    .unwrap();
    rows
}

#[test]
fn with_radosgw_stopped_nothing_is_dropped_and_once_back_the_repository_holds_what_was_dropped() {
    let Some(alone) = repo_support::exclusive() else {
        return;
    };
    let bucket = alone.bucket("drop");
    let env = alone.s3.child_env();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s");
    let p = path.to_str().unwrap().to_string();
    make_store(&path, 200);
    let url = format!("s3://{}/drop", bucket.name);
    let push = |extra: &[&str]| {
        let mut args = vec![
            "repo",
            "push",
            "--store",
            &p,
            "--repo",
            &url,
            "--source-id",
            "node-1",
            "--segment-mutations",
            "50",
            "--json",
        ];
        args.extend_from_slice(extra);
        run(&env, &args)
    };
    // 1–200 confirmed by a first push (no drop); 201–300 appended after it.
    assert!(push(&[]).status.success());
    {
        let store = Store::open(&path, &StoreOptions::default()).unwrap();
        let ms: Vec<_> = (201..=300u64)
            .map(|i| {
                let t = repo_cli_support::T0 + i * 1_000_000;
                let mut m = store_support::cql("ks.t", &format!("{{\"id\":{i}}}"), t, 3);
                m.write_timestamp = Some(1_700_000_000_000_000 + i as i64);
                m
            })
            .collect();
        store
            .append_batch_with(
                &ms,
                &TxnExtras {
                    tidemark: Some(repo_cli_support::T0 + 300 * 1_000_000),
                    ..TxnExtras::default()
                },
            )
            .unwrap();
    }
    let before = log_of(&path);
    assert_eq!(before.len(), 300);
    let cut = json_lines(&ok(
        &env,
        &[
            "version", "create", "--store", &p, "--at", "latest", "--name", "before", "--json",
        ],
    ));
    let at = cut.last().unwrap()["at"].as_str().unwrap().to_string();

    alone.stop_rgw();
    let failed = push(&["--drop-pushed"]);
    alone.start_rgw();
    assert!(!failed.status.success(), "a push to a stopped server fails");
    assert_eq!(
        log_of(&path),
        before,
        "nothing dropped while the server was down"
    );
    let status = json_lines(&ok(&env, &["status", "--store", &p, "--json"]));
    assert!(status[0].get("dropped").is_none(), "{status:?}");

    let out = push(&["--drop-pushed"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json_lines(&String::from_utf8_lossy(&out.stdout))
        .pop()
        .unwrap();
    assert_eq!(r["segments"], 2, "only 201–300 went up now: {r}");
    assert_eq!(r["dropped"]["entries"], 300, "{r}");
    assert_eq!(r["dropped"]["log_start"], 301, "{r}");
    assert!(log_of(&path).is_empty());

    let segs = segments_in_bucket(&bucket.store, "drop", "node-1");
    let ranges: Vec<(u64, u64)> = segs
        .iter()
        .map(|(m, _)| (m.first_seq, m.last_seq))
        .collect();
    assert_eq!(
        ranges,
        [
            (1, 50),
            (51, 100),
            (101, 150),
            (151, 200),
            (201, 250),
            (251, 300)
        ]
    );
    let there: Vec<Envelope> = segs.into_iter().flat_map(|(_, e)| e).collect();
    assert_eq!(there, before, "the bucket holds every dropped seq");

    let work = tmp.path().join("work");
    let v = json_lines(&ok(
        &env,
        &[
            "version",
            "create",
            "--repo",
            &url,
            "--store",
            work.to_str().unwrap(),
            "--at",
            &at,
            "--name",
            "from-repo",
            "--json",
        ],
    ));
    assert_eq!(v.last().unwrap()["mutations"], 300, "{v:?}");
    let local = version_of(&path, "before");
    assert!(local.len() >= 266, "{}", local.len());
    assert_eq!(version_of(&work, "from-repo"), local);
}
