//! A decoded `write` line ↔ the store's typed line ([`StoredLine`]).
//!
//! The tap stores the line's fields as they are in the decoder's record (numbers,
//! enums, small structs, value trees; see `store::envelope::line`), without rendering
//! any of it to JSON text. `log --json` renders it back at the edge: the typed line
//! becomes a [`WriteRecord`] again and goes through the very serializer `inspect
//! --json` uses, so both commands print the same field names, order and spelling.

use compact_str::CompactString;
use serde_json::{Map, Value};

use crate::capture::Timestamp;
use crate::decode::reason::WriteReason;
use crate::decode::records::{
    without_raw_values, BatchPlace, Binary, CqlBatchType, LineValue, Lsid, SentW, SentWriteConcern,
    SessionIds, WireOutcome, WriteRecord, GENERIC_SUBTYPE, UUID_SUBTYPE,
};
use crate::store::envelope::line::{
    KeySource, LineBatch, LineBatchType, LineOutcome, LineProto, LineSession, LineTree, LineW,
    LineWriteConcern, Lwt, TimestampSource, WriteLine,
};
use crate::store::{LineValues, Mutation, Payload, StoredLine};

/// The `write` line by reference: the same JSON as `Record::Write`, without cloning
/// the record.
#[derive(serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line<'a> {
    Write(&'a WriteRecord),
}

/// The write line as `inspect --json` prints it (tests and tools; the tap does not
/// call it).
pub fn line_json(rec: &WriteRecord) -> String {
    serde_json::to_string(&Line::Write(rec)).unwrap_or_else(|_| "{}".to_string())
}

/// The line of `rec` as the store keeps it: typed, with the values a decoder kept as
/// bytes left `null` (the store keeps those bytes beside it, `Mutation::line_values`).
pub fn stored_line(rec: &WriteRecord) -> StoredLine {
    match typed(rec) {
        Some(w) => StoredLine::Write(Box::new(w)),
        // A word this code does not know (a decoder grew a new one): the line's tree,
        // so nothing of it is lost. Not reached by any decoder today.
        None => StoredLine::Tree(
            without_raw_values(|| serde_json::to_value(Line::Write(rec)))
                .map_or(LineTree::Null, |v| LineTree::from(&v)),
        ),
    }
}

/// A word of an optional field as its enum; `None` when the word is unknown.
fn word<T>(w: Option<&str>, parse: fn(&str) -> Option<T>) -> Option<Option<T>> {
    match w {
        None => Some(None),
        Some(w) => parse(w).map(Some),
    }
}

fn line_outcome(o: WireOutcome) -> LineOutcome {
    match o {
        WireOutcome::Committed => LineOutcome::Committed,
        WireOutcome::Rejected => LineOutcome::Rejected,
        WireOutcome::InDoubt => LineOutcome::InDoubt,
        WireOutcome::Pending => LineOutcome::Pending,
        WireOutcome::RolledBack => LineOutcome::RolledBack,
        WireOutcome::Unresolved => LineOutcome::Unresolved,
    }
}

fn wire_outcome(o: LineOutcome) -> WireOutcome {
    match o {
        LineOutcome::Committed => WireOutcome::Committed,
        LineOutcome::Rejected => WireOutcome::Rejected,
        LineOutcome::InDoubt => WireOutcome::InDoubt,
        LineOutcome::Pending => WireOutcome::Pending,
        LineOutcome::RolledBack => WireOutcome::RolledBack,
        LineOutcome::Unresolved => WireOutcome::Unresolved,
    }
}

