//! The decoders' copy of what the proxy forwards: a bounded queue of stream events
//! that forwarding never waits on.
//!
//! Forwarding writes a chunk first and offers its copy after. When the queue is
//! nearly full (the decoders are behind), the copy is dropped and counted, and the
//! flow's next copy that fits is preceded by a [`StreamEvent::Gap`] of exactly the
//! bytes dropped: the tracker then knows what it did not see (writes in it are in
//! doubt, versions across it are refused unless allowed) — never silent loss.
//! A share of the queue is kept for flow openings and closings, which must not be
//! lost; should even that run out, the connection's task waits for room off the
//! runtime's threads (`block_in_place`) at opening or closing, never in between.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use crossbeam_channel::{Sender, TrySendError};

use super::metrics::Metrics;
use crate::capture::{CloseReason, Direction, FlowId, StreamEvent, Timestamp};

/// Queue slots kept for openings and closings.
const CONTROL_RESERVE: usize = 1024;

/// Nanoseconds since the epoch: the capture time of what the proxy copies.
pub fn now_ts() -> Timestamp {
    Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    )
}

/// The sending side, shared by every connection.
#[derive(Clone)]
pub struct Feed {
    tx: Sender<StreamEvent>,
    capacity: usize,
    next_flow: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
}

impl Feed {
    pub fn new(tx: Sender<StreamEvent>, capacity: usize, metrics: Arc<Metrics>) -> Feed {
        Feed {
            tx,
            capacity,
            next_flow: Arc::new(AtomicU64::new(1)),
            metrics,
        }
    }

    /// Events waiting for the decoders.
    pub fn depth(&self) -> usize {
        self.tx.len()
    }

    /// Announces a new flow; the returned handle copies its bytes.
    pub fn open(&self, client: std::net::SocketAddr, server: std::net::SocketAddr) -> FlowFeed {
        let flow = FlowId(self.next_flow.fetch_add(1, Ordering::Relaxed));
        self.control(StreamEvent::Opened {
            flow,
            client,
            server,
            ts: now_ts(),
        });
        FlowFeed {
            feed: self.clone(),
            flow,
            pending_gap: [0, 0],
        }
    }

    fn control(&self, ev: StreamEvent) {
        match self.tx.try_send(ev) {
            Ok(()) => {}
            Err(TrySendError::Full(ev)) => {
                self.metrics.control_waits.fetch_add(1, Ordering::Relaxed);
                let tx = self.tx.clone();
                let send = move || {
                    let _ = tx.send(ev);
                };
                match tokio::runtime::Handle::try_current() {
                    Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                        tokio::task::block_in_place(send)
                    }
                    _ => send(),
                }
            }
            // The decoders are gone (shutting down): nothing to tell.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// One flow's copies.
pub struct FlowFeed {
    feed: Feed,
    flow: FlowId,
    /// Bytes dropped per direction (client→server, server→client) not yet reported.
    pending_gap: [u64; 2],
}

fn slot(dir: Direction) -> usize {
    match dir {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    }
}

impl FlowFeed {
    /// Offers a copy of `bytes`, just forwarded in direction `dir`. Never waits.
    pub fn data(&mut self, dir: Direction, bytes: Bytes) {
        let len = bytes.len() as u64;
        let m = &self.feed.metrics;
        if self.feed.tx.len() + CONTROL_RESERVE >= self.feed.capacity {
            self.drop_copy(dir, len);
            return;
        }
        let ts = now_ts();
        let gap = self.pending_gap[slot(dir)];
        if gap > 0 {
            match self.feed.tx.try_send(StreamEvent::Gap {
                flow: self.flow,
                dir,
                ts,
                len: gap,
            }) {
                Ok(()) => {
                    self.pending_gap[slot(dir)] = 0;
                    m.gaps.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    self.drop_copy(dir, len);
                    return;
                }
            }
        }
        if self
            .feed
            .tx
            .try_send(StreamEvent::Data {
                flow: self.flow,
                dir,
                ts,
                bytes,
            })
            .is_err()
        {
            self.drop_copy(dir, len);
        }
    }

    fn drop_copy(&mut self, dir: Direction, len: u64) {
        self.pending_gap[slot(dir)] += len;
        self.feed
            .metrics
            .gap_bytes
            .fetch_add(len, Ordering::Relaxed);
    }

    /// Ends the flow: a gap still pending is reported first, so the decoders know
    /// the flow's tail was not seen.
    pub fn close(mut self, reason: CloseReason) {
        let ts = now_ts();
        for dir in [Direction::ClientToServer, Direction::ServerToClient] {
            let gap = std::mem::take(&mut self.pending_gap[slot(dir)]);
            if gap > 0 {
                self.feed.metrics.gaps.fetch_add(1, Ordering::Relaxed);
                self.feed.control(StreamEvent::Gap {
                    flow: self.flow,
                    dir,
                    ts,
                    len: gap,
                });
            }
        }
        self.feed.control(StreamEvent::Closed {
            flow: self.flow,
            ts,
            reason,
        });
    }
}
