//! One INSERT, UPDATE or DELETE (alone or as a BATCH member) → one `write` line:
//! namespace, key, range, values, collection operations, deleted columns, LWT
//! condition, write timestamp and TTL.
//!
//! Key columns: UPDATE and DELETE name them in WHERE (`=` fixes a key column, ranges
//! go to `range`). INSERT lists key and regular columns alike, so telling them apart
//! needs the schema: learned from the capture when possible, else the partition key
//! from the Prepared bind metadata, else unknown (`key` null, every column in `values`).

use serde_json::{json, Map, Value as Json};
use tidemark_cql::statement::{
    using_timestamp, using_ttl, AssignOp, ColumnRef, Condition, InsertValues, Modification,
    Operator, RelationLhs, Rhs, Term, UsingParam,
};
use tidemark_cql::ColumnType;

use std::sync::Arc;

use super::bound::Bound;
use super::lazy;
use super::literal::{render, Binder};
use crate::decode::cql::schema::{Schema, TableSchema};
use crate::decode::cql::typed::{Name, TypedWrite};
use crate::decode::records::{LineValue, WriteRecord};
use tidemark_cql::wire::WireValue;

/// What a statement needs from its surroundings.
pub struct StmtCtx<'a> {
    pub schema: &'a Schema,
    /// The keyspace unqualified names resolve against.
    pub keyspace: Option<&'a str>,
    pub bound: &'a Bound<'a>,
    /// The query's default timestamp (µs), if the client sent one.
    pub default_timestamp: Option<i64>,
    /// `BEGIN BATCH USING ...` of a batch written in CQL text.
    pub batch_using: &'a [UsingParam<'a>],
}

struct Cols<'a> {
    schema: &'a Schema,
    table: Option<(&'a str, &'a str)>,
    known: Option<&'a TableSchema>,
}

impl Cols<'_> {
    /// `schema.column_type` of the statement's table (`known` is that table).
    fn ty(&self, col: &str) -> Option<ColumnType> {
        self.ty_shared(col).map(|ty| (*ty).clone())
    }

    /// [`Cols::ty`] borrowed from the schema's cache (no reference count change);
    /// `None` also when the cache does not have it, as [`Cols::ty_shared`] then
    /// parses, which this does not.
    fn ty_ref(&self, col: &str) -> Option<&Arc<ColumnType>> {
        let (k, t) = self.table?;
        self.known?;
        let (ty, _) = self.schema.cached_column_type(k, t, col)?;
        Some(ty)
    }

    /// [`Cols::ty`], shared with the schema.
    fn ty_shared(&self, col: &str) -> Option<Arc<ColumnType>> {
        let (k, t) = self.table?;
        self.known?;
        let (ty, _) = self.schema.parsed_column_type(k, t, col)?;
        Some(ty)
    }
}

