//! Faults injected at well-defined events, so the crash-resume tests replay a seed
//! exactly instead of killing the process a guessed number of milliseconds in.
//!
//! Only debug builds (`cfg(debug_assertions)`, which is what `cargo test` builds the
//! binary as) read these variables; in a release build every hook is an empty
//! inline function and the environment is never consulted, so no deployment can
//! be made to abort by its environment.
//!
//! - `TIDEMARK_TEST_ABORT_AFTER_GROUPS=N`: `abort()` right after this run's Nth
//!   group commit (the transaction holding the mutations and the checkpoint is
//!   durable; nothing after it was written: commits run on the committer thread,
//!   in order, and the abort happens there between two of them);
//! - `TIDEMARK_TEST_ABORT_BEFORE_GROUP=N`: `abort()` right before this run's Nth
//!   group commit (its mutations are decided but were never written);
//! - `TIDEMARK_TEST_SIGTERM_AFTER_PACKETS=N`: raise SIGTERM in the process after the
//!   Nth packet, through the installed handler, so a clean stop lands at a chosen
//!   packet that is no group boundary.
//! - `TIDEMARK_TEST_SLOW_EVENTS_MS=N`: sleep N ms before each batch of events a
//!   proxy fed, so the decoders fall behind forwarding on purpose and the gap path
//!   runs.
//!
//! Groups count the commits this run writes (the first records the run itself);
//! the groups a resumed run's replay skips are not counted.

#[cfg(debug_assertions)]
mod hooks {
    use std::sync::OnceLock;

    fn var(name: &str) -> Option<u64> {
        std::env::var(name).ok()?.parse().ok()
    }

    struct Points {
        abort_after: Option<u64>,
        abort_before: Option<u64>,
        sigterm_after: Option<u64>,
        slow_events_ms: Option<u64>,
    }

    fn points() -> &'static Points {
        static P: OnceLock<Points> = OnceLock::new();
        P.get_or_init(|| Points {
            abort_after: var("TIDEMARK_TEST_ABORT_AFTER_GROUPS"),
            abort_before: var("TIDEMARK_TEST_ABORT_BEFORE_GROUP"),
            sigterm_after: var("TIDEMARK_TEST_SIGTERM_AFTER_PACKETS"),
            slow_events_ms: var("TIDEMARK_TEST_SLOW_EVENTS_MS"),
        })
    }

    pub fn before_group(n: u64) {
        if points().abort_before == Some(n) {
            std::process::abort();
        }
    }

    pub fn after_group(n: u64) {
        if points().abort_after == Some(n) {
            std::process::abort();
        }
    }

    pub fn after_packet(n: u64) {
        if points().sigterm_after == Some(n) {
            let _ = signal_hook::low_level::raise(signal_hook::consts::SIGTERM);
        }
    }

    pub fn before_events() {
        if let Some(ms) = points().slow_events_ms {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
    }
}

#[cfg(not(debug_assertions))]
mod hooks {
    #[inline(always)]
    pub fn before_group(_: u64) {}
    #[inline(always)]
    pub fn after_group(_: u64) {}
    #[inline(always)]
    pub fn after_packet(_: u64) {}
    #[inline(always)]
    pub fn before_events() {}
}

pub(super) use hooks::{after_group, after_packet, before_events, before_group};
