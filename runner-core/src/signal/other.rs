//! Platforms without POSIX signals: nothing is installed and no run intercepts Ctrl-C, which
//! keeps the platform's default behaviour; [`interrupted()`](super::interrupted) never resolves.

use std::marker::PhantomData;
use std::sync::Arc;

use super::Interruptible;

/// A runner's part of the Ctrl-C state: nothing here.
pub(crate) struct RunnerSignal;

impl RunnerSignal {
    pub(crate) fn new() -> Self {
        RunnerSignal
    }
}

/// Never made on these platforms.
#[allow(dead_code)] // the type the Unix side returns; here `enter` always says no
pub(crate) struct Active<'a>(PhantomData<&'a ()>);

pub(crate) fn on_main_thread() -> bool {
    false
}

pub(crate) fn enter<S: Interruptible>(_shared: &Arc<S>, _main: bool) -> Option<Active<'_>> {
    None
}

pub(crate) fn finish(_active: Active<'_>) -> bool {
    false
}
