//! Terms and literals, identifiers, comments: exact ASTs.

use tidemark_cql::statement::*;

/// The single value of `INSERT INTO t (c) VALUES (<term>)`.
fn value(term: &str) -> Term<'static> {
    let text: &'static str =
        Box::leak(format!("INSERT INTO t (c) VALUES ({term})").into_boxed_str());
    let st = parse_statement(text).unwrap_or_else(|e| panic!("{term}: {e}"));
    let StatementKind::Modification(Modification::Insert(i)) = st.kind else {
        panic!()
    };
    let InsertValues::Columns(mut p) = i.values else {
        panic!()
    };
    p.remove(0).1
}

fn id(s: &str) -> Ident<'_> {
    Ident::new(s)
}

fn fun<'a>(name: &'a str, args: Vec<Term<'a>>) -> Term<'a> {
    Term::Function {
        name: QualifiedName::bare(name),
        args,
    }
}

#[test]
fn strings() {
    assert_eq!(value("'plain'"), Term::str("plain"));
    assert_eq!(value("'it''s'"), Term::str("it's"));
    assert_eq!(value("''"), Term::str(""));
    assert_eq!(value("$$it's $ \"raw\"$$"), Term::str("it's $ \"raw\""));
    assert_eq!(
        value("'Joséphine -- not a comment /* */'"),
        Term::str("Joséphine -- not a comment /* */")
    );
    // Borrowed when nothing had to be unescaped.
    let Term::Str(s) = value("'x'") else { panic!() };
    assert!(matches!(s, std::borrow::Cow::Borrowed(_)));
}

#[test]
fn numbers() {
    assert_eq!(value("42"), Term::Integer("42"));
    assert_eq!(value("-42"), Term::Integer("-42"));
    assert_eq!(
        value("123456789012345678901234567890"),
        Term::Integer("123456789012345678901234567890")
    );
    assert_eq!(value("3.25"), Term::Float("3.25"));
    assert_eq!(value("-1.5E10"), Term::Float("-1.5E10"));
    assert_eq!(value("2e-3"), Term::Float("2e-3"));
    assert_eq!(value("NaN"), Term::Float("NaN"));
    assert_eq!(value("-NaN"), Term::Float("-NaN"));
    assert_eq!(value("Infinity"), Term::Float("Infinity"));
    assert_eq!(value("-infinity"), Term::Float("-infinity"));
    assert_eq!(value("- 5"), Term::Negate(Box::new(Term::Integer("5"))));
}

#[test]
fn other_constants() {
    assert_eq!(value("0xCAFEbabe"), Term::Blob("0xCAFEbabe"));
    assert_eq!(value("0x"), Term::Blob("0x"));
    assert_eq!(value("true"), Term::Bool(true));
    assert_eq!(value("FALSE"), Term::Bool(false));
    assert_eq!(value("null"), Term::Null);
    assert_eq!(
        value("abcdef01-2345-6789-abcd-ef0123456789"),
        Term::Uuid("abcdef01-2345-6789-abcd-ef0123456789")
    );
    for d in [
        "1h30m",
        "2d",
        "3mo",
        "1y2mo3w4d5h6m7s8ms9us10ns",
        "P1DT2H",
        "PT30S",
        "P3W",
        "-P1Y",
        "P2024-01-02T03:04:05",
    ] {
        assert_eq!(
            value(d),
            Term::Duration(Box::leak(d.to_string().into_boxed_str())),
            "{d}"
        );
    }
}

