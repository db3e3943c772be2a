//! tidemark-bench: side-by-side benchmarks. Every speed is reported as a ratio against
//! a reference measured in the same run, because this machine is noisy.

/// The allocator of the `tidemark` binary (see its `main.rs`), so what runs in process
/// here costs what it costs there; `--no-default-features` runs the benches on the
/// system allocator instead.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod cql_workload;
pub mod mongo_workload;
pub mod pcapgen;
pub mod synth;
