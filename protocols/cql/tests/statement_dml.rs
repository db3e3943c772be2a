//! INSERT / UPDATE / DELETE / BATCH / TRUNCATE / USE: exact AST and bind markers.

use tidemark_cql::statement::*;

fn id(s: &str) -> Ident<'_> {
    Ident::new(s)
}

fn q<'a>(ks: Option<&'a str>, t: &'a str) -> QualifiedName<'a> {
    QualifiedName {
        keyspace: ks.map(Ident::new),
        name: Ident::new(t),
    }
}

fn m(i: usize) -> Term<'static> {
    Term::marker(i)
}

fn parse(s: &str) -> Statement<'_> {
    match parse_statement(s) {
        Ok(st) => st,
        Err(e) => panic!("{s}: {e}"),
    }
}

fn modification(s: &str) -> Modification<'_> {
    match parse(s).kind {
        StatementKind::Modification(m) => m,
        other => panic!("not DML: {other:?}"),
    }
}

fn insert(s: &str) -> Insert<'_> {
    match modification(s) {
        Modification::Insert(i) => i,
        other => panic!("{other:?}"),
    }
}

fn update(s: &str) -> Update<'_> {
    match modification(s) {
        Modification::Update(u) => u,
        other => panic!("{other:?}"),
    }
}

fn delete(s: &str) -> Delete<'_> {
    match modification(s) {
        Modification::Delete(d) => d,
        other => panic!("{other:?}"),
    }
}

fn eq<'a>(c: &'a str, t: Term<'a>) -> Relation<'a> {
    Relation {
        lhs: RelationLhs::Column(id(c)),
        op: Operator::Eq,
        rhs: Rhs::Term(t),
    }
}

