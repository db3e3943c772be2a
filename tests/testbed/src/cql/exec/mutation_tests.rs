//! Tests of `mutation.rs`, kept apart to keep that file short.

mod builds {
    use super::super::*;
    use crate::cql::language::ddl::{parse_ddl, Ddl};
    use crate::cql::storage::store::Partition;
    use tidemark_cql::statement::{parse_statement, StatementKind};
    use tidemark_cql::wire::WireValue;

    fn table(ddl: &str) -> Table {
        let Ok(Ddl::CreateTable {
            name,
            columns,
            default_ttl,
            ..
        }) = parse_ddl(ddl, &|_, _| None)
        else {
            panic!("ddl")
        };
        Table {
            keyspace: "ks".into(),
            name,
            id: [0; 16],
            columns,
            default_ttl,
        }
    }

    /// Builds `q` at `ts` against `state` (the current partition) and merges the
    /// result into it, as applying to a replica would.
    fn run(
        t: &Table,
        state: &mut Partition,
        q: &str,
        vals: Vec<WireValue>,
        ts: i64,
    ) -> Result<usize, ErrorBody> {
        let stmt = parse_statement(q).expect("parse");
        let StatementKind::Modification(m) = &stmt.kind else {
            panic!("not a modification")
        };
        let snapshot = state.clone();
        let current = move |_: &Bytes| snapshot.clone();
        let out = build(m, t, &Bound(vals), ts, 0, &current)?;
        for (_, u) in &out {
            state.merge(u);
        }
        Ok(out.len())
    }

    fn value(t: &Table, p: &Partition, col: &str) -> Option<Bytes> {
        let (ck, live) = p.live_view(now_secs()).into_iter().next()?;
        let i = t.columns.iter().position(|c| c.name == col)?;
        crate::cql::exec::read::row_values(t, &p.key, &ck, &live, now_secs()).0[i].clone()
    }

    fn ints(b: Option<Bytes>) -> Vec<i32> {
        split(&b.unwrap_or_default(), 1)
            .unwrap_or_default()
            .iter()
            .map(|x| i32::from_be_bytes(x[..].try_into().unwrap()))
            .collect()
    }

    #[test]
    fn list_operations_keep_cassandra_order() {
        let t = table("CREATE TABLE c (k int PRIMARY KEY, l list<int>)");
        let mut p = Partition::default();
        run(
            &t,
            &mut p,
            "INSERT INTO c (k, l) VALUES (1, [1, 2])",
            vec![],
            10,
        )
        .unwrap();
        run(
            &t,
            &mut p,
            "UPDATE c SET l = l + [3] WHERE k = 1",
            vec![],
            11,
        )
        .unwrap();
        run(
            &t,
            &mut p,
            "UPDATE c SET l = [-1, 0] + l WHERE k = 1",
            vec![],
            12,
        )
        .unwrap();
        assert_eq!(ints(value(&t, &p, "l")), vec![-1, 0, 1, 2, 3]);
        run(&t, &mut p, "UPDATE c SET l[2] = 10 WHERE k = 1", vec![], 13).unwrap();
        run(&t, &mut p, "DELETE l[0] FROM c WHERE k = 1", vec![], 14).unwrap();
        run(
            &t,
            &mut p,
            "UPDATE c SET l = l - [2] WHERE k = 1",
            vec![],
            15,
        )
        .unwrap();
        assert_eq!(ints(value(&t, &p, "l")), vec![0, 10, 3]);
        let e = run(&t, &mut p, "UPDATE c SET l[7] = 1 WHERE k = 1", vec![], 16).unwrap_err();
        assert!(e.message.contains("out of bound"), "{}", e.message);
        // An overwrite replaces the list even though it is written cell by cell.
        run(&t, &mut p, "UPDATE c SET l = [5] WHERE k = 1", vec![], 17).unwrap();
        assert_eq!(ints(value(&t, &p, "l")), vec![5]);
        // An older overwrite (client timestamp 1) loses entirely: its element is
        // shadowed by the newer overwrite's collection deletion (at 16).
        run(
            &t,
            &mut p,
            "UPDATE c USING TIMESTAMP 1 SET l = [9] WHERE k = 1",
            vec![],
            18,
        )
        .unwrap();
        assert_eq!(ints(value(&t, &p, "l")), vec![5]);
        // A newer append survives the older overwrite's deletion.
        run(
            &t,
            &mut p,
            "UPDATE c USING TIMESTAMP 30 SET l = l + [6] WHERE k = 1",
            vec![],
            19,
        )
        .unwrap();
        assert_eq!(ints(value(&t, &p, "l")), vec![5, 6]);
    }

