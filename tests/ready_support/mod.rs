//! Following a child process's output line by line, so tests wait for what the
//! process says ("tidemark: tap ready", "tidemark: capturing on lo", a decoded
//! message) instead of sleeping a guessed time. Every wait is bounded: a process
//! that never says it fails the test with everything it printed.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long any wait lasts before the test fails (a loaded 2-core machine).
pub const READY_WAIT: Duration = Duration::from_secs(30);

/// The lines of one output stream, read on a thread as they come.
pub struct Lines {
    rx: Receiver<String>,
    /// Every line received so far, in order.
    pub seen: Vec<String>,
    ended: bool,
}

impl Lines {
    /// Starts reading `stream` (a child's `stdout` or `stderr`, taken from it).
    pub fn follow(stream: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
            ended: false,
        }
    }

    /// Waits until a line satisfies `want` (true), the stream ends (false), or
    /// `within` passes (false). Lines already seen count.
    pub fn wait_until(&mut self, within: Duration, want: impl Fn(&str) -> bool) -> bool {
        if self.seen.iter().any(|l| want(l)) {
            return true;
        }
        let deadline = Instant::now() + within;
        while !self.ended {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    let hit = want(&line);
                    self.seen.push(line);
                    if hit {
                        return true;
                    }
                }
                Err(RecvTimeoutError::Timeout) => return false,
                Err(RecvTimeoutError::Disconnected) => self.ended = true,
            }
        }
        false
    }

    /// Waits for a line that contains `needle`.
    pub fn wait_for(&mut self, needle: &str) -> bool {
        self.wait_until(READY_WAIT, |l| l.contains(needle))
    }

    /// Everything the stream said, once it ended (call after the child exited).
    pub fn rest(mut self) -> Vec<String> {
        if !self.ended {
            while let Ok(line) = self.rx.recv_timeout(READY_WAIT) {
                self.seen.push(line);
            }
        }
        self.seen
    }
}
