//! `--rate` (writes per second) and `--rate-mb` (payload MB per second): token
//! buckets that let a burst of one second through and then hold writers back, so a
//! restore into a cluster in use never takes more than it was given.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

/// One bucket: `rate` tokens per second, at most `rate` (one second) saved up.
struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64) -> Bucket {
        Bucket {
            rate,
            tokens: rate.min(1.0),
            last: Instant::now(),
        }
    }

    /// Takes `n` tokens (the balance may go negative) and says how long to wait
    /// until the balance is back at zero.
    fn take(&mut self, n: f64) -> Duration {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate.max(1.0));
        self.last = now;
        self.tokens -= n;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// Both limits (either may be absent).
pub struct Limiter {
    ops: Option<Mutex<Bucket>>,
    bytes: Option<Mutex<Bucket>>,
}

impl Limiter {
    pub fn new(ops_per_sec: Option<f64>, mb_per_sec: Option<f64>) -> Limiter {
        Limiter {
            ops: ops_per_sec.map(|r| Mutex::new(Bucket::new(r))),
            bytes: mb_per_sec.map(|r| Mutex::new(Bucket::new(r * 1e6))),
        }
    }

    /// Waits until `ops` writes of `bytes` payload may go; returns early once `stop`
    /// is set (the wait is slept in slices of at most 100 ms).
    pub async fn acquire(&self, ops: u64, bytes: u64, stop: &AtomicBool) {
        let mut wait = Duration::ZERO;
        if let Some(b) = &self.ops {
            wait = wait.max(b.lock().await.take(ops as f64));
        }
        if let Some(b) = &self.bytes {
            wait = wait.max(b.lock().await.take(bytes as f64));
        }
        let until = Instant::now() + wait;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            let left = until.saturating_duration_since(Instant::now());
            tokio::time::sleep(left.min(Duration::from_millis(100))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_owes_time_for_what_it_lends() {
        let mut b = Bucket::new(10.0);
        // one token to start with, then a tenth of a second per token
        assert_eq!(b.take(1.0), Duration::ZERO);
        let w = b.take(5.0);
        assert!(
            w > Duration::from_millis(450) && w <= Duration::from_millis(500),
            "{w:?}"
        );
    }
}
