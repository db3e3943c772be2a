//! A corpus of realistic statements: every QUERY text in the beats-packetbeat
//! captures (extracted with tshark), cqlsh and DataStax driver documentation
//! examples. Each must parse, classify as expected, and (for DML) render to text
//! that parses back to the same AST.

use tidemark_cql::statement::*;

/// (statement, expected classification)
const CORPUS: &[(&str, &str)] = &[
    // beats-packetbeat captures, verbatim.
    ("INSERT INTO users (user_id,  fname, lname)\n  VALUES (1745, 'john', 'smith');", "insert"),
    ("INSERT INTO users (user_id, fname, lname) VALUES (1745,'john','smith')", "insert"),
    ("INSERT INTO simplex.songs (id, title, album, artist, tags) VALUES (756716f7-2e54-4715-9f00-91dcbea6cf50,'La Petite Tonkinoise','Bye Bye Blackbird','Joséphine Baker',{'jazz', '2013'});", "insert"),
    ("INSERT INTO simplex.playlists (id, song_id, title, album, artist) VALUES (2cc9ccb7-6221-4ccb-8387-f22b6a1b354d,756716f7-2e54-4715-9f00-91dcbea6cf50,'La Petite Tonkinoise','Bye Bye Blackbird','Joséphine Baker');", "insert"),
    ("CREATE KEYSPACE mykeyspace WITH REPLICATION = { 'class' : 'SimpleStrategy', 'replication_factor' : 1 };", "schema"),
    ("CREATE KEYSPACE IF NOT EXISTS simplex WITH replication = {'class':'SimpleStrategy', 'replication_factor':1};", "schema"),
    ("CREATE TABLE IF NOT EXISTS simplex.songs (id uuid PRIMARY KEY,title text,album text,artist text,tags set<text>,data blob);", "schema"),
    ("CREATE TABLE IF NOT EXISTS simplex.playlists (id uuid,title text,album text, artist text,song_id uuid,PRIMARY KEY (id, title, album, artist));", "schema"),
    ("CREATE TABLE users (\n  user_id int PRIMARY KEY,\n  fname text,\n  lname text\n);", "schema"),
    ("CREATE INDEX ON users (lname);", "schema"),
    ("DROP KEYSPACE mykeyspace;", "schema"),
    ("SELECT * FROM users;", "select"),
    ("SELECT * FROM users WHERE lname = 'smith';", "select"),
    ("SELECT * FROM system.local WHERE key='local'", "select"),
    ("SELECT * FROM system.peers", "select"),
    ("SELECT * FROM system_schema.keyspaces", "select"),
    ("select cluster_name from system.local", "select"),
    ("SELECT peer, rpc_address, schema_version FROM system.peers", "select"),
    ("SELECT schema_version FROM system.local WHERE key='local'", "select"),
    ("SELECT * FROM system_schema.tables WHERE keyspace_name = 'mykeyspace' AND table_name = 'users'", "select"),
    ("SELECT * FROM system_schema.views WHERE keyspace_name = 'mykeyspace' AND view_name = 'users'", "select"),
    ("SELECT peer, data_center, rack, tokens, rpc_address, schema_version FROM system.peers", "select"),
    ("SELECT cluster_name, data_center, rack, tokens, partitioner, release_version, schema_version FROM system.local WHERE key='local'", "select"),
    ("SELECT * FROM simplex.playlists WHERE id = 2cc9ccb7-6221-4ccb-8387-f22b6a1b354d;", "select"),
    // cqlsh / CQL documentation style.
    ("INSERT INTO NerdMovies (movie, director, main_actor, year) VALUES ('Serenity', 'Joss Whedon', 'Nathan Fillion', 2005) USING TTL 86400;", "insert"),
    ("INSERT INTO NerdMovies JSON '{\"movie\": \"Serenity\", \"director\": \"Joss Whedon\", \"year\": 2005}';", "insert"),
    ("UPDATE NerdMovies USING TTL 400 SET director = 'Joss Whedon', main_actor = 'Nathan Fillion', year = 2005 WHERE movie = 'Serenity';", "update"),
    ("UPDATE UserActions SET total = total + 2 WHERE user = B70DE1D0-9908-4AE3-BE34-5573E5B09F14 AND action = 'click';", "update"),
    ("DELETE FROM NerdMovies USING TIMESTAMP 1240003134 WHERE movie = 'Serenity';", "delete"),
    ("DELETE phone FROM Users WHERE userid IN (C73DE1D3-AF08-40F3-B124-3FF3E5109F22, B70DE1D0-9908-4AE3-BE34-5573E5B09F14);", "delete"),
    ("BEGIN BATCH\n   INSERT INTO users (userid, password, name) VALUES ('user2', 'ch@ngem3b', 'second user');\n   UPDATE users SET password = 'ps22dhds' WHERE userid = 'user3';\n   INSERT INTO users (userid, password) VALUES ('user4', 'ch@ngem3c');\n   DELETE name FROM users WHERE userid = 'user1';\nAPPLY BATCH;", "batch"),
    ("UPDATE users SET favs['author'] = 'Ed Poe' WHERE id = 'jsmith';", "update"),
    ("UPDATE users SET favs = favs + { 'movie' : 'Cassablanca', 'band' : 'Beatles' } WHERE id = 'jsmith';", "update"),
    ("DELETE favs['author'] FROM users WHERE id = 'jsmith';", "delete"),
    ("UPDATE users SET favs = favs - { 'movie', 'band'} WHERE id = 'jsmith';", "update"),
    ("UPDATE images SET tags = tags + { 'gmail', 'cat' } WHERE name = 'cat.jpg';", "update"),
    ("UPDATE plays SET scores = scores + [ 14, 21 ] WHERE id = '123-afde';", "update"),
    ("UPDATE plays SET scores = [ 3 ] + scores WHERE id = '123-afde';", "update"),
    ("UPDATE plays SET scores[1] = 7 WHERE id = '123-afde';", "update"),
    ("DELETE scores[1] FROM plays WHERE id = '123-afde';", "delete"),
    ("UPDATE plays SET scores = scores - [ 12, 21 ] WHERE id = '123-afde';", "update"),
    ("INSERT INTO user (name, addr) VALUES ('z3 Pr3z1den7', { street: '1600 Pennsylvania Ave NW', city: 'Washington', zip: '20500', phones: { 'cell' : { country_code: 1, number: '202 456-1111' }, 'landline' : { country_code: 1, number: '...' } } });", "insert"),
    ("UPDATE user SET addr.street = '1 Infinite Loop' WHERE name = 'z3 Pr3z1den7';", "update"),
    ("INSERT INTO durations (event, duration) VALUES ('ev1', 12h);", "insert"),
    ("INSERT INTO durations (event, duration) VALUES ('ev2', 15h30m);", "insert"),
    ("INSERT INTO durations (event, duration) VALUES ('ev3', PT12H);", "insert"),
    ("INSERT INTO RangeTest (pk, ck1, ck2) VALUES (0, 0, 0) IF NOT EXISTS;", "insert"),
    ("DELETE FROM RangeTest WHERE pk = 0 AND ck1 > 0 AND ck1 <= 3;", "delete"),
    ("DELETE FROM RangeTest WHERE pk = 0 AND (ck1, ck2) >= (1, 2);", "delete"),
    ("UPDATE account SET balance = balance - 10 WHERE id = 1 IF balance >= 10;", "update"),
    ("INSERT INTO ts (id, t) VALUES (now(), toTimestamp(now()));", "insert"),
    ("INSERT INTO ts (id, t, d) VALUES (uuid(), currentTimestamp(), currentDate());", "insert"),
    ("TRUNCATE TABLE simplex.songs;", "truncate"),
    ("USE simplex;", "use"),
    // DataStax driver examples (prepared statements).
    ("INSERT INTO users (id, name, age) VALUES (?, ?, ?)", "insert"),
    ("INSERT INTO users (id, name, age) VALUES (:id, :name, :age) USING TTL :ttl", "insert"),
    ("UPDATE users SET name = ? WHERE id = ? IF name = ?", "update"),
    ("DELETE FROM users WHERE id IN ?", "delete"),
    ("SELECT * FROM users WHERE id = ? LIMIT ?", "select"),
    ("UPDATE counters SET c = c + ? WHERE k = ?", "update"),
    ("INSERT INTO ks.t (k, v) VALUES (?, ?) USING TIMESTAMP ? AND TTL ?", "insert"),
    ("BEGIN UNLOGGED BATCH INSERT INTO t (k, v) VALUES (?, ?); INSERT INTO t (k, v) VALUES (?, ?); APPLY BATCH", "batch"),
    ("DELETE FROM ks.t WHERE token(k) > ? AND token(k) <= ?", "delete"),
    ("GRANT SELECT ON KEYSPACE simplex TO reader", "access"),
    ("ALTER TABLE simplex.songs ADD rating int", "schema"),
    ("LIST ROLES", "other"),
];

