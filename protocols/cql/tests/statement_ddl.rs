//! Classification of SELECT, DDL, DCL and administrative statements.

use tidemark_cql::statement::*;

fn schema(s: &str) -> SchemaChange<'_> {
    match parse_statement(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .kind
    {
        StatementKind::Schema(c) => c,
        other => panic!("{s}: {other:?}"),
    }
}

fn id(s: &str) -> Ident<'_> {
    Ident::new(s)
}

/// (action, object, keyspace, name, on, if_exists, if_not_exists)
type Summary<'a> = (
    SchemaAction,
    SchemaObject,
    Option<&'a str>,
    Option<&'a str>,
    Option<String>,
    bool,
    bool,
);

fn summary<'a>(c: &'a SchemaChange<'a>) -> Summary<'a> {
    (
        c.action,
        c.object,
        c.keyspace.as_ref().map(|k| k.as_str()),
        c.name.as_ref().map(|k| k.as_str()),
        c.on.as_ref().map(|t| t.to_string()),
        c.if_exists,
        c.if_not_exists,
    )
}

#[test]
fn create_statements() {
    use SchemaAction::Create;
    use SchemaObject::*;
    let cases: Vec<(&str, Summary<'_>)> = vec![
        (
            "CREATE KEYSPACE mykeyspace WITH REPLICATION = { 'class' : 'SimpleStrategy', 'replication_factor' : 1 };",
            (Create, Keyspace, Some("mykeyspace"), None, None, false, false),
        ),
        (
            "CREATE KEYSPACE IF NOT EXISTS simplex WITH replication = {'class':'SimpleStrategy', 'replication_factor':1};",
            (Create, Keyspace, Some("simplex"), None, None, false, true),
        ),
        (
            "CREATE TABLE users (\n  user_id int PRIMARY KEY,\n  fname text,\n  lname text\n);",
            (Create, Table, None, Some("users"), None, false, false),
        ),
        (
            "CREATE TABLE IF NOT EXISTS simplex.playlists (id uuid,title text,album text, artist text,song_id uuid,PRIMARY KEY (id, title, album, artist));",
            (Create, Table, Some("simplex"), Some("playlists"), None, false, true),
        ),
        (
            "CREATE TABLE t2 LIKE ks.t1 WITH INDEXES",
            (Create, Table, None, Some("t2"), Some("ks.t1".into()), false, false),
        ),
        ("CREATE INDEX ON users (lname);", (Create, Index, None, None, Some("users".into()), false, false)),
        (
            "CREATE CUSTOM INDEX IF NOT EXISTS idx ON ks.t (v) USING 'StorageAttachedIndex'",
            (Create, Index, None, Some("idx"), Some("ks.t".into()), false, true),
        ),
        (
            "CREATE TYPE ks.address (street text, city text)",
            (Create, Type, Some("ks"), Some("address"), None, false, false),
        ),
        (
            "CREATE OR REPLACE FUNCTION ks.f (a int) CALLED ON NULL INPUT RETURNS int LANGUAGE java AS $$ return a; $$",
            (Create, Function, Some("ks"), Some("f"), None, false, false),
        ),
        (
            "CREATE AGGREGATE IF NOT EXISTS avg2 (int) SFUNC s STYPE tuple<int, bigint> FINALFUNC f INITCOND (0, 0)",
            (Create, Aggregate, None, Some("avg2"), None, false, true),
        ),
        (
            "CREATE MATERIALIZED VIEW ks.by_name AS SELECT id, name FROM ks.users WHERE name IS NOT NULL AND id IS NOT NULL PRIMARY KEY (name, id)",
            (Create, MaterializedView, Some("ks"), Some("by_name"), Some("ks.users".into()), false, false),
        ),
        (
            "CREATE TRIGGER trg ON ks.t USING 'org.example.Trigger'",
            (Create, Trigger, None, Some("trg"), Some("ks.t".into()), false, false),
        ),
        (
            "CREATE ROLE IF NOT EXISTS alice WITH PASSWORD = 'secret' AND LOGIN = true",
            (Create, Role, None, Some("alice"), None, false, true),
        ),
        ("CREATE USER 'bob' WITH PASSWORD 'x' NOSUPERUSER", (Create, User, None, Some("bob"), None, false, false)),
    ];
    for (text, want) in cases {
        let c = schema(text);
        assert_eq!(summary(&c), want, "{text}");
        assert_eq!(c.text, text.trim_end_matches(';'));
    }
    assert!(schema("CREATE OR REPLACE FUNCTION f () RETURNS NULL ON NULL INPUT RETURNS int LANGUAGE java AS 'x'").or_replace);
}

