//! The conformance kit: every behaviour of the `runner` contract as a plain generic function,
//! and one [`suite!`] macro that stamps a `#[test]` per case for a loop.
//!
//! Each case's doc quotes the contract sentence (or the upstream CPython test) it checks. Backend
//! differences are data, a [`Caps`] value in the [`Kit`], never forked case bodies.
//!
//! # Running the kit on your loop
//!
//! ```ignore
//! // tests/conformance.rs of the crate that defines `MyLoop`
//! runner_conformance::suite!(my_loop, runner_conformance::Kit::new("my_loop", MyLoop::new));
//! ```
//!
//! which expands to `mod my_loop { #[test] fn r1_run_return() { .. } .. }`.

#![forbid(unsafe_code)]

use std::fmt;
use std::io;
use std::sync::Arc;

use runner_core::{Builder, EventLoop, Runner};

pub mod cases;
pub mod model;

/// What a loop can do, where the contract lets loops differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Caps {
    /// Tasks progress between runs, on worker threads.
    pub multi_thread: bool,
    /// `spawn_local` works.
    pub local_tasks: bool,
    /// The runner is `Send` (it may be moved to another thread between runs).
    pub send: bool,
}

impl Caps {
    /// A current-thread loop that runs local tasks: the most common custom loop.
    pub const LOCAL: Caps = Caps {
        multi_thread: false,
        local_tasks: true,
        send: true,
    };
}

/// A loop factory with a name and capabilities: what every case takes.
pub struct Kit<L: EventLoop> {
    name: &'static str,
    factory: Arc<dyn Fn() -> io::Result<L> + Send + Sync>,
    caps: Caps,
    mover: Option<Mover<L>>,
}

/// A job to run on a runner, on another thread.
pub type Job<L> = Box<dyn FnOnce(&mut Runner<L>) + Send>;

/// Runs a job on a runner from a thread of its own and gives the runner back: only for loops
/// whose runner is `Send` (see [`Kit::on_other_thread`]).
pub type Mover<L> = fn(Runner<L>, Job<L>) -> Runner<L>;

