//! Rough single-core throughput of decode + write extraction.
//! `cargo run --release -p tidemark-mongo --example throughput`

use std::time::Instant;

use bson::rawdoc;
use tidemark_mongo::*;

fn main() {
    // 100 inserts of 1,000 documents (~120 bytes each) as kind-1 sequences
    let docs: Vec<_> = (0..1000)
        .map(|i| {
            rawdoc! {"_id": bson::oid::ObjectId::new(), "n": i, "name": format!("user-{i}"),
            "email": format!("user{i}@example.com"), "score": i as f64 * 1.5, "tags": ["a", "b"]}
        })
        .collect();
    let mut stream = Vec::new();
    for id in 0..100 {
        let mut m = OpMsg::new(Doc::from(rawdoc! {
            "insert": "users", "ordered": true, "$db": "app",
            "lsid": {"id": bson::Binary { subtype: bson::spec::BinarySubtype::Uuid, bytes: vec![1; 16] }},
            "txnNumber": id as i64, "writeConcern": {"w": "majority"},
        }));
        m.sequences.push(DocSequence {
            identifier: "documents".into(),
            documents: DocSeq::from_docs(docs.iter().map(|d| d.as_ref())),
        });
        stream.extend_from_slice(&encode_message(&Message::new(id, 0, Body::Msg(m))).unwrap());
    }
    let rounds = 20;
    let start = Instant::now();
    let mut statements = 0usize;
    for _ in 0..rounds {
        let mut dec = Decoder::default();
        for chunk in stream.chunks(64 * 1024) {
            dec.feed(chunk);
            while let Some(m) = dec.next().unwrap() {
                let w = m.write().unwrap().unwrap();
                for s in &w.statements {
                    statements += s.id().is_some() as usize;
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let bytes = (stream.len() * rounds) as f64;
    println!(
        "{:.0} MB in {secs:.3}s: {:.2} GB/s, {:.1} M statements/s",
        bytes / 1e6,
        bytes / secs / 1e9,
        statements as f64 / secs / 1e6
    );
}
