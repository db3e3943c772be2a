//! One multipart upload continued across processes, against Ceph's radosgw
//! (`scripts/radosgw.sh` through `tests/repo_support`).
//!
//! A `repo push` of one large segment (about 40 MB of incompressible log, so
//! five 8 MiB parts) is SIGKILLed once it has finished two or more parts (its
//! state file in the store says so). Before anything else runs, the server is asked
//! directly (S3 ListParts, signed by the test) which parts of that upload it holds:
//! every part the state file names. The next `repo push` continues that upload: its
//! `--json` report says it sent exactly the parts the state did not name and took
//! the others as they were. Then, read back directly from the bucket: the object is
//! the segment (decoded with its manifest, equal to the store's log envelope by
//! envelope), its multipart ETag counts exactly the segment's parts (nothing sent
//! twice made it in), no multipart upload is left open in the bucket, and the
//! spool is gone from the store.
//!
//! An upload the server forgot (aborted behind the push's back, as a lifecycle
//! rule would) is started over by the next push: every part sent afresh, none
//! counted as resumed, the object again exactly the segment, nothing left open.

mod repo_cli_support;
mod repo_support;
mod store_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use object_store::ObjectStore;
use repo_cli_support::{json_lines, log_of, run, T0};

use tidemark::repo::segment::{self, Manifest};
use tidemark::store::{Store, StoreOptions, TxnExtras};

/// Kills the child by pid when dropped (a failing test leaves no push behind).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A store of `n` writes each carrying `len` bytes of pseudo-random (incompressible)
/// cell value.
fn random_store(path: &std::path::Path, n: u64, len: usize) {
    let store = Store::create(path, &StoreOptions::default()).unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let ms: Vec<_> = (1..=n)
        .map(|i| {
            let mut m = store_support::cql("ks.t", &format!("{{\"id\":{i}}}"), T0 + i * 1000, 1);
            m.write_timestamp = Some(1_700_000_000_000_000 + i as i64);
            if let tidemark::store::Payload::Cql(p) = &mut m.payload {
                p.cells[0].value = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
            }
            m
        })
        .collect();
    store
        .append_batch_with(
            &ms,
            &TxnExtras {
                tidemark: Some(T0 + n * 1000),
                ..TxnExtras::default()
            },
        )
        .unwrap();
}

/// The part numbers of `element` blocks in an S3 XML answer.
fn part_numbers(xml: &str) -> Vec<u64> {
    xml.split("<PartNumber>")
        .skip(1)
        .filter_map(|r| r.split("</PartNumber>").next()?.parse().ok())
        .collect()
}

/// The push arguments of the tests.
fn push_args<'a>(store: &'a str, url: &'a str) -> Vec<&'a str> {
    vec![
        "repo",
        "push",
        "--store",
        store,
        "--repo",
        url,
        "--source-id",
        "big",
        "--segment-mb",
        "100",
        "--json",
    ]
}

/// What a killed push left: its state file, the parts it names done (S3 part
/// numbers, from 1) and the segment's number of parts.
struct Killed {
    state: serde_json::Value,
    done: Vec<u64>,
    total: u64,
}

