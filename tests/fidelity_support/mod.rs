//! Comparison helpers of `tests/realdb_fidelity.rs`: what of two servers' answers is
//! compared (and what is server-private), how differences are named, and the list of
//! known ones ([`known::KNOWN`]).

pub mod known;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use known::KNOWN;

/// The differences one test found, by step (or step + aspect).
pub struct Diffs {
    test: &'static str,
    found: BTreeMap<String, String>,
}

impl Diffs {
    pub fn new(test: &'static str) -> Diffs {
        Diffs {
            test,
            found: BTreeMap::new(),
        }
    }

    pub fn check(&mut self, what: &str, real: &Value, ours: &Value) {
        if real != ours {
            self.found.insert(
                what.to_string(),
                format!("cassandra: {real}\n    testbed:   {ours}"),
            );
        }
    }

    /// Compares one step's answers, aspect by aspect so that one cause is one entry:
    /// warnings apart; errors by code and body fields, their message apart; rows by
    /// metadata and by cells; prepared results by id length, bind metadata and result
    /// metadata. Paging-state bytes (only their presence) and prepared ids (only their
    /// length) are server-private.
    pub fn step(&mut self, name: &str, real: &Value, ours: &Value) {
        let (mut r, mut o) = (observable(real), observable(ours));
        let (rw, ow) = (take(&mut r, "warnings"), take(&mut o, "warnings"));
        self.check(&format!("{name} warnings"), &rw, &ow);
        let both_are = |kind: &str| r["kind"] == kind && o["kind"] == kind;
        if both_are("error") {
            let (rm, om) = (take(&mut r, "message"), take(&mut o, "message"));
            self.check(name, &r, &o);
            self.check(&format!("{name} message"), &rm, &om);
        } else if both_are("rows") {
            self.check(&format!("{name} metadata"), &r["meta"], &o["meta"]);
            self.check(&format!("{name} rows"), &r["rows"], &o["rows"]);
        } else if both_are("prepared") {
            self.check(&format!("{name} id"), &r["id"], &o["id"]);
            let binds = |v: &Value| json!([v["bind_flags"], v["pk_indexes"], v["binds"]]);
            self.check(&format!("{name} binds"), &binds(&r), &binds(&o));
            self.check(
                &format!("{name} result metadata"),
                &r["result"],
                &o["result"],
            );
        } else {
            self.check(name, &r, &o);
        }
    }

    /// Every step not named `setup:` compared with [`Diffs::step`].
    pub fn all(&mut self, real: &BTreeMap<String, Value>, ours: &BTreeMap<String, Value>) {
        for (name, r) in real {
            if !name.starts_with("setup:") {
                self.step(name, r, &ours[name]);
            }
        }
    }

    /// The differences found are exactly the known ones of this test.
    pub fn finish(self) {
        let known: BTreeSet<&str> = KNOWN
            .iter()
            .filter(|k| k.0 == self.test)
            .map(|k| k.1)
            .collect();
        let found: BTreeSet<&str> = self.found.keys().map(String::as_str).collect();
        let new: Vec<String> = found
            .difference(&known)
            .map(|n| format!("  {n}:\n    {}", self.found[*n]))
            .collect();
        let fixed: Vec<&&str> = known.difference(&found).collect();
        assert!(
            new.is_empty() && fixed.is_empty(),
            "{}: new differences (fix the testbed or add them to KNOWN and the README):\n{}\n\
             known differences no longer seen (take them off KNOWN and the README): {fixed:?}",
            self.test,
            new.join("\n")
        );
    }
}

/// Removes and returns `key` of an object (null when absent).
pub fn take(v: &mut Value, key: &str) -> Value {
    v.as_object_mut()
        .and_then(|o| o.remove(key))
        .unwrap_or_default()
}

/// An answer without what may legitimately differ between servers: the step name,
/// paging-state bytes and prepared-statement ids (kept as presence / length, and
/// masked where an Unprepared message quotes one).
pub fn observable(v: &Value) -> Value {
    let mut v = v.clone();
    let o = v.as_object_mut().unwrap();
    o.remove("step");
    // An Unprepared message names the (server-private) id the error carries.
    if let Some(id) = o.get("id").and_then(Value::as_str).map(str::to_string) {
        if let Some(m) = o.get("message").and_then(Value::as_str).map(str::to_string) {
            o.insert("message".into(), json!(m.replace(&id, "<id>")));
        }
    }
    let length = |o: &mut serde_json::Map<String, Value>, key: &str| {
        if let Some(id) = o.get(key).and_then(Value::as_str) {
            let len = id.len() / 2;
            o.insert(key.into(), json!(format!("{len} bytes")));
        }
    };
    length(o, "id");
    length(o, "result_metadata_id");
    for meta in ["meta", "result"] {
        if let Some(m) = o.get_mut(meta).and_then(Value::as_object_mut) {
            if m.contains_key("paging_state") {
                m.insert("paging_state".into(), json!("present"));
            }
            length(m, "new_metadata_id");
        }
    }
    v
}

/// Rounds a remaining TTL (seconds, big-endian int) to the TTL that was set: the two
/// servers are asked at different moments, so the remaining seconds may differ by the
/// time in between (bounded by the 100 s slack, far more than a run takes).
pub fn ttl_set(hex: &str) -> Value {
    let n = i64::from_str_radix(hex, 16).unwrap();
    json!((n + 99) / 100 * 100)
}

/// Normalises the TTL cells of a WRITETIME/TTL answer: `int` cells and the elements
/// of `list<int>` cells (5.0 answers a collection's TTL element by element).
pub fn ttl_rounded(v: &Value) -> Value {
    let mut v = v.clone();
    let cols: Vec<(String, String)> = v["meta"]["columns"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    if let Some(rows) = v.get_mut("rows").and_then(Value::as_array_mut) {
        for row in rows {
            for (i, (name, ty)) in cols.iter().enumerate() {
                let Some(hex) = row[i].as_str().map(str::to_string) else {
                    continue;
                };
                if !name.starts_with("ttl(") {
                    continue;
                }
                row[i] = if ty == "int" {
                    ttl_set(&hex)
                } else if ty == "list<int>" {
                    // [int count] then [int len][int value] per element.
                    let n = usize::from_str_radix(&hex[..8], 16).unwrap();
                    json!((0..n)
                        .map(|e| ttl_set(&hex[8 + e * 16 + 8..8 + e * 16 + 16]))
                        .collect::<Vec<_>>())
                } else {
                    json!(hex)
                };
            }
        }
    }
    v
}
