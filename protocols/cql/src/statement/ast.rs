//! AST of statements: what each DML statement changes, in a shape that makes
//! write extraction direct (target table, assignments, WHERE relations, USING,
//! conditions), plus a classification of every other statement.

use super::binds::BindInfo;
use super::term::{Ident, QualifiedName, TableRef, Term};

/// A parsed statement and the bind markers it contains.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement<'a> {
    pub kind: StatementKind<'a>,
    /// Every bind marker in order of appearance (its index is its position here),
    /// with what it binds to. Empty for statements parsed only for classification
    /// (SELECT, DDL, DCL).
    pub bind_markers: Vec<BindInfo<'a>>,
}

/// What a statement is.
#[derive(Debug, Clone, PartialEq)]
pub enum StatementKind<'a> {
    /// INSERT, UPDATE or DELETE.
    Modification(Modification<'a>),
    Batch(Batch<'a>),
    /// `TRUNCATE [TABLE] t`: removes every row of the table.
    Truncate(QualifiedName<'a>),
    /// `USE ks`: changes the connection's current keyspace.
    Use(Ident<'a>),
    /// `SELECT`: reads only; parsed as far as the table it reads.
    Select(Select<'a>),
    /// CREATE/ALTER/DROP of a schema object (keyspace, table, index, ...) or a role.
    Schema(SchemaChange<'a>),
    /// GRANT/REVOKE of permissions or roles.
    Access(AccessChange<'a>),
    /// Read-only administrative statements: `LIST ...`, `DESCRIBE ...`.
    Other(OtherStatement<'a>),
}

/// One data-modifying statement (also a member of a BATCH).
#[derive(Debug, Clone, PartialEq)]
pub enum Modification<'a> {
    Insert(Insert<'a>),
    Update(Update<'a>),
    Delete(Delete<'a>),
}

/// `INSERT INTO t (cols) VALUES (terms)` or `INSERT INTO t JSON ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct Insert<'a> {
    pub table: QualifiedName<'a>,
    pub values: InsertValues<'a>,
    /// `IF NOT EXISTS`: a lightweight transaction.
    pub if_not_exists: bool,
    pub using: Vec<UsingParam<'a>>,
}

/// What an INSERT writes.
#[derive(Debug, Clone, PartialEq)]
pub enum InsertValues<'a> {
    /// Column/value pairs, in statement order (the parser checks the counts match).
    Columns(Vec<(Ident<'a>, Term<'a>)>),
    /// `JSON 'doc'` or `JSON ?`; `default` is `None` when no DEFAULT clause was written
    /// (which means `DEFAULT NULL`: omitted columns are set to null).
    Json {
        value: Term<'a>,
        default: Option<JsonDefault>,
    },
}

/// `DEFAULT NULL` (omitted columns become null: tombstones) or `DEFAULT UNSET`
/// (omitted columns are left alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonDefault {
    Null,
    Unset,
}

/// One `USING` parameter; a list keeps the written order, which fixes marker indexes.
#[derive(Debug, Clone, PartialEq)]
pub enum UsingParam<'a> {
    /// Write time in microseconds (integer literal or marker).
    Timestamp(Term<'a>),
    /// Time to live in seconds (integer literal or marker).
    Ttl(Term<'a>),
}

/// `UPDATE t [USING ...] SET ... WHERE ... [IF ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Update<'a> {
    pub table: QualifiedName<'a>,
    pub using: Vec<UsingParam<'a>>,
    pub assignments: Vec<Assignment<'a>>,
    pub where_clause: Vec<Relation<'a>>,
    pub condition: Option<Condition<'a>>,
}

/// One `SET` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment<'a> {
    pub column: Ident<'a>,
    pub op: AssignOp<'a>,
}

/// How a SET item changes its column. Which of counter/list/set/map applies depends
/// on the column type, known only from the schema.
#[derive(Debug, Clone, PartialEq)]
pub enum AssignOp<'a> {
    /// `c = v`: overwrite.
    Set(Term<'a>),
    /// `c = c + v` or `c += v`: counter increment, list append, set add, map put.
    Add(Term<'a>),
    /// `c = c - v` or `c -= v`: counter decrement, list/set element removal, map key removal.
    Subtract(Term<'a>),
    /// `c = v + c`: list prepend.
    Prepend(Term<'a>),
    /// `c[k] = v`: map entry put, or list element set by index.
    SetElement { key: Term<'a>, value: Term<'a> },
    /// `c.f = v`: UDT field set.
    SetField { field: Ident<'a>, value: Term<'a> },
}

/// `DELETE [selection] FROM t [USING TIMESTAMP x] WHERE ... [IF ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Delete<'a> {
    /// What to delete in the selected rows; empty means the whole rows (or partition,
    /// or clustering range, depending on the WHERE clause).
    pub columns: Vec<ColumnRef<'a>>,
    pub table: QualifiedName<'a>,
    pub timestamp: Option<Term<'a>>,
    pub where_clause: Vec<Relation<'a>>,
    pub condition: Option<Condition<'a>>,
}

/// A column, a collection element or a UDT field (DELETE selection, IF condition).
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnRef<'a> {
    Column(Ident<'a>),
    /// `c[key]`: a map entry by key or a list element by index.
    Element(Ident<'a>, Term<'a>),
    /// `u.field`.
    Field(Ident<'a>, Ident<'a>),
}

impl<'a> ColumnRef<'a> {
    /// The column this refers to.
    pub fn column(&self) -> &Ident<'a> {
        match self {
            ColumnRef::Column(c) | ColumnRef::Element(c, _) | ColumnRef::Field(c, _) => c,
        }
    }
}

/// `BEGIN [UNLOGGED|COUNTER] BATCH [USING ...] stmts APPLY BATCH`.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch<'a> {
    pub kind: BatchKind,
    pub using: Vec<UsingParam<'a>>,
    pub statements: Vec<Modification<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BatchKind {
    Logged,
    Unlogged,
    Counter,
}

/// One WHERE relation.
#[derive(Debug, Clone, PartialEq)]
pub struct Relation<'a> {
    pub lhs: RelationLhs<'a>,
    pub op: Operator,
    pub rhs: Rhs<'a>,
}

/// Left side of a relation.
#[derive(Debug, Clone, PartialEq)]
pub enum RelationLhs<'a> {
    Column(Ident<'a>),
    /// `m[key] = v` (map element filter).
    Element(Ident<'a>, Term<'a>),
    /// `(c1, c2) > (a, b)`: multi-column (clustering) relation.
    Tuple(Vec<Ident<'a>>),
    /// `token(k1, k2) > x`: a token range over the partition key.
    Token(Vec<Ident<'a>>),
}

/// Right side of a relation or condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Rhs<'a> {
    /// A single term (also `IN ?`, where the marker binds the whole list).
    Term(Term<'a>),
    /// `IN (a, b, ...)`.
    List(Vec<Term<'a>>),
    /// `BETWEEN a AND b`.
    Between(Term<'a>, Term<'a>),
    /// Nothing (`IS NOT NULL`).
    None,
}

/// Relation and condition operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
    NotIn,
    Contains,
    ContainsKey,
    NotContains,
    NotContainsKey,
    Like,
    IsNotNull,
    Between,
}

/// What a relation means for write extraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelationKind {
    /// `c = v`: fixes a column (a key column when the schema says so).
    Equality,
    /// `c IN (...)` / `(a, b) IN ...`: fixes a column to each of several values.
    In,
    /// `<`, `<=`, `>`, `>=`, BETWEEN on columns: a clustering range.
    Range,
    /// `token(...)` relation: a token range over partitions.
    Token,
    /// CONTAINS / CONTAINS KEY / LIKE / `!=` / NOT IN / IS NOT NULL / map element:
    /// a filter that does not select rows by key.
    Filter,
}

impl Relation<'_> {
    /// Classifies the relation (see [`RelationKind`]).
    pub fn kind(&self) -> RelationKind {
        if matches!(self.lhs, RelationLhs::Token(_)) {
            return RelationKind::Token;
        }
        if matches!(self.lhs, RelationLhs::Element(..)) {
            return RelationKind::Filter;
        }
        match self.op {
            Operator::Eq => RelationKind::Equality,
            Operator::In => RelationKind::In,
            Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte | Operator::Between => {
                RelationKind::Range
            }
            _ => RelationKind::Filter,
        }
    }

    /// `Some((column, value))` for a single-column `c = v`.
    pub fn equality(&self) -> Option<(&Ident<'_>, &Term<'_>)> {
        match (&self.lhs, self.op, &self.rhs) {
            (RelationLhs::Column(c), Operator::Eq, Rhs::Term(t)) => Some((c, t)),
            _ => None,
        }
    }
}

/// The IF clause of UPDATE/DELETE (INSERT has only `if_not_exists`).
#[derive(Debug, Clone, PartialEq)]
pub enum Condition<'a> {
    /// `IF EXISTS`.
    Exists,
    /// `IF c = v AND ...`.
    Columns(Vec<ColumnCondition<'a>>),
}

/// `IF c op v`, `IF c[k] op v`, `IF u.f op v`, `IF c IN (...)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnCondition<'a> {
    pub target: ColumnRef<'a>,
    pub op: Operator,
    pub rhs: Rhs<'a>,
}

/// `SELECT`, parsed only as far as classification needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Select<'a> {
    pub table: QualifiedName<'a>,
    pub json: bool,
    /// The statement text as written (without a trailing `;`).
    pub text: &'a str,
}

/// CREATE / ALTER / DROP of a schema object or role.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaChange<'a> {
    pub action: SchemaAction,
    pub object: SchemaObject,
    /// The keyspace: the object itself for KEYSPACE, else the explicit qualifier.
    pub keyspace: Option<Ident<'a>>,
    /// The object's name (`None` for a keyspace and for an unnamed index).
    pub name: Option<Ident<'a>>,
    /// The table an INDEX or TRIGGER is on, the base table of a MATERIALIZED VIEW,
    /// or the source table of `CREATE TABLE ... LIKE`.
    pub on: Option<QualifiedName<'a>>,
    pub if_exists: bool,
    pub if_not_exists: bool,
    /// `CREATE OR REPLACE` (functions, aggregates).
    pub or_replace: bool,
    /// The statement text as written (without a trailing `;`), for the log.
    pub text: &'a str,
}

impl<'a> SchemaChange<'a> {
    /// The object's `keyspace.name` against the current keyspace, when it lives in a
    /// keyspace (not for KEYSPACE, ROLE, USER, IDENTITY objects or unnamed indexes).
    /// An index or trigger without explicit keyspace lives in its table's keyspace.
    pub fn resolve<'s>(&'s self, current_keyspace: Option<&'s str>) -> Option<TableRef<'s>> {
        let name = self.name.as_ref()?;
        if matches!(
            self.object,
            SchemaObject::Keyspace
                | SchemaObject::Role
                | SchemaObject::User
                | SchemaObject::Identity
        ) {
            return None;
        }
        let keyspace = match (&self.keyspace, &self.on) {
            (Some(k), _) => k.as_str(),
            (None, Some(on))
                if matches!(self.object, SchemaObject::Index | SchemaObject::Trigger) =>
            {
                on.resolve(current_keyspace)?.keyspace
            }
            _ => current_keyspace?,
        };
        Some(TableRef {
            keyspace,
            table: name.as_str(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaAction {
    Create,
    Alter,
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaObject {
    Keyspace,
    Table,
    Index,
    Type,
    Function,
    Aggregate,
    MaterializedView,
    Trigger,
    Role,
    User,
    /// `ADD IDENTITY` / `DROP IDENTITY` (Cassandra 5); ADD is recorded as Create.
    Identity,
}

/// GRANT / REVOKE.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessChange<'a> {
    pub grant: bool,
    /// `GRANT SELECT, MODIFY ON ...`: permissions (uppercase) and the resource;
    /// empty with `resource == None` for a role grant (`GRANT role TO other`).
    pub permissions: Vec<&'static str>,
    pub resource: Option<Resource<'a>>,
    /// The granted role of a role grant.
    pub role: Option<Ident<'a>>,
    /// Who receives / loses the permission or role.
    pub grantee: Ident<'a>,
    pub text: &'a str,
}

/// The resource of a permission grant.
#[derive(Debug, Clone, PartialEq)]
pub enum Resource<'a> {
    AllKeyspaces,
    Keyspace(Ident<'a>),
    Table(QualifiedName<'a>),
    AllTablesIn(Ident<'a>),
    AllRoles,
    Role(Ident<'a>),
    AllFunctions(Option<Ident<'a>>),
    Function(QualifiedName<'a>),
    AllMbeans,
    Mbean(std::borrow::Cow<'a, str>),
}

/// A statement that changes nothing and is only classified.
#[derive(Debug, Clone, PartialEq)]
pub struct OtherStatement<'a> {
    /// The leading keyword, uppercase (`LIST`, `DESCRIBE`).
    pub verb: &'static str,
    pub text: &'a str,
}

impl<'a> Modification<'a> {
    /// The table this statement writes.
    pub fn table(&self) -> &QualifiedName<'a> {
        match self {
            Modification::Insert(s) => &s.table,
            Modification::Update(s) => &s.table,
            Modification::Delete(s) => &s.table,
        }
    }
}

impl<'a> Statement<'a> {
    /// True for statements that change data or schema (what a backup must record).
    pub fn is_write(&self) -> bool {
        !matches!(
            self.kind,
            StatementKind::Select(_) | StatementKind::Use(_) | StatementKind::Other(_)
        )
    }

    /// True for lightweight transactions (INSERT IF NOT EXISTS, UPDATE/DELETE IF ...),
    /// whose RESULT carries an `[applied]` column.
    pub fn is_lwt(&self) -> bool {
        fn m(s: &Modification<'_>) -> bool {
            match s {
                Modification::Insert(i) => i.if_not_exists,
                Modification::Update(u) => u.condition.is_some(),
                Modification::Delete(d) => d.condition.is_some(),
            }
        }
        self.modifications().iter().any(m)
    }

    /// The DML statements: the statement itself, or each member of a BATCH.
    pub fn modifications(&self) -> &[Modification<'a>] {
        match &self.kind {
            StatementKind::Modification(m) => std::slice::from_ref(m),
            StatementKind::Batch(b) => &b.statements,
            _ => &[],
        }
    }

    /// The table the statement reads or writes, for single-table statements
    /// (INSERT, UPDATE, DELETE, TRUNCATE, SELECT). BATCH: see [`Self::modifications`].
    pub fn table(&self) -> Option<&QualifiedName<'a>> {
        match &self.kind {
            StatementKind::Modification(m) => Some(m.table()),
            StatementKind::Truncate(t) => Some(t),
            StatementKind::Select(s) => Some(&s.table),
            _ => None,
        }
    }

    /// Every `keyspace.table` written (one per BATCH member, in order; TRUNCATE's
    /// table), resolved against the connection's current keyspace. `None` entries are
    /// tables without keyspace while no keyspace is current.
    pub fn resolve_tables<'s>(
        &'s self,
        current_keyspace: Option<&'s str>,
    ) -> Vec<Option<TableRef<'s>>> {
        match &self.kind {
            StatementKind::Batch(b) => b
                .statements
                .iter()
                .map(|s| s.table().resolve(current_keyspace))
                .collect(),
            StatementKind::Schema(s) => vec![s.resolve(current_keyspace)],
            _ => self
                .table()
                .map(|t| t.resolve(current_keyspace))
                .into_iter()
                .collect(),
        }
    }
}

impl<'a> UsingParam<'a> {
    pub fn term(&self) -> &Term<'a> {
        match self {
            UsingParam::Timestamp(t) | UsingParam::Ttl(t) => t,
        }
    }
}

/// The TIMESTAMP term of a USING list.
pub fn using_timestamp<'b, 'a>(using: &'b [UsingParam<'a>]) -> Option<&'b Term<'a>> {
    using.iter().find_map(|u| match u {
        UsingParam::Timestamp(t) => Some(t),
        _ => None,
    })
}

/// The TTL term of a USING list.
pub fn using_ttl<'b, 'a>(using: &'b [UsingParam<'a>]) -> Option<&'b Term<'a>> {
    using.iter().find_map(|u| match u {
        UsingParam::Ttl(t) => Some(t),
        _ => None,
    })
}