    #[test]
    fn counters_add_to_the_current_total() {
        let t = table("CREATE TABLE n (k int PRIMARY KEY, c counter)");
        let mut p = Partition::default();
        let delta = |d: i64| vec![WireValue::Bytes(Bytes::copy_from_slice(&d.to_be_bytes()))];
        run(
            &t,
            &mut p,
            "UPDATE n SET c = c + ? WHERE k = 1",
            delta(5),
            10,
        )
        .unwrap();
        // Same client timestamp again: the new total must still win.
        run(
            &t,
            &mut p,
            "UPDATE n SET c = c + ? WHERE k = 1",
            delta(7),
            10,
        )
        .unwrap();
        run(&t, &mut p, "UPDATE n SET c = c - 2 WHERE k = 1", vec![], 11).unwrap();
        let v = value(&t, &p, "c").unwrap();
        assert_eq!(i64::from_be_bytes(v[..].try_into().unwrap()), 10);
        assert!(run(&t, &mut p, "UPDATE n SET c = 3 WHERE k = 1", vec![], 12).is_err());
        assert!(run(
            &t,
            &mut p,
            "UPDATE n USING TIMESTAMP 5 SET c = c + 1 WHERE k = 1",
            vec![],
            12
        )
        .is_err());
        assert!(run(&t, &mut p, "INSERT INTO n (k, c) VALUES (1, 1)", vec![], 12).is_err());
    }

    #[test]
    fn keys_in_and_range_deletes() {
        let t = table("CREATE TABLE r (k int, c int, v text, PRIMARY KEY (k, c)) WITH CLUSTERING ORDER BY (c DESC)");
        let mut p = Partition::default();
        assert_eq!(
            run(
                &t,
                &mut p,
                "DELETE FROM r WHERE k IN (1, 2, 3) AND c = 0",
                vec![],
                1
            )
            .unwrap(),
            3
        );
        let mut p = Partition::default();
        for c in 0..6 {
            run(
                &t,
                &mut p,
                &format!("INSERT INTO r (k, c, v) VALUES (1, {c}, 'x')"),
                vec![],
                5,
            )
            .unwrap();
        }
        run(
            &t,
            &mut p,
            "DELETE FROM r WHERE k = 1 AND c >= 2 AND c < 4",
            vec![],
            6,
        )
        .unwrap();
        let mut left: Vec<i32> = p
            .live_view(0)
            .iter()
            .map(|(ck, _)| i32::from_be_bytes(ck[0][..].try_into().unwrap()))
            .collect();
        left.sort();
        assert_eq!(left, vec![0, 1, 4, 5]);
        assert!(run(
            &t,
            &mut p,
            "DELETE v FROM r WHERE k = 1 AND c > 2",
            vec![],
            7
        )
        .is_err());
        assert!(run(&t, &mut p, "UPDATE r SET v = 'y' WHERE k = 1", vec![], 7).is_err());
        assert!(run(
            &t,
            &mut p,
            "INSERT INTO r (k, v) VALUES (1, 'y')",
            vec![],
            7
        )
        .is_err());
    }

    #[test]
    fn insert_json_and_null_unset() {
        let t = table("CREATE TABLE j (k int PRIMARY KEY, a text, m map<text, int>)");
        let mut p = Partition::default();
        run(
            &t,
            &mut p,
            r#"INSERT INTO j JSON '{"k": 1, "a": "x", "m": {"q": 2}}'"#,
            vec![],
            5,
        )
        .unwrap();
        assert_eq!(value(&t, &p, "a"), Some(Bytes::from_static(b"x")));
        run(
            &t,
            &mut p,
            r#"INSERT INTO j JSON '{"k": 1, "m": {"r": 3}}' DEFAULT UNSET"#,
            vec![],
            6,
        )
        .unwrap();
        assert_eq!(value(&t, &p, "a"), Some(Bytes::from_static(b"x")));
        run(&t, &mut p, r#"INSERT INTO j JSON '{"k": 1}'"#, vec![], 7).unwrap();
        assert_eq!(value(&t, &p, "a"), None);
        assert!(run(
            &t,
            &mut p,
            r#"INSERT INTO j JSON '{"k": 1, "zz": 2}'"#,
            vec![],
            8
        )
        .is_err());
        // Unset bound values leave the column alone; null deletes it.
        run(
            &t,
            &mut p,
            "UPDATE j SET a = ? WHERE k = 1",
            vec![WireValue::Bytes(Bytes::from_static(b"y"))],
            9,
        )
        .unwrap();
        run(
            &t,
            &mut p,
            "UPDATE j SET a = ? WHERE k = 1",
            vec![WireValue::Unset],
            10,
        )
        .unwrap();
        assert_eq!(value(&t, &p, "a"), Some(Bytes::from_static(b"y")));
        run(
            &t,
            &mut p,
            "UPDATE j SET a = ? WHERE k = 1",
            vec![WireValue::Null],
            11,
        )
        .unwrap();
        assert_eq!(value(&t, &p, "a"), None);
    }
}

mod static_tests {
    use super::super::*;
    use crate::cql::language::ddl::{parse_ddl, Ddl};
    use tidemark_cql::statement::{parse_statement, StatementKind};

