//! The S3 server of the remote repository's tests (Ceph's radosgw 16, scripts/radosgw.sh)
//! and the `object_store` settings of tests/repo_support, shown to work as tidemark's
//! repository will use them: plain and multipart objects, create-only puts (what makes
//! a retried upload idempotent), wrong credentials, and the server going away and
//! coming back with its data.

mod repo_support;

use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{
    Error, ObjectStore, PutMode, PutOptions, PutPayload, UpdateVersion, WriteMultipart,
};
use repo_support::Bucket;
use sha2::Digest;

/// `n` bytes that differ from each other (xorshift), so a part put out of place shows.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn get(b: &Bucket, key: &str) -> Vec<u8> {
    b.store
        .get(&Path::from(key))
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e}"))
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

/// The keys under `prefix` with their sizes, sorted.
async fn list(b: &Bucket, prefix: &str) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = b
        .store
        .list(Some(&Path::from(prefix)))
        .map_ok(|m| (m.location.to_string(), m.size))
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("list {prefix}: {e}"));
    out.sort();
    out
}

#[tokio::test]
async fn put_get_head_list_delete() {
    let Some(b) = repo_support::bucket("basic") else {
        return;
    };
    let seg1 = bytes(1000, 1);
    let seg2 = bytes(2345, 2);
    for (key, data) in [
        ("src-a/seg/1", &seg1),
        ("src-a/seg/2", &seg2),
        ("src-b/seg/1", &seg1),
    ] {
        b.store
            .put(&Path::from(key), PutPayload::from(data.clone()))
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e}"));
    }
    assert_eq!(get(&b, "src-a/seg/2").await, seg2);
    let head = b.store.head(&Path::from("src-a/seg/2")).await.unwrap();
    assert_eq!(head.size, 2345);
    assert!(head.e_tag.is_some(), "radosgw gives an ETag");

    // A prefix lists only its own keys, nested ones included.
    assert_eq!(
        list(&b, "src-a").await,
        vec![("src-a/seg/1".into(), 1000), ("src-a/seg/2".into(), 2345)]
    );
    assert_eq!(list(&b, "").await.len(), 3);
    // A ranged read (how verify could read a segment's tail).
    let range = b
        .store
        .get_range(&Path::from("src-a/seg/2"), 100..200)
        .await
        .unwrap();
    assert_eq!(&range[..], &seg2[100..200]);

    b.store.delete(&Path::from("src-a/seg/1")).await.unwrap();
    match b.store.head(&Path::from("src-a/seg/1")).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("a deleted key must be NotFound, got {other:?}"),
    }
    assert_eq!(list(&b, "src-a").await, vec![("src-a/seg/2".into(), 2345)]);
}

/// Uploads `data` as `key` through `put_multipart` + `WriteMultipart` (5 MiB parts,
/// radosgw's minimum but for the last); returns the upload's MB/s.
async fn multipart(b: &Bucket, key: &str, data: &[u8]) -> f64 {
    let started = Instant::now();
    let upload = b
        .store
        .put_multipart(&Path::from(key))
        .await
        .expect("a multipart upload starts");
    let mut w = WriteMultipart::new(upload);
    // Written in uneven pieces, as a segment writer would.
    for piece in data.chunks(777_777) {
        w.wait_for_capacity(4).await.unwrap();
        w.write(piece);
    }
    w.finish().await.expect("the multipart upload completes");
    data.len() as f64 / 1e6 / started.elapsed().as_secs_f64()
}

#[tokio::test]
async fn multipart_upload_reads_back_equal() {
    let Some(b) = repo_support::bucket("multipart") else {
        return;
    };
    // 12.5 MiB: two full 5 MiB parts and a short last one.
    let data = bytes(12 * 1024 * 1024 + 512 * 1024, 3);
    let mbps = multipart(&b, "src-a/seg/big", &data).await;
    eprintln!(
        "repo_s3: multipart upload of {} MiB at {mbps:.0} MB/s",
        data.len() >> 20
    );
    let head = b.store.head(&Path::from("src-a/seg/big")).await.unwrap();
    assert_eq!(head.size, data.len() as u64);
    // A multipart ETag is "<md5 of part md5s>-<parts>".
    assert!(
        head.e_tag.as_deref().is_some_and(|t| t.ends_with("-3\"")),
        "ETag of a 3-part upload: {:?}",
        head.e_tag
    );
    assert!(get(&b, "src-a/seg/big").await == data, "read back differs");
}

