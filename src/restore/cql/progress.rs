//! Progress of a restore: an indicatif bar on a terminal (rows, rows/s, MB/s, ETA
//! from the version's row count), or with `--json` one `progress` line a second.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

pub struct Progress {
    json: bool,
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    started: Instant,
    /// Rows and bytes of this run (a resume starts with `done` > 0).
    rows: u64,
    bytes: u64,
    last_line: Instant,
}

impl Progress {
    /// Progress over `total` rows, `done` of them written before (a resume).
    pub fn new(json: bool, total: u64, done: u64) -> Progress {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{bar:30} {pos}/{len} rows  {msg}  eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_position(done);
            bar
        });
        Progress {
            json,
            bar,
            total,
            done,
            started: Instant::now(),
            rows: 0,
            bytes: 0,
            last_line: Instant::now(),
        }
    }

    /// `rows` rows (or deletion entries) of `bytes` payload were written.
    pub fn add(&mut self, rows: u64, bytes: u64) {
        self.rows += rows;
        self.bytes += bytes;
        self.done += rows;
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = self.rows as f64 / secs;
        let mb = self.bytes as f64 / 1e6 / secs;
        if let Some(bar) = &self.bar {
            bar.set_position(self.done.min(self.total));
            bar.set_message(format!("{rate:.0} rows/s  {mb:.2} MB/s"));
        } else if self.json && self.last_line.elapsed() >= Duration::from_secs(1) {
            self.last_line = Instant::now();
            let left = self.total.saturating_sub(self.done) as f64;
            println!(
                "{}",
                json!({
                    "type": "progress",
                    "rows": self.done,
                    "total": self.total,
                    "bytes": self.bytes,
                    "rows_per_s": rate,
                    "mb_per_s": mb,
                    "eta_s": if rate > 0.0 { left / rate } else { 0.0 },
                })
            );
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
