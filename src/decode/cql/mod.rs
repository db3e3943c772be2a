//! CQL flows: frames to `message` records, writes to `write` records.
//!
//! * [`flow`]: the per-flow decoder (framing, pairing by stream id, outcomes).
//! * [`request`]: what each request is and which write lines it carries.
//! * [`extract`]: statement + bound values → write lines.
//! * [`outcome`]: ARCHITECTURE.md's outcome rules for CQL responses.
//! * [`parsed`]: statement texts parsed once (prepared statements, repeated QUERYs).
//! * [`shared`]: prepared statements per server node, unresolved EXECUTEs, schema.
//! * [`typed`]: the typed (bytes + CQL type) form of a write, beside its JSON line.
//! * [`schema`], [`ddl`]: schema learned from `system_schema` rows and CREATE text.

pub mod ddl;
pub mod extract;
pub mod flow;
pub mod message;
pub mod outcome;
pub mod parsed;
pub mod request;
pub mod resolve;
pub mod schema;
pub mod shared;
pub mod stored_schema;
pub mod typed;

pub use flow::CqlFlowDecoder;
pub use shared::SharedState;
/// The protocol crate this decoder is built on, for users (benchmarks, tools) that
/// need its encoder without depending on it separately.
pub use tidemark_cql as protocol;
