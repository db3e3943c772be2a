//! The named LMDB databases of a store and how they are created or found.

use heed::byteorder::BigEndian;
use heed::types::{Bytes, Str, Unit, U64};
use heed::{CommitOrAbort, Database, Env, RoTxn, RwTxn, WithTls};

/// A seq or id key: big-endian so byte order is numeric order.
pub type SeqKey = U64<BigEndian>;

/// Every named database. Values are postcard bytes encoded and decoded by the
/// store itself, so decode errors can name the database and key.
///
/// `snapshots`, `snapshot_rows` and `versions` are created now so that the snapshot
/// and version modules need no format change; nothing reads them yet.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy)]
pub struct Dbs {
    /// seq → envelope.
    pub log: Database<'static, SeqKey, Bytes>,
    /// `codec::key_prefix(ns, key) | seq` → ().
    pub by_key: Database<'static, Bytes, Unit>,
    /// write id → [`super::Undecided`].
    pub writes: Database<'static, Bytes, Bytes>,
    /// `codec::prepared_key(id, node)` → [`super::PreparedStatement`].
    pub prepared: Database<'static, Bytes, Bytes>,
    /// namespace → [`super::NamespaceSchema`].
    pub schema: Database<'static, Str, Bytes>,
    /// source id → [`super::Checkpoint`].
    pub flows: Database<'static, Str, Bytes>,
    /// snapshot id → snapshot description (layout owned by the snapshot module).
    pub snapshots: Database<'static, SeqKey, Bytes>,
    /// `snapshot id | namespace | key` → row (layout owned by the snapshot module).
    pub snapshot_rows: Database<'static, Bytes, Bytes>,
    /// version name → version description (layout owned by the version module).
    pub versions: Database<'static, Str, Bytes>,
    /// `super::meta` keys → values.
    pub meta: Database<'static, Bytes, Bytes>,
}

/// Names, in creation order; `max_dbs` is its length.
pub const NAMES: [&str; 10] = [
    "log",
    "by_key",
    "writes",
    "prepared",
    "schema",
    "flows",
    "snapshots",
    "snapshot_rows",
    "versions",
    "meta",
];

/// Creates every database in `wtxn`, lets `init` write the first meta records in
/// the same transaction (so a store either has its format version or does not exist),
/// and commits.
pub fn create<F>(env: &Env, wtxn: RwTxn<'_>, init: F) -> heed::Result<Dbs>
where
    F: FnOnce(&Database<'_, Bytes, Bytes>, &mut RwTxn<'_>) -> heed::Result<()>,
{
    let dbs = env.create_databases_and_commit(wtxn, |o, w| -> heed::Result<_> {
        let meta = o.create_database(w, Some(NAMES[9]))?;
        init(&meta, w)?;
        Ok(CommitOrAbort::<_, ()>::Commit((
            (
                o.create_database(w, Some(NAMES[0]))?,
                o.create_database(w, Some(NAMES[1]))?,
                o.create_database(w, Some(NAMES[2]))?,
                o.create_database(w, Some(NAMES[3]))?,
                o.create_database(w, Some(NAMES[4]))?,
            ),
            (
                o.create_database(w, Some(NAMES[5]))?,
                o.create_database(w, Some(NAMES[6]))?,
                o.create_database(w, Some(NAMES[7]))?,
                o.create_database(w, Some(NAMES[8]))?,
                meta,
            ),
        )))
    })?;
    let (
        (log, by_key, writes, prepared, schema),
        (flows, snapshots, snapshot_rows, versions, meta),
    ) = dbs.unwrap_commit();
    Ok(Dbs {
        log,
        by_key,
        writes,
        prepared,
        schema,
        flows,
        snapshots,
        snapshot_rows,
        versions,
        meta,
    })
}

/// Opens every database of an existing store; `Ok(Err(name))` names the first one
/// missing, which means the directory is not a (complete) tidemark store.
pub fn open(env: &Env, rtxn: RoTxn<'_, WithTls>) -> heed::Result<Result<Dbs, &'static str>> {
    let opened = env.open_databases_and_commit(rtxn, |o, r| -> heed::Result<_> {
        macro_rules! get {
            ($i:expr) => {
                match o.open_database(r, Some(NAMES[$i]))? {
                    Some(db) => db,
                    None => return Ok(CommitOrAbort::Abort(NAMES[$i])),
                }
            };
        }
        Ok(CommitOrAbort::Commit((
            (get!(0), get!(1), get!(2), get!(3), get!(4)),
            (get!(5), get!(6), get!(7), get!(8), get!(9)),
        )))
    })?;
    let (
        (log, by_key, writes, prepared, schema),
        (flows, snapshots, snapshot_rows, versions, meta),
    ) = match opened {
        CommitOrAbort::Commit(dbs) => dbs,
        CommitOrAbort::Abort(missing) => return Ok(Err(missing)),
    };
    Ok(Ok(Dbs {
        log,
        by_key,
        writes,
        prepared,
        schema,
        flows,
        snapshots,
        snapshot_rows,
        versions,
        meta,
    }))
}