/// Starts a slow push of the store at `store` (about 40 MB, one segment) and
/// SIGKILLs it once its state file names two finished parts.
fn killed_push(env: &[(&'static str, String)], store: &std::path::Path, url: &str) -> Killed {
    let mut first = Child(
        Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(push_args(store.to_str().unwrap(), url))
            .args(["--rate-mb", "6"])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let state_file = store.join("repo-upload/state.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = std::fs::read(&state_file)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        {
            if s["parts"].as_object().unwrap().len() >= 2 {
                break;
            }
        }
        assert!(
            first.0.try_wait().unwrap().is_none(),
            "the push ended before two parts were done"
        );
        assert!(Instant::now() < deadline, "no two parts done within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL: no cleanup of any kind.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let text = std::fs::read_to_string(&state_file).unwrap();
    for (k, v) in env {
        if k.contains("SECRET") || k.contains("KEY_ID") {
            assert!(!text.contains(v.as_str()), "{k} in the state file");
        }
    }
    let state: serde_json::Value = serde_json::from_str(&text).unwrap();
    let done: Vec<u64> = state["parts"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.parse::<u64>().unwrap() + 1)
        .collect();
    let total = state["bytes"].as_u64().unwrap().div_ceil(8 << 20);
    assert!(total >= 4, "a segment of {total} parts");
    assert!(
        (done.len() as u64) < total,
        "killed before the end: {state}"
    );
    Killed { state, done, total }
}

/// Reads the pushed segment back from the bucket and checks it: the object is the
/// segment (equal to the store's log), a multipart object of exactly `total` parts,
/// and no upload is left open in the bucket.
fn check_object(bucket: &repo_support::Bucket, object: &str, store: &std::path::Path, total: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (manifest, bytes, etag) = rt.block_on(async {
        let seg = object_store::path::Path::from(object);
        let m_path = object_store::path::Path::from(object.replace(".seg", ".json"));
        let m: Manifest = serde_json::from_slice(
            &bucket
                .store
                .get(&m_path)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap(),
        )
        .unwrap();
        let head = bucket.store.head(&seg).await.unwrap();
        let bytes = bucket.store.get(&seg).await.unwrap().bytes().await.unwrap();
        (m, bytes, head.e_tag.unwrap_or_default())
    });
    assert_eq!(bytes.len() as u64, manifest.bytes);
    assert_eq!(crc32c::crc32c(&bytes), manifest.crc32c);
    let envelopes = segment::read(&bytes, &manifest, None).unwrap();
    assert_eq!(envelopes, log_of(store), "the object is the segment");
    assert!(
        etag.trim_matches('"').ends_with(&format!("-{total}")),
        "a multipart object of {total} parts: ETag {etag}"
    );
    let (status, uploads) = bucket
        .s3
        .signed_get(&format!("/{}?uploads", bucket.name))
        .unwrap();
    assert_eq!(status, 200, "{uploads}");
    assert!(
        !uploads.contains("<Upload>"),
        "an upload left open: {uploads}"
    );
}

fn last_report(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_lines(&String::from_utf8_lossy(&out.stdout))
        .pop()
        .unwrap()
}

#[test]
fn a_push_killed_mid_segment_is_continued_by_the_next_sending_only_the_missing_parts() {
    let Some(bucket) = repo_support::bucket("resume") else {
        return;
    };
    let env = bucket.s3.child_env();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s");
    random_store(&path, 10_000, 4000);
    let url = format!("s3://{}/big", bucket.name);
    let Killed { state, done, total } = killed_push(&env, &path, &url);

    // The server holds every part the state names.
    let object = state["object"].as_str().unwrap();
    let upload_id = state["upload_id"].as_str().unwrap();
    let (status, xml) = bucket
        .s3
        .signed_get(&format!("/{}/{object}?uploadId={upload_id}", bucket.name))
        .unwrap();
    assert_eq!(status, 200, "ListParts: {xml}");
    let held = part_numbers(&xml);
    for n in &done {
        assert!(held.contains(n), "part {n} not on the server: {held:?}");
    }

    // The next push continues it.
    let r = last_report(&run(&env, &push_args(path.to_str().unwrap(), &url)));
    eprintln!(
        "killed with {} of {total} parts done (server held {held:?}); the next push: {r}",
        done.len()
    );
    assert_eq!(r["segments"], 1, "{r}");
    assert_eq!(r["parts_resumed"], done.len(), "{r}");
    assert_eq!(r["parts_sent"], total - done.len() as u64, "{r}");
    assert!(!path.join("repo-upload").exists(), "the spool stays");
    check_object(&bucket, object, &path, total);
}

#[test]
fn an_upload_the_server_forgot_is_started_over_cleanly() {
    let Some(bucket) = repo_support::bucket("forgot") else {
        return;
    };
    let env = bucket.s3.child_env();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s");
    random_store(&path, 10_000, 4000);
    let url = format!("s3://{}/big", bucket.name);
    let Killed { state, total, .. } = killed_push(&env, &path, &url);
    let object = state["object"].as_str().unwrap();
    let upload_id = state["upload_id"].as_str().unwrap();
    // The server forgets it (as a lifecycle rule would).
    let (status, xml) = bucket
        .s3
        .signed_delete(&format!("/{}/{object}?uploadId={upload_id}", bucket.name))
        .unwrap();
    assert_eq!(status, 204, "AbortMultipartUpload: {xml}");

    let r = last_report(&run(&env, &push_args(path.to_str().unwrap(), &url)));
    eprintln!("after the server forgot the upload: {r}");
    assert_eq!(r["segments"], 1, "{r}");
    assert_eq!(r["parts_resumed"], 0, "{r}");
    assert_eq!(r["parts_sent"], total, "{r}");
    assert!(!path.join("repo-upload").exists(), "the spool stays");
    check_object(&bucket, object, &path, total);
}
