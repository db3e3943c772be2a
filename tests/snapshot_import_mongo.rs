//! `tidemark snapshot import --mongodump DIR` and `--archive FILE` (gzip'd and not):
//! the snapshot holds exactly the documents written, byte for byte, keyed by `_id`.
//!
//! The real `mongodump` cannot be installed here (the Go module proxy refuses
//! `github.com/mongodb/mongo-tools`), so the inputs are written in the test from
//! mongo-tools' own format description (`common/archive/archive-spec.md`: magic
//! number, header, collection metadata, terminator, interleaved namespace segments,
//! EOF headers) and its directory layout (`db/coll.bson`, `coll.metadata.json`).

mod snapshot_support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use bson::{doc, oid::ObjectId, Document};
use snapshot_support::{read, tidemark};
use tidemark::snapshot::{PartRange, RowData};

fn bytes(d: &Document) -> Vec<u8> {
    let mut out = Vec::new();
    d.to_writer(&mut out).unwrap();
    out
}

fn gz(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// Two collections: `shop.orders` (ObjectId, string and int `_id`s; nested values)
/// and `shop.users`; the metadata mongodump writes (canonical Extended JSON).
fn collections() -> Vec<(&'static str, &'static str, Vec<Document>, String)> {
    let orders: Vec<Document> = (0..40)
        .map(|i| match i % 3 {
            0 => doc! {"_id": ObjectId::from_bytes([0x65, 0, 0, 0, 1, 2, 3, 4, 5, 6, 0, i as u8]), "n": i, "items": [{"sku": format!("s{i}"), "q": i * 2}], "when": bson::DateTime::from_millis(1_700_000_000_000 + i64::from(i))},
            1 => doc! {"_id": format!("o{i}"), "n": i, "note": "x".repeat(i as usize)},
            _ => doc! {"_id": i, "n": f64::from(i) / 3.0, "tags": ["a", "b"]},
        })
        .collect();
    let users: Vec<Document> = (0..5)
        .map(|i| doc! {"_id": format!("u{i}"), "name": format!("user {i}"), "age": 20 + i})
        .collect();
    let meta = |coll: &str| {
        format!(
            r#"{{"indexes":[{{"v":{{"$numberInt":"2"}},"key":{{"_id":{{"$numberInt":"1"}}}},"name":"_id_"}}],"uuid":"0123456789abcdef0123456789abcdef","collectionName":"{coll}","type":"collection","options":{{}}}}"#
        )
    };
    vec![
        ("shop", "orders", orders, meta("orders")),
        ("shop", "users", users, meta("users")),
    ]
}

fn write_dir(dir: &Path, gzip: bool) {
    for (db, coll, docs, meta) in collections() {
        std::fs::create_dir_all(dir.join(db)).unwrap();
        let data: Vec<u8> = docs.iter().flat_map(bytes).collect();
        let (b, m) = if gzip {
            (gz(&data), gz(meta.as_bytes()))
        } else {
            (data, meta.into_bytes())
        };
        let ext = if gzip { ".gz" } else { "" };
        std::fs::write(dir.join(db).join(format!("{coll}.bson{ext}")), b).unwrap();
        std::fs::write(dir.join(db).join(format!("{coll}.metadata.json{ext}")), m).unwrap();
    }
    // The server's own collection mongodump also writes: not user data.
    std::fs::create_dir_all(dir.join("admin")).unwrap();
    std::fs::write(
        dir.join("admin/system.version.bson"),
        bytes(&doc! {"_id": "featureCompatibilityVersion", "version": "8.0"}),
    )
    .unwrap();
}

/// An archive per archive-spec.md, segments of the two collections interleaved.
fn write_archive(path: &Path, gzip: bool) {
    const TERM: [u8; 4] = [0xff; 4];
    let colls = collections();
    let mut a = vec![0x6d, 0xe2, 0x99, 0x81];
    a.extend(bytes(&doc! {"concurrent_collections": 4, "version": "0.1", "server_version": "8.0.0", "tool_version": "100.10.0"}));
    for (db, coll, docs, meta) in &colls {
        let size: usize = docs.iter().map(|d| bytes(d).len()).sum();
        a.extend(bytes(
            &doc! {"db": *db, "collection": *coll, "metadata": meta.as_str(), "size": size as i32},
        ));
    }
    a.extend(TERM);
    // Segments of 7 documents, alternating between the collections.
    let mut at = vec![0usize; colls.len()];
    loop {
        let mut any = false;
        for (i, (db, coll, docs, _)) in colls.iter().enumerate() {
            if at[i] >= docs.len() {
                continue;
            }
            any = true;
            a.extend(bytes(
                &doc! {"db": *db, "collection": *coll, "EOF": false, "CRC": 0i64},
            ));
            for d in docs.iter().skip(at[i]).take(7) {
                a.extend(bytes(d));
            }
            at[i] += 7;
            a.extend(TERM);
        }
        if !any {
            break;
        }
    }
    for (db, coll, _, _) in &colls {
        a.extend(bytes(
            &doc! {"db": *db, "collection": *coll, "EOF": true, "CRC": 0i64},
        ));
        a.extend(TERM);
    }
    std::fs::write(path, if gzip { gz(&a) } else { a }).unwrap();
}

/// The snapshot's documents equal the ones written, byte for byte, each keyed by its
/// `_id` as the log keys it, and every collection's indexes are recorded.
async fn check(store: &Path, args: &[&str]) {
    let mut a = vec![
        "snapshot",
        "import",
        "--store",
        store.to_str().unwrap(),
        "--json",
    ];
    a.extend_from_slice(args);
    let out = tidemark(&a).await;
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (infos, rows) = read(store, 1);
    let info = &infos[0];
    assert!(info.finished.is_some());
    let names: Vec<&str> = info.namespaces.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        ["shop.orders", "shop.users"],
        "system collections left out"
    );
    for n in &info.namespaces {
        let schema: serde_json::Value = serde_json::from_str(&n.schema).unwrap();
        assert_eq!(schema["indexes"][0]["name"], "_id_", "{}", n.schema);
    }
    assert!(info
        .parts
        .iter()
        .all(|p| matches!(p.range, PartRange::File { input_bytes, .. } if input_bytes > 0)));
    let mut want: BTreeMap<(String, Vec<u8>), ()> = BTreeMap::new();
    for (db, coll, docs, _) in collections() {
        for d in docs {
            want.insert((format!("{db}.{coll}"), bytes(&d)), ());
        }
    }
    let mut got: BTreeMap<(String, Vec<u8>), ()> = BTreeMap::new();
    for r in &rows {
        let RowData::Mongo { document } = &r.data else {
            panic!("a MongoDB row")
        };
        let d = Document::from_reader(&document[..]).unwrap();
        let id =
            serde_json::to_value(d.get("_id").unwrap().clone().into_relaxed_extjson()).unwrap();
        assert_eq!(r.key, serde_json::json!({"_id": id}).to_string());
        got.insert((r.namespace.clone(), document.clone()), ());
    }
    assert_eq!(got.len(), 45);
    assert!(got == want, "documents differ");
    assert_eq!(info.rows(), 45);
}

