//! Rendering the AST back to CQL text (`Display`).
//!
//! The output is canonical CQL that parses back to an equal AST: names are quoted
//! only when they must be, strings are re-escaped, literal text is kept as written.
//! Restore uses it to write statements, and the property tests use it to check the
//! parser (`parse(render(ast)) == ast`). Statements kept only as text (SELECT, DDL,
//! DCL) render as that text.

use std::fmt::{self, Display, Formatter, Write};

use super::ast::*;
use super::lex::is_reserved;
use super::term::{BindMarker, CqlType, Ident, QualifiedName, Term};

impl Display for Ident<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let s = self.as_str();
        let plain = s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !is_reserved(s)
            // `IF exists = 1` would read as `IF EXISTS`.
            && s != "exists";
        if plain {
            f.write_str(s)
        } else {
            f.write_char('"')?;
            f.write_str(&s.replace('"', "\"\""))?;
            f.write_char('"')
        }
    }
}

impl Display for QualifiedName<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if let Some(k) = &self.keyspace {
            write!(f, "{k}.")?;
        }
        write!(f, "{}", self.name)
    }
}

/// Writes items separated by `, `.
fn list<T>(
    f: &mut Formatter<'_>,
    items: &[T],
    mut each: impl FnMut(&mut Formatter<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    for (n, x) in items.iter().enumerate() {
        if n > 0 {
            f.write_str(", ")?;
        }
        each(f, x)?;
    }
    Ok(())
}

fn quote_str(f: &mut Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('\'')?;
    f.write_str(&s.replace('\'', "''"))?;
    f.write_char('\'')
}

impl Display for BindMarker<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, ":{n}"),
            None => f.write_char('?'),
        }
    }
}

impl Display for Term<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Term::Null => f.write_str("NULL"),
            Term::Bool(b) => write!(f, "{b}"),
            Term::Integer(s)
            | Term::Float(s)
            | Term::Duration(s)
            | Term::Uuid(s)
            | Term::Blob(s) => f.write_str(s),
            Term::Str(s) => quote_str(f, s),
            Term::List(items) => {
                f.write_char('[')?;
                list(f, items, |f, t| write!(f, "{t}"))?;
                f.write_char(']')
            }
            Term::Set(items) => {
                f.write_char('{')?;
                list(f, items, |f, t| write!(f, "{t}"))?;
                f.write_char('}')
            }
            Term::Map(entries) => {
                f.write_char('{')?;
                list(f, entries, |f, (k, v)| write!(f, "{k}: {v}"))?;
                f.write_char('}')
            }
            Term::Udt(fields) => {
                f.write_char('{')?;
                list(f, fields, |f, (k, v)| write!(f, "{k}: {v}"))?;
                f.write_char('}')
            }
            Term::Tuple(items) => {
                f.write_char('(')?;
                list(f, items, |f, t| write!(f, "{t}"))?;
                f.write_char(')')
            }
            Term::Bind(m) => write!(f, "{m}"),
            Term::Function { name, args } => {
                if name.keyspace.is_none() && name.name.as_str() == "key" {
                    // `CONTAINS key(x)` would read as `CONTAINS KEY (x)`.
                    f.write_str("\"key\"(")?;
                } else {
                    write!(f, "{name}(")?;
                }
                list(f, args, |f, t| write!(f, "{t}"))?;
                f.write_char(')')
            }
            Term::TypeHint { ty, term } => write!(f, "({ty}) {term}"),
            Term::Cast { term, ty } => write!(f, "CAST({term} AS {ty})"),
            Term::Negate(t) => write!(f, "- {t}"),
            Term::BinaryOp { op, lhs, rhs } => write!(f, "{lhs} {} {rhs}", op.symbol()),
        }
    }
}

