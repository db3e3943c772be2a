//! AST for names, terms (values as written in CQL text) and types.
//!
//! Terms keep literal text as written (`&str` slices of the statement), so nothing is
//! lost before the semantic layer decides how to encode a value for its column type:
//! a varint may not fit an `i64`, a decimal may not fit an `f64`.

use std::borrow::Cow;

/// A CQL identifier, already normalized the way Cassandra does it: unquoted names
/// are lowercased, quoted names (`"MixedCase"`, `""` escaped) are kept exactly.
/// Two identifiers are equal exactly when Cassandra would treat them as the same name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ident<'a>(pub Cow<'a, str>);

impl<'a> Ident<'a> {
    /// An identifier from an already-normalized name (no lowercasing is applied).
    pub fn new(name: impl Into<Cow<'a, str>>) -> Self {
        Ident(name.into())
    }

    /// The normalized name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Detaches the identifier from the statement text.
    pub fn into_owned(self) -> Ident<'static> {
        Ident(Cow::Owned(self.0.into_owned()))
    }
}

/// `[keyspace.]name`: a table, type, function, index or view name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QualifiedName<'a> {
    /// The keyspace, when the statement names it; otherwise the connection's
    /// current keyspace applies (see [`QualifiedName::resolve`]).
    pub keyspace: Option<Ident<'a>>,
    pub name: Ident<'a>,
}

/// A fully resolved `keyspace.table`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TableRef<'s> {
    pub keyspace: &'s str,
    pub table: &'s str,
}

impl std::fmt::Display for TableRef<'_> {
    /// `keyspace.table`, the `namespace` of a `write` line (names as normalized).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.keyspace, self.table)
    }
}

impl<'a> QualifiedName<'a> {
    /// A name without keyspace.
    pub fn bare(name: impl Into<Cow<'a, str>>) -> Self {
        QualifiedName {
            keyspace: None,
            name: Ident::new(name),
        }
    }

    /// A keyspace-qualified name.
    pub fn qualified(keyspace: impl Into<Cow<'a, str>>, name: impl Into<Cow<'a, str>>) -> Self {
        QualifiedName {
            keyspace: Some(Ident::new(keyspace)),
            name: Ident::new(name),
        }
    }

    /// Resolves against the connection's current keyspace (set by `USE`, or the
    /// per-request keyspace of protocol v5). An explicit keyspace always wins, as in
    /// Cassandra. `None` when neither exists: Cassandra rejects such a statement.
    /// `current_keyspace` must be normalized (as [`Ident::as_str`] or the
    /// `SET_KEYSPACE` result give it).
    pub fn resolve<'s>(&'s self, current_keyspace: Option<&'s str>) -> Option<TableRef<'s>> {
        let keyspace = match &self.keyspace {
            Some(k) => k.as_str(),
            None => current_keyspace?,
        };
        Some(TableRef {
            keyspace,
            table: self.name.as_str(),
        })
    }
}

/// A bind marker: `?` or `:name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BindMarker<'a> {
    /// Position among all markers of the statement, in order of appearance
    /// (USING and IF included). It is the index of the value in the EXECUTE/QUERY
    /// values and of the column in the PREPARED bind metadata.
    pub index: usize,
    /// The name of a `:name` marker; `None` for `?`.
    pub name: Option<Ident<'a>>,
}

/// A value expression as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Term<'a> {
    Null,
    Bool(bool),
    /// Integer literal text, sign included (`-12`); may exceed 64 bits.
    Integer(&'a str),
    /// Floating literal text as written (`1.5`, `2e-3`, `NaN`, `-Infinity`).
    Float(&'a str),
    /// String literal content, unescaped (`''` → `'`; `$$…$$` verbatim).
    Str(Cow<'a, str>),
    /// Duration literal text (`1h30m`, `P1DT2H`, `-P2W`).
    Duration(&'a str),
    /// Unquoted UUID literal text.
    Uuid(&'a str),
    /// Blob literal text including the `0x` prefix.
    Blob(&'a str),
    List(Vec<Term<'a>>),
    /// `{a, b}`; also `{}`, which Cassandra resolves to an empty set or map by type.
    Set(Vec<Term<'a>>),
    Map(Vec<(Term<'a>, Term<'a>)>),
    /// User-defined type literal `{field: value, ...}`.
    Udt(Vec<(Ident<'a>, Term<'a>)>),
    /// Tuple literal `(a, b)` (also a one-element `(a)`).
    Tuple(Vec<Term<'a>>),
    Bind(BindMarker<'a>),
    /// Function call: `now()`, `toTimestamp(now())`, `ks.fn(1, ?)`.
    Function {
        name: QualifiedName<'a>,
        args: Vec<Term<'a>>,
    },
    /// Type hint `(int) 3`.
    TypeHint {
        ty: CqlType<'a>,
        term: Box<Term<'a>>,
    },
    /// `CAST(term AS type)`.
    Cast {
        term: Box<Term<'a>>,
        ty: CqlType<'a>,
    },
    /// `- term` (a sign that is not part of a numeric literal).
    Negate(Box<Term<'a>>),
    /// Arithmetic (Cassandra 4+): `lhs op rhs`, left-associative, `*` `/` `%` before `+` `-`.
    BinaryOp {
        op: ArithOp,
        lhs: Box<Term<'a>>,
        rhs: Box<Term<'a>>,
    },
}

impl<'a> Term<'a> {
    /// A string literal.
    pub fn str(s: impl Into<Cow<'a, str>>) -> Self {
        Term::Str(s.into())
    }

    /// A positional `?` marker with the given index.
    pub fn marker(index: usize) -> Self {
        Term::Bind(BindMarker { index, name: None })
    }

    /// The bind marker, if this term is one.
    pub fn as_marker(&self) -> Option<&BindMarker<'a>> {
        match self {
            Term::Bind(m) => Some(m),
            _ => None,
        }
    }
}

/// Arithmetic operators in terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl ArithOp {
    pub fn symbol(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Rem => "%",
        }
    }
}

/// A CQL type, as used in type hints and casts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CqlType<'a> {
    /// A native type, by its canonical lowercase name (`int`, `text`, `timeuuid`...).
    Native(&'static str),
    List(Box<CqlType<'a>>),
    Set(Box<CqlType<'a>>),
    Map(Box<CqlType<'a>>, Box<CqlType<'a>>),
    Tuple(Vec<CqlType<'a>>),
    /// `vector<type, dimension>`; the dimension as written.
    Vector(Box<CqlType<'a>>, &'a str),
    Frozen(Box<CqlType<'a>>),
    /// A user-defined type.
    Udt(QualifiedName<'a>),
    /// A custom type given by its class name string.
    Custom(Cow<'a, str>),
}

/// The native type names, canonical spelling (`varchar` is kept distinct from
/// `text` because that is how it was written; Cassandra treats them as one type).
pub const NATIVE_TYPES: &[&str] = &[
    "ascii",
    "bigint",
    "blob",
    "boolean",
    "counter",
    "decimal",
    "double",
    "duration",
    "float",
    "inet",
    "int",
    "smallint",
    "text",
    "timestamp",
    "tinyint",
    "uuid",
    "varchar",
    "varint",
    "timeuuid",
    "date",
    "time",
];