fn bind(index: usize, target: BindTarget<'_>) -> BindInfo<'_> {
    BindInfo {
        index,
        name: None,
        target,
    }
}

#[test]
fn insert_values_beats_capture() {
    let s = "INSERT INTO users (user_id,  fname, lname)\n  VALUES (1745, 'john', 'smith');";
    assert_eq!(
        insert(s),
        Insert {
            table: q(None, "users"),
            values: InsertValues::Columns(vec![
                (id("user_id"), Term::Integer("1745")),
                (id("fname"), Term::str("john")),
                (id("lname"), Term::str("smith")),
            ]),
            if_not_exists: false,
            using: vec![],
        }
    );
}

#[test]
fn insert_qualified_with_uuid_and_set() {
    let s = "INSERT INTO simplex.songs (id, title, album, artist, tags) VALUES \
             (756716f7-2e54-4715-9f00-91dcbea6cf50, 'La Petite Tonkinoise', 'Bye Bye Blackbird', \
             'Joséphine Baker', {'jazz', '2013'})";
    let i = insert(s);
    assert_eq!(i.table, q(Some("simplex"), "songs"));
    let InsertValues::Columns(pairs) = &i.values else {
        panic!()
    };
    assert_eq!(
        pairs[0],
        (id("id"), Term::Uuid("756716f7-2e54-4715-9f00-91dcbea6cf50"))
    );
    assert_eq!(pairs[3], (id("artist"), Term::str("Joséphine Baker")));
    assert_eq!(
        pairs[4],
        (
            id("tags"),
            Term::Set(vec![Term::str("jazz"), Term::str("2013")])
        )
    );
}

#[test]
fn insert_if_not_exists_using_markers() {
    let st =
        parse("INSERT INTO ks.t (k, v) VALUES (?, ?) IF NOT EXISTS USING TTL ? AND TIMESTAMP ?");
    let StatementKind::Modification(Modification::Insert(i)) = &st.kind else {
        panic!()
    };
    assert!(i.if_not_exists);
    assert_eq!(
        i.using,
        vec![UsingParam::Ttl(m(2)), UsingParam::Timestamp(m(3))]
    );
    assert_eq!(
        st.bind_markers,
        vec![
            bind(0, BindTarget::Column(id("k"))),
            bind(1, BindTarget::Column(id("v"))),
            bind(2, BindTarget::Ttl),
            bind(3, BindTarget::Timestamp),
        ]
    );
    assert!(st.is_lwt());
    assert_eq!(using_ttl(&i.using), Some(&m(2)));
    assert_eq!(using_timestamp(&i.using), Some(&m(3)));
}

#[test]
fn insert_using_literals_either_order() {
    let i = insert("insert into t (a) values (1) using timestamp 123 and ttl 60");
    assert_eq!(
        i.using,
        vec![
            UsingParam::Timestamp(Term::Integer("123")),
            UsingParam::Ttl(Term::Integer("60"))
        ]
    );
    let i = insert("INSERT INTO t (a) VALUES (1) USING TTL 60 AND TIMESTAMP -5");
    assert_eq!(
        i.using,
        vec![
            UsingParam::Ttl(Term::Integer("60")),
            UsingParam::Timestamp(Term::Integer("-5"))
        ]
    );
}

#[test]
fn insert_json_forms() {
    let i = insert("INSERT INTO t JSON '{\"k\": 1, \"v\": \"it''s\"}'");
    assert_eq!(
        i.values,
        InsertValues::Json {
            value: Term::str("{\"k\": 1, \"v\": \"it's\"}"),
            default: None
        }
    );
    let i = insert("INSERT INTO t JSON '{}' DEFAULT UNSET IF NOT EXISTS");
    assert_eq!(
        i.values,
        InsertValues::Json {
            value: Term::str("{}"),
            default: Some(JsonDefault::Unset)
        }
    );
    assert!(i.if_not_exists);
    let st = parse("INSERT INTO t JSON ? DEFAULT NULL USING TTL ?");
    assert_eq!(
        st.bind_markers,
        vec![bind(0, BindTarget::Json), bind(1, BindTarget::Ttl)]
    );
    let StatementKind::Modification(Modification::Insert(i)) = &st.kind else {
        panic!()
    };
    assert_eq!(
        i.values,
        InsertValues::Json {
            value: m(0),
            default: Some(JsonDefault::Null)
        }
    );
    let st = parse("INSERT INTO t JSON :doc");
    assert_eq!(st.bind_markers[0].name, Some(id("doc")));
}

#[test]
fn insert_counts_must_match() {
    let e = parse_statement("INSERT INTO t (a, b) VALUES (1)").unwrap_err();
    assert_eq!(e.expected, "as many values as columns");
    assert_eq!(e.offset, 27); // the '(' of the values
}

#[test]
fn update_plain_and_lwt() {
    let u = update(
        "UPDATE users SET fname = 'bob', age = 3 WHERE user_id = 1745 IF age = 2 AND fname > 'a'",
    );
    assert_eq!(
        u,
        Update {
            table: q(None, "users"),
            using: vec![],
            assignments: vec![
                Assignment {
                    column: id("fname"),
                    op: AssignOp::Set(Term::str("bob"))
                },
                Assignment {
                    column: id("age"),
                    op: AssignOp::Set(Term::Integer("3"))
                },
            ],
            where_clause: vec![eq("user_id", Term::Integer("1745"))],
            condition: Some(Condition::Columns(vec![
                ColumnCondition {
                    target: ColumnRef::Column(id("age")),
                    op: Operator::Eq,
                    rhs: Rhs::Term(Term::Integer("2")),
                },
                ColumnCondition {
                    target: ColumnRef::Column(id("fname")),
                    op: Operator::Gt,
                    rhs: Rhs::Term(Term::str("a")),
                },
            ])),
        }
    );
    let u = update("UPDATE t USING TTL 5 SET v = null WHERE k = 0 IF EXISTS");
    assert_eq!(u.condition, Some(Condition::Exists));
    assert_eq!(u.using, vec![UsingParam::Ttl(Term::Integer("5"))]);
    assert_eq!(u.assignments[0].op, AssignOp::Set(Term::Null));
}

fn ops(s: &str) -> Vec<AssignOp<'_>> {
    update(s).assignments.into_iter().map(|a| a.op).collect()
}

#[test]
fn update_counter_forms() {
    assert_eq!(
        ops("UPDATE c SET n = n + 3, m = m - 2, o = o -1, p += 4, q -= 5 WHERE k = 1"),
        vec![
            AssignOp::Add(Term::Integer("3")),
            AssignOp::Subtract(Term::Integer("2")),
            AssignOp::Subtract(Term::Integer("1")),
            AssignOp::Add(Term::Integer("4")),
            AssignOp::Subtract(Term::Integer("5")),
        ]
    );
}

