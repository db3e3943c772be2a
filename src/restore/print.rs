//! The last words of `restore` and `verify`: a few lines for people, one JSON object
//! (`"type": "restore"` / `"verify"`) for programs.

use super::{RestoreReport, VerifyReport};

/// Prints a restore's report (stdout).
pub fn restore(r: &RestoreReport, json: bool) {
    if json {
        let mut v = serde_json::to_value(r).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("type".into(), "restore".into());
            let ns: serde_json::Map<String, serde_json::Value> = r
                .namespaces
                .iter()
                .map(|(n, c)| (n.clone(), serde_json::to_value(c).unwrap_or_default()))
                .collect();
            o.insert("namespaces".into(), ns.into());
        }
        println!("{v}");
        return;
    }
    let verb = if r.dry_run {
        "would restore"
    } else {
        "restored"
    };
    if r.dry_run {
        for s in &r.schema {
            println!("schema: {s}");
        }
    }
    for (ns, c) in &r.namespaces {
        println!(
            "{ns}: {} rows written, {} deletions, {} skipped, {} failed",
            c.written, c.deletions, c.skipped, c.failed
        );
    }
    let t = &r.total;
    println!(
        "{verb} version {} to {}: {} rows, {} deletions, {} skipped as older than the target's, {} failed, {:.1} MB in {:.1} s",
        r.version,
        r.target,
        t.written,
        t.deletions,
        t.skipped,
        t.failed,
        t.bytes as f64 / 1e6,
        r.seconds
    );
    for e in &r.errors {
        println!("error: {e}");
    }
}

/// Prints what verify found (stdout).
pub fn verify(r: &VerifyReport, json: bool) {
    if json {
        let mut v = serde_json::to_value(r).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("type".into(), "verify".into());
            o.insert("equal".into(), r.equal().into());
        }
        println!("{v}");
        return;
    }
    for d in &r.differences {
        println!("{} {} {}: {}", d.kind, d.namespace, d.key, d.detail);
    }
    if r.equal() {
        println!(
            "equal: version {} and {} ({} rows, {} ranges compared, {:.1} s)",
            r.version, r.target, r.rows, r.ranges, r.seconds
        );
    } else {
        println!(
            "different: version {} and {}: {} differences in {} of {} ranges ({} rows, {:.1} s)",
            r.version, r.target, r.different, r.ranges_unequal, r.ranges, r.rows, r.seconds
        );
    }
}