/// Throughput on loopback (`cargo test --test repo_s3 -- --ignored --nocapture`).
#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn multipart_throughput() {
    let Some(b) = repo_support::bucket("throughput") else {
        return;
    };
    let data = bytes(128 * 1024 * 1024, 4);
    for i in 0..3 {
        let mbps = multipart(&b, &format!("big/{i}"), &data).await;
        let started = Instant::now();
        let back = get(&b, &format!("big/{i}")).await;
        let read = back.len() as f64 / 1e6 / started.elapsed().as_secs_f64();
        assert!(back == data);
        eprintln!("repo_s3: 128 MiB: upload {mbps:.0} MB/s, read {read:.0} MB/s");
    }
}

#[tokio::test]
async fn create_only_put_refuses_an_existing_key() {
    let Some(b) = repo_support::bucket("create") else {
        return;
    };
    let key = Path::from("src-a/seg/7");
    let first = bytes(4096, 5);
    let create = || PutOptions::from(PutMode::Create);
    b.store
        .put_opts(&key, PutPayload::from(first.clone()), create())
        .await
        .expect("a create-only put of a new key succeeds");
    // The retry of an upload that in fact landed: radosgw 16 honours If-None-Match: *
    // (412), which object_store reports as AlreadyExists.
    match b
        .store
        .put_opts(&key, PutPayload::from(bytes(4096, 6)), create())
        .await
    {
        Err(Error::AlreadyExists { .. }) => {}
        other => panic!("a create-only put of an existing key must be refused, got {other:?}"),
    }
    assert!(
        get(&b, "src-a/seg/7").await == first,
        "the first copy stays"
    );
    // An overwrite still works (manifests that are rewritten on purpose).
    let v1 = b
        .store
        .put(&key, PutPayload::from(bytes(10, 7)))
        .await
        .unwrap();
    assert_eq!(get(&b, "src-a/seg/7").await, bytes(10, 7));
    // A compare-and-swap on the ETag (If-Match, `PutMode::Update`): radosgw 16 compares
    // the header byte for byte with its stored ETag, which has no quotes, so the quoted
    // ETag object_store got back (and sends as it is) is refused even when current;
    // the same ETag without its quotes works, and a stale one is refused (412).
    let update = |e_tag: &str| {
        PutOptions::from(PutMode::Update(UpdateVersion {
            e_tag: Some(e_tag.to_string()),
            version: None,
        }))
    };
    let quoted = v1.e_tag.clone().unwrap();
    assert!(quoted.starts_with('"'), "S3 ETags come quoted: {quoted}");
    match b
        .store
        .put_opts(&key, PutPayload::from(bytes(11, 8)), update(&quoted))
        .await
    {
        Err(Error::Precondition { .. }) => {}
        other => panic!("radosgw 16 refused a quoted If-Match before; now: {other:?}"),
    }
    let bare = quoted.trim_matches('"');
    let v2 = b
        .store
        .put_opts(&key, PutPayload::from(bytes(11, 8)), update(bare))
        .await
        .expect("a put If-Match the current (unquoted) ETag succeeds");
    match b
        .store
        .put_opts(&key, PutPayload::from(bytes(12, 9)), update(bare))
        .await
    {
        Err(Error::Precondition { .. }) => {}
        other => panic!("a put If-Match a stale ETag must be refused, got {other:?}"),
    }
    assert_ne!(v1.e_tag, v2.e_tag);
    assert_eq!(get(&b, "src-a/seg/7").await, bytes(11, 8));
}

