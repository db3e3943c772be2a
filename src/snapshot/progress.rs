//! Progress of a take: an indicatif bar on a terminal (rows/s, ETA by parts done),
//! or with `--json` one `progress` line per finished part and a `summary` line.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::model::SnapshotInfo;

/// Where progress goes.
pub struct Progress {
    json: bool,
    bar: Option<ProgressBar>,
    started: Instant,
    /// Parts done when this run started (a resume), for the rate and ETA.
    done_at_start: usize,
    rows_this_run: u64,
}

impl Progress {
    /// Progress for a take of `parts` parts, `done` of them already finished.
    pub fn new(json: bool, parts: usize, done: usize) -> Progress {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(parts as u64), ProgressDrawTarget::stderr());
            let style =
                ProgressStyle::with_template("{bar:30} {pos}/{len} parts  {msg}  eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_position(done as u64);
            bar
        });
        Progress {
            json,
            bar,
            started: Instant::now(),
            done_at_start: done,
            rows_this_run: 0,
        }
    }

    /// A part finished with `rows` rows; `info` is the snapshot after it.
    pub fn part_done(&mut self, info: &SnapshotInfo, rows: u64) {
        self.rows_this_run += rows;
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = self.rows_this_run as f64 / secs;
        let done = info.parts_done();
        let this_run = done.saturating_sub(self.done_at_start).max(1) as f64;
        let eta = (info.parts.len() - done) as f64 * secs / this_run;
        if self.json {
            println!(
                "{}",
                json!({
                    "type": "progress",
                    "snapshot": info.id,
                    "parts_done": done,
                    "parts": info.parts.len(),
                    "rows": info.rows(),
                    "rows_per_s": (rate * 10.0).round() / 10.0,
                    "eta_s": (eta * 10.0).round() / 10.0,
                })
            );
        }
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            bar.set_message(format!("{} rows  {:.0} rows/s", info.rows(), rate));
        }
    }

    /// The take ended (finished or stopped early).
    pub fn finish(&self, info: &SnapshotInfo) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let secs = self.started.elapsed().as_secs_f64();
        if self.json {
            println!("{}", summary_json(info, secs));
        } else {
            let orphans = info.orphans_filtered();
            let orphans = if orphans.is_empty() {
                String::new()
            } else {
                let each: Vec<String> = orphans.iter().map(|(ns, n)| format!("{ns} {n}")).collect();
                format!(", orphans filtered: {}", each.join(", "))
            };
            eprintln!(
                "tidemark: snapshot {} of {} ({}): {} namespaces, {} rows, {}/{} parts{orphans}{}",
                info.id,
                info.source,
                info.cluster,
                info.namespaces.len(),
                info.rows(),
                info.parts_done(),
                info.parts.len(),
                if info.finished.is_some() {
                    String::new()
                } else {
                    "; unfinished: continue with --resume".to_string()
                }
            );
        }
    }
}

/// The `summary` line of a take.
pub fn summary_json(info: &SnapshotInfo, seconds: f64) -> serde_json::Value {
    json!({
        "type": "summary",
        "snapshot": info.id,
        "source": info.source,
        "cluster": info.cluster,
        "protocol": info.protocol.as_str(),
        "namespaces": info.namespaces.len(),
        "parts": info.parts.len(),
        "parts_done": info.parts_done(),
        "rows": info.rows(),
        "bytes": info.namespaces.iter().map(|n| n.bytes).sum::<u64>(),
        "finished": info.finished.is_some(),
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "cluster_time": info.cluster_time.map(|t| json!({"t": (t.ts >> 32), "i": (t.ts & 0xffff_ffff)})),
        "orphans_filtered": super::show::orphans_json(info),
    })
}

/// Progress of `snapshot import` while it reads its input files (before anything
/// is stored, so there is no snapshot id yet): a bar by files on a terminal, or with
/// `--json` one `progress` line per file read.
pub struct FileProgress {
    json: bool,
    bar: Option<ProgressBar>,
    started: Instant,
    files: usize,
    done: usize,
    rows: u64,
}

impl FileProgress {
    pub fn new(json: bool, files: usize) -> FileProgress {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(files as u64), ProgressDrawTarget::stderr());
            let style =
                ProgressStyle::with_template("{bar:30} {pos}/{len} files  {msg}  eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        FileProgress {
            json,
            bar,
            started: Instant::now(),
            files,
            done: 0,
            rows: 0,
        }
    }

    /// A file was read, holding `rows` rows or documents.
    pub fn file_done(&mut self, rows: u64) {
        self.done += 1;
        self.rows += rows;
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = self.rows as f64 / secs;
        if self.json {
            println!(
                "{}",
                json!({
                    "type": "progress",
                    "files_done": self.done,
                    "files": self.files,
                    "rows": self.rows,
                    "rows_per_s": (rate * 10.0).round() / 10.0,
                })
            );
        }
        if let Some(bar) = &self.bar {
            bar.set_position(self.done as u64);
            bar.set_message(format!("{} rows read  {:.0} rows/s", self.rows, rate));
        }
    }

    /// Reading is over (or failed): the bar goes away.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
