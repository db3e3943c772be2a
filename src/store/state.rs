//! Getters and setters of the resume state: undecided writes, prepared statements,
//! schema, flow checkpoints and meta (tidemark, gaps, policy).
//!
//! Each setter here is its own transaction. Anything that must move together with
//! an append goes through [`super::TxnExtras`] instead.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::codec;
use super::error::Result;
use super::meta;
use super::open::{corrupt, invalid, Store};
use super::records::{Checkpoint, Gap, NamespaceSchema, Policy, PreparedStatement, Undecided};
use super::TxnExtras;

/// A database seen with byte keys and byte values.
type BytesDb = heed::Database<'static, heed::types::Bytes, heed::types::Bytes>;

impl Store {
    // ----- undecided writes -----

    /// Parks an undecided write under `id` (replacing any earlier record).
    pub fn put_undecided(&self, id: &[u8], write: &Undecided) -> Result<()> {
        let extras = TxnExtras {
            undecided: vec![(id.to_vec(), write.clone())],
            ..TxnExtras::default()
        };
        self.append_batch_with(&[], &extras).map(|_| ())
    }

    /// Removes and returns the undecided write under `id`.
    pub fn take_undecided(&self, id: &[u8]) -> Result<Option<Undecided>> {
        let _writer = self.writer()?;
        let lmdb = self.lmdb("take undecided write");
        let _gate = self.gate();
        let mut txn = self.env.write_txn().map_err(&lmdb)?;
        let taken = match self.dbs.writes.get(&txn, id).map_err(&lmdb)? {
            None => return Ok(None),
            Some(bytes) => self.decode_undecided(bytes)?,
        };
        self.dbs.writes.delete(&mut txn, id).map_err(&lmdb)?;
        txn.commit().map_err(&lmdb)?;
        Ok(Some(taken))
    }

    /// Every undecided write, by write id order.
    pub fn list_undecided(&self) -> Result<Vec<(Vec<u8>, Undecided)>> {
        let lmdb = self.lmdb("list undecided writes");
        let _gate = self.gate();
        let txn = self.env.read_txn().map_err(&lmdb)?;
        let mut out = Vec::new();
        for item in self.dbs.writes.iter(&txn).map_err(&lmdb)? {
            let (id, bytes) = item.map_err(&lmdb)?;
            out.push((id.to_vec(), self.decode_undecided(bytes)?));
        }
        Ok(out)
    }

    // ----- prepared statements -----

    /// Records a prepared statement as seen on `node` (`ip:port`).
    pub fn put_prepared(&self, node: &str, id: &[u8], stmt: &PreparedStatement) -> Result<()> {
        let key = codec::prepared_key(id, Some(node)).map_err(|e| invalid(&self.path, &e))?;
        self.put_value(self.dbs.prepared, &key, stmt)
    }

    /// The statement prepared on `node` under `id`, or, failing that, on any node
    /// (statement ids depend only on text and keyspace, so any copy is the statement).
    pub fn get_prepared(&self, node: &str, id: &[u8]) -> Result<Option<PreparedStatement>> {
        let lmdb = self.lmdb("read prepared");
        let exact = codec::prepared_key(id, Some(node)).map_err(|e| invalid(&self.path, &e))?;
        let prefix = codec::prepared_key(id, None).map_err(|e| invalid(&self.path, &e))?;
        let _gate = self.gate();
        let txn = self.env.read_txn().map_err(&lmdb)?;
        if let Some(bytes) = self.dbs.prepared.get(&txn, &exact).map_err(&lmdb)? {
            return self.decode_value("prepared", bytes).map(Some);
        }
        let mut iter = self
            .dbs
            .prepared
            .prefix_iter(&txn, &prefix)
            .map_err(&lmdb)?;
        match iter.next() {
            Some(item) => {
                let (_, bytes) = item.map_err(&lmdb)?;
                self.decode_value("prepared", bytes).map(Some)
            }
            None => Ok(None),
        }
    }

    // ----- schema -----

    /// Records what is known of a namespace's schema.
    pub fn put_schema(&self, ns: &str, schema: &NamespaceSchema) -> Result<()> {
        codec::check_namespace(ns).map_err(|e| invalid(&self.path, &e))?;
        self.put_value(self.dbs.schema.remap_key_type(), ns.as_bytes(), schema)
    }

    /// The schema of a namespace.
    pub fn schema(&self, ns: &str) -> Result<Option<NamespaceSchema>> {
        self.get_value(self.dbs.schema.remap_key_type(), "schema", ns.as_bytes())
    }

    /// Every namespace with a schema, in name order.
    pub fn namespaces(&self) -> Result<Vec<String>> {
        let lmdb = self.lmdb("read schema");
        let _gate = self.gate();
        let txn = self.env.read_txn().map_err(&lmdb)?;
        let mut out = Vec::new();
        for item in self.dbs.schema.iter(&txn).map_err(&lmdb)? {
            out.push(item.map_err(&lmdb)?.0.to_string());
        }
        Ok(out)
    }

