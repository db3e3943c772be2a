//! Property: for random statements built from an AST generator,
//! `parse(render(ast)) == ast` (bind markers numbered the same way).

use proptest::prelude::*;
use std::borrow::Cow;
use tidemark_cql::statement::*;

type T = Term<'static>;

fn leak(s: String) -> &'static str {
    s.leak()
}

/// Any non-empty name: plain ones, keyword-like ones, and ones that need quoting.
fn ident() -> impl Strategy<Value = Ident<'static>> {
    prop_oneof![
        4 => "[a-z][a-z0-9_]{0,7}",
        1 => prop::sample::select(vec![
            "key", "ttl", "timestamp", "values", "json", "count", "exists", "select", "from",
            "token", "contains", "type", "user", "list", "map", "nan", "true", "p1d",
        ])
        .prop_map(String::from),
        1 => "[A-Za-z0-9 _\"'.;$-]{1,8}",
    ]
    .prop_map(|s| Ident(Cow::Owned(s)))
}

fn qname() -> impl Strategy<Value = QualifiedName<'static>> {
    (prop::option::of(ident()), ident())
        .prop_map(|(keyspace, name)| QualifiedName { keyspace, name })
}

fn marker() -> impl Strategy<Value = T> {
    prop::option::of(ident()).prop_map(|name| Term::Bind(BindMarker { index: 0, name }))
}

fn constant() -> impl Strategy<Value = T> {
    prop_oneof![
        Just(Term::Null),
        any::<bool>().prop_map(Term::Bool),
        "-?[0-9]{1,25}".prop_map(|s| Term::Integer(leak(s))),
        prop::sample::select(vec![
            "1.5",
            "-0.25",
            "3.",
            "1e10",
            "2.5E-3",
            "-7e+2",
            "NaN",
            "-NaN",
            "Infinity",
            "-Infinity",
        ])
        .prop_map(Term::Float),
        "\\PC{0,12}".prop_map(|s| Term::Str(Cow::Owned(s))),
        prop::sample::select(vec![
            "1h30m",
            "2d",
            "-3mo",
            "12µs",
            "1y2mo3w4d5h6m7s8ms9us10ns",
            "P1Y2M3D",
            "P1DT2H",
            "PT5M",
            "P2W",
            "-P1D",
            "P0001-02-03T04:05:06",
        ])
        .prop_map(Term::Duration),
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9A-F]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
            .prop_map(|s| Term::Uuid(leak(s))),
        "0x[0-9a-fA-F]{0,10}".prop_map(|s| Term::Blob(leak(s))),
    ]
}

fn cql_type() -> impl Strategy<Value = CqlType<'static>> {
    let leaf = prop_oneof![
        prop::sample::select(NATIVE_TYPES.to_vec()).prop_map(CqlType::Native),
        qname().prop_map(CqlType::Udt),
        "[a-zA-Z.]{1,10}".prop_map(|s| CqlType::Custom(Cow::Owned(s))),
    ];
    leaf.prop_recursive(3, 8, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| CqlType::List(Box::new(t))),
            inner.clone().prop_map(|t| CqlType::Set(Box::new(t))),
            inner.clone().prop_map(|t| CqlType::Frozen(Box::new(t))),
            (inner.clone(), inner.clone())
                .prop_map(|(k, v)| CqlType::Map(Box::new(k), Box::new(v))),
            prop::collection::vec(inner.clone(), 1..3).prop_map(CqlType::Tuple),
            (inner, "[1-9][0-9]{0,3}").prop_map(|(t, n)| CqlType::Vector(Box::new(t), leak(n))),
        ]
    })
}

