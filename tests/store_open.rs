//! Creating and opening stores: permissions, the writer lock, and a clean one-line
//! error for every way a directory can fail to be a usable store.

mod store_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use heed::types::Bytes;
use heed::{CommitOrAbort, EnvOpenOptions};
use store_support::{cql, new_store, reopen, store_dir};
use tidemark::store::{
    Store, StoreError, StoreOptions, DATA_FILE, FORMAT_VERSION, LMDB_LOCK_FILE, LOCK_FILE,
};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[test]
fn create_sets_modes_0700_and_0600() {
    let (_tmp, store) = new_store();
    let dir = store.path().to_path_buf();
    assert_eq!(mode(&dir), 0o700);
    for file in [DATA_FILE, LMDB_LOCK_FILE, LOCK_FILE] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
}

#[test]
fn create_tightens_an_existing_empty_directory() {
    let (_tmp, dir) = store_dir();
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let store = Store::create(&dir, &StoreOptions::for_tests()).unwrap();
    assert_eq!(mode(store.path()), 0o700);
}

#[test]
fn create_refuses_an_existing_store() {
    let (_tmp, store) = new_store();
    let dir = store.path().to_path_buf();
    drop(store);
    let err = Store::create(&dir, &StoreOptions::for_tests()).unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
}

#[test]
fn open_missing_directory_is_a_clean_error() {
    let (_tmp, dir) = store_dir();
    let err = Store::open(&dir, &StoreOptions::for_tests()).unwrap_err();
    assert!(matches!(err, StoreError::Missing { .. }), "{err}");
    let line = err.to_string();
    assert!(line.contains(&dir.display().to_string()), "{line}");
    assert!(!line.contains('\n'));
}

#[test]
fn second_writer_is_locked_out_until_the_first_closes() {
    let (_tmp, store) = new_store();
    let dir = store.path().to_path_buf();
    let err = Store::open(&dir, &StoreOptions::for_tests()).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("locked"), "{err}");
    drop(store);
    reopen(&dir);
}

#[test]
fn reader_can_open_while_no_writer_runs() {
    let (_tmp, store) = new_store();
    store
        .append_batch(&[cql("ks.t", "{\"id\":1}", 1, 1)])
        .unwrap();
    let dir = store.path().to_path_buf();
    drop(store);
    let ro = Store::open(&dir, &StoreOptions::for_tests().read_only()).unwrap();
    assert_eq!(ro.reader().unwrap().len().unwrap(), 1);
    let err = ro
        .append_batch(&[cql("ks.t", "{\"id\":2}", 2, 1)])
        .unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
    // A read-only store takes no writer lock.
    drop(ro);
    reopen(&dir);
}

/// Rewrites one `meta` record with heed directly, as another tidemark would have.
fn poke_meta(dir: &Path, key: &[u8], value: Option<&[u8]>) {
    let env = unsafe {
        EnvOpenOptions::new()
            .map_size(1 << 30)
            .max_dbs(16)
            .open(dir)
            .unwrap()
    };
    let wtxn = env.write_txn().unwrap();
    let meta = env
        .create_databases_and_commit(wtxn, |o, w| {
            o.create_database::<Bytes, Bytes>(w, Some("meta"))
                .map(CommitOrAbort::<_, ()>::Commit)
        })
        .unwrap()
        .unwrap_commit();
    let mut wtxn = env.write_txn().unwrap();
    match value {
        Some(v) => meta.put(&mut wtxn, key, v).unwrap(),
        None => {
            meta.delete(&mut wtxn, key).unwrap();
        }
    }
    wtxn.commit().unwrap();
}

#[test]
fn another_format_version_is_refused() {
    let (_tmp, store) = new_store();
    let dir = store.path().to_path_buf();
    drop(store);
    let other = postcard::to_stdvec(&(FORMAT_VERSION + 1)).unwrap();
    poke_meta(&dir, b"format_version", Some(&other));
    let err = Store::open(&dir, &StoreOptions::for_tests()).unwrap_err();
    match &err {
        StoreError::FormatVersion {
            found, expected, ..
        } => {
            assert_eq!((*found, *expected), (FORMAT_VERSION + 1, FORMAT_VERSION));
        }
        other => panic!("expected a format version error, got {other}"),
    }
    assert!(err.to_string().contains("format version"), "{err}");
}

#[test]
fn formats_it_cannot_read_are_refused_in_one_line_even_read_only() {
    // Format 1 predates the oldest layout this code reads (2); a newer one is unknown.
    for found in [1, FORMAT_VERSION + 1] {
        let (_tmp, store) = new_store();
        let dir = store.path().to_path_buf();
        drop(store);
        poke_meta(
            &dir,
            b"format_version",
            Some(&postcard::to_stdvec(&found).unwrap()),
        );
        for options in [
            StoreOptions::for_tests(),
            StoreOptions::for_tests().read_only(),
        ] {
            let err = Store::open(&dir, &options).unwrap_err();
            assert!(
                matches!(err, StoreError::FormatVersion { found: f, .. } if f == found),
                "{err}"
            );
            assert!(!err.to_string().contains('\n'), "{err}");
        }
    }
}

#[test]
fn missing_format_version_means_not_a_store() {
    let (_tmp, store) = new_store();
    let dir = store.path().to_path_buf();
    drop(store);
    poke_meta(&dir, b"format_version", None);
    let err = Store::open(&dir, &StoreOptions::for_tests()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("format version"), "{err}");
}

#[test]
fn an_lmdb_environment_without_our_databases_is_not_a_store() {
    let (_tmp, dir) = store_dir();
    fs::create_dir(&dir).unwrap();
    poke_meta(&dir, b"unrelated", Some(b"x"));
    let err = Store::open(&dir, &StoreOptions::for_tests()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("`log` missing"), "{err}");
}

#[test]
fn garbage_data_file_is_a_clean_error() {
    for garbage in [
        (0..64 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<u8>>(),
        b"this is not an LMDB file\n".to_vec(),
        Vec::new(),
    ] {
        let (_tmp, dir) = store_dir();
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join(DATA_FILE), &garbage).unwrap();
        let err = Store::open(&dir, &StoreOptions::for_tests()).unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { .. }),
            "{} bytes: {err}",
            garbage.len()
        );
        assert!(!err.to_string().contains('\n'));
    }
}

#[test]
fn directory_without_data_file_is_not_a_store() {
    let (_tmp, dir) = store_dir();
    fs::create_dir(&dir).unwrap();
    let err = Store::open(&dir, &StoreOptions::for_tests()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
}

#[test]
fn a_file_is_not_a_store_directory() {
    let (tmp, _) = store_dir();
    let file = tmp.path().join("plain");
    fs::write(&file, b"x").unwrap();
    let err = Store::open(&file, &StoreOptions::for_tests()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
}

#[test]
fn create_records_format_and_creator() {
    let (_tmp, store) = new_store();
    assert_eq!(
        store.created_by().unwrap().as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(store.next_seq().unwrap(), 1);
}
