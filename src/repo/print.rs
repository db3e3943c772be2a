//! What the repository commands print: a few lines of text, or with `--json` one
//! object per line (`repo_push`, `repo_source`, `repo_problem`, `repo_verify`).

use super::list::SourceLine;
use super::prune::PruneReport;
use super::pull::PullReport;
use super::push::PushReport;
use super::status::RepoStatus;
use super::verify::VerifyReport;

fn json_line<T: serde::Serialize>(v: &T) {
    match serde_json::to_string(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("tidemark: encoding the report: {e}"),
    }
}

pub fn push(r: &PushReport, json: bool) {
    if json {
        return json_line(r);
    }
    println!(
        "pushed {} segments ({} mutations, {:.1} MB) of source {} in {:.1} s ({:.1} MB/s); the repository holds its log through seq {}",
        r.segments,
        r.mutations,
        r.bytes as f64 / 1e6,
        r.source,
        r.seconds,
        r.mb_per_s,
        r.pushed_through
    );
    if let Some(d) = &r.dropped {
        println!(
            "dropped {} log entries locally; the local log starts at seq {} (the data file keeps its size: LMDB reuses the freed pages)",
            d.entries, d.log_start
        );
    }
}

pub fn list(sources: &[SourceLine], json: bool) {
    if json {
        sources.iter().for_each(json_line);
        return;
    }
    if sources.is_empty() {
        println!("no sources");
        return;
    }
    println!(
        "{:<32} {:>8} {:>12} {:>12} {:>10}  {:<30}  tidemark",
        "source", "segments", "mutations", "seqs to", "MB", "commit times"
    );
    for s in sources {
        println!(
            "{:<32} {:>8} {:>12} {:>12} {:>10.1}  {} … {}  {}{}",
            s.source,
            s.segments,
            s.mutations,
            s.last_seq,
            s.bytes as f64 / 1e6,
            s.first_commit_time.as_deref().unwrap_or("-"),
            s.last_commit_time.as_deref().unwrap_or("-"),
            s.tidemark.as_deref().unwrap_or("-"),
            match (s.unfinished, s.gaps) {
                (0, 0) => String::new(),
                (u, g) => format!("  ({u} unfinished uploads, {g} capture gaps)"),
            }
        );
    }
}

pub fn verify(r: &VerifyReport, json: bool) {
    if json {
        r.problems.iter().for_each(json_line);
        let mut summary = r.clone();
        summary.problems.clear();
        return json_line(&serde_json::json!({
            "type": "repo_verify",
            "repo": summary.repo,
            "sources": summary.sources,
            "segments": summary.segments,
            "mutations": summary.mutations,
            "bytes": summary.bytes,
            "problems": r.problems.len(),
            "unfinished": summary.unfinished,
            "sealed": summary.sealed,
        }));
    }
    for p in &r.problems {
        println!("PROBLEM {} {}: {}", p.source, p.object, p.problem);
    }
    println!(
        "{}: {} sources, {} segments, {} mutations, {:.1} MB read; {} problems{}",
        r.repo,
        r.sources,
        r.segments,
        r.mutations,
        r.bytes as f64 / 1e6,
        r.problems.len(),
        if r.unfinished > 0 {
            format!(
                ", {} unfinished uploads (no manifest; not data)",
                r.unfinished
            )
        } else {
            String::new()
        }
    );
}

pub fn pull(r: &PullReport, json: bool) {
    if json {
        return json_line(r);
    }
    eprintln!(
        "tidemark: merged {} mutations ({} duplicates dropped, {} snapshots) from {} sources into {}; the cluster's tidemark is {} (held by {})",
        r.merged,
        r.duplicates,
        r.snapshots,
        r.sources.len(),
        r.store,
        crate::decode::time::rfc3339(crate::capture::Timestamp(r.tidemark)),
        r.held_by.join(", ")
    );
}

pub fn status(s: &RepoStatus, json: bool) {
    if json {
        return json_line(s);
    }
    println!("repository   {}", s.repo);
    println!("tidemark     {}", s.tidemark.as_deref().unwrap_or("none"));
    for src in &s.sources {
        println!(
            "  {:<32} seqs to {:<10} tidemark {:<30} shipped {}{}",
            src.source,
            src.last_seq,
            src.tidemark.as_deref().unwrap_or("-"),
            src.last_shipped.as_deref().unwrap_or("-"),
            src.note
                .as_deref()
                .map(|n| format!("  <- {n}"))
                .unwrap_or_default()
        );
    }
}

pub fn prune(r: &PruneReport, json: bool) {
    if json {
        return json_line(r);
    }
    let verb = if r.dry_run { "would delete" } else { "deleted" };
    println!(
        "{verb} {} segments ({} mutations) and {} snapshots, {:.1} MB; the log is kept from {}",
        r.segments_deleted,
        r.mutations_deleted,
        r.snapshots_deleted,
        r.bytes_freed as f64 / 1e6,
        if r.log_needed_from == 0 {
            "its start".to_string()
        } else {
            crate::decode::time::rfc3339(crate::capture::Timestamp(r.log_needed_from))
        }
    );
    for (protocol, base) in &r.bases {
        println!("  {protocol}: oldest snapshot kept {base}");
    }
    for why in &r.kept_because {
        println!("  kept: {why}");
    }
}
