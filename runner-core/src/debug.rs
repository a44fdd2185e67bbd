//! Debug mode: slow polls and pending tasks at close (asyncio's debug mode).
//!
//! Off, debug mode costs one load of a `bool` per poll: no clock reads, no per-task metadata.

use std::time::Instant;

use crate::diagnostic::{Diagnostic, DiagnosticKind, TaskInfo};
use crate::shared::{self, Shared};

/// True when the runner running the caller is in debug mode; false outside any run.
pub fn is_debug() -> bool {
    shared::with_current(|s| s.is_some_and(|s| s.config.debug))
}

/// Reports the poll that started at `start` if it took longer than the threshold.
pub(crate) fn check_poll(shared: &Shared, info: &TaskInfo, start: Instant) {
    let took = start.elapsed();
    if took > shared.config.slow_poll {
        shared.report(&Diagnostic {
            kind: DiagnosticKind::SlowPoll,
            task: info.clone(),
            payload: None,
            message: None,
            duration: Some(took),
        });
    }
}
