//! A real S3 server for the remote repository's tests (#16): Ceph's radosgw (Ceph 16,
//! Debian's packages), started once per test binary by `scripts/radosgw.sh start` and
//! stopped at process exit, and `object_store` clients built for it.
//!
//! A server that cannot start is reported through `tests/require`: it fails the test
//! under `CI` and is a counted skip elsewhere.
//!
//! # The `AmazonS3Builder` settings radosgw 16 needs
//! - `with_endpoint("http://127.0.0.1:7480")` and `with_allow_http(true)`: a loopback
//!   gateway without TLS (`AWS_ENDPOINT`, `AWS_ALLOW_HTTP=true` from the environment).
//! - `with_virtual_hosted_style_request(false)` (path style, `http://host/bucket/key`):
//!   virtual-hosted style would need `rgw_dns_name` and a resolver for
//!   `bucket.127.0.0.1`. It is object_store's default; set explicitly here.
//! - `with_region("us-east-1")`: radosgw accepts any region in SigV4 with its default
//!   zonegroup; object_store signs with the one it is given.
//! - checksums: nothing to configure. Object_store signs each PUT (and each part) with
//!   the body's SHA-256 in `x-amz-content-sha256` (`with_unsigned_payload(false)`, its
//!   default) and radosgw 16 checks it: a body that does not match is refused, 400
//!   XAmzContentSHA256Mismatch (tests/repo_s3.rs), so uploads are verified by the server
//!   as they are. Object_store never sends the streaming (aws-chunked) CRC32 trailers
//!   newer AWS SDKs send by default, which radosgw 16 refuses: a curl probe with
//!   `x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER` and an
//!   `x-amz-checksum-crc32` trailer got 400 XAmzContentSHA256Mismatch. Its one checksum
//!   option, `with_checksum_algorithm(Checksum::SHA256)`, adds an
//!   `x-amz-checksum-sha256` header that radosgw 16 accepts but does not check (a wrong
//!   one was accepted, tried with curl): leave it off.
//! - `conditional_put` left at its default, `S3ConditionalPut::ETagMatch`:
//!   - `PutMode::Create` sends `If-None-Match: *`; radosgw 16 refuses it for an
//!     existing key with 412, which object_store reports as `Error::AlreadyExists`. That
//!     is what makes a retried single-part upload idempotent.
//!   - `PutMode::Update` sends `If-Match: <etag>` with the ETag as object_store got it,
//!     quoted; radosgw 16 compares the header byte for byte with its stored, unquoted
//!     ETag, so it refuses (412) even the current ETag unless the caller strips the
//!     quotes (`UpdateVersion { e_tag: Some(etag.trim_matches('"')), .. }`).
//! - `copy_if_not_exists`: not configured. `S3CopyIfNotExists::Multipart` (object_store's
//!   create-only path for large objects) is refused by radosgw 16: its UploadPartCopy is
//!   a PUT without `Content-Length`, answered 411 MissingContentLength. `put_multipart`
//!   has no `PutMode` in object_store 0.12, so a large object's idempotency must come
//!   from its key (deterministic) and a HEAD before the upload: the same bytes in the
//!   same parts give the same multipart ETag.
//! - bounded retries and timeouts ([`S3::builder`]): object_store's default retries a
//!   refused connection for up to 3 minutes; tests bound every wait.
//!
//! Object_store has no create-bucket call: [`S3::create_bucket`] signs a `PUT /bucket`
//! with object_store's own SigV4 signer (`AwsAuthorizer`) and sends it over a plain TCP
//! connection ([`S3::signed_put`], ~40 lines, no HTTP client or tool added).
//!
//! The keys are random per `start` and read from the 0600 file `radosgw.sh env`
//! prints; they are never printed ([`S3`]'s `Debug` hides them) and reach child
//! processes only through their environment ([`S3::child_env`]).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use object_store::aws::{AmazonS3, AmazonS3Builder, AwsAuthorizer, AwsCredential};
use object_store::client::{HttpRequest, HttpRequestBody};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};

#[path = "../require/mod.rs"]
mod require;

/// The repository root (the script is found from here): the root crate's directory,
/// or its parent when this module is built into `bench/` (repo-bench includes it).
pub fn root() -> &'static Path {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    if here.join("scripts").is_dir() {
        here
    } else {
        here.parent().unwrap_or(here)
    }
}

fn script() -> PathBuf {
    root().join("scripts").join("radosgw.sh")
}

/// The S3 server's address and this start's keys.
#[derive(Clone)]
pub struct S3 {
    pub endpoint: String,
    pub region: String,
    access_key_id: String,
    secret_access_key: String,
}

impl std::fmt::Debug for S3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("keys", &"<hidden>")
            .finish()
    }
}