fn typed(rec: &WriteRecord) -> Option<WriteLine> {
    Some(WriteLine {
        flow: rec.flow,
        ts: rec.ts.0,
        proto: LineProto::parse(rec.proto)?,
        namespace: rec.namespace.clone(),
        op: rec.op.clone(),
        key: rec.key.tree(),
        range: rec.range.as_ref().map(LineTree::from),
        values: match rec.values.kept() {
            Some(_) => LineTree::Null,
            None => LineTree::from(&*rec.values),
        },
        timestamp: rec.timestamp,
        timestamp_source: word(rec.timestamp_source, TimestampSource::parse)?,
        ttl: rec.ttl,
        consistency: rec.consistency.clone(),
        serial_consistency: rec.serial_consistency.clone(),
        write_concern: rec.write_concern.as_ref().map(line_write_concern),
        condition: rec.condition.as_ref().map(LineTree::from),
        batch: rec.batch.as_ref().map(line_batch),
        session: rec.session.as_ref().map(line_session),
        request: rec.request,
        outcome: line_outcome(rec.outcome),
        reason: rec.reason.as_ref().map(ToString::to_string),
        table: rec.table.clone(),
        key_source: word(rec.key_source, KeySource::parse)?,
        columns_deleted: rec.columns_deleted.clone(),
        collection_ops: rec.collection_ops.as_ref().map(LineTree::from),
        lwt: word(rec.lwt, Lwt::parse)?,
        prepared: rec.prepared,
        cql: rec.cql.clone(),
        client_timestamp: rec.client_timestamp,
        statement_id: rec.statement_id.clone(),
        statements: rec.statements,
    })
}

/// The store's `batch`: the typed place as it is, the JSON form as the store types it.
fn line_batch(b: &BatchPlace) -> LineBatch {
    match b {
        BatchPlace::Cql {
            flow,
            stream,
            kind,
            index,
            size,
        } => LineBatch::Cql {
            id: BatchPlace::cql_id(*flow, *stream),
            kind: match kind {
                CqlBatchType::Logged => LineBatchType::Logged,
                CqlBatchType::Unlogged => LineBatchType::Unlogged,
                CqlBatchType::Counter => LineBatchType::Counter,
            },
            index: *index,
            size: *size,
        },
        BatchPlace::Mongo {
            command,
            index,
            count,
            ordered,
        } => LineBatch::Mongo {
            command: (*command).to_owned(),
            index: *index,
            count: *count,
            ordered: *ordered,
        },
        BatchPlace::Json(v) => LineBatch::of(v),
    }
}

/// The decoder's `batch` of a stored one: a MongoDB place typed when it names a
/// write command; a CQL one (whose id the store keeps as text) and any other form
/// as the JSON it prints.
fn batch_place(b: &LineBatch) -> BatchPlace {
    match b {
        LineBatch::Mongo {
            command,
            index,
            count,
            ordered,
        } => match BatchPlace::mongo_command(command) {
            Some(command) => BatchPlace::Mongo {
                command,
                index: *index,
                count: *count,
                ordered: *ordered,
            },
            None => BatchPlace::Json(b.to_json()),
        },
        LineBatch::Cql { .. } | LineBatch::Other(_) => BatchPlace::Json(b.to_json()),
    }
}

/// `{"$binary": {"base64", "subType"}}` as a tree.
///
/// Built straight into inline strings: a 16-byte lsid's base64 (24 characters) and
/// every key here take no allocation of their own.
fn binary_tree(bytes: &[u8], subtype: u8) -> LineTree {
    let b = Binary { bytes, subtype };
    let mut base64 = CompactString::with_capacity(b.base64_len());
    b.write_base64(&mut base64);
    let mut sub_type = CompactString::const_new("");
    b.write_subtype_hex(&mut sub_type);
    LineTree::Object(vec![(
        CompactString::const_new("$binary"),
        LineTree::Object(vec![
            (CompactString::const_new("base64"), LineTree::String(base64)),
            (
                CompactString::const_new("subType"),
                LineTree::String(sub_type),
            ),
        ]),
    )])
}

fn lsid_tree(l: &Lsid) -> LineTree {
    match l {
        Lsid::Uuid { id, uid } => {
            let mut fields = vec![(
                CompactString::const_new("id"),
                binary_tree(id, UUID_SUBTYPE),
            )];
            if let Some(uid) = uid {
                fields.push((
                    CompactString::const_new("uid"),
                    binary_tree(uid, GENERIC_SUBTYPE),
                ));
            }
            LineTree::Object(fields)
        }
        Lsid::Json(v) => LineTree::from(v),
    }
}

/// The store's `session`: the typed fields as they are (the lsid as its tree).
fn line_session(s: &SessionIds) -> LineSession {
    match s {
        SessionIds::Fields {
            lsid,
            txn_number,
            autocommit,
            start_transaction,
            stmt_id,
        } => LineSession::Fields {
            lsid: lsid.as_ref().map(lsid_tree),
            txn_number: *txn_number,
            autocommit: *autocommit,
            start_transaction: *start_transaction,
            stmt_id: *stmt_id,
        },
        SessionIds::Json(v) => LineSession::of(v),
    }
}

