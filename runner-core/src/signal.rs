//! Ctrl-C scoped to `run`: the first SIGINT cancels the main future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll};

use crate::error::MSG_NO_RUNTIME;
use crate::shared::{self, Shared};

/// Whether `run` intercepts Ctrl-C (SIGINT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Interrupt {
    /// Intercept during `run`, on the process's main thread, and only while SIGINT has its
    /// default disposition (no handler of the user's is ever replaced). The default.
    #[default]
    Auto,
    /// As `Auto`, but on any thread: the runner still never replaces a user's handler.
    Always,
    /// Never intercept: SIGINT keeps whatever disposition the process gave it.
    Never,
}

/// Installed for the duration of one `run`.
pub(crate) struct RunGuard {
    _private: (),
}

impl RunGuard {
    pub(crate) fn enter(_shared: &Arc<Shared>) -> Self {
        RunGuard { _private: () }
    }
}

/// Resolves when the first Ctrl-C of the current run arrives (with an
/// [`interrupt_grace`](crate::Builder::interrupt_grace) set, the main future then has the grace
/// to finish).
///
/// # Panics
///
/// Outside any run.
#[track_caller]
pub fn interrupted() -> Interrupted {
    let shared = shared::with_current(|s| s.cloned())
        .unwrap_or_else(|| panic!("runner::interrupted: {MSG_NO_RUNTIME}"));
    Interrupted { shared, key: None }
}

/// The future of [`interrupted`].
pub struct Interrupted {
    shared: Arc<Shared>,
    key: Option<usize>,
}

impl Future for Interrupted {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<()> {
        let this = &mut *self;
        this.shared.interrupt.poll(&mut this.key, cx)
    }
}

impl Drop for Interrupted {
    fn drop(&mut self) {
        self.shared.interrupt.forget(self.key.take());
    }
}

impl fmt::Debug for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interrupted").finish_non_exhaustive()
    }
}
