//! Which protocol a connection speaks, from the client's first bytes (routes given
//! as `--protocol auto`): a CQL request header opening with STARTUP or OPTIONS, or a
//! MongoDB header with a request opcode.

/// Bytes that always decide.
pub const NEED: usize = 16;

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    NeedMore,
    Cql,
    Mongo,
    Other,
}

fn cql(b: &[u8]) -> bool {
    b.len() >= 9 && (3..=5).contains(&b[0]) && b[1] <= 0x1f && matches!(b[4], 0x01 | 0x05)
}

fn mongo(b: &[u8]) -> bool {
    let Some(h) = b.first_chunk::<16>() else {
        return false;
    };
    let len = i32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let op = i32::from_le_bytes([h[12], h[13], h[14], h[15]]);
    (16..=48_000_000).contains(&len) && matches!(op, 2004 | 2012 | 2013)
}

pub fn sniff(b: &[u8]) -> Verdict {
    if b.len() >= NEED {
        if mongo(b) {
            return Verdict::Mongo;
        }
        return if cql(b) { Verdict::Cql } else { Verdict::Other };
    }
    // A CQL OPTIONS or STARTUP may be all the client sends before it waits.
    if cql(b) {
        return Verdict::Cql;
    }
    Verdict::NeedMore
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openings() {
        assert_eq!(sniff(&[4, 0, 0, 0, 5, 0, 0, 0, 0]), Verdict::Cql);
        assert_eq!(sniff(&[4, 0, 0]), Verdict::NeedMore);
        let mut m = Vec::new();
        m.extend_from_slice(&100i32.to_le_bytes());
        m.extend_from_slice(&1i32.to_le_bytes());
        m.extend_from_slice(&0i32.to_le_bytes());
        m.extend_from_slice(&2013i32.to_le_bytes());
        assert_eq!(sniff(&m), Verdict::Mongo);
        assert_eq!(sniff(b"GET / HTTP/1.1\r\nHost: x"), Verdict::Other);
    }
}