fn move_runner<L: EventLoop + Send>(rt: Runner<L>, job: Job<L>) -> Runner<L> {
    std::thread::spawn(move || {
        let mut rt = rt;
        job(&mut rt);
        rt
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Finds [`Kit::on_other_thread`]'s mover for a concrete loop type: `suite!` calls
/// `(&MoverProbe::of(&kit)).mover()`, which picks [`SendMover`] when the loop is `Send` and
/// [`NoMover`] otherwise (autoref specialisation).
#[doc(hidden)]
#[derive(Debug)]
pub struct MoverProbe<L>(std::marker::PhantomData<L>);

impl<L: EventLoop> MoverProbe<L> {
    #[doc(hidden)]
    pub fn of(_: &Kit<L>) -> Self {
        MoverProbe(std::marker::PhantomData)
    }
}

#[doc(hidden)]
pub trait SendMover<L: EventLoop> {
    fn mover(&self) -> Option<Mover<L>>;
}

impl<L: EventLoop + Send> SendMover<L> for MoverProbe<L> {
    fn mover(&self) -> Option<Mover<L>> {
        Some(move_runner::<L>)
    }
}

#[doc(hidden)]
pub trait NoMover<L: EventLoop> {
    fn mover(&self) -> Option<Mover<L>>;
}

impl<L: EventLoop> NoMover<L> for &MoverProbe<L> {
    fn mover(&self) -> Option<Mover<L>> {
        None
    }
}

impl<L: EventLoop> Kit<L> {
    /// A kit for a current-thread loop with local tasks ([`Caps::LOCAL`]).
    pub fn new(
        name: &'static str,
        factory: impl Fn() -> io::Result<L> + Send + Sync + 'static,
    ) -> Self {
        Kit {
            name,
            factory: Arc::new(factory),
            caps: Caps::LOCAL,
            mover: None,
        }
    }

    /// Sets how to move this kit's runners to another thread (`suite!` sets it for every `Send`
    /// loop).
    #[doc(hidden)]
    pub fn with_mover(mut self, mover: Option<Mover<L>>) -> Self {
        self.mover = mover;
        self
    }

    /// Runs `job` on `rt` from another thread and gives the runner back; `None` (with the runner
    /// dropped on this thread) when the loop's runner is not `Send`.
    pub fn on_other_thread(
        &self,
        rt: Runner<L>,
        job: impl FnOnce(&mut Runner<L>) + Send + 'static,
    ) -> Option<Runner<L>> {
        self.mover.map(|m| m(rt, Box::new(job)))
    }

    /// Sets the capabilities.
    pub fn caps(mut self, caps: Caps) -> Self {
        self.caps = caps;
        self
    }

    /// Sets whether tasks progress between runs on worker threads (where `spawn_local` is then
    /// refused: only the runner's own thread runs local tasks).
    pub fn multi_thread(mut self, on: bool) -> Self {
        self.caps.multi_thread = on;
        self
    }

    /// Sets whether `spawn_local` works (a loop whose `local_spawner` is `None` has no local
    /// tasks even when it is current-thread).
    pub fn local_tasks(mut self, on: bool) -> Self {
        self.caps.local_tasks = on;
        self
    }

    /// Sets whether the runner is `Send`.
    pub fn send(mut self, on: bool) -> Self {
        self.caps.send = on;
        self
    }

    /// The loop's name, for messages.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The capabilities.
    pub fn capabilities(&self) -> Caps {
        self.caps
    }

    /// A builder whose factory is this kit's.
    pub fn builder(&self) -> Builder<L> {
        let f = self.factory.clone();
        Builder::<L>::new().loop_factory(move || f())
    }

    /// A runner with default settings on this kit's loop.
    pub fn runner(&self) -> Runner<L> {
        self.builder().build()
    }

    /// The factory, to count calls or to wrap it.
    pub fn factory(&self) -> impl FnMut() -> io::Result<L> + Send + 'static {
        let f = self.factory.clone();
        move || f()
    }
}

impl<L: EventLoop> Clone for Kit<L> {
    fn clone(&self) -> Self {
        Kit {
            name: self.name,
            factory: self.factory.clone(),
            caps: self.caps,
            mover: self.mover,
        }
    }
}

impl<L: EventLoop> fmt::Debug for Kit<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kit")
            .field("name", &self.name)
            .field("caps", &self.caps)
            .finish()
    }
}

/// Stamps one `#[test]` per conformance case into a module named `$name`, each calling the case
/// with `$kit` (an expression of type `Kit<L>`, evaluated once per test).
///
/// Call it with parentheses so rustfmt formats the call: `suite!(tokio_multi, kit_expr);`.
#[macro_export]
macro_rules! suite {
    ($name:ident, $kit:expr) => {
        #[allow(non_snake_case)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::__cases!($kit);
        }
    };
}

