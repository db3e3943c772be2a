//! The demo's tap: `tidemark tap --interface lo` as a child process of this very
//! binary (the store's single writer lives in its own process, as in production,
//! and the demo reads and side-writes the store beside it). Started and awaited by
//! its "capturing on lo" line; stopped by SIGTERM by pid once the store's tidemark
//! has passed a moment; killed on drop if the demo fails first.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::store::{Store, StoreOptions};

/// How long the tap may take to start capturing.
const START_WAIT: Duration = Duration::from_secs(20);
/// How long the tidemark may take to pass a moment.
const TIDEMARK_WAIT: Duration = Duration::from_secs(60);

/// A running `tidemark tap` child.
pub struct TapChild {
    child: Option<Child>,
    store: PathBuf,
    /// The child's stderr lines, read on a thread (its last words on failure).
    lines: mpsc::Receiver<String>,
}

impl TapChild {
    /// Starts the tap on `lo` for these CQL and MongoDB ports into `store`.
    pub fn start(store: &Path, cql_port: u16, mongo_port: u16) -> Result<TapChild> {
        let exe = std::env::current_exe().context("find the tidemark binary")?;
        let mut child = Command::new(exe)
            .args(["tap", "--interface", "lo", "--cql-port"])
            .arg(cql_port.to_string())
            .arg("--mongo-port")
            .arg(mongo_port.to_string())
            .arg("--store")
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("start `tidemark tap`")?;
        let (tx, lines) = mpsc::channel();
        let err = child.stderr.take().context("tap stderr")?;
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(|l| l.ok()) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut tap = TapChild {
            child: Some(child),
            store: store.to_path_buf(),
            lines,
        };
        let deadline = Instant::now() + START_WAIT;
        let mut said = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tap.lines.recv_timeout(left) {
                Ok(l) if l.contains("capturing on lo") => return Ok(tap),
                Ok(l) => said.push(l),
                Err(_) => {
                    tap.kill();
                    let why = said.join("; ");
                    if why.contains("ermission") || why.contains("not permitted") {
                        bail!("live capture on lo needs root or CAP_NET_RAW ({why})");
                    }
                    bail!("the tap did not start capturing on lo: {why}");
                }
            }
        }
    }

    /// The store's tidemark (ns), read beside the running tap.
    pub fn tidemark(&self) -> Option<u64> {
        Store::open(&self.store, &StoreOptions::default().read_only())
            .ok()
            .and_then(|s| s.tidemark().ok().flatten())
    }

    /// Waits until the tidemark is past `moment` (every write up to it decided),
    /// then stops the tap with SIGTERM and waits for it to flush and exit.
    pub fn stop_after(mut self, moment: u64) -> Result<u64> {
        let deadline = Instant::now() + TIDEMARK_WAIT;
        let passed = loop {
            if let Some(t) = self.tidemark().filter(|&t| t > moment) {
                break Some(t);
            }
            if Instant::now() >= deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut child = self.child.take().context("tap already stopped")?;
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = child.wait().context("wait for the tap")?;
        let rest: Vec<String> = self.lines.try_iter().collect();
        if !status.success() {
            bail!("the tap failed: {}", rest.join("; "));
        }
        match passed {
            Some(t) => Ok(t),
            None => bail!(
                "the tidemark did not pass the mistake's moment within {} s",
                TIDEMARK_WAIT.as_secs()
            ),
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for TapChild {
    fn drop(&mut self) {
        self.kill();
    }
}
