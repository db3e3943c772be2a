//! Drive the real Rust `mongodb` crate through the writes tidemark must decode, against
//! `captures/tools/mongo_responder.py` (the primary of replica set `rs0`).
//!
//! Usage: `tidemark-mongo-rust-workload [--port 27017] [--compressors zlib,zstd,snappy]`
//!
//! Values are fixed (explicit `_id`s and dates) so the truth is the same every run,
//! except the one `_id` the driver makes and the one the responder makes for the upserting
//! `replace_one` (as in the pymongo workload).

use std::time::Duration;

use futures_util::TryStreamExt;
use mongodb::bson::{doc, oid::ObjectId, Binary, DateTime, Decimal128, Document, Regex, Timestamp};
use mongodb::error::{Error, ErrorKind, WriteFailure};
use mongodb::options::{Acknowledgment, ClientOptions, ReadConcern, ReturnDocument, WriteConcern};
use mongodb::{Client, Collection};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// 2024-03-01T12:30:45.123Z, the pymongo workload's `T0`.
const T0_MS: i64 = 1_709_296_245_123;

fn t0() -> DateTime {
    DateTime::from_millis(T0_MS)
}

/// `ObjectId("65e1c0de" + n as 16 hex digits)`; the Rust workload uses n >= 0x100 so
/// its `_id`s never equal the pymongo workload's.
fn oid(n: u64) -> ObjectId {
    ObjectId::parse_str(format!("65e1c0de{n:016x}")).unwrap()
}

fn typed_doc() -> Document {
    let dec: Decimal128 = "1234567.890123456789".parse().unwrap();
    doc! {
        "_id": oid(0x101),
        "name": "Grace Hopper",
        "driver": "rust",
        "i32": 42_i32,
        "i64": 9_007_199_254_740_993_i64,
        "dbl": 3.25_f64,
        "dec": dec,
        "flag": true,
        "nothing": null,
        "when": t0(),
        "bin": Binary { subtype: mongodb::bson::spec::BinarySubtype::Generic, bytes: vec![0, 1, 2, 0xfe, 0xff] },
        "uuid": Binary { subtype: mongodb::bson::spec::BinarySubtype::Uuid,
                         bytes: vec![0x0b, 0x5e, 0x8f, 0x0e, 0x1c, 0x2d, 0x4e, 0x3f,
                                     0x9a, 0x8b, 0x7c, 0x6d, 0x5e, 0x4f, 0x3a, 0x2b] },
        "re": Regex { pattern: "^grace.*per$".try_into().unwrap(), options: "i".try_into().unwrap() },
        "ts": Timestamp { time: 1_709_296_245, increment: 7 },
        "nested": { "a": { "b": { "c": [1_i32, 2_i32, { "d": "deep" }] } } },
        "tags": ["navy", "cobol", "compilers"],
        "scores": [{ "k": "x", "v": 1_i32 }, { "k": "y", "v": 2_i32 }, { "k": "z", "v": 3_i32 }],
    }
}

fn bulk_docs(n: i32) -> Vec<Document> {
    (0..n)
        .map(|i| {
            doc! {
                "_id": 5000 + i,
                "seq": i,
                "group": i % 7,
                "when": DateTime::from_millis(T0_MS + i64::from(i) * 1000),
                "pad": format!("{i:04}").repeat(250),
            }
        })
        .collect()
}

fn write_error_code(e: &Error) -> Option<i32> {
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(we)) => Some(we.code),
        ErrorKind::InsertMany(ime) => ime.write_errors.as_ref()?.first().map(|we| we.code),
        _ => None,
    }
}

fn expect_dup<T: std::fmt::Debug>(what: &str, r: mongodb::error::Result<T>) -> Result<()> {
    match r {
        Err(e) if write_error_code(&e) == Some(11000) => {
            println!("{what}: duplicate key as expected");
            Ok(())
        }
        other => Err(format!("{what}: expected E11000, got {other:?}").into()),
    }
}

fn wc(w: Acknowledgment) -> WriteConcern {
    WriteConcern::builder().w(w).build()
}

