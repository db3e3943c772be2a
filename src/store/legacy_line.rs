//! The write line of a format-2..5 store (JSON text) → the typed line of format 6.
//!
//! A line becomes typed only when its typed form prints it exactly as the text did
//! (what `log --json` printed from the text: parsed, then printed): its keys are the
//! contract's fields in the contract's order, with the fields that are always printed
//! present, and every value has the type its field has. Anything else — a damaged
//! line, a field this code does not know — is kept as its value tree, which prints as
//! it was; a text that is no JSON at all is kept as a string tree (printed as before:
//! as a line `log` cannot read) and reported in the log.

use serde_json::{Map, Value};

use super::envelope::line::{
    KeySource, LineBatch, LineOutcome, LineProto, LineSession, LineTree, LineWriteConcern, Lwt,
    StoredLine, TimestampSource, WriteLine,
};
use crate::decode::time::{parse_rfc3339, rfc3339};

/// The fields of a `write` line in the order it prints them, and whether each is
/// printed always (else only when set).
const FIELDS: [(&str, bool); 31] = [
    ("type", true),
    ("flow", true),
    ("ts", true),
    ("proto", true),
    ("namespace", true),
    ("op", true),
    ("key", true),
    ("range", false),
    ("values", true),
    ("timestamp", true),
    ("timestamp_source", false),
    ("ttl", true),
    ("consistency", false),
    ("serial_consistency", false),
    ("write_concern", false),
    ("condition", false),
    ("batch", false),
    ("session", false),
    ("request", false),
    ("outcome", true),
    ("reason", true),
    ("table", false),
    ("key_source", false),
    ("columns_deleted", false),
    ("collection_ops", false),
    ("lwt", false),
    ("prepared", false),
    ("cql", false),
    ("client_timestamp", false),
    ("statement_id", false),
    ("statements", false),
];

/// The typed line of a stored line's text; `key` is the mutation's canonical key (an
/// oplog orphan's line prints it).
pub fn typed_line(text: &str, key: &str) -> StoredLine {
    let map: Map<String, Value> = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "a stored write line is no JSON object: kept as text");
            return StoredLine::Tree(LineTree::String(text.into()));
        }
    };
    if let Some(w) = write_line(&map) {
        return StoredLine::Write(Box::new(w));
    }
    if let Some(line) = oplog_line(&map, key) {
        return line;
    }
    StoredLine::Tree(LineTree::from(&Value::Object(map)))
}

/// `Some(None)` for null, `Some(Some(x))` for a value `f` converts, `None` else.
fn nullable<'a, T>(v: &'a Value, f: impl FnOnce(&'a Value) -> Option<T>) -> Option<Option<T>> {
    match v {
        Value::Null => Some(None),
        v => f(v).map(Some),
    }
}

/// A JSON string as the field's text type (`String`, an inline `CompactString`, a
/// shared `Arc<str>`).
fn string<T: for<'a> From<&'a str>>(v: &Value) -> Option<T> {
    v.as_str().map(T::from)
}

fn write_line(map: &Map<String, Value>) -> Option<WriteLine> {
    // The keys: a subsequence of FIELDS in order, holding every always-printed one.
    let mut values: [Option<&Value>; FIELDS.len()] = [None; FIELDS.len()];
    let mut next = 0;
    for (k, v) in map {
        let at = FIELDS[next..].iter().position(|(n, _)| n == k)? + next;
        values[at] = Some(v);
        next = at + 1;
    }
    if FIELDS
        .iter()
        .zip(&values)
        .any(|((_, always), v)| *always && v.is_none())
    {
        return None;
    }
    let field = |name: &str| -> Option<&Value> {
        let i = FIELDS.iter().position(|(n, _)| *n == name)?;
        values[i]
    };
    // An always-printed field's value (present, checked above).
    let must = |name: &str| field(name).unwrap_or(&Value::Null);
    // An optional field: absent is `None`; present, it was `Some` (even `null`).
    fn present<T>(v: Option<&Value>, f: impl FnOnce(&Value) -> Option<T>) -> Option<Option<T>> {
        match v {
            None => Some(None),
            Some(v) => f(v).map(Some),
        }
    }
    if must("type").as_str() != Some("write") {
        return None;
    }
    let ts_text = must("ts").as_str()?;
    let ts = parse_rfc3339(ts_text)?;
    if rfc3339(ts) != ts_text {
        return None;
    }
    Some(WriteLine {
        flow: must("flow").as_u64()?,
        ts: ts.0,
        proto: LineProto::parse(must("proto").as_str()?)?,
        namespace: nullable(must("namespace"), string)?,
        op: string(must("op"))?,
        key: LineTree::from(must("key")),
        range: present(field("range"), |v| Some(LineTree::from(v)))?,
        values: LineTree::from(must("values")),
        timestamp: nullable(must("timestamp"), Value::as_i64)?,
        timestamp_source: present(field("timestamp_source"), |v| {
            TimestampSource::parse(v.as_str()?)
        })?,
        ttl: nullable(must("ttl"), Value::as_i64)?,
        consistency: present(field("consistency"), string)?,
        serial_consistency: present(field("serial_consistency"), string)?,
        write_concern: present(field("write_concern"), |v| Some(LineWriteConcern::of(v)))?,
        condition: present(field("condition"), |v| Some(LineTree::from(v)))?,
        batch: present(field("batch"), |v| Some(LineBatch::of(v)))?,
        session: present(field("session"), |v| Some(LineSession::of(v)))?,
        request: present(field("request"), Value::as_i64)?,
        outcome: LineOutcome::parse(must("outcome").as_str()?)?,
        reason: nullable(must("reason"), string)?,
        table: present(field("table"), string)?,
        key_source: present(field("key_source"), |v| KeySource::parse(v.as_str()?))?,
        columns_deleted: present(field("columns_deleted"), |v| {
            v.as_array()?.iter().map(string).collect()
        })?,
        collection_ops: present(field("collection_ops"), |v| Some(LineTree::from(v)))?,
        lwt: present(field("lwt"), |v| Lwt::parse(v.as_str()?))?,
        prepared: present(field("prepared"), Value::as_bool)?,
        cql: present(field("cql"), string)?,
        client_timestamp: present(field("client_timestamp"), Value::as_i64)?,
        statement_id: present(field("statement_id"), string)?,
        statements: present(field("statements"), Value::as_u64)?,
    })
}