#[tokio::test]
async fn wrong_credentials_name_authentication() {
    let Some(b) = repo_support::bucket("creds") else {
        return;
    };
    b.store
        .put(&Path::from("k"), PutPayload::from(vec![1u8; 10]))
        .await
        .unwrap();
    let wrong_secret = "0123456789abcdefghij0123456789abcdefghij";
    let wrong_key = "TIDEMARKNOSUCHKEY000";
    let real = b.s3.child_env();
    let real_key = &real
        .iter()
        .find(|(k, _)| *k == "AWS_ACCESS_KEY_ID")
        .unwrap()
        .1;
    for (key, secret, code) in [
        (real_key.as_str(), wrong_secret, "SignatureDoesNotMatch"),
        (wrong_key, wrong_secret, "InvalidAccessKeyId"),
    ] {
        let store =
            b.s3.builder_with_keys(&b.name, key, secret)
                .build()
                .unwrap();
        let started = Instant::now();
        for result in [
            store.head(&Path::from("k")).await.map(drop),
            store
                .put(&Path::from("k2"), PutPayload::from(vec![2u8; 10]))
                .await
                .map(drop),
        ] {
            let err = result.expect_err("wrong credentials must be refused");
            let text = err.to_string();
            assert!(
                matches!(err, Error::PermissionDenied { .. }),
                "403 is PermissionDenied: {err:?}"
            );
            // A HEAD has no body, so its error carries only the status.
            assert!(
                text.contains("403 Forbidden") || text.contains(code),
                "the error names the refusal: {text}"
            );
            assert!(
                !text.contains(secret),
                "the secret must not be in the error"
            );
        }
        // A GET has a body: the S3 error code names the cause.
        let err = store.get(&Path::from("k")).await.expect_err("refused");
        assert!(err.to_string().contains(code), "{code} expected in: {err}");
        // 403 is not retried: the refusal is quick.
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    assert!(
        b.store.head(&Path::from("k2")).await.is_err(),
        "nothing was written"
    );
}

#[tokio::test]
async fn server_gone_then_back_keeps_the_data() {
    let Some(alone) = repo_support::exclusive() else {
        return;
    };
    let b = alone.bucket("outage");
    let before = bytes(100_000, 8);
    b.store
        .put(&Path::from("seg/1"), PutPayload::from(before.clone()))
        .await
        .unwrap();

    // A multipart upload under way when radosgw goes: its first part is in.
    let data = bytes(6 * 1024 * 1024, 10);
    let mut cut = WriteMultipart::new(b.store.put_multipart(&Path::from("seg/4")).await.unwrap());
    cut.write(&data[..5 * 1024 * 1024]);
    cut.wait_for_capacity(0)
        .await
        .expect("the first part is uploaded");

    alone.stop_rgw();
    let started = Instant::now();
    cut.write(&data[5 * 1024 * 1024..]);
    assert!(
        cut.finish().await.is_err(),
        "a multipart upload cannot complete with radosgw stopped"
    );
    let put = b
        .store
        .put(&Path::from("seg/2"), PutPayload::from(bytes(10, 9)))
        .await;
    let err = put.expect_err("a put with radosgw stopped must fail");
    eprintln!(
        "repo_s3: put with radosgw stopped failed after {:.1}s: {err}",
        started.elapsed().as_secs_f64()
    );
    assert!(b.store.get(&Path::from("seg/1")).await.is_err());
    assert!(b.store.list(None).try_collect::<Vec<_>>().await.is_err());
    let upload = b.store.put_multipart(&Path::from("seg/3")).await;
    assert!(upload.is_err(), "a multipart upload cannot start either");
    // Bounded retries: the error comes within seconds, not object_store's default 3 min.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "calls took {:?}",
        started.elapsed()
    );

    let started = Instant::now();
    alone.start_rgw();
    eprintln!(
        "repo_s3: radosgw back in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    // The same client works again, and what was written before the outage is there.
    assert!(
        get(&b, "seg/1").await == before,
        "data written before survives"
    );
    b.store
        .put(&Path::from("seg/2"), PutPayload::from(bytes(10, 9)))
        .await
        .expect("the put works after the restart");
    multipart(&b, "seg/3", &data).await;
    assert!(get(&b, "seg/3").await == data);
    // The upload the outage cut left no object, not even its first part; uploading the
    // same bytes again (a new upload: object_store cannot resume another's) works.
    assert!(matches!(
        b.store.head(&Path::from("seg/4")).await,
        Err(Error::NotFound { .. })
    ));
    multipart(&b, "seg/4", &data).await;
    assert!(get(&b, "seg/4").await == data);
    let keys: Vec<String> = list(&b, "seg").await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["seg/1", "seg/2", "seg/3", "seg/4"]);
}

