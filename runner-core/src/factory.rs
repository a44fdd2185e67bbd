//! How a runner makes its loop.

use std::io;

use crate::EventLoop;

/// Makes the event loop of a `Runner`, once, when the runner is first used.
///
/// This is Python's `loop_factory`. Any `FnMut() -> io::Result<L> + Send + 'static` is a factory,
/// so a configured constructor such as `|| TokioLoop::multi_thread(2)` can be handed to
/// `Builder::loop_factory` as it is.
///
/// # Contract
///
/// - `make` is called with no arguments, on the thread that first uses the runner, exactly once
///   per runner when it succeeds. When it fails, the runner stays
///   [`State::Created`](crate::State::Created) and `make` is called again on the next use.
/// - `make` must not run a loop itself or block waiting on one.
pub trait LoopFactory<L: EventLoop>: Send + 'static {
    /// Makes a new loop.
    ///
    /// # Errors
    ///
    /// Whatever the loop's constructor fails with; the runner turns it into
    /// [`RunError::LoopCreation`](crate::RunError::LoopCreation).
    fn make(&mut self) -> io::Result<L>;
}

impl<L, F> LoopFactory<L> for F
where
    L: EventLoop,
    F: FnMut() -> io::Result<L> + Send + 'static,
{
    fn make(&mut self) -> io::Result<L> {
        self()
    }
}