/// Runs `radosgw.sh stop` at process exit (also after failed tests: the harness exits
/// through libc's `exit`), so no Ceph daemon outlives the test binary that started it.
extern "C" fn stop_server() {
    let _ = Command::new("bash")
        .arg(script())
        .arg("stop")
        .stdout(Stdio::null())
        .status();
}

static SERVER: OnceLock<Result<S3, String>> = OnceLock::new();

/// The server, started on first use in this process; `None` means skip (not under CI).
pub fn server() -> Option<&'static S3> {
    let result = SERVER.get_or_init(|| {
        let started = Instant::now();
        let status = Command::new("bash")
            .arg(script())
            .arg("start")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .map_err(|e| format!("cannot run scripts/radosgw.sh: {e}"))?;
        // Registered before checking success: a half-started cluster is stopped too.
        static REGISTERED: Mutex<bool> = Mutex::new(false);
        let mut registered = REGISTERED.lock().unwrap();
        if !*registered {
            // SAFETY: registers a plain extern "C" function with no captured state.
            unsafe { libc::atexit(stop_server) };
            *registered = true;
        }
        if !status.success() {
            return Err(format!("scripts/radosgw.sh start failed ({status})"));
        }
        eprintln!(
            "repo_support: radosgw ready in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        read_env()
    });
    match result {
        Ok(s3) => Some(s3),
        Err(e) => {
            require::missing(
                "radosgw",
                e,
                "scripts/setup.sh installs Ceph's Debian packages (ceph-mon, ceph-osd, \
                 radosgw); scripts/radosgw.sh starts the cluster",
            );
            None
        }
    }
}

/// The `export NAME=value` lines of `radosgw.sh env`, parsed without echoing them.
fn read_env() -> Result<S3, String> {
    let out = Command::new("bash")
        .arg(script())
        .arg("env")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run scripts/radosgw.sh env: {e}"))?;
    if !out.status.success() {
        return Err(format!("scripts/radosgw.sh env failed ({})", out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let var = |name: &str| {
        text.lines()
            .filter_map(|l| l.strip_prefix("export "))
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_string)
            .ok_or_else(|| format!("radosgw.sh env printed no {name}"))
    };
    Ok(S3 {
        endpoint: var("AWS_ENDPOINT")?,
        region: var("AWS_REGION")?,
        access_key_id: var("AWS_ACCESS_KEY_ID")?,
        secret_access_key: var("AWS_SECRET_ACCESS_KEY")?,
    })
}

/// Retries and timeouts that bound every call: a stopped server is an error within
/// seconds, not after object_store's default three minutes.
pub fn bounded_retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            base: 2.0,
        },
        max_retries: 2,
        retry_timeout: Duration::from_secs(10),
    }
}

impl S3 {
    /// A builder for `bucket` with the settings radosgw 16 needs (module docs).
    pub fn builder(&self, bucket: &str) -> AmazonS3Builder {
        self.builder_with_keys(bucket, &self.access_key_id, &self.secret_access_key)
    }

