//! `tidemark verify`: the target read back and compared with the version, range by
//! range by hash, then row by row where a range's hashes differ.

pub mod cql;
pub mod mongo;
