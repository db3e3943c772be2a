//! The proxied mode of the histories: the tidemark under test is one `tidemark proxy`
//! process with a route per node (or member, or spare slot), address rewriting on, so
//! the history's drivers learn only sidecar addresses and every client byte passes
//! it; no tap runs (a tap on `lo` filtered by the nodes' port would see both legs of
//! the proxy). The `ProxyRestart` fault stops it mid-round — SIGKILL (a crash) or
//! SIGTERM (a graceful stop that drains for [`DRAIN`]) — and starts it again on the
//! same store and addresses after a pause while the round's clients keep writing.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::cql_run::now_ns;
use crate::ready_support::Lines;

/// What recorded a history: the live tap on `lo`, or the proxy the clients go through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    #[default]
    Tap,
    Proxy,
}

/// The proxy is stopped `after_ms` into the round (SIGKILL when `kill`, else SIGTERM
/// and a drain) and started again `down_ms` after it exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyRestart {
    pub kill: bool,
    pub after_ms: u64,
    pub down_ms: u64,
}

/// How long a graceful stop lets open connections go on (the drivers' pooled
/// connections never end by themselves: a SIGTERM stop takes this long).
pub const DRAIN: &str = "0.5";

/// One restart as it happened (ns): the signal, the old process's exit, the new
/// process's "listening".
#[derive(Debug, Clone, Copy)]
pub struct Restarted {
    pub kill: bool,
    pub signalled: u64,
    pub exited: u64,
    pub listening: u64,
}

/// A port free on every one of `ips` and different from `avoid` (sidecars share one
/// port, as the nodes do: `system.peers` has no port column).
pub fn common_port(ips: &[Ipv4Addr], avoid: u16) -> u16 {
    for _ in 0..100 {
        let p = TcpListener::bind((ips[0], 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if p != avoid && ips.iter().all(|ip| TcpListener::bind((*ip, p)).is_ok()) {
            return p;
        }
    }
    panic!("no port free on all of {ips:?} in 100 tries");
}

/// A `tidemark proxy` child with its command line, so it can be started again on
/// the same store and addresses. Stopped (SIGTERM, by its pid) when dropped.
pub struct Proxy {
    args: Vec<String>,
    store: PathBuf,
    child: Option<Child>,
    err: Option<Lines>,
}

impl Proxy {
    /// Starts a proxy with `--route sidecar=upstream` per pair, rewriting on.
    pub fn start(routes: &[(SocketAddr, SocketAddr)], protocol: &str, store: &Path) -> Proxy {
        let mut args = vec!["proxy".to_string(), "--protocol".into(), protocol.into()];
        for (s, u) in routes {
            args.push("--route".into());
            args.push(format!("{s}={u}"));
        }
        args.extend(["--drain".into(), DRAIN.into(), "--no-sync".into()]);
        let mut p = Proxy {
            args,
            store: store.to_path_buf(),
            child: None,
            err: None,
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(&self.args)
            .arg("--store")
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tidemark proxy");
        let mut err = Lines::follow(child.stderr.take().expect("stderr"));
        assert!(
            err.wait_for("tidemark: proxy listening"),
            "the proxy did not start: {:?}",
            err.seen
        );
        self.child = Some(child);
        self.err = Some(err);
    }

    /// Stops the process (SIGKILL or SIGTERM, to its pid only) and waits for its exit
    /// (≤ 30 s, then SIGKILL). Returns the moments the signal went and it exited.
    pub fn stop(&mut self, kill: bool) -> (u64, u64) {
        let Some(mut child) = self.child.take() else {
            return (now_ns(), now_ns());
        };
        let signalled = now_ns();
        if kill {
            let _ = child.kill();
        } else {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    // Exit 1 says connections were cut at the drain's end (the
                    // drivers' pools never close): expected here.
                    if !kill && !matches!(status.code(), Some(0 | 1)) {
                        eprintln!(
                            "histories: the proxy exited {status} on SIGTERM: {:?}",
                            self.err.take().map(|e| e.rest())
                        );
                    }
                    break;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
        self.err = None;
        (signalled, now_ns())
    }

    /// Stops it as `r` says (the pause before it counted from the caller's start) and
    /// starts it again on the same store and addresses after `r.down_ms`.
    pub fn restart(&mut self, r: &ProxyRestart) -> Restarted {
        std::thread::sleep(Duration::from_millis(r.after_ms));
        let (signalled, exited) = self.stop(r.kill);
        std::thread::sleep(Duration::from_millis(r.down_ms));
        self.spawn();
        Restarted {
            kill: r.kill,
            signalled,
            exited,
            listening: now_ns(),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop(false);
    }
}

/// Starts `restart` (if any, and if a proxy runs) on its own thread, beside the
/// round's clients: the proxy is moved there and handed back by the join.
pub fn restart_beside(
    proxy: &mut Option<Proxy>,
    restart: Option<ProxyRestart>,
) -> Option<std::thread::JoinHandle<(Proxy, Restarted)>> {
    let r = restart?;
    let Some(mut p) = proxy.take() else {
        eprintln!("histories: {r:?} in a history without a proxy: not applied");
        return None;
    };
    Some(std::thread::spawn(move || {
        let done = p.restart(&r);
        (p, done)
    }))
}
