//! The running cluster: starting it, node lifecycle (stop, start, add, remove) and
//! the control endpoint's routes. The top layer: it starts connections (`wire`).

pub mod cluster;
pub mod control_api;
pub mod membership;
