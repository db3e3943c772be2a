//! Emulators of the two object stores besides S3 for the remote repository's tests
//! (#16): Azurite (Azure Blob, `scripts/azurite.sh`) and fake-gcs-server (Google Cloud
//! Storage, `scripts/fake_gcs.sh`), each started once per test binary on first use and
//! stopped at process exit, and `object_store` clients built for them.
//!
//! An emulator that cannot start is reported through `tests/require`: it fails the test
//! under `CI` and is a counted skip elsewhere.
//!
//! # What object_store 0.12 needs to reach them (no change in tidemark)
//! - Azure: `AZURE_STORAGE_USE_EMULATOR=true` makes `MicrosoftAzureBuilder::from_env`
//!   talk path style to `AZURITE_BLOB_STORAGE_URL` (default `http://127.0.0.1:10000`)
//!   over plain HTTP as `devstoreaccount1`, signing with Shared Key
//!   (`AZURE_STORAGE_ACCOUNT_KEY`, or the published development key when unset).
//! - GCS: `GOOGLE_SERVICE_ACCOUNT_KEY` holding
//!   `{"gcs_base_url": "http://127.0.0.1:4443", "disable_oauth": true, "client_email": "",
//!   "private_key": "", "private_key_id": ""}`: the base URL is read only from a
//!   service account key or file, and `disable_oauth` sends empty bearer tokens (the
//!   emulator checks none). `private_key_id` must be present (no serde default).
//!
//! The container and the bucket (`tidemark`) are made by the scripts at start; each
//! test works under a prefix of its own.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::{BackoffConfig, ObjectStore, RetryConfig};

#[path = "../require/mod.rs"]
mod require;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Azure,
    Gcs,
}

impl Kind {
    fn script(self) -> &'static str {
        match self {
            Kind::Azure => "azurite.sh",
            Kind::Gcs => "fake_gcs.sh",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Azure => "azurite",
            Kind::Gcs => "fake-gcs-server",
        }
    }

    fn scheme(self) -> &'static str {
        match self {
            Kind::Azure => "az",
            Kind::Gcs => "gs",
        }
    }
}

/// A running emulator: the environment its clients need and the container or bucket.
pub struct Emulator {
    pub kind: Kind,
    /// `NAME=value` pairs of the script's `env` (object_store's `from_env` keys).
    env: Vec<(String, String)>,
    pub container: String,
    /// Seconds `start` took (install excluded when already installed).
    pub start_secs: f64,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("kind", &self.kind)
            .field("container", &self.container)
            .field("env", &"<hidden>")
            .finish()
    }
}

fn script(kind: Kind) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(kind.script())
}

extern "C" fn stop_azurite() {
    stop(Kind::Azure);
}

extern "C" fn stop_fake_gcs() {
    stop(Kind::Gcs);
}

fn stop(kind: Kind) {
    let _ = Command::new("bash")
        .arg(script(kind))
        .arg("stop")
        .stdout(Stdio::null())
        .status();
}

static AZURE: OnceLock<Result<Emulator, String>> = OnceLock::new();
static GCS: OnceLock<Result<Emulator, String>> = OnceLock::new();

/// Azurite, started on first use in this process; `None` means skip (not under CI).
pub fn azure() -> Option<&'static Emulator> {
    emulator(Kind::Azure, &AZURE, stop_azurite)
}

/// fake-gcs-server, started on first use in this process; `None` means skip.
pub fn gcs() -> Option<&'static Emulator> {
    emulator(Kind::Gcs, &GCS, stop_fake_gcs)
}

fn emulator(
    kind: Kind,
    cell: &'static OnceLock<Result<Emulator, String>>,
    at_exit: extern "C" fn(),
) -> Option<&'static Emulator> {
    let result = cell.get_or_init(|| {
        let started = Instant::now();
        let status = Command::new("bash")
            .arg(script(kind))
            .arg("start")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .map_err(|e| format!("cannot run scripts/{}: {e}", kind.script()))?;
        // Registered before checking success: a half-started emulator is stopped too.
        static REGISTERED: Mutex<Vec<usize>> = Mutex::new(Vec::new());
        let mut registered = REGISTERED.lock().unwrap();
        if !registered.contains(&(at_exit as usize)) {
            // SAFETY: registers a plain extern "C" function with no captured state.
            unsafe { libc::atexit(at_exit) };
            registered.push(at_exit as usize);
        }
        if !status.success() {
            return Err(format!("scripts/{} start failed ({status})", kind.script()));
        }
        let start_secs = started.elapsed().as_secs_f64();
        eprintln!("cloud_support: {} ready in {start_secs:.1}s", kind.name());
        read_env(kind, start_secs)
    });
    match result {
        Ok(e) => Some(e),
        Err(e) => {
            require::missing(
                kind.name(),
                e,
                "scripts/azurite.sh installs Azurite with npm, scripts/fake_gcs.sh builds \
                 fake-gcs-server with go install, both on first start (Node, Go and the \
                 registries must be reachable)",
            );
            None
        }
    }
}

