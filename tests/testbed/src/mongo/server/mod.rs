//! The running set: starting it, member lifecycle and partitions, the control
//! endpoint's routes and ground truth as JSON. The top layer.

pub mod control;
pub mod lifecycle;
pub mod set;
pub mod set_truth;