/// Fills `w` (whose request fields the caller set) from one modification statement.
pub fn modification(m: &Modification<'_>, cx: &StmtCtx<'_>, w: &mut WriteRecord) {
    let q = m.table();
    let resolved = q.resolve(cx.keyspace);
    let table = match &resolved {
        Some(r) => Some((r.keyspace, r.table)),
        None => cx.bound.spec_table(),
    };
    match table {
        // `join` sizes the string once; `format!` guessed short and grew it.
        Some((k, t)) => w.namespace = Some([k, t].join(".")),
        None => w.table = Some(q.name.as_str().to_string()),
    }
    let cols = Cols {
        schema: cx.schema,
        table,
        known: table.and_then(|(k, t)| cx.schema.table(k, t)),
    };
    let typed = Arc::new(super::cells::build(m, cx.schema, table, cx.bound));
    w.extras.cql = Some(typed.clone());
    let bind = |i: usize, ty: Option<&ColumnType>| cx.bound.render(i, ty);
    let bind: &Binder<'_> = &bind;
    let mut values = match m {
        Modification::Update(u) => Map::with_capacity(u.assignments.len()),
        Modification::Insert(_) | Modification::Delete(_) => Map::new(),
    };
    let mut ops = Vec::new();
    let mut deleted = Vec::new();
    let mut key = Map::new();
    let mut range = Map::new();
    // An INSERT's values and key stay lazy (see `lazy`); the others are built as JSON.
    let mut insert_line = None;
    let mut insert_key = None;
    let (using, lwt): (&[UsingParam<'_>], Option<&'static str>) = match m {
        Modification::Insert(i) => {
            w.op = "insert".into();
            let mut lazy = match &i.values {
                InsertValues::Columns(pairs) => lazy::Values::with_capacity(pairs.len()),
                InsertValues::Json { .. } => lazy::Values::default(),
            };
            insert_values(&i.values, &cols, cx.bound, bind, &typed, &mut lazy);
            let mut key_values = lazy::Values::default();
            split_key(&cols, cx, i, &mut lazy, &mut key_values, w);
            insert_key = Some(key_values.into_key_line());
            if i.if_not_exists {
                w.condition = Some(json!({"exists": false}));
            }
            insert_line = Some(lazy.into_line());
            (&i.using, i.if_not_exists.then_some("if_not_exists"))
        }
        Modification::Update(u) => {
            w.op = "update".into();
            for a in &u.assignments {
                assignment(
                    a.column.as_str(),
                    &a.op,
                    &cols,
                    cx.bound,
                    bind,
                    &mut values,
                    &mut ops,
                );
            }
            where_clause(&u.where_clause, &cols, bind, &mut key, &mut range);
            key_order(&cols, &mut key);
            w.key_source = Some(if cols.known.is_some() {
                "schema"
            } else {
                "where"
            });
            (&u.using, condition(&u.condition, &cols, bind, w))
        }
        Modification::Delete(d) => {
            w.op = "delete".into();
            for c in &d.columns {
                delete_target(c, &cols, cx.bound, bind, &mut deleted, &mut ops);
            }
            where_clause(&d.where_clause, &cols, bind, &mut key, &mut range);
            key_order(&cols, &mut key);
            w.key_source = Some(if cols.known.is_some() {
                "schema"
            } else {
                "where"
            });
            let lwt = condition(&d.condition, &cols, bind, w);
            let ts = d.timestamp.as_ref();
            timing(ts, None, cx, lwt.is_some(), w);
            finish(
                w,
                Json::Object(key).into(),
                range,
                Json::Object(values).into(),
                ops,
                deleted,
                lwt,
            );
            return;
        }
    };
    timing(
        using_timestamp(using),
        using_ttl(using),
        cx,
        lwt.is_some(),
        w,
    );
    let values = insert_line.unwrap_or_else(|| Json::Object(values).into());
    let key = insert_key.unwrap_or_else(|| Json::Object(key).into());
    finish(w, key, range, values, ops, deleted, lwt);
}

fn finish(
    w: &mut WriteRecord,
    key: LineValue,
    range: Map<String, Json>,
    values: LineValue,
    ops: Vec<Json>,
    deleted: Vec<String>,
    lwt: Option<&'static str>,
) {
    if w.key_source != Some("unknown") {
        w.key = key;
    }
    w.range = (!range.is_empty()).then_some(Json::Object(range));
    w.values = values;
    w.collection_ops = Some(Json::Array(ops));
    w.columns_deleted = Some(deleted);
    w.lwt = lwt;
}

/// An INSERT's values; bound ones stay bytes until the line is read (see `lazy`).
/// A bound value that is exactly one of `typed`'s cells is kept as that cell's
/// index (see `lazy::Values::insert_cell`): `typed`'s cells follow the columns'
/// order, so one cursor walks them beside the columns.
fn insert_values(
    v: &InsertValues<'_>,
    cols: &Cols<'_>,
    bound: &Bound<'_>,
    bind: &Binder<'_>,
    typed: &Arc<TypedWrite>,
    out: &mut lazy::Values,
) {
    match v {
        InsertValues::Columns(pairs) => {
            let mut cursor = 0;
            for (c, t) in pairs {
                let marker = match t {
                    Term::Bind(m) => Some(m.index),
                    _ => None,
                };
                let wire = marker.and_then(|i| bound.wire(i).map(|w| (i, w)));
                if let Some((i, WireValue::Bytes(bytes))) = wire {
                    if let Some(known) =
                        shared_cell(cols, bound, typed, cursor, c.as_str(), i, bytes)
                    {
                        out.insert_cell(typed, cursor, known);
                        cursor += 1;
                        continue;
                    }
                }
                // The column's cells (a collection's clear and elements) are passed.
                while typed
                    .cells
                    .get(cursor)
                    .is_some_and(|cell| cell.column.as_str() == c.as_str())
                {
                    cursor += 1;
                }
                let ty = cols.ty_shared(c.as_str());
                let entry = match wire {
                    Some((i, WireValue::Bytes(bytes))) => lazy::Entry::Bound {
                        bytes: bytes.clone(),
                        spec: bound.spec_type_shared(i),
                        column: ty,
                    },
                    // Literals, nulls, missing values: rendered now, as before.
                    _ => match render(t, ty.as_deref(), bind) {
                        Some(j) => lazy::Entry::Ready(j),
                        None => continue,
                    },
                };
                // The prepared statement's shared name when the marker binds this
                // column (no lookup), else the thread's shared copy.
                let name = marker
                    .and_then(|i| bound.spec_name_shared(i, c.as_str()))
                    .unwrap_or_else(|| Name::new(c.as_str()));
                out.insert(name, entry);
            }
        }
        InsertValues::Json { value, .. } => {
            let doc = match render(value, Some(&ColumnType::Varchar), bind) {
                Some(Json::String(s)) => serde_json::from_str::<Json>(&s).ok(),
                _ => None,
            };
            if let Some(Json::Object(m)) = doc {
                out.extend(m);
            }
        }
    }
}

/// Whether the bound value `bytes` of marker `i` for column `c` is cell `cursor`
/// of `typed` as the eager path would render it: the cell holds these very bytes
/// with the bind metadata's shared type, and the column's schema type, when known,
/// equals it (the render normalizes with the schema type). `Some(column known)`.
fn shared_cell(
    cols: &Cols<'_>,
    bound: &Bound<'_>,
    typed: &TypedWrite,
    cursor: usize,
    c: &str,
    i: usize,
    bytes: &bytes::Bytes,
) -> Option<bool> {
    let spec = bound.spec_type_ref(i)?;
    let name = bound.spec_name_ref(i, c)?;
    if !lazy::Values::cell_matches(typed, cursor, name, bytes, spec) {
        return None;
    }
    match cols.ty_ref(c) {
        Some(column) if **column == **spec => Some(true),
        Some(_) => None,
        // The schema's cache holds every column of a known table, so this is "no
        // schema type"; should it ever miss one, the entry path renders instead.
        None => cols.ty_shared(c).is_none().then_some(false),
    }
}

/// Moves INSERT key columns from `values` to `key` (see the module doc for the order
/// of evidence).
fn split_key(
    cols: &Cols<'_>,
    cx: &StmtCtx<'_>,
    i: &tidemark_cql::statement::Insert<'_>,
    values: &mut lazy::Values,
    key: &mut lazy::Values,
    w: &mut WriteRecord,
) {
    if let Some(t) = cols.known {
        for c in t.partition_key.iter().chain(&t.clustering) {
            values.move_entry(c.as_str(), key);
        }
        w.key_source = Some("schema");
        return;
    }
    let pk = cx.bound.pk_columns();
    if let (Some(pk), InsertValues::Columns(_)) = (pk, &i.values) {
        for c in pk {
            values.move_entry(c, key);
        }
        w.key_source = Some("bind_metadata");
        return;
    }
    w.key_source = Some("unknown");
    w.key = Json::Null.into();
}

/// Puts a WHERE clause's key columns in primary-key order (partition key, then
/// clustering) when the table is known, as an INSERT's key is: `Mutation::key` is
/// compared as a string, so `WHERE line = 0 AND id = 1` and `WHERE id = 1 AND
/// line = 0` must give the same key (and a snapshot's row the same key again).
fn key_order(cols: &Cols<'_>, key: &mut Map<String, Json>) {
    let Some(t) = cols.known else { return };
    let mut ordered = Map::with_capacity(key.len());
    for c in t.partition_key.iter().chain(&t.clustering) {
        if let Some((c, v)) = key.remove_entry(c.as_str()) {
            ordered.insert(c, v);
        }
    }
    ordered.append(key);
    *key = ordered;
}

/// How a column's collection operations are named, by its type.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Set,
    Map,
    Counter,
    Other,
}

