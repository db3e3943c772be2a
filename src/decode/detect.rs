//! Which protocol a flow speaks: by configured server port first, else by sniffing
//! the first bytes of the client→server stream (falling back to the server's first
//! bytes when the client side was never seen).
//!
//! Sniffing checks one frame header, strictly enough that other protocols on
//! unconfigured ports come out `unknown` rather than mis-decoded: a false positive
//! would feed garbage to a decoder, a false negative only costs decoding a flow the
//! user can still name with `--cql-port`/`--mongo-port`.

use serde::Serialize;

/// A protocol tidemark knows how to decode (or `Unknown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Cql,
    Mongo,
    Unknown,
}

impl Protocol {
    /// The spelling used in output: `cql`, `mongo`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Cql => "cql",
            Protocol::Mongo => "mongo",
            Protocol::Unknown => "unknown",
        }
    }
}

/// Default CQL native-protocol port.
pub const DEFAULT_CQL_PORT: u16 = 9042;
/// Default MongoDB port.
pub const DEFAULT_MONGO_PORT: u16 = 27017;

/// Configured server ports per protocol (defaults plus whatever the user added).
#[derive(Debug, Clone)]
pub struct PortMap {
    pub cql: Vec<u16>,
    pub mongo: Vec<u16>,
}

impl PortMap {
    /// The default ports plus `extra_*`.
    pub fn new(extra_cql: &[u16], extra_mongo: &[u16]) -> Self {
        let mut cql = vec![DEFAULT_CQL_PORT];
        cql.extend_from_slice(extra_cql);
        cql.sort_unstable();
        cql.dedup();
        let mut mongo = vec![DEFAULT_MONGO_PORT];
        mongo.extend_from_slice(extra_mongo);
        mongo.sort_unstable();
        mongo.dedup();
        PortMap { cql, mongo }
    }

    /// Every configured server port.
    pub fn all(&self) -> Vec<u16> {
        let mut v: Vec<u16> = self.cql.iter().chain(&self.mongo).copied().collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The protocol of a server port, if configured. CQL wins if a port is given for both.
    pub fn by_port(&self, server_port: u16) -> Option<Protocol> {
        if self.cql.contains(&server_port) {
            Some(Protocol::Cql)
        } else if self.mongo.contains(&server_port) {
            Some(Protocol::Mongo)
        } else {
            None
        }
    }
}

/// Bytes of a stream's start that sniffing looks at (a MongoDB header; a CQL header
/// is 9).
pub const SNIFF_LEN: usize = 16;
const CQL_HEADER: usize = 9;
/// Cassandra refuses frames over 256 MiB whatever its configuration.
const CQL_MAX_BODY: u32 = 256 << 20;
/// MongoDB's maxMessageSizeBytes.
const MONGO_MAX_MESSAGE: i32 = 48_000_000;
/// OP_REPLY, legacy OP_UPDATE..OP_KILL_CURSORS (2001–2007 minus 2003), OP_COMMAND,
/// OP_COMMANDREPLY, OP_COMPRESSED, OP_MSG.
const MONGO_OPCODES: [i32; 11] = [
    1, 2001, 2002, 2004, 2005, 2006, 2007, 2010, 2011, 2012, 2013,
];

/// Result of sniffing a stream prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniff {
    Is(Protocol),
    /// Not enough bytes yet to tell.
    NeedMore,
}

/// A CQL v3–v5 frame header (request: version 3–5; response: 0x83–0x85), with only
/// defined flags (compression, tracing, custom payload, warning, beta), a known
/// opcode and a body length Cassandra would accept.
pub fn is_cql_header(h: &[u8], response: bool) -> bool {
    if h.len() < CQL_HEADER {
        return false;
    }
    let version = h[0];
    let version_ok = if response {
        (0x83..=0x85).contains(&version)
    } else {
        (3..=5).contains(&version)
    };
    let stream = i16::from_be_bytes([h[2], h[3]]);
    let len = u32::from_be_bytes([h[5], h[6], h[7], h[8]]);
    version_ok
        && h[1] & 0xe0 == 0
        && (response || stream >= 0)
        && h[4] <= 0x10
        && len <= CQL_MAX_BODY
}