    // ----- flow checkpoints -----

    /// Records a capture checkpoint on its own (see [`TxnExtras::checkpoints`] to
    /// record it with an append).
    pub fn put_checkpoint(&self, source: &str, checkpoint: &Checkpoint) -> Result<()> {
        let extras = TxnExtras {
            checkpoints: vec![(source.to_string(), checkpoint.clone())],
            ..TxnExtras::default()
        };
        self.append_batch_with(&[], &extras).map(|_| ())
    }

    /// The checkpoint of a capture source.
    pub fn checkpoint(&self, source: &str) -> Result<Option<Checkpoint>> {
        self.get_value(self.dbs.flows.remap_key_type(), "flows", source.as_bytes())
    }

    // ----- meta -----

    /// The tidemark (ns since the epoch), once one has been set.
    pub fn tidemark(&self) -> Result<Option<u64>> {
        self.get_meta(meta::TIDEMARK)
    }

    /// Advances the tidemark; refuses to move it back.
    pub fn set_tidemark(&self, tidemark: u64) -> Result<()> {
        let extras = TxnExtras {
            tidemark: Some(tidemark),
            ..TxnExtras::default()
        };
        self.append_batch_with(&[], &extras).map(|_| ())
    }

    /// Every recorded capture gap, in recording order.
    pub fn gaps(&self) -> Result<Vec<Gap>> {
        let lmdb = self.lmdb("read gaps");
        let _gate = self.gate();
        let txn = self.env.read_txn().map_err(&lmdb)?;
        let mut out = Vec::new();
        for item in self
            .dbs
            .meta
            .prefix_iter(&txn, meta::GAP_PREFIX)
            .map_err(&lmdb)?
        {
            let (_, bytes) = item.map_err(&lmdb)?;
            out.push(self.decode_value("meta gap", bytes)?);
        }
        Ok(out)
    }

    /// Records capture gaps.
    pub fn add_gaps(&self, gaps: &[Gap]) -> Result<()> {
        let extras = TxnExtras {
            gaps: gaps.to_vec(),
            ..TxnExtras::default()
        };
        self.append_batch_with(&[], &extras).map(|_| ())
    }

    /// The outcome policy.
    pub fn policy(&self) -> Result<Policy> {
        Ok(self.get_meta(meta::POLICY)?.unwrap_or_default())
    }

    /// Replaces the outcome policy.
    pub fn set_policy(&self, policy: &Policy) -> Result<()> {
        let extras = TxnExtras {
            policy: Some(policy.clone()),
            ..TxnExtras::default()
        };
        self.append_batch_with(&[], &extras).map(|_| ())
    }

    /// The seq the next appended mutation will get.
    pub fn next_seq(&self) -> Result<u64> {
        Ok(self.get_meta(meta::NEXT_SEQ)?.unwrap_or(1))
    }

    /// The tidemark version that created the store.
    pub fn created_by(&self) -> Result<Option<String>> {
        self.get_meta(meta::CREATED_BY)
    }

    // ----- helpers -----

    /// Decodes an undecided write in the store's format.
    fn decode_undecided(&self, bytes: &[u8]) -> Result<Undecided> {
        super::upgrade::decode_undecided(self.format, bytes)
            .map_err(|e| corrupt(&self.path, &format!("writes: {e}")))
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        let lmdb = self.lmdb("read meta");
        let _gate = self.gate();
        let txn = self.env.read_txn().map_err(&lmdb)?;
        meta::get(&self.dbs.meta, &txn, key)
            .map_err(&lmdb)?
            .map_err(|e| corrupt(&self.path, &e))
    }

    /// Writes one value on its own; `db` is any database seen with byte keys
    /// (`Str` keys are their UTF-8 bytes).
    fn put_value<T: Serialize>(&self, db: BytesDb, key: &[u8], value: &T) -> Result<()> {
        let _writer = self.writer()?;
        let bytes =
            codec::encode(value).map_err(|e| invalid(&self.path, &format!("encode: {e}")))?;
        let lmdb = self.lmdb("write");
        let _gate = self.gate();
        let mut txn = self.env.write_txn().map_err(&lmdb)?;
        db.put(&mut txn, key, &bytes).map_err(&lmdb)?;
        txn.commit().map_err(&lmdb)
    }

    fn get_value<T: DeserializeOwned>(
        &self,
        db: BytesDb,
        name: &str,
        key: &[u8],
    ) -> Result<Option<T>> {
        let lmdb = self.lmdb("read");
        let _gate = self.gate();
        let txn = self.env.read_txn().map_err(&lmdb)?;
        match db.get(&txn, key).map_err(&lmdb)? {
            None => Ok(None),
            Some(bytes) => self.decode_value(name, bytes).map(Some),
        }
    }

    fn decode_value<T: DeserializeOwned>(&self, db: &str, bytes: &[u8]) -> Result<T> {
        codec::decode(bytes).map_err(|e| corrupt(&self.path, &format!("{db}: {e}")))
    }
}
