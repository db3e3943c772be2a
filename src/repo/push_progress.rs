//! What `repo push` shows as it goes: a bar on a terminal, `progress` lines with
//! `--json`, nothing from beside a run.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::push::PushReport;

/// A bar on a terminal (mutations, MB/s, ETA); `--json` progress lines otherwise.
pub(super) struct Progress {
    json: bool,
    show: bool,
    bar: Option<ProgressBar>,
}

impl Progress {
    pub(super) fn new(json: bool, show: bool, mutations: u64) -> Progress {
        let bar = (show && !json && std::io::stderr().is_terminal() && mutations > 0).then(|| {
            let bar = ProgressBar::with_draw_target(Some(mutations), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} mutations  {per_sec}  {msg}  eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        Progress { json, show, bar }
    }

    pub(super) fn segment(&mut self, r: &PushReport, started: Instant) {
        let mb_s = r.bytes as f64 / 1e6 / started.elapsed().as_secs_f64().max(1e-6);
        if !self.show {
            return;
        }
        if self.json {
            println!(
                "{}",
                serde_json::json!({
                    "type": "progress",
                    "source": r.source,
                    "segments": r.segments,
                    "mutations": r.mutations,
                    "bytes": r.bytes,
                    "pushed_through": r.pushed_through,
                    "mb_per_s": (mb_s * 100.0).round() / 100.0,
                })
            );
        } else if let Some(bar) = &self.bar {
            bar.set_position(r.mutations);
            bar.set_message(format!("{mb_s:.1} MB/s"));
        }
    }

    pub(super) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