#[test]
fn collections() {
    assert_eq!(value("[]"), Term::List(vec![]));
    assert_eq!(value("{}"), Term::Set(vec![]));
    assert_eq!(
        value("[1, 2]"),
        Term::List(vec![Term::Integer("1"), Term::Integer("2")])
    );
    assert_eq!(
        value("{'a', 'b'}"),
        Term::Set(vec![Term::str("a"), Term::str("b")])
    );
    assert_eq!(
        value("{'a': 1, 'b': [2]}"),
        Term::Map(vec![
            (Term::str("a"), Term::Integer("1")),
            (Term::str("b"), Term::List(vec![Term::Integer("2")])),
        ])
    );
    assert_eq!(
        value("{street: '1 Main', \"Zip\": 12345, nested: {x: 1}}"),
        Term::Udt(vec![
            (id("street"), Term::str("1 Main")),
            (id("Zip"), Term::Integer("12345")),
            (id("nested"), Term::Udt(vec![(id("x"), Term::Integer("1"))])),
        ])
    );
    assert_eq!(
        value("(1, 'a')"),
        Term::Tuple(vec![Term::Integer("1"), Term::str("a")])
    );
    assert_eq!(
        value("((1))"),
        Term::Tuple(vec![Term::Tuple(vec![Term::Integer("1")])])
    );
    // A duration key makes a map, not a UDT.
    assert_eq!(
        value("{P1D: 1}"),
        Term::Map(vec![(Term::Duration("P1D"), Term::Integer("1"))])
    );
    assert_eq!(
        value("{1: ?}"),
        Term::Map(vec![(Term::Integer("1"), Term::marker(0))])
    );
}

#[test]
fn functions_casts_hints() {
    assert_eq!(value("now()"), fun("now", vec![]));
    assert_eq!(value("uuid()"), fun("uuid", vec![]));
    assert_eq!(
        value("toTimestamp(now())"),
        fun("totimestamp", vec![fun("now", vec![])])
    );
    assert_eq!(value("currentTimestamp()"), fun("currenttimestamp", vec![]));
    assert_eq!(
        value("ks.\"MyFn\"(1, ?)"),
        Term::Function {
            name: QualifiedName::qualified("ks", "MyFn"),
            args: vec![Term::Integer("1"), Term::marker(0)]
        }
    );
    assert_eq!(value("token(1)"), fun("token", vec![Term::Integer("1")]));
    assert_eq!(
        value("(int) 3"),
        Term::TypeHint {
            ty: CqlType::Native("int"),
            term: Box::new(Term::Integer("3"))
        }
    );
    assert_eq!(
        value("(frozen<map<text, list<int>>>) {}"),
        Term::TypeHint {
            ty: CqlType::Frozen(Box::new(CqlType::Map(
                Box::new(CqlType::Native("text")),
                Box::new(CqlType::List(Box::new(CqlType::Native("int")))),
            ))),
            term: Box::new(Term::Set(vec![])),
        }
    );
    assert_eq!(
        value("(ks.addr) {a: 1}"),
        Term::TypeHint {
            ty: CqlType::Udt(QualifiedName::qualified("ks", "addr")),
            term: Box::new(Term::Udt(vec![(id("a"), Term::Integer("1"))])),
        }
    );
    assert_eq!(
        value("CAST(3 AS text)"),
        Term::Cast {
            term: Box::new(Term::Integer("3")),
            ty: CqlType::Native("text")
        }
    );
    assert_eq!(
        value("(tuple<int, vector<float, 3>>) (1, [1.0, 2.0, 3.0])"),
        Term::TypeHint {
            ty: CqlType::Tuple(vec![
                CqlType::Native("int"),
                CqlType::Vector(Box::new(CqlType::Native("float")), "3"),
            ]),
            term: Box::new(Term::Tuple(vec![
                Term::Integer("1"),
                Term::List(vec![
                    Term::Float("1.0"),
                    Term::Float("2.0"),
                    Term::Float("3.0")
                ]),
            ])),
        }
    );
}

#[test]
fn arithmetic_precedence() {
    let i = |s| Box::new(Term::Integer(s));
    assert_eq!(
        value("1 + 2 * 3 - 4"),
        Term::BinaryOp {
            op: ArithOp::Sub,
            lhs: Box::new(Term::BinaryOp {
                op: ArithOp::Add,
                lhs: i("1"),
                rhs: Box::new(Term::BinaryOp {
                    op: ArithOp::Mul,
                    lhs: i("2"),
                    rhs: i("3")
                }),
            }),
            rhs: i("4"),
        }
    );
}