#[test]
fn alter_and_drop_statements() {
    use SchemaAction::*;
    use SchemaObject::*;
    let cases: Vec<(&str, Summary<'_>)> = vec![
        (
            "ALTER KEYSPACE ks WITH durable_writes = false",
            (Alter, Keyspace, Some("ks"), None, None, false, false),
        ),
        (
            "ALTER TABLE IF EXISTS ks.t ADD c int",
            (Alter, Table, Some("ks"), Some("t"), None, true, false),
        ),
        (
            "ALTER TYPE addr RENAME a TO b",
            (Alter, Type, None, Some("addr"), None, false, false),
        ),
        (
            "ALTER MATERIALIZED VIEW v WITH comment = 'x'",
            (Alter, MaterializedView, None, Some("v"), None, false, false),
        ),
        (
            "ALTER ROLE r WITH LOGIN = false",
            (Alter, Role, None, Some("r"), None, false, false),
        ),
        (
            "DROP KEYSPACE mykeyspace;",
            (Drop, Keyspace, Some("mykeyspace"), None, None, false, false),
        ),
        (
            "DROP KEYSPACE IF EXISTS \"Ks\"",
            (Drop, Keyspace, Some("Ks"), None, None, true, false),
        ),
        (
            "DROP TABLE ks.t",
            (Drop, Table, Some("ks"), Some("t"), None, false, false),
        ),
        (
            "DROP COLUMNFAMILY t",
            (Drop, Table, None, Some("t"), None, false, false),
        ),
        (
            "DROP INDEX IF EXISTS ks.idx",
            (Drop, Index, Some("ks"), Some("idx"), None, true, false),
        ),
        (
            "DROP TYPE t",
            (Drop, Type, None, Some("t"), None, false, false),
        ),
        (
            "DROP FUNCTION ks.f(int, text)",
            (Drop, Function, Some("ks"), Some("f"), None, false, false),
        ),
        (
            "DROP AGGREGATE a",
            (Drop, Aggregate, None, Some("a"), None, false, false),
        ),
        (
            "DROP MATERIALIZED VIEW IF EXISTS v",
            (Drop, MaterializedView, None, Some("v"), None, true, false),
        ),
        (
            "DROP TRIGGER trg ON t",
            (
                Drop,
                Trigger,
                None,
                Some("trg"),
                Some("t".into()),
                false,
                false,
            ),
        ),
        (
            "DROP ROLE IF EXISTS alice",
            (Drop, Role, None, Some("alice"), None, true, false),
        ),
        (
            "DROP USER bob",
            (Drop, User, None, Some("bob"), None, false, false),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(summary(&schema(text)), want, "{text}");
    }
}

#[test]
fn schema_resolution() {
    let c = schema("CREATE INDEX idx ON other.t (v)");
    assert_eq!(c.resolve(Some("cur")).unwrap().to_string(), "other.idx");
    let c = schema("CREATE TABLE t (k int PRIMARY KEY)");
    assert_eq!(c.resolve(Some("cur")).unwrap().to_string(), "cur.t");
    assert_eq!(c.resolve(None), None);
    assert_eq!(schema("DROP KEYSPACE k").resolve(Some("cur")), None);
}

#[test]
fn grants_and_revokes() {
    let st = parse_statement("GRANT SELECT, MODIFY ON KEYSPACE ks TO alice").unwrap();
    let StatementKind::Access(a) = st.kind else {
        panic!()
    };
    assert!(a.grant);
    assert_eq!(a.permissions, vec!["SELECT", "MODIFY"]);
    assert_eq!(a.resource, Some(Resource::Keyspace(id("ks"))));
    assert_eq!(a.grantee, id("alice"));

    let st = parse_statement("REVOKE ALL PERMISSIONS ON ks.t FROM 'bob'").unwrap();
    let StatementKind::Access(a) = st.kind else {
        panic!()
    };
    assert!(!a.grant);
    assert_eq!(a.permissions, vec!["ALL"]);
    assert_eq!(
        a.resource,
        Some(Resource::Table(QualifiedName::qualified("ks", "t")))
    );
    assert_eq!(a.grantee, id("bob"));

    let st = parse_statement("GRANT admin TO carol").unwrap();
    let StatementKind::Access(a) = st.kind else {
        panic!()
    };
    assert_eq!(a.role, Some(id("admin")));
    assert_eq!(a.resource, None);

    for (text, res) in [
        (
            "GRANT EXECUTE ON ALL FUNCTIONS IN KEYSPACE ks TO r",
            Resource::AllFunctions(Some(id("ks"))),
        ),
        (
            "GRANT EXECUTE ON FUNCTION ks.f(int) TO r",
            Resource::Function(QualifiedName::qualified("ks", "f")),
        ),
        ("GRANT ALTER ON ALL ROLES TO r", Resource::AllRoles),
        (
            "GRANT DESCRIBE ON ALL KEYSPACES TO r",
            Resource::AllKeyspaces,
        ),
        (
            "GRANT SELECT ON ALL TABLES IN KEYSPACE ks TO r",
            Resource::AllTablesIn(id("ks")),
        ),
        ("GRANT AUTHORIZE ON ROLE x TO r", Resource::Role(id("x"))),
        (
            "GRANT SELECT ON TABLE t TO r",
            Resource::Table(QualifiedName::bare("t")),
        ),
        ("GRANT SELECT ON ALL MBEANS TO r", Resource::AllMbeans),
        (
            "GRANT SELECT ON MBEAN 'org.apache:type=X' TO r",
            Resource::Mbean("org.apache:type=X".into()),
        ),
    ] {
        let StatementKind::Access(a) = parse_statement(text).unwrap().kind else {
            panic!()
        };
        assert_eq!(a.resource, Some(res), "{text}");
    }
}

#[test]
fn selects_and_others() {
    for (text, table, json) in [
        ("SELECT * FROM users;", "users", false),
        (
            "SELECT * FROM system.local WHERE key='local'",
            "system.local",
            false,
        ),
        (
            "select cluster_name from system.local",
            "system.local",
            false,
        ),
        (
            "SELECT JSON a, b FROM ks.t WHERE k = ? LIMIT 10",
            "ks.t",
            true,
        ),
        ("SELECT json FROM t", "t", false),
        (
            "SELECT count(*), writetime(v), (text) 'from' FROM \"Ks\".t",
            "\"Ks\".t",
            false,
        ),
        (
            "SELECT * FROM simplex.playlists WHERE id = 2cc9ccb7-6221-4ccb-8387-f22b6a1b354d;",
            "simplex.playlists",
            false,
        ),
    ] {
        let st = parse_statement(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let StatementKind::Select(s) = &st.kind else {
            panic!("{text}")
        };
        assert_eq!(s.table.to_string(), table, "{text}");
        assert_eq!(s.json, json, "{text}");
        assert!(!st.is_write());
    }
    for (text, verb) in [
        ("LIST ROLES", "LIST"),
        ("LIST ALL PERMISSIONS OF bob", "LIST"),
        ("DESCRIBE KEYSPACES", "DESCRIBE"),
        ("desc table t", "DESCRIBE"),
    ] {
        let StatementKind::Other(o) = parse_statement(text).unwrap().kind else {
            panic!()
        };
        assert_eq!(o.verb, verb);
        assert_eq!(o.text, text);
    }
    let st = parse_statement("DROP IDENTITY 'user@REALM'").unwrap();
    let StatementKind::Schema(s) = st.kind else {
        panic!()
    };
    assert_eq!(
        (s.object, s.name),
        (SchemaObject::Identity, Some(id("user@REALM")))
    );
    let st = parse_statement("ADD IDENTITY IF NOT EXISTS 'user@REALM' TO ROLE alice").unwrap();
    let StatementKind::Schema(s) = st.kind else {
        panic!()
    };
    assert_eq!((s.action, s.if_not_exists), (SchemaAction::Create, true));
}