/// The decoder's `session` of a stored one, as the JSON it prints (`log --json` only
/// prints it).
fn session_ids(s: &LineSession) -> SessionIds {
    SessionIds::Json(s.to_json())
}

/// The store's `write_concern`: the typed fields as they are.
fn line_write_concern(wc: &SentWriteConcern) -> LineWriteConcern {
    match wc {
        SentWriteConcern::Fields { w, j, wtimeout } => LineWriteConcern::Fields {
            w: w.as_ref().map(|w| match w {
                SentW::Members(n) => LineW::Members(*n),
                SentW::Majority => LineW::Tag("majority".to_owned()),
                SentW::Tag(t) => LineW::Tag(t.clone()),
            }),
            j: *j,
            wtimeout: *wtimeout,
        },
        SentWriteConcern::Json(v) => LineWriteConcern::of(v),
    }
}

/// The decoder's `write_concern` of a stored one.
fn sent_write_concern(wc: &LineWriteConcern) -> SentWriteConcern {
    match wc {
        LineWriteConcern::Fields { w, j, wtimeout } => SentWriteConcern::Fields {
            w: w.as_ref().map(|w| match w {
                LineW::Members(n) => SentW::Members(*n),
                LineW::Tag(t) if t == "majority" => SentW::Majority,
                LineW::Tag(t) => SentW::Tag(t.clone()),
            }),
            j: *j,
            wtimeout: *wtimeout,
        },
        LineWriteConcern::Other(t) => SentWriteConcern::Json(Value::from(t)),
    }
}

/// The decoder's record a typed line was made from (its JSON fields; the tracker's
/// extras are not kept).
pub fn record_of(w: &WriteLine) -> WriteRecord {
    WriteRecord {
        flow: w.flow,
        ts: Timestamp(w.ts),
        proto: w.proto.as_str(),
        namespace: w.namespace.clone(),
        op: w.op.clone(),
        key: Value::from(&w.key).into(),
        range: w.range.as_ref().map(Value::from),
        values: LineValue::Json(Value::from(&w.values)),
        timestamp: w.timestamp,
        timestamp_source: w.timestamp_source.map(TimestampSource::as_str),
        ttl: w.ttl,
        consistency: w.consistency.clone(),
        serial_consistency: w.serial_consistency.clone(),
        write_concern: w.write_concern.as_ref().map(sent_write_concern),
        condition: w.condition.as_ref().map(Value::from),
        batch: w.batch.as_ref().map(batch_place),
        session: w.session.as_ref().map(session_ids),
        request: w.request,
        outcome: wire_outcome(w.outcome),
        reason: w.reason.as_deref().map(WriteReason::read),
        table: w.table.clone(),
        key_source: w.key_source.map(KeySource::as_str),
        columns_deleted: w.columns_deleted.clone(),
        collection_ops: w.collection_ops.as_ref().map(Value::from),
        lwt: w.lwt.map(Lwt::as_str),
        prepared: w.prepared,
        cql: w.cql.clone(),
        client_timestamp: w.client_timestamp,
        statement_id: w.statement_id.clone(),
        statements: w.statements,
        extras: Default::default(),
    }
}