#[test]
fn markers() {
    assert_eq!(value("?"), Term::marker(0));
    assert_eq!(
        value(":Name"),
        Term::Bind(BindMarker {
            index: 0,
            name: Some(id("name"))
        })
    );
    assert_eq!(
        value(":\"Name\""),
        Term::Bind(BindMarker {
            index: 0,
            name: Some(id("Name"))
        })
    );
    let st = parse_statement("INSERT INTO t (a, b) VALUES ([?, ?], {?: ?})").unwrap();
    let idx: Vec<_> = st.bind_markers.iter().map(|b| b.index).collect();
    assert_eq!(idx, vec![0, 1, 2, 3]);
    assert!(st
        .bind_markers
        .iter()
        .all(|b| matches!(b.target, BindTarget::Nested(_))));
}

#[test]
fn identifiers() {
    let st = parse_statement("INSERT INTO \"MyKs\".\"My\"\"Table\" (\"Col\", CoL) VALUES (1, 2)")
        .unwrap();
    let StatementKind::Modification(Modification::Insert(i)) = st.kind else {
        panic!()
    };
    assert_eq!(i.table, QualifiedName::qualified("MyKs", "My\"Table"));
    let InsertValues::Columns(p) = i.values else {
        panic!()
    };
    assert_eq!(p[0].0, id("Col"));
    assert_eq!(p[1].0, id("col"));
    assert_eq!(format!("{}", i.table), "\"MyKs\".\"My\"\"Table\"");
}

#[test]
fn rendering_is_canonical() {
    let cases = [
        (
            "insert into T (A,b) values (1,'x''y') using ttl 3",
            "INSERT INTO t (a, b) VALUES (1, 'x''y') USING TTL 3",
        ),
        (
            "UPDATE t SET c += 1, l = [1]+l WHERE k=?",
            "UPDATE t SET c = c + 1, l = [1] + l WHERE k = ?",
        ),
        (
            "DELETE m[1] FROM t WHERE k IN (1,2) IF EXISTS",
            "DELETE m[1] FROM t WHERE k IN (1, 2) IF EXISTS",
        ),
        (
            "BEGIN UNLOGGED BATCH INSERT INTO t (k) VALUES (1) APPLY BATCH",
            "BEGIN UNLOGGED BATCH INSERT INTO t (k) VALUES (1); APPLY BATCH",
        ),
        (
            "insert into t (\"select\") values ($$a$$)",
            "INSERT INTO t (\"select\") VALUES ('a')",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(parse_statement(input).unwrap().to_string(), want);
    }
}

/// Cases the render/parse round-trip property found (each was a real bug).
#[test]
fn round_trip_regressions() {
    let udt = |ks: Option<&'static str>, n: &'static str| {
        CqlType::Udt(QualifiedName {
            keyspace: ks.map(Ident::new),
            name: Ident::new(n),
        })
    };
    // A UDT named like a native type must stay a UDT.
    let t = Term::Cast {
        term: Box::new(Term::Null),
        ty: udt(None, "timestamp"),
    };
    assert_eq!(t.to_string(), "CAST(NULL AS \"timestamp\")");
    assert_eq!(value(&t.to_string()), t);
    // A keyspace-qualified type whose keyspace is a native type name.
    assert_eq!(
        value("CAST(NULL AS vector<timestamp.a, 1>)"),
        Term::Cast {
            term: Box::new(Term::Null),
            ty: CqlType::Vector(Box::new(udt(Some("timestamp"), "a")), "1"),
        }
    );
    // `('')` is a one-string tuple, not a custom-type hint.
    assert_eq!(
        value("{(''): 1}"),
        Term::Map(vec![(Term::Tuple(vec![Term::str("")]), Term::Integer("1"))])
    );
    // Duration words are constants, never names (so no UDT, marker or type names).
    assert_eq!(
        value("{(P1Y2M3D): P1Y2M3D}"),
        Term::Map(vec![(
            Term::Tuple(vec![Term::Duration("P1Y2M3D")]),
            Term::Duration("P1Y2M3D")
        )])
    );
    assert!(parse_statement("INSERT INTO t (c) VALUES (:P1D)").is_err());
    // A function named `key` after CONTAINS must not read as CONTAINS KEY.
    let st = parse_statement("DELETE FROM t WHERE k = 1 IF z CONTAINS \"key\"(1)").unwrap();
    let rendered = st.to_string();
    assert!(rendered.ends_with("IF z CONTAINS \"key\"(1)"), "{rendered}");
    assert_eq!(parse_statement(&rendered).unwrap(), st);
}