/// Terms that parse as `simpleTerm` (no top-level arithmetic or negation).
fn simple_term() -> impl Strategy<Value = T> {
    let leaf = prop_oneof![4 => constant(), 1 => marker()];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Term::List),
            prop::collection::vec(inner.clone(), 0..3).prop_map(Term::Set),
            prop::collection::vec((inner.clone(), inner.clone()), 1..3).prop_map(Term::Map),
            prop::collection::vec((ident(), inner.clone()), 1..3).prop_map(Term::Udt),
            prop::collection::vec(inner.clone(), 1..3).prop_map(Term::Tuple),
            (qname(), prop::collection::vec(inner.clone(), 0..3))
                .prop_filter("cast() is not a function", |(n, _)| n.name.as_str()
                    != "cast")
                .prop_map(|(name, args)| Term::Function { name, args }),
            // `('x') v` reads as a tuple, as in Cassandra: no custom-type hints.
            (
                cql_type().prop_filter("custom", |t| !matches!(t, CqlType::Custom(_))),
                inner.clone()
            )
                .prop_map(|(ty, t)| Term::TypeHint {
                    ty,
                    term: Box::new(t)
                }),
            (inner, cql_type()).prop_map(|(t, ty)| Term::Cast {
                term: Box::new(t),
                ty
            }),
        ]
    })
}

/// Full terms: simple terms, a negation, or a short left-associative arithmetic chain.
fn term() -> impl Strategy<Value = T> {
    let arith = prop::sample::select(vec![
        ArithOp::Add,
        ArithOp::Sub,
        ArithOp::Mul,
        ArithOp::Div,
        ArithOp::Rem,
    ]);
    prop_oneof![
        6 => simple_term(),
        1 => simple_term().prop_map(|t| Term::Negate(Box::new(t))),
        1 => (simple_term(), arith, simple_term()).prop_map(|(l, op, r)| {
            Term::BinaryOp { op, lhs: Box::new(l), rhs: Box::new(r) }
        }),
    ]
}

fn int_or_marker() -> impl Strategy<Value = T> {
    prop_oneof![
        "-?[0-9]{1,12}".prop_map(|s| Term::Integer(leak(s))),
        marker()
    ]
}

fn using() -> impl Strategy<Value = Vec<UsingParam<'static>>> {
    prop_oneof![
        Just(vec![]),
        int_or_marker().prop_map(|t| vec![UsingParam::Timestamp(t)]),
        int_or_marker().prop_map(|t| vec![UsingParam::Ttl(t)]),
        (int_or_marker(), int_or_marker())
            .prop_map(|(a, b)| vec![UsingParam::Ttl(a), UsingParam::Timestamp(b)]),
        (int_or_marker(), int_or_marker())
            .prop_map(|(a, b)| vec![UsingParam::Timestamp(a), UsingParam::Ttl(b)]),
    ]
}

fn comparison() -> impl Strategy<Value = Operator> {
    use Operator::*;
    prop::sample::select(vec![Eq, Neq, Lt, Lte, Gt, Gte])
}

/// Operator and right side for a single column; `full` adds the WHERE-only forms.
fn op_rhs(full: bool) -> BoxedStrategy<(Operator, Rhs<'static>)> {
    use Operator::*;
    let mut v: Vec<BoxedStrategy<(Operator, Rhs<'static>)>> = vec![
        (comparison(), term())
            .prop_map(|(o, t)| (o, Rhs::Term(t)))
            .boxed(),
        (
            prop::sample::select(vec![In, NotIn]),
            prop::collection::vec(term(), 0..3),
        )
            .prop_map(|(o, l)| (o, Rhs::List(l)))
            .boxed(),
        (prop::sample::select(vec![In, NotIn]), marker())
            .prop_map(|(o, m)| (o, Rhs::Term(m)))
            .boxed(),
        (
            prop::sample::select(vec![Contains, ContainsKey, NotContains, NotContainsKey]),
            term(),
        )
            .prop_map(|(o, t)| (o, Rhs::Term(t)))
            .boxed(),
    ];
    if full {
        v.push(
            (term(), term())
                .prop_map(|(a, b)| (Between, Rhs::Between(a, b)))
                .boxed(),
        );
        v.push(term().prop_map(|t| (Like, Rhs::Term(t))).boxed());
        v.push(Just((IsNotNull, Rhs::None)).boxed());
    }
    prop::strategy::Union::new(v).boxed()
}