#[tokio::test]
async fn mongodump_directories_and_archives_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    for gzip in [false, true] {
        let d = dir.path().join(format!("dump-{gzip}"));
        write_dir(&d, gzip);
        check(
            &dir.path().join(format!("s-dir-{gzip}")),
            &["--mongodump", d.to_str().unwrap()],
        )
        .await;
        let f = dir.path().join(format!("archive-{gzip}"));
        write_archive(&f, gzip);
        check(
            &dir.path().join(format!("s-arc-{gzip}")),
            &["--archive", f.to_str().unwrap()],
        )
        .await;
    }
}

#[tokio::test]
async fn truncated_or_garbled_archives_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("archive");
    write_archive(&f, false);
    let good = std::fs::read(&f).unwrap();
    let mut cases = vec![
        good[..good.len() - 3].to_vec(),
        good[..40].to_vec(),
        good[4..].to_vec(),
    ];
    let mut flipped = good.clone();
    // A document length in the middle made huge.
    flipped[200..204].copy_from_slice(&0x7fff_ffffi32.to_le_bytes());
    cases.push(flipped);
    cases.push(gz(&good)[..30].to_vec());
    for (i, bad) in cases.into_iter().enumerate() {
        let p = dir.path().join(format!("bad{i}"));
        std::fs::write(&p, bad).unwrap();
        let store = dir.path().join(format!("store{i}"));
        let out = tidemark(&[
            "snapshot",
            "import",
            "--archive",
            p.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
        ])
        .await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "case {i}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "case {i}: {err}");
        assert!(!store.exists(), "case {i} wrote a store");
    }
}