impl Display for CqlType<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            CqlType::Native(n) => f.write_str(n),
            CqlType::List(t) => write!(f, "list<{t}>"),
            CqlType::Set(t) => write!(f, "set<{t}>"),
            CqlType::Map(k, v) => write!(f, "map<{k}, {v}>"),
            CqlType::Tuple(ts) => {
                f.write_str("tuple<")?;
                list(f, ts, |f, t| write!(f, "{t}"))?;
                f.write_char('>')
            }
            CqlType::Vector(t, n) => write!(f, "vector<{t}, {n}>"),
            CqlType::Frozen(t) => write!(f, "frozen<{t}>"),
            // A bare UDT named like a native type must be quoted to stay a UDT.
            CqlType::Udt(q) if q.keyspace.is_none() && is_type_word(q.name.as_str()) => {
                write!(f, "\"{}\"", q.name.as_str().replace('"', "\"\""))
            }
            CqlType::Udt(q) => write!(f, "{q}"),
            CqlType::Custom(s) => quote_str(f, s),
        }
    }
}

fn is_type_word(s: &str) -> bool {
    super::term::NATIVE_TYPES.contains(&s)
        || ["list", "set", "map", "frozen", "tuple", "vector"].contains(&s)
}

impl Operator {
    /// The operator as written in CQL.
    pub fn as_cql(self) -> &'static str {
        match self {
            Operator::Eq => "=",
            Operator::Neq => "!=",
            Operator::Lt => "<",
            Operator::Lte => "<=",
            Operator::Gt => ">",
            Operator::Gte => ">=",
            Operator::In => "IN",
            Operator::NotIn => "NOT IN",
            Operator::Contains => "CONTAINS",
            Operator::ContainsKey => "CONTAINS KEY",
            Operator::NotContains => "NOT CONTAINS",
            Operator::NotContainsKey => "NOT CONTAINS KEY",
            Operator::Like => "LIKE",
            Operator::IsNotNull => "IS NOT NULL",
            Operator::Between => "BETWEEN",
        }
    }
}

/// ` op rhs` after a left side.
fn op_rhs(f: &mut Formatter<'_>, op: Operator, rhs: &Rhs<'_>) -> fmt::Result {
    match rhs {
        Rhs::Term(t) => write!(f, " {} {t}", op.as_cql()),
        Rhs::List(items) => {
            write!(f, " {} (", op.as_cql())?;
            list(f, items, |f, t| write!(f, "{t}"))?;
            f.write_char(')')
        }
        Rhs::Between(a, b) => write!(f, " {} {a} AND {b}", op.as_cql()),
        Rhs::None => write!(f, " {}", op.as_cql()),
    }
}

impl Display for Relation<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.lhs {
            RelationLhs::Column(c) => write!(f, "{c}")?,
            RelationLhs::Element(c, k) => write!(f, "{c}[{k}]")?,
            RelationLhs::Tuple(cs) => {
                f.write_char('(')?;
                list(f, cs, |f, c| write!(f, "{c}"))?;
                f.write_char(')')?;
            }
            RelationLhs::Token(cs) => {
                f.write_str("token(")?;
                list(f, cs, |f, c| write!(f, "{c}"))?;
                f.write_char(')')?;
            }
        }
        op_rhs(f, self.op, &self.rhs)
    }
}

impl Display for ColumnRef<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            ColumnRef::Column(c) => write!(f, "{c}"),
            ColumnRef::Element(c, k) => write!(f, "{c}[{k}]"),
            ColumnRef::Field(c, x) => write!(f, "{c}.{x}"),
        }
    }
}

impl Display for Condition<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Exists => f.write_str("IF EXISTS"),
            Condition::Columns(cs) => {
                f.write_str("IF ")?;
                for (n, c) in cs.iter().enumerate() {
                    if n > 0 {
                        f.write_str(" AND ")?;
                    }
                    write!(f, "{}", c.target)?;
                    op_rhs(f, c.op, &c.rhs)?;
                }
                Ok(())
            }
        }
    }
}

fn using(f: &mut Formatter<'_>, params: &[UsingParam<'_>]) -> fmt::Result {
    if params.is_empty() {
        return Ok(());
    }
    f.write_str(" USING ")?;
    for (n, p) in params.iter().enumerate() {
        if n > 0 {
            f.write_str(" AND ")?;
        }
        match p {
            UsingParam::Timestamp(t) => write!(f, "TIMESTAMP {t}")?,
            UsingParam::Ttl(t) => write!(f, "TTL {t}")?,
        }
    }
    Ok(())
}