fn kind_of(ty: Option<&ColumnType>) -> Option<Kind> {
    Some(match ty?.effective() {
        ColumnType::List(_) => Kind::List,
        ColumnType::Set(_) => Kind::Set,
        ColumnType::Map(..) => Kind::Map,
        ColumnType::Counter | ColumnType::BigInt => Kind::Counter,
        _ => Kind::Other,
    })
}

/// The kind from the operand when no type is known: a literal's shape.
fn kind_of_term(t: &Term<'_>) -> Kind {
    match t {
        Term::List(_) => Kind::List,
        Term::Set(_) => Kind::Set,
        Term::Map(_) => Kind::Map,
        Term::Integer(_) | Term::Negate(_) => Kind::Counter,
        _ => Kind::Other,
    }
}

fn marker_index(t: &Term<'_>) -> Option<usize> {
    t.as_marker().map(|m| m.index)
}

fn column_kind(col: &str, operand: &Term<'_>, cols: &Cols<'_>, bound: &Bound<'_>) -> Kind {
    kind_of(cols.ty(col).as_ref())
        .or_else(|| kind_of(marker_index(operand).and_then(|i| bound.spec_type(i))))
        .unwrap_or_else(|| kind_of_term(operand))
}

fn assignment(
    col: &str,
    op: &AssignOp<'_>,
    cols: &Cols<'_>,
    bound: &Bound<'_>,
    bind: &Binder<'_>,
    values: &mut Map<String, Json>,
    ops: &mut Vec<Json>,
) {
    let ty = cols.ty(col);
    let elem_types = |ty: &Option<ColumnType>| -> (Option<ColumnType>, Option<ColumnType>) {
        match ty.as_ref().map(ColumnType::effective) {
            Some(ColumnType::Map(k, v)) => (Some((**k).clone()), Some((**v).clone())),
            Some(ColumnType::List(e)) => (Some(ColumnType::Int), Some((**e).clone())),
            _ => (None, None),
        }
    };
    let mut push = |name: &str, extra: Map<String, Json>| {
        let mut o = Map::new();
        o.insert("column".into(), Json::String(col.to_string()));
        o.insert("op".into(), Json::String(name.to_string()));
        o.extend(extra);
        ops.push(Json::Object(o));
    };
    let one = |k: &str, v: Json| -> Map<String, Json> {
        let mut m = Map::new();
        m.insert(k.to_string(), v);
        m
    };
    match op {
        AssignOp::Set(t) => {
            if let Some(v) = render(t, ty.as_ref(), bind) {
                values.insert(col.to_string(), v);
            }
        }
        AssignOp::Add(t) | AssignOp::Subtract(t) | AssignOp::Prepend(t) => {
            let Some(v) = render(t, ty.as_ref(), bind) else {
                return;
            };
            let kind = column_kind(col, t, cols, bound);
            let add = matches!(op, AssignOp::Add(_));
            let name = match (op, kind) {
                (AssignOp::Prepend(_), _) => "prepend",
                (_, Kind::Counter) if add => "increment",
                (_, Kind::Counter) => "decrement",
                (_, Kind::List) if add => "append",
                (_, Kind::Map) if add => "put_all",
                (_, Kind::Map) => "remove_keys",
                _ if add => "add",
                _ => "remove",
            };
            push(name, one("value", v));
        }
        AssignOp::SetElement { key, value } => {
            let (kt, vt) = elem_types(&ty);
            let is_list = matches!(kind_of(ty.as_ref()), Some(Kind::List))
                || marker_index(key)
                    .and_then(|i| bound.spec_name(i))
                    .is_some_and(|n| n.starts_with("idx("));
            let k = render(key, kt.as_ref(), bind).unwrap_or(Json::Null);
            let Some(v) = render(value, vt.as_ref(), bind) else {
                return;
            };
            let mut m = one("key", k);
            m.insert("value".into(), v);
            push(if is_list { "set_index" } else { "put" }, m);
        }
        AssignOp::SetField { field, value } => {
            let Some(v) = render(value, None, bind) else {
                return;
            };
            let mut m = one("key", Json::String(field.as_str().to_string()));
            m.insert("value".into(), v);
            push("set_field", m);
        }
    }
}