/// The line the tracker wrote for an oplog entry no client write matched, when its
/// key is the mutation's own.
fn oplog_line(map: &Map<String, Value>, key: &str) -> Option<StoredLine> {
    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
    if keys
        != [
            "type",
            "proto",
            "namespace",
            "op",
            "key",
            "values",
            "source",
        ]
    {
        return None;
    }
    let text = |k: &str| map.get(k).and_then(Value::as_str);
    if text("type") != Some("write") || text("proto") != Some("mongo") {
        return None;
    }
    if text("source") != Some("oplog") {
        return None;
    }
    let own_key: Value = serde_json::from_str(key).unwrap_or_default();
    if serde_json::to_string(&map["key"]).ok()? != serde_json::to_string(&own_key).ok()? {
        return None;
    }
    Some(StoredLine::Oplog {
        namespace: text("namespace")?.to_owned(),
        op: text("op")?.to_owned(),
        values: Some(LineTree::from(&map["values"])),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_in_the_contract_order_is_typed_and_anything_else_kept_as_a_tree() {
        let line = r#"{"type":"write","flow":1,"ts":"2026-11-24T18:00:07.797660Z","proto":"cql","namespace":"tm.events","op":"insert","key":{"user":"dave","seq":1},"values":null,"timestamp":1795543207797535,"timestamp_source":"default","ttl":null,"consistency":"QUORUM","batch":{"id":"1:43","type":"logged","index":0,"size":3},"request":43,"outcome":"committed","reason":null,"key_source":"schema","columns_deleted":[],"collection_ops":[],"prepared":true,"cql":"INSERT INTO tm.events (user, seq) VALUES (?, ?)","client_timestamp":1795543207797535}"#;
        let StoredLine::Write(w) = typed_line(line, "{}") else {
            panic!("typed")
        };
        assert_eq!(w.ts % 1000, 0);
        assert!(matches!(w.batch, Some(LineBatch::Cql { .. })));
        assert_eq!(w.key_source, Some(KeySource::Schema));

        // Two fields swapped, an unknown field, a float timestamp: trees.
        for odd in [
            line.replace(
                r#""flow":1,"ts":"2026-11-24T18:00:07.797660Z""#,
                r#""ts":"2026-11-24T18:00:07.797660Z","flow":1"#,
            ),
            line.replace(r#""request":43"#, r#""request":43,"extra":1"#),
            line.replace(r#""timestamp":1795543207797535,"#, r#""timestamp":1.5,"#),
        ] {
            let StoredLine::Tree(t) = typed_line(&odd, "{}") else {
                panic!("a tree: {odd}")
            };
            let v: Value = serde_json::from_str(&odd).unwrap();
            assert_eq!(
                serde_json::to_string(&Value::from(&t)).unwrap(),
                serde_json::to_string(&v).unwrap()
            );
        }
        assert_eq!(
            typed_line("not json", "{}"),
            StoredLine::Tree(LineTree::String("not json".into()))
        );
    }

    #[test]
    fn an_oplog_line_is_typed_when_its_key_is_the_mutations() {
        let line = r#"{"type":"write","proto":"mongo","namespace":"db.c","op":"insert","key":{"_id":1},"values":{"_id":1,"a":2},"source":"oplog"}"#;
        assert!(matches!(
            typed_line(line, r#"{"_id":1}"#),
            StoredLine::Oplog { .. }
        ));
        assert!(matches!(
            typed_line(line, r#"{"_id":2}"#),
            StoredLine::Tree(_)
        ));
    }
}