/// A MongoDB message header: plausible length and a known opcode.
pub fn is_mongo_header(h: &[u8]) -> bool {
    if h.len() < SNIFF_LEN {
        return false;
    }
    let len = i32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let opcode = i32::from_le_bytes([h[12], h[13], h[14], h[15]]);
    (SNIFF_LEN as i32..=MONGO_MAX_MESSAGE).contains(&len) && MONGO_OPCODES.contains(&opcode)
}

/// Sniffs the start of one direction. With `complete`, no more bytes will come (the
/// peer answered, a gap followed, or the flow ended), so decide with what is there.
pub fn sniff(prefix: &[u8], response: bool, complete: bool) -> Sniff {
    if is_cql_header(prefix, response) && (prefix.len() >= SNIFF_LEN || complete) {
        // A CQL header can also parse as the start of a MongoDB length; the CQL check
        // is the stricter of the two, so it is taken first.
        return Sniff::Is(Protocol::Cql);
    }
    if is_mongo_header(prefix) {
        return Sniff::Is(Protocol::Mongo);
    }
    if prefix.len() >= SNIFF_LEN || complete {
        Sniff::Is(Protocol::Unknown)
    } else {
        Sniff::NeedMore
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cql_request_and_response() {
        // v4 QUERY, stream 3, length 0x20.
        let q = [4, 0, 0, 3, 7, 0, 0, 0, 0x20];
        assert_eq!(sniff(&q, false, true), Sniff::Is(Protocol::Cql));
        assert_eq!(sniff(&q, false, false), Sniff::NeedMore);
        let r = [0x84, 0, 0, 3, 8, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0];
        assert_eq!(sniff(&r, true, false), Sniff::Is(Protocol::Cql));
        // Opcode out of range, bad flags, a response byte in the request direction.
        assert_eq!(
            sniff(&[4, 0, 0, 3, 0x11, 0, 0, 0, 1], false, true),
            Sniff::Is(Protocol::Unknown)
        );
        assert_eq!(
            sniff(&[4, 0x40, 0, 3, 7, 0, 0, 0, 1], false, true),
            Sniff::Is(Protocol::Unknown)
        );
        assert_eq!(sniff(&r[..9], false, true), Sniff::Is(Protocol::Unknown));
    }

    #[test]
    fn mongo_header() {
        let mut h = Vec::new();
        h.extend_from_slice(&100i32.to_le_bytes());
        h.extend_from_slice(&7i32.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&2013i32.to_le_bytes());
        assert_eq!(sniff(&h, false, false), Sniff::Is(Protocol::Mongo));
        h[12..16].copy_from_slice(&2269i32.to_le_bytes());
        assert_eq!(sniff(&h, false, false), Sniff::Is(Protocol::Unknown));
    }

    #[test]
    fn thrift_and_http_are_unknown() {
        // Framed Thrift CALL: 4-byte frame length, then 0x80 0x01 0x00 0x01.
        let thrift = [
            0, 0, 0, 0x2c, 0x80, 1, 0, 1, 0, 0, 0, 0x0c, b's', b'e', b't', b'_',
        ];
        assert_eq!(sniff(&thrift, false, false), Sniff::Is(Protocol::Unknown));
        assert_eq!(
            sniff(b"GET / HTTP/1.1\r\nHost", false, false),
            Sniff::Is(Protocol::Unknown)
        );
    }

    #[test]
    fn ports_add_to_defaults() {
        let p = PortMap::new(&[19042], &[27018]);
        assert_eq!(p.by_port(9042), Some(Protocol::Cql));
        assert_eq!(p.by_port(19042), Some(Protocol::Cql));
        assert_eq!(p.by_port(27017), Some(Protocol::Mongo));
        assert_eq!(p.by_port(27018), Some(Protocol::Mongo));
        assert_eq!(p.by_port(80), None);
    }
}
