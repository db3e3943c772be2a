//! `tidemark restore` and `tidemark verify` against FerretDB (a real MongoDB-wire
//! server we did not write, started by `scripts/ferretdb.sh`): the version of a
//! tapped testbed replica set (through a failover with a rollback,
//! `restore_mongo_support`) restored into FerretDB equals the set's own committed
//! state, read back through the real `mongodb` driver; FerretDB's own reads decide
//! what verify sees. FerretDB is a standalone: `w: "majority"` is what it
//! acknowledges alone. Verify's equality is byte equality with `_id` first, so its
//! exit 0 here also says FerretDB kept every field's order and BSON type (`t.d`
//! holds dates, ObjectIds, binaries, null, booleans, int64, a nested document whose
//! fields are not in name order, an array of int32 and double).

// `realdb_support` loads its own copies of `ready_support` and `require` (by path);
// `live_tap_support` needs them at the crate root as well.
#![allow(clippy::duplicate_mod)]

mod live_tap_support;
mod ready_support;
mod realdb_support;
mod require;
mod restore_mongo_support;

use std::sync::OnceLock;

use mongodb::bson::{doc, Bson, Document};
use mongodb::Client;
use realdb_support::server;
use restore_mongo_support::{
    build, index_names, json_line, read_all, store_arg, tidemark, Source, BULK, VERSION,
};

static FERRET: OnceLock<Result<String, String>> = OnceLock::new();

struct World {
    rt: tokio::runtime::Runtime,
    source: Source,
    uri: String,
}

static WORLD: OnceLock<Option<World>> = OnceLock::new();

fn world() -> Option<&'static World> {
    WORLD
        .get_or_init(|| {
            let uri = server(&FERRET, "ferretdb.sh", &[])?;
            if !require::live_capture() {
                return None;
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let source = build(&rt, 65);
            Some(World { rt, source, uri })
        })
        .as_ref()
}

impl World {
    fn run(&self, cmd: &str, flag: &str, args: &[&str]) -> std::process::Output {
        let store = store_arg(&self.source.store);
        let mut all = vec![
            cmd,
            "--version",
            VERSION,
            flag,
            &self.uri,
            "--store",
            store,
            "--json",
        ];
        all.extend_from_slice(args);
        tidemark(&all)
    }

    fn client(&self) -> Client {
        self.rt
            .block_on(async { Client::with_uri_str(&self.uri).await })
            .unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_restore_into_ferretdb_equals_the_sources_committed_state() {
    let Some(w) = world() else { return };
    let out = w.run("restore", "--to", &["--rename", "t=f1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = json_line(&out, "restore");
    let docs = report["total"]["written"].as_u64().unwrap();
    let secs = report["seconds"].as_f64().unwrap();
    let mb = report["total"]["bytes"].as_f64().unwrap() / 1e6;
    eprintln!(
        "measure: FerretDB: {docs} docs, {mb:.1} MB in {secs:.2} s: {:.0} docs/s, {:.2} MB/s",
        docs as f64 / secs,
        mb / secs
    );
    let client = w.client();
    for coll in ["c", "d", "bulk"] {
        let got = w.rt.block_on(read_all(&client, "f1", coll));
        let want = &w.source.truth[&format!("t.{coll}")];
        assert_eq!(got.len(), want.len(), "f1.{coll}");
        assert!(
            got == *want,
            "f1.{coll} differs from the source's committed state"
        );
    }
    assert_eq!(w.source.truth["t.bulk"].len(), BULK as usize);
    let c = w.rt.block_on(read_all(&client, "f1", "c"));
    for id in &w.source.rolled_back {
        assert!(!c.contains_key(id), "rolled-back {id} restored");
    }
    assert_eq!(
        w.rt.block_on(index_names(&client, "f1", "c")),
        ["_id_", "n_1"]
    );

    let out = w.run("verify", "--against", &["--rename", "t=f1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    w.rt.block_on(async {
        client
            .database("f1")
            .collection::<Document>("d")
            .update_one(doc! {"_id": "d07"}, doc! {"$set": {"v": 700}})
            .await
            .unwrap();
    });
    let out = w.run("verify", "--against", &["--rename", "t=f1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let v = json_line(&out, "verify");
    assert_eq!(v["different"], 1);
    assert_eq!(v["differences"][0]["key"], r#"{"_id":"d07"}"#);
    assert_eq!(v["differences"][0]["detail"], "v: version 7, target 700");
    w.rt.block_on(async { client.shutdown().await });
}

#[test]
fn into_a_non_empty_ferretdb_collection_documents_are_replaced_and_extras_reported() {
    let Some(w) = world() else { return };
    let client = w.client();
    w.rt.block_on(async {
        client
            .database("f2")
            .collection::<Document>("d")
            .insert_many([doc! {"_id": "d01", "v": -1}, doc! {"_id": "zz", "v": 0}])
            .await
            .unwrap();
    });
    let out = w.run(
        "restore",
        "--to",
        &["--rename", "t=f2", "--collection", "d"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut got = w.rt.block_on(read_all(&client, "f2", "d"));
    let extra = got.remove(&format!("{:?}", Some(&Bson::String("zz".into()))));
    assert!(extra.is_some(), "the target's own document is left");
    assert!(got == w.source.truth["t.d"], "f2.d differs from the source");
    let out = w.run(
        "verify",
        "--against",
        &["--rename", "t=f2", "--collection", "d"],
    );
    assert_eq!(out.status.code(), Some(1));
    let v = json_line(&out, "verify");
    assert_eq!(v["different"], 1);
    assert_eq!(v["differences"][0]["kind"], "extra");
    w.rt.block_on(async { client.shutdown().await });
}
