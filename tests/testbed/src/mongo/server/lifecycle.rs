//! Starting and stopping members, and partitioning them: what a test does
//! to the set from outside (also reachable through the control endpoint).
//!
//! A stopped member closes its listener and every connection and stops
//! its fetcher, reporter, heartbeats and election timer; its data survives
//! (as a mongod's journaled data survives a restart). A partition cuts the
//! member-to-member links only — replication and heartbeats — while clients
//! can still reach every member, which is what lets a partitioned primary
//! keep acknowledging w:1 writes until it steps down.

use super::set::MongoReplicaSet;
use crate::mongo::repl::election;
use crate::mongo::repl::election::election_offset;
use crate::mongo::repl::heartbeat;
use crate::mongo::repl::sync;
use crate::mongo::state::{ReplSetConfig, Runtime, Shared};
use crate::mongo::wire::conn;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Binds every member's listener (the same port on each address).
pub async fn bind_all(config: &ReplSetConfig) -> std::io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::new();
    let mut port = config.port;
    for i in 0..config.members {
        let ip = Ipv4Addr::from(u32::from(config.base_addr) + i as u32);
        let l = TcpListener::bind(SocketAddr::from((ip, port))).await?;
        port = l.local_addr()?.port();
        listeners.push(l);
    }
    Ok(listeners)
}

/// Starts member `i`'s tasks on `listener`: accepting clients, syncing,
/// heartbeats and the election timer.
pub fn run_member(shared: &Arc<Shared>, i: usize, listener: TcpListener) {
    let (shutdown, rx) = watch::channel(false);
    let m = &shared.members[i];
    {
        let mut v = m.view();
        let now = Instant::now();
        v.last_heard.iter_mut().for_each(|h| *h = Some(now));
        v.election_due = now + shared.config.election_timeout + election_offset(shared, i);
    }
    m.up.store(true, Ordering::SeqCst);
    let mut tasks = Vec::new();
    let (s, r) = (shared.clone(), rx.clone());
    tasks.push(tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((sock, peer)) => {
                    tracing::debug!(member = i, %peer, "connection");
                    let _ = sock.set_nodelay(true);
                    tokio::spawn(conn::serve(s.clone(), i, sock, r.clone()));
                }
                Err(e) => {
                    tracing::warn!(member = i, "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }));
    tasks.push(tokio::spawn(sync::run(shared.clone(), i, rx.clone())));
    tasks.push(tokio::spawn(heartbeat::run(shared.clone(), i)));
    tasks.push(tokio::spawn(election::run(shared.clone(), i)));
    *m.runtime.lock().unwrap_or_else(|e| e.into_inner()) = Some(Runtime { shutdown, tasks });
    shared.links_tx.send_modify(|v| *v += 1);
    shared.bump_topology();
}

/// Stops member `i`: connections closed, tasks ended, no longer primary.
pub fn halt(shared: &Shared, i: usize) {
    let Some(m) = shared.members.get(i) else {
        return;
    };
    let rt = m.runtime.lock().unwrap_or_else(|e| e.into_inner()).take();
    m.up.store(false, Ordering::SeqCst);
    if let Some(rt) = rt {
        let _ = rt.shutdown.send(true);
        for t in rt.tasks {
            t.abort();
        }
    }
    m.cursors.lock().unwrap_or_else(|e| e.into_inner()).clear();
    if shared.clear_primary(i) {
        shared.truth().event(i, "stopped while primary".into());
    }
    m.view().primary = None;
    shared.links_tx.send_modify(|v| *v += 1);
}

/// Errors of the failure-injection API.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error("no member {0} (the set has {1})")]
    NoSuchMember(usize, usize),
    #[error("member {0} could not listen again on {1}: {2}")]
    Rebind(usize, SocketAddr, std::io::Error),
    #[error("member {0} is not primary")]
    NotPrimary(usize),
}

impl MongoReplicaSet {
    fn check(&self, i: usize) -> Result<(), FaultError> {
        let n = self.shared.members.len();
        if i < n {
            Ok(())
        } else {
            Err(FaultError::NoSuchMember(i, n))
        }
    }

    /// Stops member `i` (a crash: no stepdown handshake). Idempotent.
    pub fn stop_member(&self, i: usize) -> Result<(), FaultError> {
        self.check(i)?;
        halt(&self.shared, i);
        self.shared.truth().event(i, "stopped".into());
        Ok(())
    }

    /// Restarts a stopped member on its address with its data, as a
    /// secondary with a new process id. Idempotent.
    pub async fn start_member(&self, i: usize) -> Result<(), FaultError> {
        self.check(i)?;
        let m = &self.shared.members[i];
        if m.is_up() {
            return Ok(());
        }
        let mut last = None;
        // the old listener's socket may take a moment to be released
        for _ in 0..50 {
            match TcpListener::bind(m.addr).await {
                Ok(l) => {
                    m.new_process_id();
                    m.view().primary = None;
                    run_member(&self.shared, i, l);
                    self.shared.truth().event(i, "started".into());
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let e = last.unwrap_or_else(|| std::io::Error::other("bind failed"));
        Err(FaultError::Rebind(i, m.addr, e))
    }

    /// Cuts every link between member `i` and the others (replication and
    /// heartbeats); clients still reach it.
    pub fn partition(&self, i: usize) -> Result<(), FaultError> {
        self.check(i)?;
        for j in 0..self.shared.members.len() {
            self.shared.set_cut(i, j, true);
        }
        self.shared.truth().event(i, "partitioned".into());
        Ok(())
    }

    /// Cuts the single link between `a` and `b`.
    pub fn cut(&self, a: usize, b: usize) -> Result<(), FaultError> {
        self.check(a)?;
        self.check(b)?;
        self.shared.set_cut(a, b, true);
        self.shared.truth().event(a, format!("link to {b} cut"));
        Ok(())
    }

    /// Restores every link of member `i`.
    pub fn heal(&self, i: usize) -> Result<(), FaultError> {
        self.check(i)?;
        for j in 0..self.shared.members.len() {
            self.shared.set_cut(i, j, false);
        }
        self.shared.truth().event(i, "healed".into());
        Ok(())
    }

    /// Restores every link.
    pub fn heal_all(&self) {
        for (a, b) in self.shared.cuts() {
            self.shared.set_cut(a, b, false);
        }
    }

    /// `replSetStepDown` on member `i`: it becomes secondary and does not
    /// stand for election for `hold` (MongoDB's stepDownSecs).
    pub fn step_down(&self, i: usize, hold: Duration) -> Result<(), FaultError> {
        self.check(i)?;
        if election::step_down(&self.shared, i, "replSetStepDown", hold) {
            Ok(())
        } else {
            Err(FaultError::NotPrimary(i))
        }
    }

    /// Waits (bounded) until some member is primary and every running
    /// member that can reach it knows so; the primary's index.
    pub async fn wait_for_primary(&self, timeout: Duration) -> Option<usize> {
        let deadline = Instant::now() + timeout;
        let mut rx = self.shared.topology_tx.subscribe();
        loop {
            rx.borrow_and_update();
            if let Some(p) = self.primary() {
                let known = self.shared.members.iter().all(|m| {
                    m.index == p || !self.shared.link_up(m.index, p) || m.view().primary == Some(p)
                });
                if known {
                    return Some(p);
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), rx.changed()).await;
        }
    }
}
