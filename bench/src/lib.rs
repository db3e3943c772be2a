//! tidemark-bench: side-by-side benchmarks. Every speed is reported as a ratio against
//! a reference measured in the same run, because this machine is noisy.

pub mod cql_workload;
pub mod mongo_workload;
pub mod pcapgen;
pub mod synth;