fn delete_target(
    c: &ColumnRef<'_>,
    cols: &Cols<'_>,
    bound: &Bound<'_>,
    bind: &Binder<'_>,
    deleted: &mut Vec<String>,
    ops: &mut Vec<Json>,
) {
    match c {
        ColumnRef::Column(col) => deleted.push(col.as_str().to_string()),
        ColumnRef::Element(col, key) => {
            let ty = cols.ty(col.as_str());
            let by_spec = marker_index(key).and_then(|i| bound.spec_name(i));
            let is_list = matches!(kind_of(ty.as_ref()), Some(Kind::List))
                || by_spec.is_some_and(|n| n.starts_with("idx("));
            let kt = match ty.as_ref().map(ColumnType::effective) {
                Some(ColumnType::Map(k, _)) => Some((**k).clone()),
                Some(ColumnType::List(_)) => Some(ColumnType::Int),
                _ => None,
            };
            let k = render(key, kt.as_ref(), bind).unwrap_or(Json::Null);
            let op = if is_list {
                "remove_index"
            } else {
                "remove_key"
            };
            ops.push(json!({"column": col.as_str(), "op": op, "key": k}));
        }
        ColumnRef::Field(col, f) => {
            ops.push(json!({"column": col.as_str(), "op": "remove_field", "key": f.as_str()}));
        }
    }
}

