//! A `tidemark tap --interface lo` child for the live tests: started and awaited by
//! its "capturing on lo" line (never a guessed sleep), and stopped by SIGTERM once the
//! store's tidemark has passed a given moment, when every write up to it is decided.
//! Needs `ready_support` beside it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tidemark::store::{Store, StoreOptions};

use crate::ready_support::Lines;

/// How long the tidemark may take to pass a moment (a loaded 2-core machine).
const TIDEMARK_WAIT: Duration = Duration::from_secs(60);

/// A running live tap.
pub struct LiveTap {
    child: Child,
    err: Lines,
    store: PathBuf,
}

impl LiveTap {
    /// Starts `tidemark tap --interface lo PORT_FLAG PORT --store STORE` (`port_flag`
    /// is `--cql-port` or `--mongo-port`) and waits until it captures.
    pub fn start(port_flag: &str, port: u16, store: &Path) -> LiveTap {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args([
                "tap",
                "--interface",
                "lo",
                port_flag,
                &port.to_string(),
                "--store",
            ])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tidemark tap");
        let mut err = Lines::follow(child.stderr.take().expect("stderr"));
        assert!(
            err.wait_for("tidemark: capturing on lo"),
            "tap did not start: {:?}",
            err.rest()
        );
        LiveTap {
            child,
            err,
            store: store.to_path_buf(),
        }
    }

    /// Waits until the store's tidemark is past `moment` (ns), then stops the tap;
    /// fails with the store's status when the tidemark never got there (a capture
    /// gap stops it, rightly) or the tap did not exit cleanly.
    pub fn stop_after(mut self, moment: u64) {
        let steps = TIDEMARK_WAIT.as_millis() / 100;
        let passed = (0..steps).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            Store::open(&self.store, &StoreOptions::default().read_only())
                .ok()
                .and_then(|s| s.tidemark().ok().flatten())
                .is_some_and(|t| t > moment)
        });
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        let status = self.child.wait().expect("wait for tap");
        assert!(status.success(), "tap: {:?}", self.err.rest());
        if !passed {
            let st = Command::new(env!("CARGO_BIN_EXE_tidemark"))
                .arg("status")
                .arg("--store")
                .arg(&self.store)
                .output()
                .expect("status");
            panic!(
                "the tidemark never passed {moment}: {}",
                String::from_utf8_lossy(&st.stdout)
            );
        }
    }
}
