//! Sealed segments: a contiguous seq range of one source's log as one immutable
//! object, and the manifest that describes and checks it.
//!
//! The segment object is zstd over `MAGIC` then, per envelope, a little-endian `u32`
//! length and the envelope exactly as the store encodes it (seq and mutation, in
//! the store format the manifest names), so a later tidemark decodes old segments
//! the way it reads old stores. The manifest is JSON, written after its segment: a
//! segment without a manifest is an upload that did not finish, never data.

use serde::{Deserialize, Serialize};

use crate::store::{Envelope, Gap};

/// First bytes of a decompressed segment: the layout's name and version.
pub const MAGIC: &[u8; 8] = b"TMSEG\0\0\x01";

/// zstd level of segments: level 1 keeps sealing ahead of most uploads (the log's
/// text and varints compress well at any level).
const LEVEL: i32 = 1;

/// Version of the manifest layout.
pub const MANIFEST_FORMAT: u32 = 1;

/// Largest decompressed segment accepted when reading: a bound on what a corrupt or
/// hostile object can make a reader allocate.
pub const MAX_RAW_BYTES: u64 = 4 << 30;

/// Largest single envelope accepted when reading (a store's mutation is far below).
const MAX_ENVELOPE: usize = 256 << 20;

/// What a segment holds and how to check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub manifest_format: u32,
    /// The source (one store: a tap or a sidecar) whose log this is.
    pub source: String,
    pub first_seq: u64,
    pub last_seq: u64,
    pub mutations: u64,
    /// Commit times of the first and last mutation, ns since the epoch.
    pub first_commit_time: u64,
    pub last_commit_time: u64,
    /// The source's tidemark when the segment was sealed (ns; 0 before any): every
    /// write the source decided up to it is in this segment or an earlier one.
    pub tidemark: u64,
    /// Capture gaps the source recorded that overlap this segment's time range:
    /// versions across them are not exact.
    pub gaps: Vec<GapEntry>,
    /// Store format of the envelopes inside.
    pub store_format: u32,
    /// The segment's object name, relative to the source's folder.
    pub object: String,
    /// Length and CRC-32C of the object as stored (compressed).
    pub bytes: u64,
    pub crc32c: u32,
    /// Length and CRC-32C of the decompressed contents (what a store re-sealing the
    /// same seqs must reproduce, whatever the compressor's version).
    pub raw_bytes: u64,
    pub raw_crc32c: u32,
    /// When it was sealed (RFC 3339) and by which tidemark.
    pub sealed_at: String,
    pub created_by: String,
    /// The CQL schema the source learned (namespace → record), so a log read back
    /// from the repository alone can be interpreted (key layouts, column types).
    #[serde(default)]
    pub schema: Vec<(String, crate::store::NamespaceSchema)>,
    /// `aes-256-gcm:KEYID` when the object is encrypted (`--encrypt-key-file`); the
    /// schema is then not in clear here but in `schema_sealed` (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_sealed: Option<String>,
}

impl Manifest {
    /// The CQL schema the source had learned, decrypted when sealed.
    pub fn schema(
        &self,
        key: Option<&super::crypt::Key>,
    ) -> Result<Vec<(String, crate::store::NamespaceSchema)>, String> {
        let Some(sealed) = &self.schema_sealed else {
            return Ok(self.schema.clone());
        };
        let k = super::crypt::check_label(self.encryption.as_deref(), key)?
            .ok_or("a sealed schema in a manifest without encryption")?;
        let bytes = super::crypt::hex(sealed).ok_or("sealed schema is not hex")?;
        let plain = k.open(&format!("schema:{}", self.object), &bytes)?;
        serde_json::from_slice(&plain).map_err(|e| format!("sealed schema: {e}"))
    }

    /// The object name of the segment holding seqs `first..=last`.
    pub fn object_name(first: u64, last: u64) -> String {
        format!("{first:020}-{last:020}.seg")
    }
}

/// A capture gap as a manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapEntry {
    pub flow: u64,
    pub node: Option<String>,
    pub from: u64,
    pub to: u64,
    pub bytes: u64,
}

impl From<&Gap> for GapEntry {
    fn from(g: &Gap) -> Self {
        GapEntry {
            flow: g.flow,
            node: g.node.map(|n| n.to_string()),
            from: g.from,
            to: g.to,
            bytes: g.bytes,
        }
    }
}

/// Builds a segment's decompressed contents one envelope at a time.
pub struct SegmentWriter {
    raw: Vec<u8>,
    first_seq: Option<u64>,
    last_seq: u64,
    mutations: u64,
    first_commit_time: u64,
    last_commit_time: u64,
}

impl Default for SegmentWriter {
    fn default() -> Self {
        SegmentWriter {
            raw: MAGIC.to_vec(),
            first_seq: None,
            last_seq: 0,
            mutations: 0,
            first_commit_time: 0,
            last_commit_time: 0,
        }
    }
}

/// A sealed segment ready to upload: the object's bytes and what the manifest needs.
pub struct Sealed {
    /// The object's bytes (shared, so parts and retries slice it without copies).
    pub object: bytes::Bytes,
    pub first_seq: u64,
    pub last_seq: u64,
    pub mutations: u64,
    pub first_commit_time: u64,
    pub last_commit_time: u64,
    pub crc32c: u32,
    pub raw_bytes: u64,
    pub raw_crc32c: u32,
}

