//! Sealing a stretch of a store's log into a segment for `repo push`: the store's
//! own envelope bytes read in seq order until the segment is full, and the manifest
//! that describes it; and the check that a store is the one whose segments the
//! repository already holds.

use super::layout;
use super::push::PushOptions;
use super::segment::{GapEntry, Manifest, Sealed, SegmentWriter, MANIFEST_FORMAT};
use super::upload::Conflict;
use crate::store::Store;

/// Checks that the store holds what the repository's last segment of this source
/// holds (re-sealed from the store, compared by the decompressed contents' CRC): a
/// different store pushing under this source id would otherwise append its log to
/// another's.
pub(super) fn same_log(store: &Store, m: &Manifest, o: &PushOptions) -> anyhow::Result<()> {
    let conflict = || -> anyhow::Error {
        Conflict(format!(
            "the store's log at seqs {}–{} differs from the repository's segment of source {}: two stores push as source {}",
            m.first_seq, m.last_seq, m.source, m.source
        ))
        .into()
    };
    let start = store.log_start()?;
    if m.first_seq < start {
        // Dropped here (wholly or in part) after the repository confirmed it: the
        // commit time at its end is what is left to compare.
        let end_time = if m.last_seq < start {
            match store.dropped()? {
                Some(d) if d.through_seq == m.last_seq => Some(d.last_commit_time),
                _ => None,
            }
        } else {
            let mut t = None;
            store
                .reader()?
                .for_each_raw(m.last_seq, m.last_seq, |_, time, _| {
                    t = Some(time);
                    false
                })?;
            t
        };
        return match end_time {
            Some(t) if t == m.last_commit_time => Ok(()),
            Some(_) => Err(conflict()),
            None => Ok(()),
        };
    }
    if m.store_format != store.format() {
        // The store was upgraded since (its bytes changed form, not content): the
        // commit times at both ends must still agree.
        let reader = store.reader()?;
        let mut times = Vec::new();
        for seq in [m.first_seq, m.last_seq] {
            reader.for_each_raw(seq, seq, |_, t, _| {
                times.push(t);
                false
            })?;
        }
        return if times == [m.first_commit_time, m.last_commit_time] {
            Ok(())
        } else {
            Err(conflict())
        };
    }
    let whole = PushOptions {
        segment_mutations: u64::MAX,
        segment_bytes: usize::MAX,
        ..o.clone()
    };
    match seal_next(store, m.first_seq, m.last_seq, &whole)? {
        Some(s) if s.raw_crc32c == m.raw_crc32c && s.last_seq == m.last_seq => Ok(()),
        _ => Err(conflict()),
    }
}

/// Reads the log from `first` on until a segment is full (or `last`), and seals it.
pub(super) fn seal_next(
    store: &Store,
    first: u64,
    last: u64,
    o: &PushOptions,
) -> anyhow::Result<Option<Sealed>> {
    gather(store, first, last, o)?
        .seal()
        .map_err(|e| anyhow::anyhow!("sealing a segment: {e}"))
}

/// Reads the log from `first` on until a segment is full (or `last`): the
/// segment's contents, not compressed yet (so that compressing can run on another
/// thread while the next segment is read).
pub(super) fn gather(
    store: &Store,
    first: u64,
    last: u64,
    o: &PushOptions,
) -> anyhow::Result<SegmentWriter> {
    let reader = store.reader()?;
    let mut w = SegmentWriter::default();
    let mut bad = None;
    reader.for_each_raw(first, last, |seq, t, bytes| {
        if let Err(m) = w.push_raw(seq, t, bytes) {
            bad = Some(anyhow::anyhow!("store log at seq {seq}: {m}"));
            return false;
        }
        w.mutations() < o.segment_mutations.max(1) && w.raw_len() < o.segment_bytes
    })?;
    if let Some(e) = bad {
        return Err(e);
    }
    Ok(w)
}

pub(super) fn manifest_of(
    source: &str,
    s: &Sealed,
    tidemark: u64,
    gaps: &[crate::store::Gap],
) -> Manifest {
    Manifest {
        manifest_format: MANIFEST_FORMAT,
        source: source.to_string(),
        first_seq: s.first_seq,
        last_seq: s.last_seq,
        mutations: s.mutations,
        first_commit_time: s.first_commit_time,
        last_commit_time: s.last_commit_time,
        tidemark,
        gaps: gaps
            .iter()
            .filter(|g| g.to >= s.first_commit_time && g.from <= s.last_commit_time)
            .map(GapEntry::from)
            .collect(),
        store_format: crate::store::FORMAT_VERSION,
        object: layout::segment_name(s.first_seq, s.last_seq),
        bytes: s.object.len() as u64,
        crc32c: s.crc32c,
        raw_bytes: s.raw_bytes,
        raw_crc32c: s.raw_crc32c,
        sealed_at: crate::decode::time::rfc3339(crate::capture::Timestamp::now()),
        created_by: format!("tidemark {}", env!("CARGO_PKG_VERSION")),
        schema: Vec::new(),
        encryption: None,
        schema_sealed: None,
    }
}