fn class(k: &StatementKind<'_>) -> &'static str {
    match k {
        StatementKind::Modification(Modification::Insert(_)) => "insert",
        StatementKind::Modification(Modification::Update(_)) => "update",
        StatementKind::Modification(Modification::Delete(_)) => "delete",
        StatementKind::Batch(_) => "batch",
        StatementKind::Truncate(_) => "truncate",
        StatementKind::Use(_) => "use",
        StatementKind::Select(_) => "select",
        StatementKind::Schema(_) => "schema",
        StatementKind::Access(_) => "access",
        StatementKind::Other(_) => "other",
    }
}

#[test]
fn corpus_parses_classifies_and_round_trips() {
    for (text, want) in CORPUS {
        let st = parse_statement(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(class(&st.kind), *want, "{text}");
        let rendered = st.to_string();
        let again = parse_statement(&rendered).unwrap_or_else(|e| panic!("{rendered}: {e}"));
        assert_eq!(again, st, "round trip of {text}\nrendered: {rendered}");
    }
}

#[test]
fn corpus_as_one_script() {
    let script: String = CORPUS
        .iter()
        .map(|(t, _)| format!("{}\n;\n", t.trim_end_matches(';')))
        .collect();
    let parsed = parse_statements(&script);
    assert_eq!(parsed.len(), CORPUS.len());
    for ((text, result), (orig, _)) in parsed.iter().zip(CORPUS) {
        assert!(result.is_ok(), "{text}");
        assert_eq!(*text, orig.trim_end_matches(';'));
    }
}

#[test]
fn script_recovers_after_errors() {
    let script = "INSERT INTO t (k) VALUES (1); INSERT INTO t (k VALUES 'x;y'; \
                  BEGIN BATCH INSERT INTO t (k) VALUES (; APPLY BATCH; DELETE FROM t WHERE k = 2";
    let parsed = parse_statements(script);
    let oks: Vec<bool> = parsed.iter().map(|(_, r)| r.is_ok()).collect();
    assert_eq!(oks, vec![true, false, false, true]);
    assert_eq!(parsed[1].0, "INSERT INTO t (k VALUES 'x;y'");
    let e = parsed[1].1.as_ref().unwrap_err();
    assert_eq!(&script[e.offset..e.offset + 6], "VALUES");
}

#[test]
fn capture_keyspace_resolution() {
    // cassandra_compressed.pcap: USE-less inserts qualified with simplex.
    let st = parse_statement(CORPUS[2].0).unwrap();
    assert_eq!(
        st.resolve_tables(None)[0].unwrap().to_string(),
        "simplex.songs"
    );
    // cassandra_insert.pcap: unqualified, needs the session keyspace.
    let st = parse_statement(CORPUS[0].0).unwrap();
    assert_eq!(
        st.resolve_tables(Some("mykeyspace"))[0]
            .unwrap()
            .to_string(),
        "mykeyspace.users"
    );
}
