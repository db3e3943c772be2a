//! Per-flow protocol decoding glue: turns a flow's ordered bytes into `message` and
//! `write` records using the sans-IO protocol crates. The commit tracker builds on the
//! same decoders later.

pub mod cql;
pub mod mongo;
