//! Decoding: a flow's ordered bytes in, typed records out.
//!
//! The per-flow seam comes first: [`detect`] tells a flow's protocol, [`seam`] is the
//! [`FlowDecoder`](seam::FlowDecoder) trait every protocol implements, [`session`]
//! keeps one decoder per flow and turns stream events into [`records`]. Below the
//! seam sit the protocol decoders ([`cql`], [`mongo`]), built on the sans-IO protocol
//! crates; above them the [`registry`] names them. [`time`] renders capture times.
//! `inspect` prints these records; the commit tracker consumes them.

pub mod cql;
pub mod detect;
pub mod line_value;
pub mod mongo;
pub mod reason;
pub mod records;
pub mod registry;
pub mod seam;
pub mod session;
pub mod time;
