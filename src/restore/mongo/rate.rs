//! `--rate` (documents/s) and `--rate-mb` (MB/s) as token buckets: a batch waits
//! until both buckets hold its documents and bytes. A bucket holds at most one
//! second's worth, so an idle moment never turns into a burst; a batch larger than
//! that is let through once the bucket is full (and drives it negative), so no batch
//! waits forever.

use std::time::{Duration, Instant};

/// One bucket.
#[derive(Debug)]
struct Bucket {
    per_s: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(per_s: f64) -> Bucket {
        Bucket {
            per_s,
            tokens: 0.0,
            at: Instant::now(),
        }
    }

    /// How long to wait before `n` can go; takes them when that is now.
    fn take(&mut self, n: f64) -> Duration {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.per_s;
        self.tokens = (self.tokens + refill).min(self.per_s);
        self.at = now;
        let need = n.min(self.per_s);
        if self.tokens >= need {
            self.tokens -= n;
            return Duration::ZERO;
        }
        Duration::from_secs_f64(((need - self.tokens) / self.per_s).min(10.0))
    }
}

/// Both limits.
#[derive(Debug)]
pub struct Limiter {
    docs: Option<Bucket>,
    bytes: Option<Bucket>,
}

impl Limiter {
    pub fn new(docs_per_s: Option<f64>, mb_per_s: Option<f64>) -> Limiter {
        Limiter {
            docs: docs_per_s.map(Bucket::new),
            bytes: mb_per_s.map(|mb| Bucket::new(mb * 1e6)),
        }
    }

    /// The most documents a batch should hold so the limit is smooth (a quarter of
    /// a second's worth), if a documents limit is set.
    pub fn batch_docs(&self) -> Option<usize> {
        self.docs
            .as_ref()
            .map(|b| ((b.per_s / 4.0).floor() as usize).max(1))
    }

    /// Waits until `docs` documents of `bytes` bytes may be written.
    pub async fn wait(&mut self, docs: usize, bytes: usize) {
        // Bounded: each round either takes the tokens or sleeps until they are there.
        for _ in 0..1000 {
            let mut wait = Duration::ZERO;
            if let Some(b) = &mut self.docs {
                wait = wait.max(b.take(docs as f64));
            }
            if wait.is_zero() {
                if let Some(b) = &mut self.bytes {
                    wait = b.take(bytes as f64);
                    if !wait.is_zero() {
                        // give the documents back: the batch did not go
                        if let Some(d) = &mut self.docs {
                            d.tokens += docs as f64;
                        }
                    }
                }
            }
            if wait.is_zero() {
                return;
            }
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refills_at_its_rate_and_caps_at_a_second() {
        let mut b = Bucket::new(100.0);
        b.tokens = 100.0;
        assert_eq!(b.take(60.0), Duration::ZERO);
        let w = b.take(60.0);
        assert!(
            w > Duration::from_millis(150) && w <= Duration::from_millis(210),
            "{w:?}"
        );
        // a batch larger than a second's worth waits for a full bucket, not forever
        b.tokens = 100.0;
        assert_eq!(b.take(500.0), Duration::ZERO);
        assert!(b.tokens < 0.0);
    }
}