async fn run(client: &Client) -> Result<()> {
    let db = client.database("tm");
    let people: Collection<Document> = db.collection("rust_people");
    let bulk: Collection<Document> = db.collection("rust_bulk");

    // inserts: many BSON types; 200 ~1 KB documents (a document sequence); a driver-made _id
    people.insert_one(typed_doc()).await?;
    let r = bulk.insert_many(bulk_docs(200)).await?;
    assert_eq!(r.inserted_ids.len(), 200);
    people
        .insert_one(doc! { "name": "driver-made _id" })
        .await?;

    // updates with operators and array filters
    let dec01: Decimal128 = "0.1".parse().unwrap();
    people
        .update_one(
            doc! { "_id": oid(0x101) },
            doc! { "$set": { "name": "Grace B. Hopper", "nested.a.z": t0() },
            "$inc": { "i32": 1_i32, "dec": dec01 } },
        )
        .await?;
    people
        .update_one(
            doc! { "_id": oid(0x101) },
            doc! { "$push": { "tags": { "$each": ["admiral", "teacher"] } },
            "$unset": { "nothing": "" } },
        )
        .await?;
    people
        .update_one(
            doc! { "_id": oid(0x101) },
            doc! { "$set": { "scores.$[hi].v": 100_i32 } },
        )
        .array_filters(vec![doc! { "hi.v": { "$gte": 2_i32 } }])
        .await?;
    bulk.update_many(
        doc! { "group": 3_i32 },
        doc! { "$inc": { "hits": 1_i32 }, "$set": { "seen": true } },
    )
    .await?;
    people
        .replace_one(
            doc! { "_id": oid(0x101) },
            doc! { "name": "Grace", "born": DateTime::from_millis(-2_005_948_800_000), "i64": -1_i64 },
        )
        .await?;
    people
        .update_one(
            doc! { "_id": oid(0x102) },
            doc! { "$set": { "name": "Upserted by update" }, "$setOnInsert": { "created": t0() } },
        )
        .upsert(true)
        .await?;
    people
        .replace_one(
            doc! { "email": "ferris@example.org" },
            doc! { "email": "ferris@example.org", "name": "Ferris" },
        )
        .upsert(true)
        .await?;
    bulk.delete_one(doc! { "_id": 5000_i32 }).await?;
    bulk.delete_many(doc! { "group": 6_i32 }).await?;

    // findAndModify
    people
        .find_one_and_update(
            doc! { "_id": oid(0x102) },
            doc! { "$inc": { "visits": 1_i32 } },
        )
        .return_document(ReturnDocument::After)
        .await?;
    people
        .find_one_and_update(
            doc! { "_id": oid(0x103) },
            doc! { "$set": { "name": "fam upsert" } },
        )
        .upsert(true)
        .return_document(ReturnDocument::After)
        .await?;

    // duplicate key: single insert, and unordered insert_many with one duplicate
    expect_dup(
        "insert_one",
        people
            .insert_one(doc! { "_id": oid(0x102), "dup": true })
            .await,
    )?;
    expect_dup(
        "insert_many unordered",
        people
            .insert_many(vec![
                doc! { "_id": oid(0x110) },
                doc! { "_id": oid(0x102) },
                doc! { "_id": oid(0x111) },
            ])
            .ordered(false)
            .await,
    )?;

    // a transaction that commits (writeConcern majority on commitTransaction)
    let mut s = client.start_session().await?;
    s.start_transaction()
        .write_concern(WriteConcern::majority())
        .await?;
    people
        .insert_one(doc! { "_id": oid(0x140), "txn": "commit" })
        .session(&mut s)
        .await?;
    people
        .update_one(
            doc! { "_id": oid(0x102) },
            doc! { "$set": { "txn": "commit" } },
        )
        .session(&mut s)
        .await?;
    s.commit_transaction().await?;

    // a transaction that aborts
    s.start_transaction()
        .read_concern(ReadConcern::snapshot())
        .await?;
    people
        .insert_one(doc! { "_id": oid(0x141), "txn": "abort" })
        .session(&mut s)
        .await?;
    people
        .delete_one(doc! { "_id": oid(0x140) })
        .session(&mut s)
        .await?;
    s.abort_transaction().await?;
    drop(s);

    // write concerns: w:1, majority, w:1 j:true, majority wtimeout:1 (writeConcernError)
    people
        .insert_one(doc! { "_id": oid(0x151), "w": 1_i32 })
        .write_concern(wc(Acknowledgment::Nodes(1)))
        .await?;
    people
        .insert_one(doc! { "_id": oid(0x152), "w": "majority" })
        .write_concern(WriteConcern::majority())
        .await?;
    people
        .update_one(doc! { "_id": oid(0x151) }, doc! { "$set": { "j": true } })
        .write_concern(
            WriteConcern::builder()
                .w(Acknowledgment::Nodes(1))
                .journal(true)
                .build(),
        )
        .await?;
    let wce = WriteConcern::builder()
        .w(Acknowledgment::Majority)
        .w_timeout(Duration::from_millis(1))
        .build();
    match people
        .insert_one(doc! { "_id": oid(0x153), "w": "majority", "wtimeout": 1_i32 })
        .write_concern(wce)
        .await
    {
        Err(e)
            if matches!(
                &*e.kind,
                ErrorKind::Write(WriteFailure::WriteConcernError(_))
            ) =>
        {
            println!("writeConcernError as expected")
        }
        other => return Err(format!("expected writeConcernError, got {other:?}").into()),
    }

    // No w:0 here: mongodb 3.9.1 refuses unacknowledged write concerns client-side
    // ("Unacknowledged write concerns are not supported"), so nothing reaches the wire.

    // reads back: by _id, a cursor with getMore, a count
    let grace = people.find_one(doc! { "_id": oid(0x101) }).await?;
    assert_eq!(grace.unwrap().get_str("name")?, "Grace");
    let fam = people.find_one(doc! { "_id": oid(0x103) }).await?;
    assert_eq!(fam.unwrap().get_str("name")?, "fam upsert");
    let docs: Vec<Document> = bulk
        .find(doc! { "group": { "$lt": 3_i32 } })
        .batch_size(25)
        .await?
        .try_collect()
        .await?;
    assert!(docs.len() > 25, "{} documents", docs.len());
    let n = people.count_documents(doc! {}).await?;
    println!("people: {n} documents; bulk group<3: {}", docs.len());
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let mut port = 27017_u16;
    let mut compressors = String::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().ok_or("--port needs a value")?.parse()?,
            "--compressors" => compressors = args.next().ok_or("--compressors needs a value")?,
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let mut uri = format!(
        "mongodb://127.0.0.1:{port}/?replicaSet=rs0&retryWrites=true&appname=tidemark-capture-rust"
    );
    if !compressors.is_empty() {
        uri.push_str("&compressors=");
        uri.push_str(&compressors);
    }
    let mut options = ClientOptions::parse(&uri).await?;
    options.server_selection_timeout = Some(Duration::from_secs(10));
    let client = Client::with_options(options)?;
    run(&client).await?;
    client.shutdown().await;
    println!("workload done");
    Ok(())
}
