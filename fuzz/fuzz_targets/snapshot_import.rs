//! `snapshot import` inputs from arbitrary bytes: an `sstabledump` JSON file for a
//! table with a clustering column and a collection, and a mongodump archive. Reading
//! and merging never panic: a clear error or rows.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tidemark::snapshot::import::merge::Merge;
use tidemark::snapshot::import::{mongodump, schema, sstabledump};

const TABLE: &str = "CREATE TABLE ks.t (k int, c text, v text, s set<int>, m map<text, int>, \
                     st int static, PRIMARY KEY (k, c));";

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    if which % 2 == 0 {
        let tables = schema::from_text(TABLE).expect("the fixed schema parses");
        let table = &tables[0];
        let mut merge = Merge::default();
        let _ = sstabledump::read(rest, table, 0, &mut merge);
    } else {
        let _ = mongodump::parse_archive(rest.to_vec(), Path::new("fuzz.archive"));
    }
});
