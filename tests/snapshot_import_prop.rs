//! Bad input never panics `snapshot import`: the real Cassandra 5.0.9 dumps with
//! bytes flipped, cut or spliced are read to an error or to some rows, never a
//! panic; and mongodump archives likewise. The seed comes from `PROPTEST_RNG_SEED`
//! (fixed under `CI`, see scripts/test.sh).

use proptest::prelude::*;
use tidemark::snapshot::import::{merge::Merge, mongodump, schema, sstabledump};

const DUMPS: [&str; 2] = [
    include_str!("../captures/sstabledump/cassandra509_imp_t.json"),
    include_str!("../captures/sstabledump/cassandra509_imp_l.json"),
];
const SCHEMA: &str =
    "CREATE TABLE imp.t (k int, c text, v text, n bigint, tags set<text>, PRIMARY KEY (k, c));\n\
CREATE TABLE imp.l (k int, c int, s text static, l list<int>, v text, PRIMARY KEY (k, c));";

fn mutate(mut b: Vec<u8>, edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
    for (at, v) in edits {
        if !b.is_empty() {
            let i = at % b.len();
            b[i] = *v;
        }
    }
    b.truncate(b.len() - cut % (b.len() + 1));
    b
}

/// Replaces the `n`-th node (depth first) of `v` with `with`; how many nodes it saw.
fn replace_nth(v: &mut serde_json::Value, n: &mut usize, with: &serde_json::Value) -> bool {
    if *n == 0 {
        *v = with.clone();
        return true;
    }
    *n -= 1;
    match v {
        serde_json::Value::Array(items) => items.iter_mut().any(|x| replace_nth(x, n, with)),
        serde_json::Value::Object(m) => m.values_mut().any(|x| replace_nth(x, n, with)),
        _ => false,
    }
}

fn odd_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::json;
    prop_oneof![
        Just(json!(null)),
        Just(json!("*")),
        Just(json!("")),
        Just(json!("0x")),
        Just(json!("2023-11-14T22:13:20.0000000001Z")),
        Just(json!("99999999-99-99T99:99:99Z")),
        Just(json!(-1)),
        Just(json!(u64::MAX)),
        Just(json!(1.5e300)),
        Just(json!([])),
        Just(json!({})),
        Just(json!([["a"]])),
        Just(json!({"marked_deleted": 1})),
        any::<i64>().prop_map(|i| json!(i)),
        ".{0,12}".prop_map(|s| json!(s)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mutated_sstabledumps_never_panic(
        which in 0usize..2,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in 0usize..64,
    ) {
        let tables = schema::from_text(SCHEMA).unwrap();
        let bytes = mutate(DUMPS[which].as_bytes().to_vec(), &edits, cut);
        let mut m = Merge::default();
        let _ = sstabledump::read(&bytes, &tables[which], 0, &mut m);
        let _ = m.rows();
    }

    #[test]
    fn sstabledumps_with_a_node_replaced_never_panic(
        which in 0usize..2,
        nth in 0usize..400,
        with in odd_value(),
        nth2 in 0usize..400,
        with2 in odd_value(),
    ) {
        let tables = schema::from_text(SCHEMA).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(DUMPS[which]).unwrap();
        replace_nth(&mut v, &mut { nth }, &with);
        replace_nth(&mut v, &mut { nth2 }, &with2);
        let bytes = serde_json::to_vec(&v).unwrap();
        let mut m = Merge::default();
        let _ = sstabledump::read(&bytes, &tables[which], 0, &mut m);
        let _ = m.rows();
    }

    #[test]
    fn mutated_archives_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in 0usize..64,
    ) {
        // A small archive: magic, header, one collection's metadata, terminator,
        // one segment of two documents, its EOF header.
        let mut a = vec![0x6d, 0xe2, 0x99, 0x81];
        let doc = |d: bson::Document| {
            let mut v = Vec::new();
            d.to_writer(&mut v).unwrap();
            v
        };
        a.extend(doc(bson::doc! {"concurrent_collections": 1, "version": "0.1"}));
        a.extend(doc(bson::doc! {"db": "d", "collection": "c", "metadata": "{}", "size": 0}));
        a.extend([0xff; 4]);
        a.extend(doc(bson::doc! {"db": "d", "collection": "c", "EOF": false, "CRC": 0i64}));
        a.extend(doc(bson::doc! {"_id": 1, "x": "y"}));
        a.extend(doc(bson::doc! {"_id": 2, "x": [1, 2]}));
        a.extend([0xff; 4]);
        a.extend(doc(bson::doc! {"db": "d", "collection": "c", "EOF": true, "CRC": 0i64}));
        a.extend([0xff; 4]);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        std::fs::write(&p, mutate(a, &edits, cut)).unwrap();
        let _ = mongodump::read_archive(&p);
    }
}
