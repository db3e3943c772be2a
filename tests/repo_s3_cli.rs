//! `tidemark repo` against a real S3 server: Ceph's radosgw (Ceph 16), started by
//! `scripts/radosgw.sh` through `tests/repo_support`.
//!
//! A store's log pushed to `s3://bucket/prefix` lists, verifies and pulls back equal
//! to the store, also encrypted; wrong credentials are a one-line error that does
//! not repeat the key; with radosgw stopped in the middle of a push and started
//! again, pushing again finishes the job: every segment once, nothing lost, the
//! segments confirmed before the stop not sent again.

mod repo_cli_support;
mod repo_support;
mod store_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use repo_cli_support::{json_lines, log_of, make_store, ok, run};
use tidemark::store::Envelope;

fn same_mutations(a: &[Envelope], b: &[Envelope]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.mutation == y.mutation)
}

#[test]
fn a_log_pushed_to_radosgw_lists_verifies_and_pulls_back_equal() {
    let Some(bucket) = repo_support::bucket("push") else {
        return;
    };
    let env = bucket.s3.child_env();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s");
    make_store(&store, 300);
    let url = format!("s3://{}/backups/cluster-1", bucket.name);
    let out = run(
        &env,
        &[
            "repo",
            "push",
            "--store",
            store.to_str().unwrap(),
            "--repo",
            &url,
            "--source-id",
            "node-1",
            "--segment-mutations",
            "50",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for (k, v) in &env {
        if k.contains("SECRET") || k.contains("KEY_ID") {
            assert!(!all.contains(v.as_str()), "{k} printed");
        }
    }
    let report = json_lines(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(report.last().unwrap()["segments"], 6);

    let ls = json_lines(&ok(&env, &["repo", "ls", "--repo", &url, "--json"]));
    assert_eq!(ls.len(), 1);
    assert_eq!(ls[0]["mutations"], 300);
    let v = json_lines(&ok(&env, &["repo", "verify", "--repo", &url, "--json"]));
    assert_eq!(v.last().unwrap()["problems"], 0);
    assert_eq!(v.last().unwrap()["mutations"], 300);

    let work = tmp.path().join("work");
    ok(
        &env,
        &[
            "repo",
            "pull",
            "--repo",
            &url,
            "--store",
            work.to_str().unwrap(),
        ],
    );
    assert!(
        same_mutations(&log_of(&work), &log_of(&store)),
        "pulled log differs"
    );

    // Encrypted, under another prefix of the same bucket.
    let key = tmp.path().join("key");
    std::fs::write(&key, [3u8; 32]).unwrap();
    let sealed = format!("s3://{}/backups/sealed", bucket.name);
    ok(
        &env,
        &[
            "repo",
            "push",
            "--store",
            store.to_str().unwrap(),
            "--repo",
            &sealed,
            "--source-id",
            "node-1",
            "--encrypt-key-file",
            key.to_str().unwrap(),
        ],
    );
    let v = json_lines(&ok(
        &env,
        &[
            "repo",
            "verify",
            "--repo",
            &sealed,
            "--json",
            "--encrypt-key-file",
            key.to_str().unwrap(),
        ],
    ));
    assert_eq!(v.last().unwrap()["mutations"], 300);
    assert_eq!(v.last().unwrap()["problems"], 0);
}

#[test]
fn wrong_credentials_are_one_line_that_does_not_repeat_them() {
    let Some(bucket) = repo_support::bucket("creds") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s");
    make_store(&store, 10);
    let mut env = bucket.s3.child_env();
    let wrong = "WRONGSECRETwrongsecretWRONGSECRET123456";
    for (k, v) in env.iter_mut() {
        if *k == "AWS_SECRET_ACCESS_KEY" {
            *v = wrong.to_string();
        }
    }
    let url = format!("s3://{}/x", bucket.name);
    for args in [
        vec![
            "repo",
            "push",
            "--store",
            store.to_str().unwrap(),
            "--repo",
            &url,
        ],
        vec!["repo", "ls", "--repo", &url],
        vec!["repo", "verify", "--repo", &url],
    ] {
        let started = Instant::now();
        let out = run(&env, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("tidemark: "), "{err}");
        assert!(
            err.contains("SignatureDoesNotMatch")
                || err.contains("denied")
                || err.contains("Denied"),
            "{args:?}: says why: {err}"
        );
        assert!(!err.contains(wrong), "the secret is repeated: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not retried for long"
        );
    }
}

#[test]
fn a_push_cut_by_the_server_stopping_is_finished_by_the_next_push() {
    let Some(alone) = repo_support::exclusive() else {
        return;
    };
    let bucket = alone.bucket("cut");
    let env = alone.s3.child_env();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s");
    make_store(&store, 2000);
    let url = format!("s3://{}/cut", bucket.name);
    // Slow on purpose (a rate limit), so the server stops in the middle.
    let mut push = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "repo",
            "push",
            "--store",
            store.to_str().unwrap(),
            "--repo",
            &url,
            "--source-id",
            "n",
            "--segment-mutations",
            "100",
            "--rate-mb",
            "0.05",
            "--json",
        ])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(push.stdout.take().unwrap()));
    let first = lines.next().expect("a progress line").unwrap();
    assert!(first.contains("\"progress\""), "{first}");
    alone.stop_rgw();
    std::thread::sleep(Duration::from_millis(1500));
    alone.start_rgw();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = push.wait().unwrap();
    let confirmed_first = rest
        .iter()
        .chain(std::iter::once(&first))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "repo_push")
        .map(|v| v["segments"].as_u64().unwrap())
        .next()
        .unwrap_or(0);
    // The push either rode out the stop (its retries) or gave up with exit 1 and
    // what it had confirmed; never anything else.
    assert!(matches!(status.code(), Some(0) | Some(1)), "{status}");
    eprintln!(
        "cut push: exit {status}, {confirmed_first} of 20 segments confirmed; stderr: {}",
        String::from_utf8_lossy(&{
            let mut e = Vec::new();
            std::io::Read::read_to_end(&mut push.stderr.take().unwrap(), &mut e).unwrap();
            e
        })
        .lines()
        .last()
        .unwrap_or("")
    );

    let again = json_lines(&ok(
        &env,
        &[
            "repo",
            "push",
            "--store",
            store.to_str().unwrap(),
            "--repo",
            &url,
            "--source-id",
            "n",
            "--segment-mutations",
            "100",
            "--json",
        ],
    ));
    let second = again.last().unwrap()["segments"].as_u64().unwrap();
    assert_eq!(
        confirmed_first + second,
        20,
        "every segment once: {confirmed_first} + {second}"
    );
    assert_eq!(again.last().unwrap()["pushed_through"], 2000);

    let v = json_lines(&ok(&env, &["repo", "verify", "--repo", &url, "--json"]));
    assert_eq!(v.last().unwrap()["problems"], 0);
    assert_eq!(v.last().unwrap()["segments"], 20);
    let work = tmp.path().join("work");
    ok(
        &env,
        &[
            "repo",
            "pull",
            "--repo",
            &url,
            "--store",
            work.to_str().unwrap(),
        ],
    );
    assert!(
        same_mutations(&log_of(&work), &log_of(&store)),
        "nothing lost, nothing twice"
    );
}
