//! Progress of a restore: an indicatif bar on a terminal (documents, docs/s, MB/s,
//! ETA from the version's document count), or with `--json` a `progress` line at
//! most once a second.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

pub struct Progress {
    json: bool,
    bar: Option<ProgressBar>,
    version: String,
    started: Instant,
    last_line: Option<Instant>,
    total: u64,
    /// Documents already done when this run started (a resume).
    done_at_start: u64,
}

impl Progress {
    pub fn new(json: bool, version: &str, total: u64, done_at_start: u64) -> Progress {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{bar:30} {pos}/{len} docs  {msg}  eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_position(done_at_start);
            bar
        });
        Progress {
            json,
            bar,
            version: version.to_string(),
            started: Instant::now(),
            last_line: None,
            total,
            done_at_start,
        }
    }

    /// `done` documents handled so far (all runs), `bytes` written in this run.
    pub fn update(&mut self, done: u64, bytes: u64) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let this_run = done.saturating_sub(self.done_at_start);
        let docs_per_s = this_run as f64 / secs;
        let mb_per_s = bytes as f64 / 1e6 / secs;
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(format!("{docs_per_s:.0} docs/s  {mb_per_s:.2} MB/s"));
        }
        if self.json
            && self
                .last_line
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.last_line = Some(Instant::now());
            let eta = if docs_per_s > 0.0 {
                self.total.saturating_sub(done) as f64 / docs_per_s
            } else {
                0.0
            };
            println!(
                "{}",
                json!({
                    "type": "progress",
                    "version": self.version,
                    "docs_done": done,
                    "docs": self.total,
                    "docs_per_s": (docs_per_s * 10.0).round() / 10.0,
                    "mb_per_s": (mb_per_s * 1000.0).round() / 1000.0,
                    "eta_s": (eta * 10.0).round() / 10.0,
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