fn tuple_value(n: usize) -> impl Strategy<Value = T> {
    prop_oneof![
        prop::collection::vec(term(), n..=n).prop_map(Term::Tuple),
        marker()
    ]
}

fn relation() -> impl Strategy<Value = Relation<'static>> {
    let column = (ident(), op_rhs(true)).prop_map(|(c, (op, rhs))| Relation {
        lhs: RelationLhs::Column(c),
        op,
        rhs,
    });
    let element = (ident(), term(), comparison(), term()).prop_map(|(c, k, op, t)| Relation {
        lhs: RelationLhs::Element(c, k),
        op,
        rhs: Rhs::Term(t),
    });
    let token =
        (prop::collection::vec(ident(), 1..3), comparison(), term()).prop_map(|(cs, op, t)| {
            Relation {
                lhs: RelationLhs::Token(cs),
                op,
                rhs: Rhs::Term(t),
            }
        });
    let tuple = prop::collection::vec(ident(), 1..3).prop_flat_map(|cs| {
        let n = cs.len();
        let cs2 = cs.clone();
        let cs3 = cs.clone();
        prop_oneof![
            (comparison(), tuple_value(n)).prop_map(move |(op, t)| Relation {
                lhs: RelationLhs::Tuple(cs.clone()),
                op,
                rhs: Rhs::Term(t)
            }),
            prop::collection::vec(tuple_value(n), 0..3).prop_map(move |l| Relation {
                lhs: RelationLhs::Tuple(cs2.clone()),
                op: Operator::In,
                rhs: Rhs::List(l),
            }),
            marker().prop_map(move |m| Relation {
                lhs: RelationLhs::Tuple(cs3.clone()),
                op: Operator::In,
                rhs: Rhs::Term(m),
            }),
        ]
    });
    prop_oneof![5 => column, 1 => element, 1 => token, 1 => tuple]
}

fn column_ref() -> impl Strategy<Value = ColumnRef<'static>> {
    prop_oneof![
        3 => ident().prop_map(ColumnRef::Column),
        1 => (ident(), term()).prop_map(|(c, k)| ColumnRef::Element(c, k)),
        1 => (ident(), ident()).prop_map(|(c, f)| ColumnRef::Field(c, f)),
    ]
}

fn condition() -> impl Strategy<Value = Option<Condition<'static>>> {
    let cond = (column_ref(), op_rhs(false)).prop_map(|(target, (op, rhs))| ColumnCondition {
        target,
        op,
        rhs,
    });
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(Condition::Exists)),
        1 => prop::collection::vec(cond, 1..3).prop_map(|c| Some(Condition::Columns(c))),
    ]
}

fn insert() -> impl Strategy<Value = Insert<'static>> {
    let values = prop_oneof![
        3 => prop::collection::vec((ident(), term()), 1..4).prop_map(InsertValues::Columns),
        1 => (
            prop_oneof!["\\PC{0,12}".prop_map(|s| Term::Str(Cow::Owned(s))), marker()],
            prop::option::of(prop::sample::select(vec![JsonDefault::Null, JsonDefault::Unset])),
        )
            .prop_map(|(value, default)| InsertValues::Json { value, default }),
    ];
    (qname(), values, any::<bool>(), using()).prop_map(|(table, values, if_not_exists, using)| {
        Insert {
            table,
            values,
            if_not_exists,
            using,
        }
    })
}

fn assignment() -> impl Strategy<Value = Assignment<'static>> {
    let op = prop_oneof![
        3 => term().prop_map(AssignOp::Set),
        1 => term().prop_map(AssignOp::Add),
        1 => term().prop_map(AssignOp::Subtract),
        1 => term().prop_map(AssignOp::Prepend),
        1 => (term(), term()).prop_map(|(key, value)| AssignOp::SetElement { key, value }),
        1 => (ident(), term()).prop_map(|(field, value)| AssignOp::SetField { field, value }),
    ];
    (ident(), op).prop_map(|(column, op)| Assignment { column, op })
}

