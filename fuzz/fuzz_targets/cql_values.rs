//! A type option then a value from arbitrary bytes: decoding never panics, rendering
//! to JSON never panics and gives valid JSON, and re-encoding gives the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidemark_cql::bytes::Bytes;
use tidemark_cql::serde_json;
use tidemark_cql::types::{json_text, to_json};
use tidemark_cql::wire::Reader;
use tidemark_cql::{ColumnType, Value};

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(Bytes::copy_from_slice(data));
    let Ok(ty) = ColumnType::decode(&mut r) else {
        return;
    };
    let rest = r.rest();
    let Ok(v) = Value::decode(&ty, &rest) else {
        return;
    };
    let text = json_text(&v, &ty);
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
        assert!(e.to_string().contains("number out of range"), "{text}: {e}");
    }
    let _ = to_json(&v, &ty);
    let mut out = Vec::new();
    v.encode(&mut out);
    let back = Value::decode(&ty, &Bytes::from(out)).expect("re-encoded value decodes");
    // NaN != NaN: compare the re-encoded bytes instead of the values.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    v.encode(&mut a);
    back.encode(&mut b);
    assert_eq!(a, b);
});