/// A stored mutation's `write` line as `inspect --json` printed it: the typed line
/// rendered, with its kept values rendered in place. `None` for a mutation without a
/// line or with one that is not a JSON object (a damaged store).
pub fn write_line(m: &Mutation) -> Option<Map<String, Value>> {
    let mut line = match m.line.as_ref()? {
        StoredLine::Write(w) => match serde_json::to_value(Line::Write(&record_of(w))) {
            Ok(Value::Object(o)) => o,
            _ => return None,
        },
        StoredLine::Oplog {
            namespace,
            op,
            values,
        } => {
            let mut o = Map::new();
            o.insert("type".into(), "write".into());
            o.insert("proto".into(), "mongo".into());
            o.insert("namespace".into(), namespace.clone().into());
            o.insert("op".into(), op.clone().into());
            o.insert(
                "key".into(),
                serde_json::from_str(&m.key).unwrap_or_default(),
            );
            o.insert(
                "values".into(),
                values.as_ref().map_or(Value::Null, Value::from),
            );
            o.insert("source".into(), "oplog".into());
            o
        }
        StoredLine::Tree(t) => match Value::from(t) {
            Value::Object(o) => o,
            _ => return None,
        },
    };
    if let Some(kept) = &m.line_values {
        use crate::decode::records::RawForm;
        let (bytes, form) = match (kept, &m.payload) {
            (LineValues::BsonDocument(b), _) => (b.as_slice(), RawForm::BsonDocument),
            (LineValues::BsonArray(b), _) => (b.as_slice(), RawForm::BsonArray),
            (LineValues::PayloadDocument, Payload::Mongo(op)) => (&op.o[..], RawForm::BsonDocument),
            (LineValues::PayloadDocument, Payload::Cql(_)) => (&[][..], RawForm::BsonDocument),
            (LineValues::CqlValues(b), _) => (b.as_slice(), RawForm::CqlValues),
        };
        // Replacing a key's value keeps its place in the (insertion-ordered) map.
        line.insert(
            "values".into(),
            crate::decode::registry::render_kept(bytes, form),
        );
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_typed_line_renders_as_inspect_printed_it() {
        let rec = WriteRecord {
            flow: 3,
            ts: Timestamp(1_700_000_000_123_456_000),
            proto: "cql",
            namespace: Some("ks.t".into()),
            op: "insert".into(),
            key: json!({"id": 1, "ck": "a"}).into(),
            range: Some(json!({"c": {">=": 2}})),
            values: json!({"v": "x", "f": 1.5, "n": -3}).into(),
            timestamp: Some(17),
            timestamp_source: Some("using"),
            consistency: Some("QUORUM".into()),
            condition: Some(json!({"exists": false})),
            batch: Some(json!({"id": "3:7", "type": "unlogged", "index": 1, "size": 2}).into()),
            request: Some(7),
            outcome: WireOutcome::Committed,
            key_source: Some("schema"),
            columns_deleted: Some(vec![]),
            collection_ops: Some(json!([{"column": "l", "op": "append", "value": [1]}])),
            lwt: Some("if_not_exists"),
            prepared: Some(true),
            cql: Some("INSERT ...".into()),
            ..WriteRecord::default()
        };
        let StoredLine::Write(w) = stored_line(&rec) else {
            panic!("typed")
        };
        assert_eq!(line_json(&record_of(&w)), line_json(&rec));
        let bytes = postcard::to_stdvec(&w).unwrap();
        let back: WriteLine = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, *w);
    }

    #[test]
    fn an_unknown_word_keeps_the_line_as_a_tree() {
        let rec = WriteRecord {
            proto: "cql",
            key_source: Some("guessed"),
            ..WriteRecord::default()
        };
        let StoredLine::Tree(t) = stored_line(&rec) else {
            panic!("a tree")
        };
        assert_eq!(
            serde_json::to_string(&Value::from(&t)).unwrap(),
            line_json(&rec)
        );
    }

    #[test]
    fn typed_fields_are_stored_as_their_json_was() {
        // The store typed these fields from the decoder's JSON before; the decoder's
        // typed values must give the very same stored values (no format change).
        let batches = [
            BatchPlace::Cql {
                flow: 12,
                stream: -2,
                kind: CqlBatchType::Counter,
                index: 1,
                size: 9,
            },
            BatchPlace::Mongo {
                command: "update",
                index: 3,
                count: 4,
                ordered: false,
            },
            BatchPlace::Json(json!({"id": 1, "x": [2]})),
        ];
        for b in &batches {
            let v = serde_json::to_value(b).unwrap();
            assert_eq!(line_batch(b), LineBatch::of(&v), "{v}");
            assert_eq!(
                serde_json::to_string(&batch_place(&line_batch(b))).unwrap(),
                v.to_string()
            );
        }
        let sessions = [
            SessionIds::Fields {
                lsid: Some(Lsid::Uuid {
                    id: [7; 16],
                    uid: Some([0xfe; 32]),
                }),
                txn_number: Some(-4),
                autocommit: Some(false),
                start_transaction: Some(true),
                stmt_id: Some(3),
            },
            SessionIds::Fields {
                lsid: Some(Lsid::Json(json!({"id": 1}))),
                txn_number: None,
                autocommit: None,
                start_transaction: None,
                stmt_id: Some(0),
            },
            SessionIds::Json(json!({"txnNumber": 1.5})),
        ];
        for s in &sessions {
            let v = serde_json::to_value(s).unwrap();
            assert_eq!(line_session(s), LineSession::of(&v), "{v}");
        }
        let concerns = [
            SentWriteConcern::Fields {
                w: Some(SentW::Majority),
                j: Some(true),
                wtimeout: Some(100),
            },
            SentWriteConcern::Fields {
                w: Some(SentW::Members(0)),
                j: None,
                wtimeout: None,
            },
            SentWriteConcern::Fields {
                w: Some(SentW::Tag("dc".into())),
                j: None,
                wtimeout: Some(-1),
            },
            SentWriteConcern::Json(json!({"w": 1, "fsync": true})),
        ];
        for wc in &concerns {
            let v = serde_json::to_value(wc).unwrap();
            assert_eq!(line_write_concern(wc), LineWriteConcern::of(&v), "{v}");
            assert_eq!(
                serde_json::to_string(&sent_write_concern(&line_write_concern(wc))).unwrap(),
                v.to_string()
            );
        }
    }

    mod random {
        //! Random records: the typed line renders every one as `inspect --json`
        //! prints it, survives postcard, and a format-5 store's text of the same line
        //! converts to the same typed line.
        use super::*;
        use proptest::prelude::*;

        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(Value::from),
                "[a-z\\\\\"é✓ ]{0,6}".prop_map(Value::from),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::vec(("[a-z_$]{1,5}", inner), 0..4)
                        .prop_map(|kv| Value::Object(kv.into_iter().collect())),
                ]
            })
        }

        fn word(words: &'static [&'static str]) -> impl Strategy<Value = Option<&'static str>> {
            prop::option::of(prop::sample::select(words))
        }

        fn batch() -> impl Strategy<Value = Value> {
            prop_oneof![
                ("[0-9]{1,3}:[0-9]{1,3}", prop::sample::select(&["logged", "unlogged", "counter"][..]), any::<u32>(), any::<u32>())
                    .prop_map(|(id, t, i, n)| serde_json::json!({"id": id, "type": t, "index": i, "size": n})),
                ("[a-zA-Z]{1,8}", any::<u32>(), any::<u32>(), any::<bool>())
                    .prop_map(|(c, i, n, o)| serde_json::json!({"command": c, "index": i, "count": n, "ordered": o})),
                json(),
            ]
        }

        fn session() -> impl Strategy<Value = Value> {
            prop_oneof![
                (
                    prop::option::of(json()),
                    prop::option::of(any::<i64>()),
                    prop::option::of(any::<bool>()),
                    prop::option::of(any::<bool>()),
                    prop::option::of(any::<i32>())
                )
                    .prop_map(|(l, t, a, s, i)| {
                        let mut m = Map::new();
                        if let Some(l) = l {
                            m.insert("lsid".into(), l);
                        }
                        if let Some(t) = t {
                            m.insert("txnNumber".into(), t.into());
                        }
                        if let Some(a) = a {
                            m.insert("autocommit".into(), a.into());
                        }
                        if let Some(s) = s {
                            m.insert("startTransaction".into(), s.into());
                        }
                        if let Some(i) = i {
                            m.insert("stmtId".into(), i.into());
                        }
                        Value::Object(m)
                    }),
                json(),
            ]
        }

        fn write_concern() -> impl Strategy<Value = Value> {
            prop_oneof![
                (
                    prop_oneof![
                        Just(None),
                        any::<i8>().prop_map(|n| Some(Value::from(n))),
                        Just(Some(Value::from("majority")))
                    ],
                    prop::option::of(any::<bool>()),
                    prop::option::of(0..100_000i64)
                )
                    .prop_map(|(w, j, t)| {
                        let mut m = Map::new();
                        if let Some(w) = w {
                            m.insert("w".into(), w);
                        }
                        if let Some(j) = j {
                            m.insert("j".into(), j.into());
                        }
                        if let Some(t) = t {
                            m.insert("wtimeout".into(), t.into());
                        }
                        Value::Object(m)
                    }),
                json(),
            ]
        }

        fn outcome() -> impl Strategy<Value = WireOutcome> {
            prop::sample::select(
                &[
                    WireOutcome::Committed,
                    WireOutcome::Rejected,
                    WireOutcome::InDoubt,
                    WireOutcome::Pending,
                    WireOutcome::RolledBack,
                    WireOutcome::Unresolved,
                ][..],
            )
        }

        prop_compose! {
            fn scalars()(
                flow in any::<u64>(),
                micros in 0..(1u64 << 52),
                proto in prop::sample::select(&["cql", "mongo"][..]),
                namespace in prop::option::of("[a-z]{1,4}\\.[a-z]{1,4}"),
                op in "[a-zA-Z_]{1,10}",
                timestamp in prop::option::of(any::<i64>()),
                timestamp_source in word(&["using", "default", "server", "paxos_ballot"]),
                ttl in prop::option::of(any::<i64>()),
                consistency in prop::option::of("[A-Z_]{1,8}"),
                serial_consistency in prop::option::of("[A-Z_]{1,8}"),
                request in prop::option::of(any::<i64>()),
                outcome in outcome(),
                reason in prop::option::of("[a-z_: ]{0,12}"),
            ) -> WriteRecord {
                WriteRecord {
                    flow,
                    ts: Timestamp(micros * 1000),
                    proto,
                    namespace,
                    op: op.into(),
                    timestamp,
                    timestamp_source,
                    ttl,
                    consistency: consistency.map(Into::into),
                    serial_consistency: serial_consistency.map(Into::into),
                    request,
                    outcome,
                    reason: reason.as_deref().map(WriteReason::read),
                    ..WriteRecord::default()
                }
            }
        }

        prop_compose! {
            fn record()(
                base in scalars(),
                key in json(),
                range in prop::option::of(json()),
                values in json(),
                write_concern in prop::option::of(write_concern()),
                condition in prop::option::of(json()),
                batch in prop::option::of(batch()),
                session in prop::option::of(session()),
                table in prop::option::of("[a-z]{1,5}"),
                key_source in word(&["schema", "where", "bind_metadata", "unknown"]),
                columns_deleted in prop::option::of(prop::collection::vec("[a-z]{1,4}", 0..3)),
                collection_ops in prop::option::of(json()),
                lwt in word(&["if_not_exists", "if_exists", "if"]),
                prepared in prop::option::of(any::<bool>()),
                cql in prop::option::of("[A-Za-z ?,()]{0,20}"),
                client_timestamp in prop::option::of(any::<i64>()),
                statement_id in prop::option::of("[0-9a-f]{0,8}"),
                statements in prop::option::of(any::<u64>()),
            ) -> WriteRecord {
                WriteRecord {
                    key: key.into(),
                    range,
                    values: values.into(),
                    write_concern: write_concern.map(Into::into),
                    condition,
                    batch: batch.map(Into::into),
                    session: session.map(Into::into),
                    table,
                    key_source,
                    columns_deleted,
                    collection_ops,
                    lwt,
                    prepared,
                    cql: cql.map(Into::into),
                    client_timestamp,
                    statement_id,
                    statements,
                    ..base
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn stored_then_rendered_is_the_inspect_line(rec in record()) {
                let stored = stored_line(&rec);
                let StoredLine::Write(w) = &stored else {
                    panic!("every known word is typed: {stored:?}")
                };
                prop_assert_eq!(line_json(&record_of(w)), line_json(&rec));
                let bytes = postcard::to_stdvec(&stored).unwrap();
                let back: StoredLine = postcard::from_bytes(&bytes).unwrap();
                prop_assert_eq!(&back, &stored);
                // A format-5 store kept this very text and printed it parsed (serde_json's
                // float parsing is not always exact): the converted line is typed and
                // prints what that release printed.
                let text = line_json(&rec);
                let converted = crate::store::legacy_line::typed_line(&text, "{}");
                let StoredLine::Write(c) = &converted else {
                    panic!("a contract line is typed: {converted:?}")
                };
                let printed_before = serde_json::from_str::<Value>(&text).unwrap().to_string();
                prop_assert_eq!(line_json(&record_of(c)), printed_before);
            }
        }
    }
}
