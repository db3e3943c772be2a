//! Bind-marker numbering and what each marker binds to.
//!
//! Cassandra numbers markers (`?` and `:name` alike) in order of appearance in
//! the statement text, USING and IF clauses included; that number is the index of
//! the value in EXECUTE and of the column spec in the PREPARED result metadata.
//! This walk visits the AST in exactly the textual order the grammar fixes, assigns
//! those indexes, and records for each marker what it binds to, so the semantic
//! layer can pair bound values with columns without re-parsing.

use super::ast::{
    AssignOp, Batch, ColumnRef, Condition, Delete, Insert, InsertValues, Modification, Operator,
    Relation, RelationLhs, Rhs, StatementKind, Update, UsingParam,
};
use super::term::{Ident, Term};

/// One bind marker of a statement.
#[derive(Debug, Clone, PartialEq)]
pub struct BindInfo<'a> {
    /// Position among the statement's markers (index into the bound values).
    pub index: usize,
    /// The name of a `:name` marker.
    pub name: Option<Ident<'a>>,
    pub target: BindTarget<'a>,
}

/// What a bound value is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BindTarget<'a> {
    /// A value of the column: `VALUES (?)`, `c = ?`, `WHERE c = ?`, `IF c = ?`, and the
    /// operand of `c = c + ?` / `c = c - ?` / `c = ? + c` (a counter delta, or a
    /// collection of the column's type; for `m = m - ?` on a map, a set of its keys).
    Column(Ident<'a>),
    /// `c IN ?`: a list of values of the column.
    InValues(Ident<'a>),
    /// A map key or list index of the column: `c[?] = v`, `DELETE c[?]`,
    /// `WHERE c CONTAINS KEY ?`.
    Key(Ident<'a>),
    /// A map value or collection element of the column: `c[k] = ?`,
    /// `WHERE c CONTAINS ?`.
    Element(Ident<'a>),
    /// A UDT field: `u.f = ?`, `IF u.f = ?`.
    Field(Ident<'a>, Ident<'a>),
    /// A whole tuple for a multi-column relation: `(a, b) > ?`, `(a, b) IN (?, ?)`.
    Tuple(Vec<Ident<'a>>),
    /// `(a, b) IN ?`: a list of tuples.
    TupleInValues(Vec<Ident<'a>>),
    /// A token value: `token(k) > ?`.
    Token(Vec<Ident<'a>>),
    /// `USING TIMESTAMP ?`.
    Timestamp,
    /// `USING TTL ?`.
    Ttl,
    /// `INSERT ... JSON ?`.
    Json,
    /// A marker inside a collection/tuple/UDT literal, a function call, a cast or
    /// arithmetic, whose result is for the inner target.
    Nested(Box<BindTarget<'a>>),
}

impl<'a> BindTarget<'a> {
    fn nested(&self) -> BindTarget<'a> {
        match self {
            BindTarget::Nested(_) => self.clone(),
            other => BindTarget::Nested(Box::new(other.clone())),
        }
    }
}

/// Assigns marker indexes in textual order and describes every marker.
pub fn number_bind_markers<'a>(kind: &mut StatementKind<'a>) -> Vec<BindInfo<'a>> {
    let mut w = Walker { out: Vec::new() };
    match kind {
        StatementKind::Modification(m) => w.modification(m),
        StatementKind::Batch(b) => w.batch(b),
        _ => {}
    }
    w.out
}

struct Walker<'a> {
    out: Vec<BindInfo<'a>>,
}

impl<'a> Walker<'a> {
    fn term(&mut self, t: &mut Term<'a>, target: &BindTarget<'a>) {
        match t {
            Term::Bind(m) => {
                m.index = self.out.len();
                self.out.push(BindInfo {
                    index: m.index,
                    name: m.name.clone(),
                    target: target.clone(),
                });
            }
            Term::List(items) | Term::Set(items) | Term::Tuple(items) => {
                let n = target.nested();
                items.iter_mut().for_each(|x| self.term(x, &n));
            }
            Term::Map(entries) => {
                let n = target.nested();
                for (k, v) in entries {
                    self.term(k, &n);
                    self.term(v, &n);
                }
            }
            Term::Udt(fields) => {
                let n = target.nested();
                fields.iter_mut().for_each(|(_, v)| self.term(v, &n));
            }
            Term::Function { args, .. } => {
                let n = target.nested();
                args.iter_mut().for_each(|x| self.term(x, &n));
            }
            Term::TypeHint { term, .. } | Term::Cast { term, .. } | Term::Negate(term) => {
                self.term(term, &target.nested())
            }
            Term::BinaryOp { lhs, rhs, .. } => {
                let n = target.nested();
                self.term(lhs, &n);
                self.term(rhs, &n);
            }
            Term::Null
            | Term::Bool(_)
            | Term::Integer(_)
            | Term::Float(_)
            | Term::Str(_)
            | Term::Duration(_)
            | Term::Uuid(_)
            | Term::Blob(_) => {}
        }
    }

    fn using(&mut self, using: &mut [UsingParam<'a>]) {
        for u in using {
            match u {
                UsingParam::Timestamp(t) => self.term(t, &BindTarget::Timestamp),
                UsingParam::Ttl(t) => self.term(t, &BindTarget::Ttl),
            }
        }
    }

    fn modification(&mut self, m: &mut Modification<'a>) {
        match m {
            Modification::Insert(s) => self.insert(s),
            Modification::Update(s) => self.update(s),
            Modification::Delete(s) => self.delete(s),
        }
    }

    fn batch(&mut self, b: &mut Batch<'a>) {
        self.using(&mut b.using);
        b.statements.iter_mut().for_each(|m| self.modification(m));
    }

    fn insert(&mut self, s: &mut Insert<'a>) {
        match &mut s.values {
            InsertValues::Columns(pairs) => {
                for (c, v) in pairs {
                    self.term(v, &BindTarget::Column(c.clone()));
                }
            }
            InsertValues::Json { value, .. } => self.term(value, &BindTarget::Json),
        }
        self.using(&mut s.using);
    }

    fn update(&mut self, s: &mut Update<'a>) {
        self.using(&mut s.using);
        for a in &mut s.assignments {
            let c = a.column.clone();
            match &mut a.op {
                AssignOp::Set(t)
                | AssignOp::Add(t)
                | AssignOp::Subtract(t)
                | AssignOp::Prepend(t) => self.term(t, &BindTarget::Column(c)),
                AssignOp::SetElement { key, value } => {
                    self.term(key, &BindTarget::Key(c.clone()));
                    self.term(value, &BindTarget::Element(c));
                }
                AssignOp::SetField { field, value } => {
                    self.term(value, &BindTarget::Field(c, field.clone()))
                }
            }
        }
        s.where_clause.iter_mut().for_each(|r| self.relation(r));
        self.condition(&mut s.condition);
    }

    fn delete(&mut self, s: &mut Delete<'a>) {
        for c in &mut s.columns {
            if let ColumnRef::Element(col, key) = c {
                self.term(key, &BindTarget::Key(col.clone()));
            }
        }
        if let Some(t) = &mut s.timestamp {
            self.term(t, &BindTarget::Timestamp);
        }
        s.where_clause.iter_mut().for_each(|r| self.relation(r));
        self.condition(&mut s.condition);
    }

    /// Right side for a single column (or element/field) target.
    fn single_rhs(
        &mut self,
        rhs: &mut Rhs<'a>,
        op: Operator,
        value: BindTarget<'a>,
        col: &Ident<'a>,
    ) {
        let target = match op {
            Operator::Contains | Operator::NotContains => BindTarget::Element(col.clone()),
            Operator::ContainsKey | Operator::NotContainsKey => BindTarget::Key(col.clone()),
            _ => value,
        };
        match rhs {
            Rhs::Term(t) if matches!(op, Operator::In | Operator::NotIn) => {
                let list = match &target {
                    BindTarget::Column(c) => BindTarget::InValues(c.clone()),
                    other => other.nested(),
                };
                self.term(t, &list)
            }
            Rhs::Term(t) => self.term(t, &target),
            Rhs::List(items) => items.iter_mut().for_each(|t| self.term(t, &target)),
            Rhs::Between(a, b) => {
                self.term(a, &target);
                self.term(b, &target);
            }
            Rhs::None => {}
        }
    }

    /// One tuple value for `(a, b)`: a tuple literal binds per column.
    fn tuple_value(&mut self, t: &mut Term<'a>, cols: &[Ident<'a>]) {
        match t {
            Term::Tuple(items) if items.len() == cols.len() => {
                for (x, c) in items.iter_mut().zip(cols) {
                    self.term(x, &BindTarget::Column(c.clone()));
                }
            }
            _ => self.term(t, &BindTarget::Tuple(cols.to_vec())),
        }
    }

    fn relation(&mut self, r: &mut Relation<'a>) {
        match &mut r.lhs {
            RelationLhs::Column(c) => {
                let c = c.clone();
                self.single_rhs(&mut r.rhs, r.op, BindTarget::Column(c.clone()), &c);
            }
            RelationLhs::Element(c, key) => {
                let c = c.clone();
                self.term(key, &BindTarget::Key(c.clone()));
                self.single_rhs(&mut r.rhs, r.op, BindTarget::Element(c.clone()), &c);
            }
            RelationLhs::Token(cols) => {
                let target = BindTarget::Token(cols.clone());
                match &mut r.rhs {
                    Rhs::Term(t) => self.term(t, &target),
                    Rhs::List(items) => items.iter_mut().for_each(|t| self.term(t, &target)),
                    Rhs::Between(a, b) => {
                        self.term(a, &target);
                        self.term(b, &target);
                    }
                    Rhs::None => {}
                }
            }
            RelationLhs::Tuple(cols) => {
                let cols = cols.clone();
                match &mut r.rhs {
                    Rhs::Term(t @ Term::Bind(_))
                        if matches!(r.op, Operator::In | Operator::NotIn) =>
                    {
                        self.term(t, &BindTarget::TupleInValues(cols))
                    }
                    Rhs::Term(t) => self.tuple_value(t, &cols),
                    Rhs::List(items) => items.iter_mut().for_each(|t| self.tuple_value(t, &cols)),
                    Rhs::Between(a, b) => {
                        self.tuple_value(a, &cols);
                        self.tuple_value(b, &cols);
                    }
                    Rhs::None => {}
                }
            }
        }
    }

    fn condition(&mut self, c: &mut Option<Condition<'a>>) {
        let Some(Condition::Columns(conds)) = c else {
            return;
        };
        for cc in conds {
            match &mut cc.target {
                ColumnRef::Column(c) => {
                    let c = c.clone();
                    self.single_rhs(&mut cc.rhs, cc.op, BindTarget::Column(c.clone()), &c);
                }
                ColumnRef::Element(c, key) => {
                    let c = c.clone();
                    self.term(key, &BindTarget::Key(c.clone()));
                    self.single_rhs(&mut cc.rhs, cc.op, BindTarget::Element(c.clone()), &c);
                }
                ColumnRef::Field(c, f) => {
                    let (c, f) = (c.clone(), f.clone());
                    self.single_rhs(&mut cc.rhs, cc.op, BindTarget::Field(c.clone(), f), &c);
                }
            }
        }
    }
}
