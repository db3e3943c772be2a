//! A command's `session` and `write_concern` fields, typed from its raw BSON
//! (`decode::records::{SessionIds, SentWriteConcern}`), printed as the relaxed
//! Extended JSON the line always carried. A field the typed form cannot print exactly
//! as sent keeps its JSON ([`values`]), so the line never changes.

use serde_json::{Map, Value};
use tidemark_mongo::bson::{RawBsonRef, RawDocument};

use super::values;
use crate::decode::records::{
    Lsid, SentW, SentWriteConcern, SessionIds, GENERIC_SUBTYPE, UUID_SUBTYPE,
};

/// The generic fields of a command body a `write` line carries, found in one pass
/// over the body (a `get` per field scanned it once per field); the first occurrence
/// of each, as `RawDocument::get` finds it.
#[derive(Default)]
pub struct Generic<'a> {
    lsid: Option<RawBsonRef<'a>>,
    txn_number: Option<RawBsonRef<'a>>,
    autocommit: Option<RawBsonRef<'a>>,
    start_transaction: Option<RawBsonRef<'a>>,
    stmt_id: Option<RawBsonRef<'a>>,
    stmt_ids: Option<RawBsonRef<'a>>,
    write_concern: Option<RawBsonRef<'a>>,
    /// `shardVersion` or `databaseVersion` is present (see [`Generic::routed`]).
    routed: bool,
}

