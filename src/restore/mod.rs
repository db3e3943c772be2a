//! Putting a version back to use: `export` (files for loaders and analytics); restore
//! and verify through the real drivers come here next (ARCHITECTURE.md, "Versions and
//! restore").

pub mod export;
pub mod parquet;