/// The case list; `suite!` expands it. One line a case: `module::case`.
#[doc(hidden)]
#[macro_export]
macro_rules! __cases {
    ($kit:expr) => {
        $crate::__stamp!($kit;
            lifecycle::r1_run_return,
            lifecycle::r2_run_panics_with_payload,
            lifecycle::r2_run_err_is_ok_err,
            lifecycle::r5_run_inside_run_is_nested,
            lifecycle::n12_recursive_run_is_nested,
            lifecycle::nested_close_is_an_error,
            lifecycle::r11_factory_called_once_and_get_loop_is_its_loop,
            lifecycle::n4_run_then_close,
            lifecycle::n8_explicit_close,
            lifecycle::n9_double_close,
            lifecycle::n10_closed_runner_never_polls,
            lifecycle::close_on_created_is_noop,
            lifecycle::factory_failure_leaves_created_and_retries,
            lifecycle::panic_in_main_keeps_runner_usable,
            lifecycle::n6_run_accepts_join_handle,
            lifecycle::n7_run_accepts_into_future,
            lifecycle::r9_ambient_handle_inside_run_and_tasks,
            lifecycle::concurrent_runners_on_threads,
            context::n11_run_keeps_context,
            context::context_is_snapshotted_at_lazy_init,
            context::run_with_context_uses_the_given_context,
            context::spawn_copies_context_without_leak_back,
            context::handle_spawn_uses_the_calling_threads_context,
            context::spawn_blocking_runs_in_a_copy_of_the_context,
            context::thousand_tasks_keep_their_own_values,
            context::task_keeps_its_context_across_worker_threads,
            context::token_rules_in_runs_and_tasks,
            context::cancelled_task_is_dropped_in_its_own_context,
            debug::r4_is_debug_follows_builder,
            debug::slow_task_poll_is_reported_once_with_its_location,
            debug::quick_polls_are_not_reported,
            debug::slow_main_poll_is_reported_as_main,
            debug::close_in_debug_lists_pending_tasks,
            debug::debug_off_reports_nothing,
            tasks::spawn_and_join_value,
            tasks::spawn_join_10_000,
            tasks::abort_drops_future_on_loop_thread,
            tasks::abort_racing_completion_ends_once,
            tasks::panicking_task_gives_join_error,
            tasks::detached_panic_reaches_handler,
            tasks::unobserved_panics_reported_exactly_once,
            tasks::unread_panic_reported_when_handle_dropped,
            tasks::spawn_from_inside_a_task,
            tasks::spawn_never_polls_inline,
            tasks::loop_handle_40_000_from_4_threads,
            tasks::loop_handle_spawn_before_first_run_is_queued,
            tasks::join_handle_awaited_on_plain_thread,
            tasks::sleep_and_timeout,
            tasks::spawn_blocking_returns_value_in_context_copy,
            tasks::errors_outside_a_run,
            tasks::spawn_local_follows_capabilities,
            tasks::spawn_local_off_the_runner_thread,
            tasks::loop_handle_spawn_after_close_is_closed,
            close::r6_close_cancels_hanging_tasks,
            close::r7_panic_during_grace_reaches_handler,
            close::r8_close_drops_stream_after_cancelled_task,
            close::close_cancels_10_000_pending_tasks,
            close::grace_finishes_watchers_and_cancels_the_rest,
            close::tasks_spawned_during_close_are_cancelled_and_counted,
            close::blocking_job_left_behind_is_reported,
            close::blocking_spawn_after_close_never_hangs,
            close::shutdown_runner_policy_ends_the_run,
            close::shutdown_runner_policy_between_runs,
            close::handle_spawns_racing_close_are_refused_or_counted,
            close::drop_while_panicking_never_double_panics,
            close::drop_inside_another_run_does_not_block,
            close::close_cancels_tasks_queued_before_any_run,
            engine::local_tasks_run_after_a_runner_dropped_in_another_run,
            engine::spawns_from_another_runner_are_refused_while_closing,
            engine::tasks_joined_before_close_are_not_counted,
            engine::local_tasks_of_a_runner_dropped_in_another_run_are_dropped,
            engine::local_tasks_of_a_runner_dropped_elsewhere_are_dropped_at_home,
            engine::detached_output_destructor_panic_reaches_handler,
            engine::wrong_thread_only_while_local_tasks_live,
            engine::dropping_a_handle_whose_output_panics_on_drop,
            engine::panicking_future_is_dropped_while_unwinding,
            engine::abort_after_finish_keeps_the_output,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __stamp {
    ($kit:expr; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                #[allow(unused_imports)]
                use $crate::{NoMover as _, SendMover as _};
                let kit = $kit;
                let mover = (&$crate::MoverProbe::of(&kit)).mover();
                $crate::cases::$module::$case(&kit.with_mover(mover));
            }
        )*
    };
}