fn op_name(op: Operator) -> &'static str {
    match op {
        Operator::Eq => "=",
        Operator::Neq => "!=",
        Operator::Lt => "<",
        Operator::Lte => "<=",
        Operator::Gt => ">",
        Operator::Gte => ">=",
        Operator::In => "in",
        Operator::NotIn => "not in",
        Operator::Contains => "contains",
        Operator::ContainsKey => "contains key",
        Operator::NotContains => "not contains",
        Operator::NotContainsKey => "not contains key",
        Operator::Like => "like",
        Operator::IsNotNull => "is not null",
        Operator::Between => "between",
    }
}

fn rhs_json(rhs: &Rhs<'_>, ty: Option<&ColumnType>, bind: &Binder<'_>, op: Operator) -> Json {
    let list_ty = ty.map(|t| ColumnType::List(Box::new(t.clone())));
    match rhs {
        Rhs::Term(t) if op == Operator::In => {
            render(t, list_ty.as_ref(), bind).unwrap_or(Json::Null)
        }
        Rhs::Term(t) => render(t, ty, bind).unwrap_or(Json::Null),
        Rhs::List(items) => Json::Array(
            items
                .iter()
                .map(|t| render(t, ty, bind).unwrap_or(Json::Null))
                .collect(),
        ),
        Rhs::Between(a, b) => Json::Array(vec![
            render(a, ty, bind).unwrap_or(Json::Null),
            render(b, ty, bind).unwrap_or(Json::Null),
        ]),
        Rhs::None => Json::Null,
    }
}