/// Object_store 0.12's `put_multipart` has no `PutMode`, so a large object cannot be put
/// create-only directly. Its other create-only path, `copy_if_not_exists` with
/// `S3CopyIfNotExists::Multipart` (UploadPartCopy, then a completion with
/// `If-None-Match: *`), is refused by radosgw 16: the part copy is a PUT without
/// `Content-Length`, answered 411 MissingContentLength. What works: a deterministic key,
/// and before a (re)upload a HEAD whose ETag tells whether the same bytes are there (a
/// multipart ETag is the MD5 of the parts' MD5s, so the same bytes in the same parts give
/// the same ETag).
#[tokio::test]
async fn create_only_for_multipart_objects() {
    let Some(b) = repo_support::bucket("copy") else {
        return;
    };
    let store =
        b.s3.builder(&b.name)
            .with_copy_if_not_exists(object_store::aws::S3CopyIfNotExists::Multipart)
            .build()
            .unwrap();
    let (tmp, dst) = (Path::from("tmp/seg"), Path::from("seg/1"));
    store
        .put(&tmp, PutPayload::from(bytes(6 * 1024 * 1024, 11)))
        .await
        .unwrap();
    let err = store
        .copy_if_not_exists(&tmp, &dst)
        .await
        .expect_err("radosgw 16 refuses object_store's multipart copy");
    assert!(
        err.to_string().contains("MissingContentLength"),
        "refused for the part copy's missing Content-Length: {err}"
    );
    assert!(matches!(
        store.head(&dst).await,
        Err(Error::NotFound { .. })
    ));

    // The same bytes uploaded twice in the same parts have one ETag; other bytes not.
    let data = bytes(11 * 1024 * 1024, 12);
    multipart(&b, "seg/a", &data).await;
    multipart(&b, "seg/b", &data).await;
    let mut other = data.clone();
    other[7 * 1024 * 1024] ^= 1;
    multipart(&b, "seg/c", &other).await;
    let etag = |key: &'static str| {
        let store = &b.store;
        async move { store.head(&Path::from(key)).await.unwrap().e_tag.unwrap() }
    };
    assert_eq!(etag("seg/a").await, etag("seg/b").await);
    assert_ne!(etag("seg/a").await, etag("seg/c").await);
}

/// Uploads are checked by the server as they are: object_store signs each body's SHA-256
/// (`x-amz-content-sha256`) and radosgw 16 refuses a body that does not match it. Its
/// one checksum option, `Checksum::SHA256` (an `x-amz-checksum-sha256` header, never a
/// streaming trailer), is accepted, plain and multipart.
#[tokio::test]
async fn uploads_are_checked_against_their_signed_sha256() {
    let Some(b) = repo_support::bucket("checksum") else {
        return;
    };
    let body = bytes(1000, 13);
    let mut wrong = body.clone();
    wrong[500] ^= 1;
    let digest = |data: &[u8]| sha2::Sha256::digest(data).to_vec();
    let key = |k: &str| format!("/{}/{k}", b.name);
    let put = |k: &str, d: &[u8]| b.s3.signed_put(&key(k), &body, Some(d)).unwrap();
    assert_eq!(put("good", &digest(&body)), (200, String::new()));
    assert_eq!(
        put("bad", &digest(&wrong)),
        (400, "XAmzContentSHA256Mismatch".to_string()),
        "a body that does not match its signed SHA-256 is refused"
    );
    assert!(matches!(
        b.store.head(&Path::from("bad")).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(get(&b, "good").await, body);

    let store =
        b.s3.builder(&b.name)
            .with_checksum_algorithm(object_store::aws::Checksum::SHA256)
            .build()
            .unwrap();
    store
        .put(&Path::from("small"), PutPayload::from(body.clone()))
        .await
        .expect("a put with x-amz-checksum-sha256 is accepted");
    let data = bytes(11 * 1024 * 1024, 14);
    let mut w = WriteMultipart::new(store.put_multipart(&Path::from("big")).await.unwrap());
    w.write(&data);
    w.finish()
        .await
        .expect("a multipart upload with x-amz-checksum-sha256 is accepted");
    assert!(get(&b, "big").await == data);
}

/// `repo_support`'s environment for tidemark children is what
/// `AmazonS3Builder::from_env()` reads: each variable parsed the way `from_env` parses
/// it (lower-cased, as an `AmazonS3ConfigKey`), with the bucket from an `s3://` URL,
/// reaches the server. (The test's own environment is left alone: other tests run in
/// threads beside it.)
#[tokio::test]
async fn child_env_is_what_from_env_reads() {
    let Some(b) = repo_support::bucket("fromenv") else {
        return;
    };
    let mut builder =
        object_store::aws::AmazonS3Builder::new().with_url(format!("s3://{}", b.name));
    for (name, value) in b.s3.child_env() {
        let key = name
            .to_ascii_lowercase()
            .parse()
            .unwrap_or_else(|e| panic!("{name} is not an object_store setting: {e}"));
        builder = builder.with_config(key, value);
    }
    let store = builder.build().expect("a client from the environment");
    store
        .put(&Path::from("k"), PutPayload::from(vec![7u8; 100]))
        .await
        .expect("a put through the environment's settings");
    assert_eq!(get(&b, "k").await, vec![7u8; 100]);
}