    /// [`S3::builder`] with other keys (for tests of wrong credentials).
    pub fn builder_with_keys(&self, bucket: &str, key: &str, secret: &str) -> AmazonS3Builder {
        AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_region(&self.region)
            .with_bucket_name(bucket)
            .with_access_key_id(key)
            .with_secret_access_key(secret)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_retry(bounded_retry())
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(true)
                    .with_connect_timeout(Duration::from_secs(2))
                    .with_timeout(Duration::from_secs(60)),
            )
    }

    /// The environment of a child process (a `tidemark` with `--repo s3://…`), as
    /// `AmazonS3Builder::from_env` reads it.
    pub fn child_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_REGION", self.region.clone()),
            ("AWS_ACCESS_KEY_ID", self.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "false".into()),
        ]
    }

    /// Creates `bucket` (S3 CreateBucket, `PUT /bucket`). Radosgw answers 200 also when
    /// this user already owns the bucket.
    pub fn create_bucket(&self, bucket: &str) -> Result<(), String> {
        match self.signed_put(&format!("/{bucket}"), b"", None)? {
            (200, _) => Ok(()),
            (status, code) => Err(format!("CreateBucket {bucket}: {status} {code}")),
        }
    }

    /// A `PUT path` with `body`, signed in its headers by object_store's own SigV4
    /// `AwsAuthorizer` (with `digest` as the signed payload SHA-256 when given, else the
    /// body's), sent over a plain TCP connection (a presigned URL would put the signature
    /// into radosgw's access log). Returns the HTTP status and S3's error code.
    pub fn signed_put(
        &self,
        path: &str,
        body: &[u8],
        digest: Option<&[u8]>,
    ) -> Result<(u16, String), String> {
        let (status, response) = self.signed("PUT", path, body, digest)?;
        let code = response
            .split("<Code>")
            .nth(1)
            .and_then(|r| r.split("</Code>").next())
            .unwrap_or("")
            .to_string();
        Ok((status, code))
    }

    /// A signed `GET path?query` (as [`S3::signed_put`]): the HTTP status and the
    /// whole response, for the S3 calls object_store does not make (ListParts,
    /// ListMultipartUploads).
    pub fn signed_get(&self, path_and_query: &str) -> Result<(u16, String), String> {
        self.signed("GET", path_and_query, b"", None)
    }

    /// A signed `DELETE path?query` (AbortMultipartUpload).
    pub fn signed_delete(&self, path_and_query: &str) -> Result<(u16, String), String> {
        self.signed("DELETE", path_and_query, b"", None)
    }

    fn signed(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        digest: Option<&[u8]>,
    ) -> Result<(u16, String), String> {
        let credential = AwsCredential {
            key_id: self.access_key_id.clone(),
            secret_key: self.secret_access_key.clone(),
            token: None,
        };
        let mut request = HttpRequest::new(HttpRequestBody::from(body.to_vec()));
        *request.method_mut() = method.parse().expect("an HTTP method");
        *request.uri_mut() = format!("{}{path}", self.endpoint)
            .parse()
            .map_err(|e| format!("{e}"))?;
        AwsAuthorizer::new(&credential, "s3", &self.region).authorize(&mut request, digest);
        let authority = request.uri().authority().ok_or("no host")?.to_string();
        let target = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let mut head = format!("{method} {target} HTTP/1.1\r\n");
        for (name, value) in request.headers() {
            let value = value.to_str().map_err(|e| e.to_string())?;
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        let mut conn = TcpStream::connect(&authority).map_err(|e| e.to_string())?;
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        conn.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
        conn.write_all(body).map_err(|e| e.to_string())?;
        let mut response = String::new();
        conn.read_to_string(&mut response)
            .map_err(|e| e.to_string())?;
        let status = response
            .lines()
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no HTTP status from radosgw: {response:.80}"))?;
        Ok((status, response))
    }
}

/// Tests that only use the server share it; a test that stops radosgw holds it alone.
static SHARED: RwLock<()> = RwLock::new(());

/// A fresh bucket and a client for it. While it lives, radosgw is not stopped by
/// [`exclusive`] (which waits for every `Bucket` to go).
pub struct Bucket {
    pub s3: &'static S3,
    pub name: String,
    pub store: AmazonS3,
    _shared: Option<RwLockReadGuard<'static, ()>>,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn new_bucket(s3: &'static S3, hint: &str) -> Bucket {
    // Bucket names: 3..=63 of [a-z0-9-]; the pid and a counter make them fresh.
    let hint: String = hint
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(30)
        .collect();
    let name = format!(
        "tm-{}-{}-{hint}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    s3.create_bucket(&name)
        .unwrap_or_else(|e| panic!("radosgw refused a new bucket: {e}"));
    let store = s3.builder(&name).build().expect("an S3 client");
    Bucket {
        s3,
        name,
        store,
        _shared: None,
    }
}

/// A fresh bucket on the (once per process started) server; `None` means skip.
pub fn bucket(hint: &str) -> Option<Bucket> {
    let s3 = server()?;
    let guard = SHARED.read().unwrap_or_else(|e| e.into_inner());
    let mut b = new_bucket(s3, hint);
    b._shared = Some(guard);
    Some(b)
}

/// The server for one test alone: no other test of this process holds a [`Bucket`]
/// while it lives, so it may stop and start radosgw. Dropping it starts radosgw again
/// if the test left it stopped. (A test holding a `Bucket` must not call this.)
pub struct Exclusive {
    pub s3: &'static S3,
    _alone: RwLockWriteGuard<'static, ()>,
}

/// Waits for every other test's [`Bucket`] to go; `None` means skip.
pub fn exclusive() -> Option<Exclusive> {
    let s3 = server()?;
    let alone = SHARED.write().unwrap_or_else(|e| e.into_inner());
    Some(Exclusive { s3, _alone: alone })
}

fn run_script(cmd: &str) {
    let out = Command::new("bash")
        .arg(script())
        .arg(cmd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "radosgw.sh {cmd} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Exclusive {
    /// A fresh bucket (not counted as a shared user).
    pub fn bucket(&self, hint: &str) -> Bucket {
        new_bucket(self.s3, hint)
    }

    /// Ends radosgw only (`radosgw.sh stop-rgw`); the cluster and its data stay.
    pub fn stop_rgw(&self) {
        run_script("stop-rgw");
    }

    /// Starts radosgw again over the same cluster and keys; returns when S3 answers.
    pub fn start_rgw(&self) {
        run_script("start-rgw");
    }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        // A test that failed between stop and start leaves the others a server.
        let _ = Command::new("bash")
            .arg(script())
            .arg("start-rgw")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
