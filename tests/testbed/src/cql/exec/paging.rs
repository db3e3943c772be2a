//! Paging: a result cut into pages of `page_size` rows, with a paging state to
//! continue from. For user tables the state holds the position of the last row
//! returned (serialized partition key and clustering, as Cassandra's does), so rows
//! written or deleted between pages do not shift the next page; the next page starts
//! after that row, or at the first row ordered after it if it is gone. System tables
//! (and aggregates) page by row offset. A state names its statement by a hash, so it
//! cannot be replayed against another one.

use super::project::Page;
use super::read::Materialized;
use crate::cql::errors::invalid;
use crate::cql::storage::order::compare_clustering;
use bytes::{BufMut, Bytes};
use std::cmp::Ordering;
use tidemark_cql::message::{error_code, ErrorBody, ErrorDetails};

/// Where a row of a user table sits: partition token and key, clustering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowKey {
    pub token: i64,
    pub pk: Bytes,
    pub ck: Vec<Bytes>,
}

/// Result rows as serialized cells.
pub type CellRows = Vec<Vec<Option<Bytes>>>;

enum State {
    Offset(u64),
    After(RowKey),
}

fn bad_state() -> ErrorBody {
    ErrorBody {
        code: error_code::PROTOCOL_ERROR,
        message: "Invalid value for the paging state".to_string().into(),
        details: ErrorDetails::None,
    }
}

fn encode(hash: u64, s: &State) -> Bytes {
    let mut v = b"TBPG".to_vec();
    v.put_u64(hash);
    match s {
        State::Offset(o) => {
            v.put_u8(0);
            v.put_u64(*o);
        }
        State::After(k) => {
            v.put_u8(1);
            v.put_i64(k.token);
            v.put_u32(k.pk.len() as u32);
            v.extend_from_slice(&k.pk);
            v.put_u16(k.ck.len() as u16);
            for c in &k.ck {
                v.put_u32(c.len() as u32);
                v.extend_from_slice(c);
            }
        }
    }
    Bytes::from(v)
}

fn decode(hash: u64, b: &[u8]) -> Result<State, ErrorBody> {
    struct R<'a>(&'a [u8]);
    impl<'a> R<'a> {
        fn take(&mut self, n: usize) -> Result<&'a [u8], ErrorBody> {
            if self.0.len() < n {
                return Err(bad_state());
            }
            let (a, b) = self.0.split_at(n);
            self.0 = b;
            Ok(a)
        }
        fn u64(&mut self) -> Result<u64, ErrorBody> {
            Ok(u64::from_be_bytes(
                self.take(8)?.try_into().map_err(|_| bad_state())?,
            ))
        }
        fn u32(&mut self) -> Result<usize, ErrorBody> {
            Ok(u32::from_be_bytes(self.take(4)?.try_into().map_err(|_| bad_state())?) as usize)
        }
    }
    let mut r = R(b);
    if r.take(4)? != b"TBPG" || r.u64()? != hash {
        return Err(bad_state());
    }
    let s = match r.take(1)?[0] {
        0 => State::Offset(r.u64()?),
        1 => {
            let token = r.u64()? as i64;
            let n = r.u32()?;
            let pk = Bytes::copy_from_slice(r.take(n)?);
            let count = u16::from_be_bytes(r.take(2)?.try_into().map_err(|_| bad_state())?);
            let mut ck = Vec::new();
            for _ in 0..count {
                let n = r.u32()?;
                ck.push(Bytes::copy_from_slice(r.take(n)?));
            }
            State::After(RowKey { token, pk, ck })
        }
        _ => return Err(bad_state()),
    };
    if !r.0.is_empty() {
        return Err(bad_state());
    }
    Ok(s)
}

/// Cuts `rows` (the result rows; `source[i]` is the materialized row of `rows[i]`
/// when the result is row-for-row) into the requested page. Returns the page and
/// the RowsMetadata paging state.
pub fn page(
    m: &Materialized,
    source: Option<&[usize]>,
    rows: CellRows,
    page: &Page,
    hash: u64,
) -> Result<(CellRows, Option<Option<Bytes>>), ErrorBody> {
    let Some(size) = page.size.filter(|s| *s > 0).map(|s| s as usize) else {
        return Ok((rows, None));
    };
    let keyed = source.filter(|s| s.len() == rows.len() && !m.keys.is_empty());
    let key_of = |i: usize| keyed.and_then(|s| m.keys.get(s[i]));
    let start = match page.state.as_deref().map(|b| decode(hash, b)).transpose()? {
        None => 0,
        Some(State::Offset(o)) => usize::try_from(o).map_err(|_| bad_state())?,
        Some(State::After(last)) => {
            if keyed.is_none() {
                return Err(invalid("paging state does not match this result"));
            }
            let after = |k: &RowKey| {
                (k.token, &k.pk)
                    .cmp(&(last.token, &last.pk))
                    .then_with(|| compare_clustering(&m.order, &k.ck, &last.ck))
            };
            match (0..rows.len()).find(|i| key_of(*i) == Some(&last)) {
                Some(i) => i + 1,
                None => (0..rows.len())
                    .find(|i| key_of(*i).is_some_and(|k| after(k) == Ordering::Greater))
                    .unwrap_or(rows.len()),
            }
        }
    };
    let end = start.saturating_add(size).min(rows.len());
    let state = (end < rows.len()).then(|| {
        let s = match key_of(end - 1).filter(|_| end > start) {
            Some(k) => State::After(k.clone()),
            None => State::Offset(end as u64),
        };
        Some(encode(hash, &s))
    });
    let out = rows
        .into_iter()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect();
    Ok((out, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_reject_garbage() {
        let k = RowKey {
            token: -5,
            pk: Bytes::from_static(b"pk"),
            ck: vec![Bytes::from_static(b"a"), Bytes::new()],
        };
        let b = encode(7, &State::After(k.clone()));
        assert!(matches!(decode(7, &b), Ok(State::After(x)) if x == k));
        assert!(decode(8, &b).is_err(), "another statement's state");
        for n in 0..b.len() {
            assert!(decode(7, &b[..n]).is_err(), "truncated at {n}");
        }
        let o = encode(7, &State::Offset(3));
        assert!(matches!(decode(7, &o), Ok(State::Offset(3))));
    }
}