fn where_and_if(
    f: &mut Formatter<'_>,
    rels: &[Relation<'_>],
    cond: &Option<Condition<'_>>,
) -> fmt::Result {
    f.write_str(" WHERE ")?;
    for (n, r) in rels.iter().enumerate() {
        if n > 0 {
            f.write_str(" AND ")?;
        }
        write!(f, "{r}")?;
    }
    if let Some(c) = cond {
        write!(f, " {c}")?;
    }
    Ok(())
}

impl Display for Assignment<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let c = &self.column;
        match &self.op {
            AssignOp::Set(t) => write!(f, "{c} = {t}"),
            AssignOp::Add(t) => write!(f, "{c} = {c} + {t}"),
            AssignOp::Subtract(t) => write!(f, "{c} = {c} - {t}"),
            AssignOp::Prepend(t) => write!(f, "{c} = {t} + {c}"),
            AssignOp::SetElement { key, value } => write!(f, "{c}[{key}] = {value}"),
            AssignOp::SetField { field, value } => write!(f, "{c}.{field} = {value}"),
        }
    }
}

impl Display for Insert<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "INSERT INTO {}", self.table)?;
        match &self.values {
            InsertValues::Columns(pairs) => {
                f.write_str(" (")?;
                list(f, pairs, |f, (c, _)| write!(f, "{c}"))?;
                f.write_str(") VALUES (")?;
                list(f, pairs, |f, (_, v)| write!(f, "{v}"))?;
                f.write_char(')')?;
            }
            InsertValues::Json { value, default } => {
                write!(f, " JSON {value}")?;
                match default {
                    Some(JsonDefault::Null) => f.write_str(" DEFAULT NULL")?,
                    Some(JsonDefault::Unset) => f.write_str(" DEFAULT UNSET")?,
                    None => {}
                }
            }
        }
        if self.if_not_exists {
            f.write_str(" IF NOT EXISTS")?;
        }
        using(f, &self.using)
    }
}

impl Display for Update<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "UPDATE {}", self.table)?;
        using(f, &self.using)?;
        f.write_str(" SET ")?;
        list(f, &self.assignments, |f, a| write!(f, "{a}"))?;
        where_and_if(f, &self.where_clause, &self.condition)
    }
}

impl Display for Delete<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("DELETE ")?;
        if !self.columns.is_empty() {
            list(f, &self.columns, |f, c| write!(f, "{c}"))?;
            f.write_char(' ')?;
        }
        write!(f, "FROM {}", self.table)?;
        if let Some(t) = &self.timestamp {
            write!(f, " USING TIMESTAMP {t}")?;
        }
        where_and_if(f, &self.where_clause, &self.condition)
    }
}

impl Display for Modification<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Modification::Insert(s) => write!(f, "{s}"),
            Modification::Update(s) => write!(f, "{s}"),
            Modification::Delete(s) => write!(f, "{s}"),
        }
    }
}

impl Display for Batch<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            BatchKind::Logged => "BEGIN BATCH",
            BatchKind::Unlogged => "BEGIN UNLOGGED BATCH",
            BatchKind::Counter => "BEGIN COUNTER BATCH",
        })?;
        using(f, &self.using)?;
        for s in &self.statements {
            write!(f, " {s};")?;
        }
        f.write_str(" APPLY BATCH")
    }
}

impl Display for StatementKind<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            StatementKind::Modification(m) => write!(f, "{m}"),
            StatementKind::Batch(b) => write!(f, "{b}"),
            StatementKind::Truncate(t) => write!(f, "TRUNCATE {t}"),
            StatementKind::Use(k) => write!(f, "USE {k}"),
            StatementKind::Select(s) => f.write_str(s.text),
            StatementKind::Schema(s) => f.write_str(s.text),
            StatementKind::Access(a) => f.write_str(a.text),
            StatementKind::Other(o) => f.write_str(o.text),
        }
    }
}

impl Display for Statement<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)
    }
}
