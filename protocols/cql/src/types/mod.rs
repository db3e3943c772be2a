//! CQL data types: the type descriptions of metadata ([`ColumnType`]), typed values
//! ([`Value`]) with their wire serialization, and rendering as Cassandra's JSON.

mod column_type;
pub mod decimal;
pub mod format;
mod json;
pub mod marshal;
mod value;

pub use column_type::{ColumnType, MAX_DEPTH};
pub use json::{json_text, to_json, write_json};
pub use value::Value;