impl SegmentWriter {
    /// Appends one envelope (seqs must follow each other).
    pub fn push(&mut self, e: &Envelope) -> Result<(), String> {
        if self.first_seq.is_some() && e.seq != self.last_seq + 1 {
            return Err(format!(
                "seq {} does not follow {} in the log",
                e.seq, self.last_seq
            ));
        }
        let bytes = crate::store::codec::encode_envelope_into(e.seq, &e.mutation, Vec::new())?;
        self.push_raw(e.seq, e.mutation.commit_time, &bytes)
    }

    /// Appends one envelope as the store keeps it (`bytes` in the store's format,
    /// with its seq and commit time), without decoding it.
    pub fn push_raw(&mut self, seq: u64, commit_time: u64, bytes: &[u8]) -> Result<(), String> {
        if self.first_seq.is_some() && seq != self.last_seq + 1 {
            return Err(format!(
                "seq {seq} does not follow {} in the log",
                self.last_seq
            ));
        }
        self.raw
            .extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        self.raw.extend_from_slice(bytes);
        if self.first_seq.is_none() {
            self.first_seq = Some(seq);
            self.first_commit_time = commit_time;
        }
        self.last_seq = seq;
        self.last_commit_time = commit_time;
        self.mutations += 1;
        Ok(())
    }

    pub fn mutations(&self) -> u64 {
        self.mutations
    }

    /// The last seq pushed (`None` before the first).
    pub fn last_seq(&self) -> Option<u64> {
        self.first_seq.map(|_| self.last_seq)
    }

    /// Decompressed bytes so far.
    pub fn raw_len(&self) -> usize {
        self.raw.len()
    }

    /// Compresses and checksums what was pushed; `None` when nothing was.
    pub fn seal(self) -> Result<Option<Sealed>, String> {
        let Some(first_seq) = self.first_seq else {
            return Ok(None);
        };
        let object = zstd::bulk::compress(&self.raw, LEVEL).map_err(|e| format!("zstd: {e}"))?;
        Ok(Some(Sealed {
            crc32c: crc32c::crc32c(&object),
            raw_bytes: self.raw.len() as u64,
            raw_crc32c: crc32c::crc32c(&self.raw),
            object: object.into(),
            first_seq,
            last_seq: self.last_seq,
            mutations: self.mutations,
            first_commit_time: self.first_commit_time,
            last_commit_time: self.last_commit_time,
        }))
    }
}

/// Checks a downloaded segment against its manifest and decodes its envelopes.
/// Every way it can be wrong (length, checksum, compression, layout, seqs, commit
/// times) is an error that says which.
pub fn read(
    object: &[u8],
    m: &Manifest,
    key: Option<&super::crypt::Key>,
) -> Result<Vec<Envelope>, String> {
    if object.len() as u64 != m.bytes {
        return Err(format!(
            "{} bytes where the manifest says {}",
            object.len(),
            m.bytes
        ));
    }
    let crc = crc32c::crc32c(object);
    if crc != m.crc32c {
        return Err(format!(
            "CRC-32C {crc:08x} where the manifest says {:08x}",
            m.crc32c
        ));
    }
    if m.raw_bytes > MAX_RAW_BYTES {
        return Err(format!(
            "{} bytes decompressed is over the limit",
            m.raw_bytes
        ));
    }
    let opened;
    let object = match super::crypt::check_label(m.encryption.as_deref(), key)? {
        None => object,
        Some(k) => {
            opened = k.open(&m.object, object)?;
            &opened[..]
        }
    };
    let raw =
        zstd::bulk::decompress(object, m.raw_bytes as usize).map_err(|e| format!("zstd: {e}"))?;
    if raw.len() as u64 != m.raw_bytes || !raw.starts_with(MAGIC) {
        return Err("not a tidemark segment of this layout".into());
    }
    if crc32c::crc32c(&raw) != m.raw_crc32c {
        return Err("decompressed contents do not match the manifest's CRC-32C".into());
    }
    let mut rest = &raw[MAGIC.len()..];
    let mut out = Vec::with_capacity(m.mutations.min(1 << 20) as usize);
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err("truncated envelope length".into());
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        rest = &rest[4..];
        if len > MAX_ENVELOPE || len > rest.len() {
            return Err(format!("envelope of {len} bytes does not fit"));
        }
        let e = crate::store::decode_envelope(m.store_format, &rest[..len])?;
        rest = &rest[len..];
        let want = m.first_seq + out.len() as u64;
        if e.seq != want {
            return Err(format!("seq {} where {want} was due", e.seq));
        }
        if e.mutation.commit_time < m.first_commit_time
            || e.mutation.commit_time > m.last_commit_time
        {
            return Err(format!(
                "seq {}: commit time outside the manifest's range",
                e.seq
            ));
        }
        out.push(e);
    }
    if out.len() as u64 != m.mutations || m.first_seq + m.mutations != m.last_seq + 1 {
        return Err(format!(
            "{} mutations where the manifest says {} (seqs {}–{})",
            out.len(),
            m.mutations,
            m.first_seq,
            m.last_seq
        ));
    }
    Ok(out)
}
