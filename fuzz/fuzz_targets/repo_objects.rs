//! Repository objects from arbitrary contents: a segment and a snapshot object whose
//! stored bytes and checksums are right (so reading gets past them) but whose
//! decompressed contents are anything, and manifests as arbitrary JSON. Reading
//! never panics and never allocates past the manifest's bounds: rows or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidemark::repo::segment::{self, Manifest};
use tidemark::repo::snapshots::{self, SnapshotManifest};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            let _ = serde_json::from_slice::<Manifest>(rest);
            let _ = serde_json::from_slice::<SnapshotManifest>(rest);
        }
        1 => {
            let mut raw = segment::MAGIC.to_vec();
            raw.extend_from_slice(rest);
            let object = zstd::bulk::compress(&raw, 1).expect("zstd");
            let m = Manifest {
                manifest_format: segment::MANIFEST_FORMAT,
                source: "fuzz".into(),
                first_seq: 1,
                last_seq: 1 + (rest.len() as u64 % 7),
                mutations: 1 + (rest.len() as u64 % 7),
                first_commit_time: 0,
                last_commit_time: u64::MAX,
                tidemark: 0,
                gaps: Vec::new(),
                store_format: tidemark::store::FORMAT_VERSION,
                object: "fuzz.seg".into(),
                bytes: object.len() as u64,
                crc32c: crc32c::crc32c(&object),
                raw_bytes: raw.len() as u64,
                raw_crc32c: crc32c::crc32c(&raw),
                sealed_at: String::new(),
                created_by: String::new(),
                schema: Vec::new(),
                encryption: None,
                schema_sealed: None,
            };
            let _ = segment::read(&object, &m, None);
        }
        _ => {
            let mut raw = snapshots::SNAP_MAGIC.to_vec();
            raw.extend_from_slice(rest);
            let object = zstd::bulk::compress(&raw, 1).expect("zstd");
            let m = SnapshotManifest {
                source: "fuzz".into(),
                id: 1,
                protocol: "cql".into(),
                cluster: String::new(),
                started: 0,
                finished: 0,
                rows: rest.len() as u64 % 5,
                bytes: object.len() as u64,
                crc32c: crc32c::crc32c(&object),
                raw_bytes: raw.len() as u64,
                raw_crc32c: crc32c::crc32c(&raw),
                created_by: String::new(),
                encryption: None,
            };
            let _ = snapshots::read(&object, &m, None);
        }
    }
});