impl<'a> Generic<'a> {
    /// Reads the fields from `body`. An element that cannot be read ends the scan,
    /// as it ends a `get`.
    pub fn scan(body: &'a RawDocument) -> Generic<'a> {
        let mut g = Generic::default();
        for el in body.iter() {
            let Ok((k, v)) = el else { break };
            let slot = match k.as_str() {
                "lsid" => &mut g.lsid,
                "txnNumber" => &mut g.txn_number,
                "autocommit" => &mut g.autocommit,
                "startTransaction" => &mut g.start_transaction,
                "stmtId" => &mut g.stmt_id,
                "stmtIds" => &mut g.stmt_ids,
                "writeConcern" => &mut g.write_concern,
                "shardVersion" | "databaseVersion" => {
                    g.routed = true;
                    continue;
                }
                _ => continue,
            };
            slot.get_or_insert(v);
        }
        g
    }

    /// The command names the routing table version it was routed with: a router
    /// sent it to a shard.
    pub fn routed(&self) -> bool {
        self.routed
    }

    /// Whether the command lists one `stmtId` per statement (`stmtIds`).
    pub fn per_statement_ids(&self) -> bool {
        matches!(self.stmt_ids, Some(RawBsonRef::Array(_)))
    }

    /// `writeConcern`, when it is a document.
    pub fn write_concern(&self) -> Option<SentWriteConcern> {
        match self.write_concern {
            Some(RawBsonRef::Document(d)) => Some(write_concern(d)),
            _ => None,
        }
    }

    /// `session` of statement `index` (see [`session`]).
    pub fn session(&self, index: Option<usize>) -> Option<SessionIds> {
        let stmt_id = self.stmt_id.or_else(|| match (self.stmt_ids, index) {
            (Some(RawBsonRef::Array(ids)), Some(i)) => ids.into_iter().nth(i)?.ok(),
            _ => None,
        });
        session_of(
            [
                self.lsid,
                self.txn_number,
                self.autocommit,
                self.start_transaction,
            ],
            stmt_id,
        )
    }
}

/// An integer the line prints as a plain JSON integer (BSON int32 or int64).
fn int(v: RawBsonRef<'_>) -> Option<i64> {
    match v {
        RawBsonRef::Int32(i) => Some(i64::from(i)),
        RawBsonRef::Int64(i) => Some(i),
        _ => None,
    }
}

fn boolean(v: RawBsonRef<'_>) -> Option<bool> {
    match v {
        RawBsonRef::Boolean(b) => Some(b),
        _ => None,
    }
}

fn w(v: RawBsonRef<'_>) -> Option<SentW> {
    match v {
        RawBsonRef::String("majority") => Some(SentW::Majority),
        RawBsonRef::String(s) => Some(SentW::Tag(s.to_owned())),
        other => int(other).map(SentW::Members),
    }
}

/// A `writeConcern` document: typed when it holds only `w`, `j`, `wtimeout`, in that
/// order, once each, of the types the typed form prints alike.
pub fn write_concern(d: &RawDocument) -> SentWriteConcern {
    typed_concern(d).unwrap_or_else(|| SentWriteConcern::Json(values::doc(d)))
}

fn typed_concern(d: &RawDocument) -> Option<SentWriteConcern> {
    const ORDER: [&str; 3] = ["w", "j", "wtimeout"];
    let (mut wv, mut j, mut wtimeout) = (None, None, None);
    let mut next = 0;
    for el in d.iter() {
        let (k, v) = el.ok()?;
        let at = ORDER[next..].iter().position(|n| *n == k.as_str())? + next;
        match at {
            0 => wv = Some(w(v)?),
            1 => j = Some(boolean(v)?),
            _ => wtimeout = Some(int(v)?),
        }
        next = at + 1;
    }
    Some(SentWriteConcern::Fields { w: wv, j, wtimeout })
}

/// The write concern a `getlasterror` states: its `w`, `j`, `fsync` and `wtimeout`
/// fields, in that order (typed unless it has `fsync` or a type the typed form does
/// not print alike).
pub fn gle_write_concern(body: &RawDocument) -> SentWriteConcern {
    let get = |k: &str| match body.get(k) {
        Ok(Some(v)) => Some(v),
        _ => None,
    };
    let fields = ["w", "j", "fsync", "wtimeout"].map(get);
    let typed = || -> Option<SentWriteConcern> {
        if fields[2].is_some() {
            return None;
        }
        Some(SentWriteConcern::Fields {
            w: fields[0].map(w).map_or(Some(None), |w| w.map(Some))?,
            j: fields[1].map(boolean).map_or(Some(None), |j| j.map(Some))?,
            wtimeout: fields[3].map(int).map_or(Some(None), |t| t.map(Some))?,
        })
    };
    typed().unwrap_or_else(|| {
        let mut m = Map::new();
        for (k, v) in ["w", "j", "fsync", "wtimeout"].into_iter().zip(fields) {
            if let Some(v) = v {
                m.insert(k.to_owned(), values::value(v));
            }
        }
        SentWriteConcern::Json(Value::Object(m))
    })
}

/// `lsid` (relaxed Extended JSON), `txnNumber`, `autocommit`, `startTransaction` and
/// `stmtId` (the command's, else `stmtIds[index]`), as far as the command carries
/// them; `None` when it carries none.
pub fn session(body: &RawDocument, index: Option<usize>) -> Option<SessionIds> {
    Generic::scan(body).session(index)
}

/// `session` of the values of `lsid`, `txnNumber`, `autocommit`, `startTransaction`
/// and `stmtId`.
fn session_of(
    fields: [Option<RawBsonRef<'_>>; 4],
    stmt_id: Option<RawBsonRef<'_>>,
) -> Option<SessionIds> {
    if fields.iter().all(Option::is_none) && stmt_id.is_none() {
        return None;
    }
    let typed = || -> Option<SessionIds> {
        Some(SessionIds::Fields {
            lsid: fields[0].map(lsid),
            txn_number: fields[1].map(int).map_or(Some(None), |t| t.map(Some))?,
            autocommit: fields[2].map(boolean).map_or(Some(None), |a| a.map(Some))?,
            start_transaction: fields[3].map(boolean).map_or(Some(None), |a| a.map(Some))?,
            stmt_id: stmt_id.map(int).map_or(Some(None), |i| i.map(Some))?,
        })
    };
    Some(typed().unwrap_or_else(|| {
        let mut m = Map::new();
        let names = ["lsid", "txnNumber", "autocommit", "startTransaction"];
        for (k, v) in names.into_iter().zip(fields) {
            if let Some(v) = v {
                m.insert(k.to_owned(), values::value(v));
            }
        }
        if let Some(id) = stmt_id {
            m.insert("stmtId".to_owned(), values::value(id));
        }
        SessionIds::Json(Value::Object(m))
    }))
}

/// An `lsid`: typed when it is `{id: UUID}` or `{id: UUID, uid: 32 bytes}`.
fn lsid(v: RawBsonRef<'_>) -> Lsid {
    let typed = || -> Option<Lsid> {
        let RawBsonRef::Document(d) = v else {
            return None;
        };
        let mut it = d.iter();
        let (k, id) = it.next()?.ok()?;
        let id = match (k.as_str(), id) {
            ("id", RawBsonRef::Binary(b)) if u8::from(b.subtype) == UUID_SUBTYPE => {
                <[u8; 16]>::try_from(b.bytes).ok()?
            }
            _ => return None,
        };
        let uid = match it.next() {
            None => None,
            Some(el) => match el.ok()? {
                (k, RawBsonRef::Binary(b))
                    if k.as_str() == "uid" && u8::from(b.subtype) == GENERIC_SUBTYPE =>
                {
                    Some(<[u8; 32]>::try_from(b.bytes).ok()?)
                }
                _ => return None,
            },
        };
        it.next().is_none().then_some(Lsid::Uuid { id, uid })
    };
    typed().unwrap_or_else(|| Lsid::Json(values::value(v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_mongo::bson::{self, rawdoc, spec::BinarySubtype, Binary};

    /// What the decoder built before the fields were typed (the reference).
    fn old_session(body: &RawDocument, index: Option<usize>) -> Option<Value> {
        let mut m = Map::new();
        for k in ["lsid", "txnNumber", "autocommit", "startTransaction"] {
            if let Ok(Some(v)) = body.get(k) {
                m.insert(k.to_owned(), values::value(v));
            }
        }
        let stmt_id = match body.get("stmtId") {
            Ok(Some(v)) => Some(values::value(v)),
            _ => match (body.get_array("stmtIds"), index) {
                (Ok(ids), Some(i)) => ids
                    .into_iter()
                    .nth(i)
                    .and_then(|v| v.ok())
                    .map(values::value),
                _ => None,
            },
        };
        if let Some(id) = stmt_id {
            m.insert("stmtId".to_owned(), id);
        }
        (!m.is_empty()).then_some(Value::Object(m))
    }

    fn old_gle(body: &RawDocument) -> Value {
        let mut m = Map::new();
        for k in ["w", "j", "fsync", "wtimeout"] {
            if let Ok(Some(v)) = body.get(k) {
                m.insert(k.to_owned(), values::value(v));
            }
        }
        Value::Object(m)
    }

    fn text<T: serde::Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap()
    }

    fn uuid(n: u8) -> Binary {
        Binary {
            subtype: BinarySubtype::Uuid,
            bytes: (0..16u8)
                .map(|i| i.wrapping_mul(17).wrapping_add(n))
                .collect(),
        }
    }

    fn uid() -> Binary {
        Binary {
            subtype: BinarySubtype::Generic,
            bytes: (0..32).collect(),
        }
    }

    #[test]
    fn sessions_print_as_before_typed_or_not() {
        let bodies = [
            rawdoc! {"insert": "c", "lsid": {"id": uuid(1)}, "txnNumber": 7i64, "stmtId": 2i32},
            rawdoc! {"insert": "c", "lsid": {"id": uuid(2), "uid": uid()}, "autocommit": false,
            "startTransaction": true, "txnNumber": 1i64},
            rawdoc! {"insert": "c", "lsid": {"id": uuid(3)}, "stmtIds": [4i32, 5i32]},
            rawdoc! {"insert": "c"},
            // Forms the typed fields do not hold: kept as JSON.
            rawdoc! {"insert": "c", "lsid": {"id": uuid(4)}, "txnNumber": 7.0},
            rawdoc! {"insert": "c", "autocommit": 0i32},
            rawdoc! {"insert": "c", "lsid": {"uid": uid(), "id": uuid(5)}},
            rawdoc! {"insert": "c", "lsid": {"id": uuid(6), "x": 1}},
            rawdoc! {"insert": "c", "lsid": {"id": Binary { subtype: BinarySubtype::UuidOld, bytes: vec![1; 16] }}},
            rawdoc! {"insert": "c", "lsid": {"id": Binary { subtype: BinarySubtype::Uuid, bytes: vec![1; 15] }}},
            rawdoc! {"insert": "c", "lsid": "text", "stmtIds": [1i64, "x"]},
        ];
        for b in &bodies {
            for index in [None, Some(0), Some(1), Some(2)] {
                let new = session(b, index);
                let old = old_session(b, index);
                assert_eq!(
                    new.as_ref().map(text),
                    old.as_ref().map(text),
                    "{b:?} {index:?}"
                );
                assert_eq!(
                    new.as_ref().and_then(SessionIds::autocommit),
                    old.as_ref()
                        .and_then(|o| o.get("autocommit"))
                        .and_then(Value::as_bool)
                );
            }
        }
        assert!(matches!(
            session(&bodies[1], None),
            Some(SessionIds::Fields {
                lsid: Some(Lsid::Uuid { uid: Some(_), .. }),
                ..
            })
        ));
        assert!(matches!(
            session(&bodies[4], None),
            Some(SessionIds::Json(_))
        ));
        assert!(matches!(
            session(&bodies[6], None),
            Some(SessionIds::Fields {
                lsid: Some(Lsid::Json(_)),
                ..
            })
        ));
    }

    #[test]
    fn write_concerns_print_as_before_typed_or_not() {
        let docs = [
            (rawdoc! {"w": 1i32}, true),
            (rawdoc! {"w": "majority", "wtimeout": 1000i64}, true),
            (rawdoc! {"w": "dc1", "j": true, "wtimeout": 5i32}, true),
            (rawdoc! {"j": false}, true),
            (rawdoc! {}, true),
            (rawdoc! {"w": 1.0}, false),
            (rawdoc! {"w": 1i32, "fsync": true}, false),
            (rawdoc! {"j": true, "w": 1i32}, false),
            (rawdoc! {"w": 1i32, "w": 2i32}, false),
            (rawdoc! {"w": bson::RawBson::Null}, false),
            (rawdoc! {"w": 2i32, "provenance": "clientSupplied"}, false),
        ];
        for (d, is_typed) in &docs {
            let new = write_concern(d);
            assert_eq!(text(&new), text(&values::doc(d)), "{d:?}");
            assert_eq!(
                matches!(new, SentWriteConcern::Fields { .. }),
                *is_typed,
                "{d:?}"
            );
            // The getlasterror form of the same fields.
            let mut body = rawdoc! {"getlasterror": 1i32};
            for el in d.iter() {
                let (k, v) = el.unwrap();
                body.append(k, v);
            }
            assert_eq!(
                text(&gle_write_concern(&body)),
                text(&old_gle(&body)),
                "{body:?}"
            );
        }
    }
}