/// The `export NAME=value` lines of `<script> env`, parsed without echoing them.
fn read_env(kind: Kind, start_secs: f64) -> Result<Emulator, String> {
    let out = Command::new("bash")
        .arg(script(kind))
        .arg("env")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run scripts/{} env: {e}", kind.script()))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/{} env failed ({})",
            kind.script(),
            out.status
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut env = Vec::new();
    let mut container = None;
    for line in text.lines().filter_map(|l| l.strip_prefix("export ")) {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .unwrap_or(v);
        if k.starts_with("TIDEMARK_") {
            container = Some(v.to_string());
        } else {
            env.push((k.to_string(), v.to_string()));
        }
    }
    let container =
        container.ok_or_else(|| format!("scripts/{} env named no container", kind.script()))?;
    Ok(Emulator {
        kind,
        env,
        container,
        start_secs,
    })
}

/// Retries and timeouts that bound every call of the tests' own clients.
fn bounded_retry() -> RetryConfig {
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

impl Emulator {
    /// The environment a `tidemark` child needs (and nothing else of the emulator's).
    pub fn child_env(&self) -> Vec<(String, String)> {
        self.env.clone()
    }

    fn var(&self, name: &str) -> &str {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{} env has no {name}", self.kind.script()))
    }

    /// The values that must never appear in tidemark's output: every `*KEY*` variable
    /// (Azure's account key; GCS's service account key, which carries no secret here
    /// but is the slot where a real one would be).
    pub fn secrets(&self) -> Vec<&str> {
        self.env
            .iter()
            .filter(|(k, _)| k.contains("KEY"))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `az://tidemark/<prefix>` or `gs://tidemark/<prefix>`.
    pub fn url(&self, prefix: &str) -> String {
        format!("{}://{}/{prefix}", self.kind.scheme(), self.container)
    }

    /// A client of the container or bucket, built as tidemark's `--repo` builds it but
    /// from explicit settings (the tests do not touch their own environment). Azure's
    /// address comes from `AZURITE_BLOB_STORAGE_URL` when set, else object_store's
    /// default, which is the script's.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        match self.kind {
            Kind::Azure => Arc::new(
                MicrosoftAzureBuilder::new()
                    .with_use_emulator(true)
                    .with_account(self.var("AZURE_STORAGE_ACCOUNT_NAME"))
                    .with_access_key(self.var("AZURE_STORAGE_ACCOUNT_KEY"))
                    .with_container_name(&self.container)
                    .with_retry(bounded_retry())
                    .build()
                    .expect("an Azure client for Azurite"),
            ),
            Kind::Gcs => Arc::new(
                GoogleCloudStorageBuilder::new()
                    .with_service_account_key(self.var("GOOGLE_SERVICE_ACCOUNT_KEY"))
                    .with_bucket_name(&self.container)
                    .with_retry(bounded_retry())
                    .build()
                    .expect("a GCS client for fake-gcs-server"),
            ),
        }
    }
}

/// A prefix no other test or run uses (the emulators keep data while they run).
pub fn unique_prefix(hint: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{hint}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

impl Emulator {
    /// fake-gcs-server only: writes `bytes` as `name` in the bucket through the GCS JSON
    /// API's media upload (`POST /upload/storage/v1/b/<bucket>/o?uploadType=media`),
    /// over a plain TCP connection. Object_store 0.12 writes through the XML API
    /// (`PUT /<bucket>/<name>`), which fake-gcs-server v1.56.1 refuses (400 "invalid
    /// uploadType": its XML API serves reads and lists only, upstream issue #331), so
    /// the GCS tests seed the bucket this way and read it through object_store.
    pub fn gcs_upload(&self, name: &str, bytes: &[u8]) {
        use std::io::{Read, Write};
        assert_eq!(self.kind, Kind::Gcs, "gcs_upload is for fake-gcs-server");
        let key: serde_json::Value =
            serde_json::from_str(self.var("GOOGLE_SERVICE_ACCOUNT_KEY")).unwrap();
        let base = key["gcs_base_url"].as_str().unwrap();
        let addr = base.strip_prefix("http://").unwrap().trim_end_matches('/');
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b)),
            "{name}: only plain names are sent unescaped"
        );
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            conn,
            "POST /upload/storage/v1/b/{}/o?uploadType=media&name={name} HTTP/1.1\r\n\
             Host: {addr}\r\nContent-Type: application/octet-stream\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.container,
            bytes.len()
        )
        .unwrap();
        conn.write_all(bytes).unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "uploading {name}: {}",
            answer.lines().next().unwrap_or("")
        );
    }

    /// fake-gcs-server only: every file under `dir` uploaded under `prefix`.
    pub fn gcs_upload_tree(&self, dir: &Path, prefix: &str) -> usize {
        let mut n = 0;
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(dir).unwrap().to_str().unwrap();
                    self.gcs_upload(&format!("{prefix}/{rel}"), &std::fs::read(&p).unwrap());
                    n += 1;
                }
            }
        }
        n
    }
}
