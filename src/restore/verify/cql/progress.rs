//! Progress of a verify: an indicatif bar on a terminal (rows read from the target,
//! rows/s, ETA against the version's row count), or with `--json` one `progress`
//! line per namespace compared (the final `verify` line is `print::verify`'s).

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::restore::VerifyReport;

pub struct Progress {
    json: bool,
    bar: Option<ProgressBar>,
    started: Instant,
    rows: u64,
}

impl Progress {
    /// Progress over a version of `total` rows.
    pub fn new(json: bool, total: u64) -> Progress {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{bar:30} {pos}/{len} rows  {per_sec}  eta {eta}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Progress {
            json,
            bar,
            started: Instant::now(),
            rows: 0,
        }
    }

    /// `n` more rows read.
    pub fn rows(&mut self, n: u64) {
        self.rows += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    /// A namespace is compared; `report` holds the counts so far.
    pub fn namespace_done(&mut self, namespace: &str, report: &VerifyReport) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        if self.json {
            println!(
                "{}",
                json!({
                    "type": "progress",
                    "namespace": namespace,
                    "rows": self.rows,
                    "rows_per_s": ((self.rows as f64 / secs) * 10.0).round() / 10.0,
                    "ranges": report.ranges,
                    "ranges_unequal": report.ranges_unequal,
                    "different": report.different,
                })
            );
        }
        if let Some(bar) = &self.bar {
            bar.set_message(namespace.to_string());
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