fn update() -> impl Strategy<Value = Update<'static>> {
    (
        qname(),
        using(),
        prop::collection::vec(assignment(), 1..4),
        prop::collection::vec(relation(), 1..4),
        condition(),
    )
        .prop_map(
            |(table, using, assignments, where_clause, condition)| Update {
                table,
                using,
                assignments,
                where_clause,
                condition,
            },
        )
}

fn delete() -> impl Strategy<Value = Delete<'static>> {
    (
        prop::collection::vec(column_ref(), 0..3),
        qname(),
        prop::option::of(int_or_marker()),
        prop::collection::vec(relation(), 1..4),
        condition(),
    )
        .prop_map(
            |(columns, table, timestamp, where_clause, condition)| Delete {
                columns,
                table,
                timestamp,
                where_clause,
                condition,
            },
        )
}

fn modification() -> impl Strategy<Value = Modification<'static>> {
    prop_oneof![
        insert().prop_map(Modification::Insert),
        update().prop_map(Modification::Update),
        delete().prop_map(Modification::Delete),
    ]
}

fn statement_kind() -> impl Strategy<Value = StatementKind<'static>> {
    prop_oneof![
        6 => modification().prop_map(StatementKind::Modification),
        2 => (
            prop::sample::select(vec![BatchKind::Logged, BatchKind::Unlogged, BatchKind::Counter]),
            using(),
            prop::collection::vec(modification(), 0..4),
        )
            .prop_map(|(kind, using, statements)| StatementKind::Batch(Batch { kind, using, statements })),
        1 => qname().prop_map(StatementKind::Truncate),
        1 => ident().prop_map(StatementKind::Use),
    ]
}

/// Runs a property in a thread with a large stack, failures saved for replay: generating these nested ASTs
/// with proptest's strategy combinators needs more than the 2 MiB test threads
/// have in a debug build (the parser itself needs far less).
fn run_big_stack<S>(
    cases: u32,
    strategy: fn() -> S,
    test: fn(S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy + 'static,
{
    let h = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            // `source_file` is what the `proptest!` macro sets: with it the default
            // file persistence loads and saves this file's regressions
            // (statement_roundtrip.proptest-regressions) like the other files'.
            let config = ProptestConfig {
                source_file: Some(file!()),
                ..ProptestConfig::with_cases(cases)
            };
            let mut runner = proptest::test_runner::TestRunner::new(config);
            if let Err(e) = runner.run(&strategy(), test) {
                panic!("{e}");
            }
        })
        .unwrap();
    if let Err(e) = h.join() {
        std::panic::resume_unwind(e);
    }
}

fn check_statement(mut kind: StatementKind<'static>) -> Result<(), TestCaseError> {
    let bind_markers = number_bind_markers(&mut kind);
    let want = Statement { kind, bind_markers };
    let text = want.to_string();
    let got = parse_statement(&text);
    prop_assert!(got.is_ok(), "{}\n{:?}", text, got);
    prop_assert_eq!(got.unwrap(), want, "{}", text);
    // A script of the statement twice parses to two equal statements.
    let script = format!("{text};\n{text}");
    let both = parse_statements(&script);
    prop_assert_eq!(both.len(), 2);
    prop_assert!(both.iter().all(|(t, r)| *t == text && r.is_ok()));
    Ok(())
}

#[test]
fn render_then_parse_is_identity() {
    run_big_stack(3000, statement_kind, check_statement);
}

#[test]
fn single_terms_round_trip() {
    run_big_stack(3000, term, |t| {
        check_statement(StatementKind::Modification(Modification::Insert(Insert {
            table: QualifiedName::bare("t"),
            values: InsertValues::Columns(vec![(Ident::new("c"), t)]),
            if_not_exists: false,
            using: vec![],
        })))
    });
}