#[test]
fn update_collection_forms() {
    let l = |xs: &[&'static str]| Term::List(xs.iter().map(|x| Term::Integer(x)).collect());
    assert_eq!(
        ops("UPDATE t SET l = l + [1, 2], l = [0] + l, l = l - [3], l[2] = 7 WHERE k = 1"),
        vec![
            AssignOp::Add(l(&["1", "2"])),
            AssignOp::Prepend(l(&["0"])),
            AssignOp::Subtract(l(&["3"])),
            AssignOp::SetElement {
                key: Term::Integer("2"),
                value: Term::Integer("7")
            },
        ]
    );
    assert_eq!(
        ops("UPDATE t SET s = s + {'a'}, s = s - {'b'} WHERE k = 1"),
        vec![
            AssignOp::Add(Term::Set(vec![Term::str("a")])),
            AssignOp::Subtract(Term::Set(vec![Term::str("b")])),
        ]
    );
    assert_eq!(
        ops("UPDATE t SET m = m + {'k': 1}, m['x'] = 2, m = m - {'k1', 'k2'}, u.street = 'x' WHERE k = 1"),
        vec![
            AssignOp::Add(Term::Map(vec![(Term::str("k"), Term::Integer("1"))])),
            AssignOp::SetElement { key: Term::str("x"), value: Term::Integer("2") },
            AssignOp::Subtract(Term::Set(vec![Term::str("k1"), Term::str("k2")])),
            AssignOp::SetField { field: id("street"), value: Term::str("x") },
        ]
    );
}

#[test]
fn update_rejects_foreign_column_arithmetic() {
    assert!(parse_statement("UPDATE t SET a = b + 1 WHERE k = 1").is_err());
    assert!(parse_statement("UPDATE t SET l = [1] + m WHERE k = 1").is_err());
}

#[test]
fn update_bind_targets_in_textual_order() {
    let st = parse(
        "UPDATE ks.t USING TIMESTAMP ? AND TTL ? SET m[?] = ?, u.f = ?, c = c + ?, s = s + {?} \
         WHERE k IN ? AND ck = ? IF l[?] = ? AND u.g IN (?, ?) AND x CONTAINS KEY ?",
    );
    let t = |x| BindTarget::Nested(Box::new(x));
    assert_eq!(
        st.bind_markers
            .into_iter()
            .map(|b| (b.index, b.target))
            .collect::<Vec<_>>(),
        vec![
            (0, BindTarget::Timestamp),
            (1, BindTarget::Ttl),
            (2, BindTarget::Key(id("m"))),
            (3, BindTarget::Element(id("m"))),
            (4, BindTarget::Field(id("u"), id("f"))),
            (5, BindTarget::Column(id("c"))),
            (6, t(BindTarget::Column(id("s")))),
            (7, BindTarget::InValues(id("k"))),
            (8, BindTarget::Column(id("ck"))),
            (9, BindTarget::Key(id("l"))),
            (10, BindTarget::Element(id("l"))),
            (11, BindTarget::Field(id("u"), id("g"))),
            (12, BindTarget::Field(id("u"), id("g"))),
            (13, BindTarget::Key(id("x"))),
        ]
    );
}

#[test]
fn delete_forms() {
    let d = delete("DELETE FROM t WHERE k = 1");
    assert_eq!(
        d,
        Delete {
            columns: vec![],
            table: q(None, "t"),
            timestamp: None,
            where_clause: vec![eq("k", Term::Integer("1"))],
            condition: None,
        }
    );
    let d = delete(
        "DELETE a, m['x'], l[0], u.f FROM ks.t USING TIMESTAMP 99 WHERE k = 1 AND c = 2 IF EXISTS",
    );
    assert_eq!(
        d.columns,
        vec![
            ColumnRef::Column(id("a")),
            ColumnRef::Element(id("m"), Term::str("x")),
            ColumnRef::Element(id("l"), Term::Integer("0")),
            ColumnRef::Field(id("u"), id("f")),
        ]
    );
    assert_eq!(d.timestamp, Some(Term::Integer("99")));
    assert_eq!(d.condition, Some(Condition::Exists));
    assert_eq!(d.where_clause.len(), 2);
}

#[test]
fn delete_ranges() {
    let d = delete("DELETE FROM t WHERE k = 1 AND ck > 5 AND ck <= 10");
    assert_eq!(
        d.where_clause.iter().map(|r| r.kind()).collect::<Vec<_>>(),
        vec![
            RelationKind::Equality,
            RelationKind::Range,
            RelationKind::Range
        ]
    );
    assert_eq!(d.where_clause[2].op, Operator::Lte);
    let d = delete("DELETE FROM t WHERE k = 1 AND (c1, c2) > (1, 'a') AND (c1, c2) < (?, ?)");
    assert_eq!(
        d.where_clause[1],
        Relation {
            lhs: RelationLhs::Tuple(vec![id("c1"), id("c2")]),
            op: Operator::Gt,
            rhs: Rhs::Term(Term::Tuple(vec![Term::Integer("1"), Term::str("a")])),
        }
    );
    let st = parse("DELETE FROM t WHERE k = 1 AND (c1, c2) < (?, ?) AND (c1, c2) IN ?");
    assert_eq!(
        st.bind_markers
            .into_iter()
            .map(|b| b.target)
            .collect::<Vec<_>>(),
        vec![
            BindTarget::Column(id("c1")),
            BindTarget::Column(id("c2")),
            BindTarget::TupleInValues(vec![id("c1"), id("c2")]),
        ]
    );
    // Whole partition and IN on the partition key.
    let d = delete("DELETE FROM t WHERE k IN (1, 2, ?)");
    assert_eq!(d.where_clause[0].kind(), RelationKind::In);
    assert_eq!(
        d.where_clause[0].rhs,
        Rhs::List(vec![Term::Integer("1"), Term::Integer("2"), m(0)])
    );
}

#[test]
fn delete_with_conditions() {
    let d = delete("DELETE FROM t WHERE k = 1 IF v IN (1, 2) AND m['a'] = 3 AND u.f != null");
    let Some(Condition::Columns(c)) = d.condition else {
        panic!()
    };
    assert_eq!(c[0].op, Operator::In);
    assert_eq!(
        c[0].rhs,
        Rhs::List(vec![Term::Integer("1"), Term::Integer("2")])
    );
    assert_eq!(c[1].target, ColumnRef::Element(id("m"), Term::str("a")));
    assert_eq!(c[2].target, ColumnRef::Field(id("u"), id("f")));
    assert_eq!(c[2].op, Operator::Neq);
    assert_eq!(c[2].rhs, Rhs::Term(Term::Null));
}

#[test]
fn where_relation_kinds() {
    let d = delete(
        "DELETE FROM t WHERE token(k1, k2) > 5 AND tags CONTAINS 'x' AND m CONTAINS KEY 'y' \
         AND (c = 1) AND d BETWEEN 1 AND 3 AND e LIKE 'a%' AND f IS NOT NULL AND g NOT IN (1) \
         AND m['a'] = 2 AND h != 4",
    );
    let kinds: Vec<_> = d.where_clause.iter().map(|r| r.kind()).collect();
    use RelationKind::*;
    assert_eq!(
        kinds,
        vec![Token, Filter, Filter, Equality, Range, Filter, Filter, Filter, Filter, Filter]
    );
    assert_eq!(
        d.where_clause[0].lhs,
        RelationLhs::Token(vec![id("k1"), id("k2")])
    );
    assert_eq!(d.where_clause[1].op, Operator::Contains);
    assert_eq!(d.where_clause[2].op, Operator::ContainsKey);
    assert_eq!(
        d.where_clause[3].equality(),
        Some((&id("c"), &Term::Integer("1")))
    );
    assert_eq!(
        d.where_clause[4].rhs,
        Rhs::Between(Term::Integer("1"), Term::Integer("3"))
    );
    assert_eq!(d.where_clause[6].op, Operator::IsNotNull);
    assert_eq!(d.where_clause[7].op, Operator::NotIn);
    assert_eq!(
        d.where_clause[8].lhs,
        RelationLhs::Element(id("m"), Term::str("a"))
    );
}

#[test]
fn batch_forms() {
    let st = parse(
        "BEGIN BATCH USING TIMESTAMP ? \
           INSERT INTO t (k, v) VALUES (?, 1); \
           UPDATE t SET v = ? WHERE k = 2 \
           DELETE FROM t WHERE k = ?; \
         APPLY BATCH;",
    );
    let StatementKind::Batch(b) = &st.kind else {
        panic!()
    };
    assert_eq!(b.kind, BatchKind::Logged);
    assert_eq!(b.using, vec![UsingParam::Timestamp(m(0))]);
    assert_eq!(b.statements.len(), 3);
    assert_eq!(st.modifications().len(), 3);
    assert_eq!(
        st.bind_markers
            .iter()
            .map(|b| b.target.clone())
            .collect::<Vec<_>>(),
        vec![
            BindTarget::Timestamp,
            BindTarget::Column(id("k")),
            BindTarget::Column(id("v")),
            BindTarget::Column(id("k")),
        ]
    );
    let st = parse("begin unlogged batch insert into a (k) values (1) apply batch");
    let StatementKind::Batch(b) = &st.kind else {
        panic!()
    };
    assert_eq!(b.kind, BatchKind::Unlogged);
    let st = parse("BEGIN COUNTER BATCH UPDATE c SET n = n + 1 WHERE k = 1; APPLY BATCH");
    let StatementKind::Batch(b) = &st.kind else {
        panic!()
    };
    assert_eq!(b.kind, BatchKind::Counter);
    let st = parse("BEGIN BATCH APPLY BATCH");
    let StatementKind::Batch(b) = &st.kind else {
        panic!()
    };
    assert!(b.statements.is_empty());
    assert!(parse_statement("BEGIN BATCH SELECT * FROM t; APPLY BATCH").is_err());
    assert!(parse_statement("BEGIN BATCH INSERT INTO t (k) VALUES (1);").is_err());
}

#[test]
fn truncate_and_use() {
    assert_eq!(
        parse("TRUNCATE ks.t").kind,
        StatementKind::Truncate(q(Some("ks"), "t"))
    );
    assert_eq!(
        parse("truncate table T;").kind,
        StatementKind::Truncate(q(None, "t"))
    );
    assert_eq!(parse("USE \"MyKs\"").kind, StatementKind::Use(id("MyKs")));
    assert_eq!(parse("use MyKs").kind, StatementKind::Use(id("myks")));
}

#[test]
fn resolve_keyspace() {
    let st = parse("INSERT INTO users (k) VALUES (1)");
    assert_eq!(
        st.resolve_tables(Some("app")),
        vec![Some(TableRef {
            keyspace: "app",
            table: "users"
        })]
    );
    assert_eq!(st.resolve_tables(None), vec![None]);
    let st = parse("UPDATE other.users SET v = 1 WHERE k = 1");
    assert_eq!(
        st.resolve_tables(Some("app"))[0].unwrap().to_string(),
        "other.users"
    );
    let st =
        parse("BEGIN BATCH INSERT INTO a (k) VALUES (1); DELETE FROM x.b WHERE k = 1; APPLY BATCH");
    let got: Vec<String> = st
        .resolve_tables(Some("ks"))
        .into_iter()
        .map(|t| t.unwrap().to_string())
        .collect();
    assert_eq!(got, vec!["ks.a", "x.b"]);
    assert!(st.is_write());
}

#[test]
fn named_markers_are_numbered_with_positional_ones() {
    let st = parse("UPDATE t SET a = :a, b = ? WHERE k = :key");
    assert_eq!(
        st.bind_markers,
        vec![
            BindInfo {
                index: 0,
                name: Some(id("a")),
                target: BindTarget::Column(id("a"))
            },
            bind(1, BindTarget::Column(id("b"))),
            BindInfo {
                index: 2,
                name: Some(id("key")),
                target: BindTarget::Column(id("k"))
            },
        ]
    );
}

#[test]
fn keywords_as_identifiers() {
    let i = insert("INSERT INTO key.values (key, ttl, timestamp, \"SELECT\", count, json) VALUES (1, 2, 3, 4, 5, 6)");
    assert_eq!(i.table, q(Some("key"), "values"));
    let InsertValues::Columns(p) = &i.values else {
        panic!()
    };
    let names: Vec<_> = p.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        names,
        vec!["key", "ttl", "timestamp", "SELECT", "count", "json"]
    );
    assert!(parse_statement("INSERT INTO t (select) VALUES (1)").is_err());
}

#[test]
fn comments_everywhere() {
    let s = "-- leading\n/* block */ INSERT /* a */ INTO t // x\n (k) VALUES (1) -- trailing\n ; /* after */";
    assert_eq!(insert(s).table, q(None, "t"));
}