fn where_clause(
    rels: &[tidemark_cql::statement::Relation<'_>],
    cols: &Cols<'_>,
    bind: &Binder<'_>,
    key: &mut Map<String, Json>,
    range: &mut Map<String, Json>,
) {
    for r in rels {
        let (name, ty) = match &r.lhs {
            RelationLhs::Column(c) => (c.as_str().to_string(), cols.ty(c.as_str())),
            RelationLhs::Tuple(cs) => {
                let names: Vec<&str> = cs.iter().map(|c| c.as_str()).collect();
                let tys: Option<Vec<ColumnType>> = cs.iter().map(|c| cols.ty(c.as_str())).collect();
                (
                    format!("({})", names.join(", ")),
                    tys.map(ColumnType::Tuple),
                )
            }
            RelationLhs::Token(cs) => {
                let names: Vec<&str> = cs.iter().map(|c| c.as_str()).collect();
                (
                    format!("token({})", names.join(", ")),
                    Some(ColumnType::BigInt),
                )
            }
            // Map element filters do not select rows of a write.
            RelationLhs::Element(..) => continue,
        };
        if let (RelationLhs::Column(_), Operator::Eq) = (&r.lhs, r.op) {
            key.insert(name, rhs_json(&r.rhs, ty.as_ref(), bind, r.op));
            continue;
        }
        let v = rhs_json(&r.rhs, ty.as_ref(), bind, r.op);
        let entry = range
            .entry(name)
            .or_insert_with(|| Json::Object(Map::new()));
        if let Json::Object(m) = entry {
            m.insert(op_name(r.op).to_string(), v);
        }
    }
}

/// Sets `condition` and returns the LWT kind.
fn condition(
    c: &Option<Condition<'_>>,
    cols: &Cols<'_>,
    bind: &Binder<'_>,
    w: &mut WriteRecord,
) -> Option<&'static str> {
    match c.as_ref()? {
        Condition::Exists => {
            w.condition = Some(json!({"exists": true}));
            Some("if_exists")
        }
        Condition::Columns(cs) => {
            let mut m = Map::new();
            for cc in cs {
                let name = cc.target.to_string();
                let ty = match &cc.target {
                    ColumnRef::Column(c) => cols.ty(c.as_str()),
                    _ => None,
                };
                let v = rhs_json(&cc.rhs, ty.as_ref(), bind, cc.op);
                let e = m.entry(name).or_insert_with(|| Json::Object(Map::new()));
                if let Json::Object(o) = e {
                    o.insert(op_name(cc.op).to_string(), v);
                }
            }
            w.condition = Some(Json::Object(m));
            Some("if")
        }
    }
}

fn integer(t: &Term<'_>, bound: &Bound<'_>) -> Option<i64> {
    match t {
        Term::Integer(s) => s.parse().ok(),
        Term::Bind(m) => bound.integer(m.index),
        _ => None,
    }
}

/// Write timestamp and TTL. An LWT's cells take the Paxos ballot's timestamp, so a
/// client timestamp is not the write time there.
fn timing(
    ts: Option<&Term<'_>>,
    ttl: Option<&Term<'_>>,
    cx: &StmtCtx<'_>,
    lwt: bool,
    w: &mut WriteRecord,
) {
    let ts = ts.or_else(|| using_timestamp(cx.batch_using));
    let ttl = ttl.or_else(|| using_ttl(cx.batch_using));
    w.client_timestamp = cx.default_timestamp;
    w.ttl = ttl.and_then(|t| integer(t, cx.bound));
    let using = ts.and_then(|t| integer(t, cx.bound));
    (w.timestamp, w.timestamp_source) = if lwt {
        (None, Some("paxos_ballot"))
    } else if let Some(t) = using {
        (Some(t), Some("using"))
    } else if let Some(t) = cx.default_timestamp {
        (Some(t), Some("default"))
    } else {
        (None, Some("server"))
    };
}
