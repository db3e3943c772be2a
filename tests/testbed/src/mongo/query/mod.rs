//! Document logic with no state: query filters, projections, BSON order,
//! update operators and `$v: 2` diffs. The bottom layer.

pub mod diff;
pub mod match_ops;
pub mod matcher;
pub mod order;
pub mod projection;
pub mod update;
pub mod update_array;
pub mod update_path;
