//! A version's MongoDB replay from arbitrary bytes: a current document and an update
//! (operators, a replacement or a `$v: 2` diff) as BSON, applied as `version create`
//! applies a logged operation. Never a panic or a hang: a document or an `Unapplied`
//! reason; a produced document always encodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidemark::version::mongo_doc;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let split = (data[0] as usize * 7) % data.len();
    let (a, b) = data[1..].split_at(split.min(data.len() - 1));
    let (Ok(current), Ok(update)) = (mongo_doc::parse(a), mongo_doc::parse(b)) else {
        return;
    };
    let seed = mongo_doc::upsert_seed(&update);
    for cur in [Some(&current), None] {
        if let Ok(doc) = mongo_doc::apply_update(cur, &update, &seed) {
            mongo_doc::encode(&doc).expect("an applied document encodes");
        }
    }
});