    #[test]
    fn static_cells_go_to_the_static_row() {
        let Ok(Ddl::CreateTable { columns, .. }) = parse_ddl(
            "CREATE TABLE s (k int, c int, st text STATIC, v text, PRIMARY KEY (k, c))",
            &|_, _| None,
        ) else {
            panic!()
        };
        let t = Table {
            keyspace: "ks".into(),
            name: "s".into(),
            id: [0; 16],
            columns,
            default_ttl: 0,
        };
        let none = |_: &Bytes| Partition::default();
        let one = |q: &str| {
            let stmt = parse_statement(q).unwrap();
            let StatementKind::Modification(m) = &stmt.kind else {
                panic!()
            };
            build(m, &t, &Bound::default(), 5, 0, &none).map(|mut v| v.remove(0).1)
        };
        let p = one("INSERT INTO s (k, c, st, v) VALUES (1, 2, 'S', 'V')").unwrap();
        assert!(p.rows[&Vec::new()].cells.contains_key("st"));
        assert!(p.rows[&Vec::new()].marker.is_none());
        let row = p.rows.iter().find(|(ck, _)| !ck.is_empty()).unwrap().1;
        assert!(row.cells.contains_key("v") && !row.cells.contains_key("st"));
        let p = one("UPDATE s SET st = 'T' WHERE k = 1").unwrap();
        assert_eq!(
            p.rows.keys().collect::<Vec<_>>(),
            vec![&Vec::<Bytes>::new()]
        );
        assert!(one("UPDATE s SET v = 'x' WHERE k = 1").is_err());
        assert!(one("DELETE st FROM s WHERE k = 1").is_ok());
    }
}

mod udt_tests {
    use super::super::*;
    use crate::cql::language::ddl::{parse_ddl, Ddl};
    use tidemark_cql::statement::{parse_statement, StatementKind};

    #[test]
    fn non_frozen_udt_fields_are_cells() {
        let addr = ColumnType::Udt {
            keyspace: "ks".into(),
            name: "addr".into(),
            fields: vec![
                ("street".into(), ColumnType::Varchar),
                ("zip".into(), ColumnType::Int),
            ],
        };
        let Ok(Ddl::CreateTable { columns, .. }) = parse_ddl(
            "CREATE TABLE p (k int PRIMARY KEY, a addr, f frozen<addr>)",
            &|_, n| (n == "addr").then(|| addr.clone()),
        ) else {
            panic!()
        };
        let t = Table {
            keyspace: "ks".into(),
            name: "p".into(),
            id: [0; 16],
            columns,
            default_ttl: 0,
        };
        let mut p = Partition::default();
        for (q, ts) in [
            (
                "INSERT INTO p (k, a) VALUES (1, {street: 'Elm', zip: 1})",
                1,
            ),
            ("UPDATE p SET a.zip = 7 WHERE k = 1", 2),
            ("DELETE a.street FROM p WHERE k = 1", 3),
        ] {
            let stmt = parse_statement(q).unwrap();
            let StatementKind::Modification(m) = &stmt.kind else {
                panic!()
            };
            let snapshot = p.clone();
            let cur = move |_: &Bytes| snapshot.clone();
            for (_, u) in build(m, &t, &Bound::default(), ts, 0, &cur).unwrap() {
                p.merge(&u);
            }
        }
        let (ck, live) = p.live_view(0).remove(0);
        let v = crate::cql::exec::read::row_values(&t, &p.key, &ck, &live, 0).0[1]
            .clone()
            .unwrap();
        // street null (-1), zip 7.
        assert_eq!(&v[..], &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 4, 0, 0, 0, 7]);
        let stmt = parse_statement("UPDATE p SET f.zip = 7 WHERE k = 1").unwrap();
        let StatementKind::Modification(m) = &stmt.kind else {
            panic!()
        };
        let none = |_: &Bytes| Partition::default();
        assert!(
            build(m, &t, &Bound::default(), 4, 0, &none).is_err(),
            "frozen field update"
        );
    }
}
