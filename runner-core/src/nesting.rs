//! Runtimes other than a runner's own loop that a run must not start inside.
//!
//! A loop knows its own runtime ([`EventLoop::is_nested`]), but a
//! smol runner cannot see that a tokio runtime is driving the thread. The `runner` facade
//! registers the probe of every backend it compiles in, so that a runner of any backend refuses
//! to start inside any of them.

use std::fmt;
use std::sync::OnceLock;

use crate::EventLoop;

/// How many probes can be registered: one per backend is the use.
const SLOTS: usize = 8;

static PROBES: [OnceLock<RuntimeProbe>; SLOTS] = [const { OnceLock::new() }; SLOTS];

/// A named test for "another runtime is driving the calling thread", registered with
/// [`register_runtime_probe`].
///
/// # Examples
///
/// ```
/// # use runner_core as runner;
/// use runner::{register_runtime_probe, RuntimeProbe};
///
/// fn inside_my_runtime() -> bool {
///     false // a thread-local the runtime sets while it drives the thread
/// }
/// register_runtime_probe(RuntimeProbe::new("my-runtime", inside_my_runtime));
/// ```
#[derive(Clone, Copy)]
pub struct RuntimeProbe {
    name: &'static str,
    is_driving: fn() -> bool,
}

impl RuntimeProbe {
    /// A probe named `name` (registering a second probe of the same name does nothing) that
    /// returns true while its runtime drives the calling thread.
    pub const fn new(name: &'static str, is_driving: fn() -> bool) -> Self {
        RuntimeProbe { name, is_driving }
    }

    /// Its name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl fmt::Debug for RuntimeProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeProbe")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Makes every runner's `run`, `close` and drop check `probe` too: while it returns true, `run`
/// and `close` return [`RunError::NestedRun`](crate::RunError::NestedRun) and a drop abandons the
/// loop instead of driving it. The `runner` facade registers its backends' probes itself.
///
/// Idempotent by name. Returns false, registering nothing, when the table (8 probes) is full.
pub fn register_runtime_probe(probe: RuntimeProbe) -> bool {
    for slot in &PROBES {
        let held = slot.get_or_init(|| probe);
        if held.name == probe.name {
            return true;
        }
    }
    false
}

/// True when the loop `L` cannot start here: its own runtime ([`EventLoop::is_nested`]) or any
/// registered probe's is driving the calling thread. A probe that is `L`'s own check (the facade
/// registers tokio's `is_nested` as the "tokio" probe) is not asked twice.
#[inline]
pub(crate) fn runtime_driving<L: EventLoop>() -> bool {
    let own: fn() -> bool = L::is_nested;
    own() || foreign_runtime_driving(own)
}

/// True when a registered probe other than `own` says its runtime is driving the calling thread.
/// One atomic load per registered probe plus the probes themselves; an empty table costs one
/// load.
#[inline]
fn foreign_runtime_driving(own: fn() -> bool) -> bool {
    // Slots fill in order: the first empty one ends the table.
    for slot in &PROBES {
        let Some(probe) = slot.get() else {
            return false;
        };
        if !std::ptr::fn_addr_eq(own, probe.is_driving) && (probe.is_driving)() {
            return true;
        }
    }
    false
}
