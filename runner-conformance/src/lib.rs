//! The conformance kit: every behaviour of the `runner` contract as a plain generic function,
//! and one [`suite!`] macro that stamps a `#[test]` per case for a loop.
//!
//! Each case's doc quotes the contract sentence (or the upstream CPython test) it checks. Backend
//! differences are data, a [`Caps`] value in the [`Kit`], never forked case bodies; where a case
//! checks less than its whole claim on some loops, [`LIMITS`] says so, and docs/conformance.md
//! is generated from [`CASES`] and [`LIMITS`].
//!
//! Every stamped test first checks the kit's [`Caps`] against the loop itself
//! ([`check_caps`]), then runs its case under a watchdog ([`watchdog`]): a case that hangs
//! fails with a message naming it instead.
//!
//! # Running the kit on your loop
//!
//! ```ignore
//! // tests/conformance.rs of the crate that defines `MyLoop`
//! runner_conformance::suite!(my_loop, runner_conformance::Kit::new("my_loop", MyLoop::new));
//! ```
//!
//! which expands to `mod my_loop { #[test] fn r1_run_return() { .. } .. }`.

// `unsafe` only in `cases::idle`, for `getrusage` (no std equivalent).
#![deny(unsafe_code)]

use std::any::TypeId;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use runner_core::{Builder, EventLoop, Runner, SpawnError};

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
    send: SendProof<L>,
    mover: Option<Mover<L>>,
    backend_tasks: bool,
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

/// What is known about `Runner<L>: Send`: only [`suite!`], where `L` is a concrete type, can
/// find out.
enum SendProof<L: EventLoop> {
    Unknown,
    NotSend,
    /// The check that needs `Runner<L>: Send`, compiled where it holds.
    Send(fn(&Kit<L>)),
}

impl<L: EventLoop> Clone for SendProof<L> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<L: EventLoop> Copy for SendProof<L> {}

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
            send: SendProof::Unknown,
            mover: None,
            backend_tasks: false,
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

    /// Sets [`Builder::backend_tasks`] on every runner the kit builds: on a multi-thread loop,
    /// the backend's own tasks instead of the runner's own queue and its pumps.
    pub fn backend_tasks(mut self, on: bool) -> Self {
        self.backend_tasks = on;
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
        Builder::<L>::new()
            .loop_factory(move || f())
            .backend_tasks(self.backend_tasks)
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

    /// Whether `Runner<L>` is `Send`, as [`suite!`] found at compile time; `None` for a kit not
    /// stamped by `suite!` (a generic function cannot tell).
    pub fn runner_is_send(&self) -> Option<bool> {
        match self.send {
            SendProof::Unknown => None,
            SendProof::NotSend => Some(false),
            SendProof::Send(_) => Some(true),
        }
    }

    /// The check that needs `Runner<L>: Send`, when it is (known through [`suite!`]).
    pub(crate) fn with_send_runner(&self) -> Option<fn(&Kit<L>)> {
        match self.send {
            SendProof::Send(f) => Some(f),
            _ => None,
        }
    }
}

/// Checks the kit's [`Caps`] against a loop it makes: `multi_thread` against
/// [`EventLoop::is_multi_thread`] (and [`LoopHandle::is_multi_thread`](runner_core::LoopHandle::is_multi_thread)),
/// `local_tasks` against what `try_spawn_local` does on the runner's thread, and `send` against
/// whether `Runner<L>` is `Send` (when [`suite!`] made the kit, which can tell).
///
/// # Panics
///
/// On the first capability that the loop contradicts, naming it and the fix.
pub fn check_caps<L: EventLoop>(kit: &Kit<L>) {
    let caps = kit.capabilities();
    let name = kit.name();
    let mut rt = kit.runner();
    let lp_multi = rt
        .get_loop()
        .unwrap_or_else(|e| panic!("{name}: the factory failed: {e}"))
        .is_multi_thread();
    assert_eq!(
        caps.multi_thread, lp_multi,
        "{name}: the kit declares multi_thread = {}, but the loop's EventLoop::is_multi_thread() \
         is {lp_multi}: fix the kit (`.multi_thread({lp_multi})`) or the loop",
        caps.multi_thread
    );
    assert_eq!(
        rt.handle().unwrap().is_multi_thread(),
        lp_multi,
        "{name}: LoopHandle::is_multi_thread() disagrees with the loop"
    );
    let local = rt
        .run(async { runner_core::try_spawn_local(async {}).map(drop) })
        .unwrap_or_else(|e| panic!("{name}: a run failed: {e}"));
    match local {
        Ok(()) => assert!(
            caps.local_tasks,
            "{name}: the kit declares local_tasks = false, but spawn_local works on the \
             runner's thread: fix the kit (`.local_tasks(true)`)"
        ),
        Err(e) => assert!(
            !caps.local_tasks && e == SpawnError::LocalUnsupported,
            "{name}: the kit declares local_tasks = {}, but try_spawn_local on the runner's \
             thread returned {e:?}: fix the kit (`.local_tasks(false)`) or the loop's \
             local_spawner",
            caps.local_tasks
        ),
    }
    rt.close()
        .unwrap_or_else(|e| panic!("{name}: close failed: {e}"));
    if let Some(send) = kit.runner_is_send() {
        assert_eq!(
            caps.send,
            send,
            "{name}: the kit declares send = {}, but Runner<L> is{} Send: fix the kit \
             (`.send({send})`)",
            caps.send,
            if send { "" } else { " not" }
        );
    }
}

/// How long [`watchdog`] lets a case run: `RUNNER_KIT_WATCHDOG_SECS`, or 300 s (the cases'
/// own bounded waits are 60 s; a loaded machine gets the rest).
pub fn watchdog_limit() -> Duration {
    let secs = std::env::var("RUNNER_KIT_WATCHDOG_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    Duration::from_secs(secs)
}

/// Runs `f` on a thread of its own and waits for it at most `limit`. Its panic is passed on as
/// it is; if it has not finished by then, this panics with a message naming `what` (the thread
/// is left behind: a hung thread cannot be stopped).
///
/// # Panics
///
/// When `f` panics, or does not finish within `limit`.
pub fn watchdog<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(what.chars().take(60).collect())
        .spawn(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(out);
        })
        .expect("a thread for the watchdog");
    match rx.recv_timeout(limit) {
        Ok(Ok(out)) => {
            let _ = thread.join();
            out
        }
        Ok(Err(payload)) => {
            let _ = thread.join();
            std::panic::resume_unwind(payload)
        }
        Err(_) => panic!(
            "{what} did not finish within {limit:?}: it hangs (watchdog; set \
             RUNNER_KIT_WATCHDOG_SECS to wait longer)"
        ),
    }
}

/// Every loop whose kit passed [`check_caps`] in this process, by loop type and kit name.
static CHECKED: Mutex<Vec<(TypeId, &'static str)>> = Mutex::new(Vec::new());

/// What a stamped test does: the kit's capabilities checked against its loop (once per process
/// and kit), then the case, under the watchdog.
#[doc(hidden)]
pub fn __run_case<L: EventLoop>(kit: Kit<L>, case: &'static str, f: fn(&Kit<L>)) {
    let key = (TypeId::of::<L>(), kit.name());
    let checked = CHECKED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(&key);
    let what = format!("{}: {case}", kit.name());
    watchdog(&what, watchdog_limit(), move || {
        if !checked {
            check_caps(&kit);
            CHECKED.lock().unwrap_or_else(|p| p.into_inner()).push(key);
        }
        f(&kit)
    });
}

/// Finds out, where `L` is a concrete type, whether `Runner<L>` is `Send` (autoref
/// specialisation: [`__IsSend`] applies first when it holds, [`__NotSend`] otherwise).
#[doc(hidden)]
#[derive(Debug)]
pub struct __SendProbe<L>(PhantomData<L>);

impl<L: EventLoop> __SendProbe<L> {
    #[doc(hidden)]
    pub fn of(_: &Kit<L>) -> Self {
        __SendProbe(PhantomData)
    }
}

#[doc(hidden)]
pub trait __IsSend<L: EventLoop> {
    fn attach(&self, kit: Kit<L>) -> Kit<L>;
}

impl<L: EventLoop> __IsSend<L> for __SendProbe<L>
where
    Runner<L>: Send,
{
    fn attach(&self, mut kit: Kit<L>) -> Kit<L> {
        kit.send = SendProof::Send(cases::lifecycle::move_runner_between_runs::<L>);
        kit
    }
}

#[doc(hidden)]
pub trait __NotSend<L: EventLoop> {
    fn attach(&self, kit: Kit<L>) -> Kit<L>;
}

impl<L: EventLoop> __NotSend<L> for &__SendProbe<L> {
    fn attach(&self, mut kit: Kit<L>) -> Kit<L> {
        kit.send = SendProof::NotSend;
        kit
    }
}

/// Where a case checks less than its whole claim: on the loops whose capabilities match `on`, it
/// leaves out `what`. Cases not listed in [`LIMITS`] check their whole claim on every loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// `module::case`.
    pub case: &'static str,
    /// The loops where the limit applies.
    pub on: When,
    /// What the case does not check there, and why.
    pub what: &'static str,
}

/// A set of loops, by capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// `Caps::multi_thread` loops.
    MultiThread,
    /// Loops that are not `Caps::multi_thread`.
    CurrentThread,
    /// Loops without `Caps::local_tasks`.
    NoLocalTasks,
    /// Loops whose runner is not `Send`.
    NotSend,
}

impl When {
    /// Whether a loop with `caps` is in the set.
    pub fn applies(self, caps: Caps) -> bool {
        match self {
            When::MultiThread => caps.multi_thread,
            When::CurrentThread => !caps.multi_thread,
            When::NoLocalTasks => !caps.local_tasks,
            When::NotSend => !caps.send,
        }
    }
}

/// Every place where a case checks less than its claim, as data (docs/conformance.md shows it).
pub const LIMITS: &[Limit] = &[
    Limit {
        case: "lifecycle::r11_factory_called_once_and_get_loop_is_its_loop",
        on: When::MultiThread,
        what: "workers run the marker tasks by themselves: that `get_loop()`'s loop is a live \
               one, not that it is the very one the runner drives",
    },
    Limit {
        case: "tasks::abort_drops_future_on_loop_thread",
        on: When::MultiThread,
        what: "which worker dropped the future: only that the loop did (inside the runner's \
               scope), not the aborting thread",
    },
    Limit {
        case: "lifecycle::send_runner_moves_to_another_thread_between_runs",
        on: When::NotSend,
        what: "not applicable: the runner cannot be moved",
    },
    Limit {
        case: "context::task_keeps_its_context_across_worker_threads",
        on: When::CurrentThread,
        what: "no worker threads to move between: the same sequence, without a move",
    },
    Limit {
        case: "tasks::spawn_local_off_the_runner_thread",
        on: When::CurrentThread,
        what: "every task runs on the runner's thread: only the half where `spawn_local` works",
    },
    Limit {
        case: "close::close_cancels_tasks_queued_before_any_run",
        on: When::MultiThread,
        what:
            "workers may start the tasks before close: cancelled and counted, not \"never polled\"",
    },
    Limit {
        case: "tasks::spawn_never_polls_inline",
        on: When::NoLocalTasks,
        what: "the `spawn_local` half",
    },
    Limit {
        case: "context::spawn_copies_context_without_leak_back",
        on: When::NoLocalTasks,
        what: "the `spawn_local` half",
    },
    Limit {
        case: "debug::r4_is_debug_follows_builder",
        on: When::NoLocalTasks,
        what: "the `spawn_local` half",
    },
    Limit {
        case: "engine::local_tasks_run_after_a_runner_dropped_in_another_run",
        on: When::NoLocalTasks,
        what: "not applicable: the loop has no local tasks",
    },
    Limit {
        case: "engine::local_tasks_of_a_runner_dropped_in_another_run_are_dropped",
        on: When::NoLocalTasks,
        what: "not applicable: the loop has no local tasks",
    },
    Limit {
        case: "engine::local_tasks_of_a_runner_dropped_elsewhere_are_dropped_at_home",
        on: When::NoLocalTasks,
        what: "not applicable: the loop has no local tasks",
    },
    Limit {
        case: "engine::local_tasks_of_a_runner_dropped_elsewhere_are_dropped_at_home",
        on: When::NotSend,
        what: "not applicable: the runner cannot be moved to another thread to be dropped there",
    },
    Limit {
        case: "engine::wrong_thread_only_while_local_tasks_live",
        on: When::NoLocalTasks,
        what: "not applicable: the loop has no local tasks",
    },
    Limit {
        case: "engine::wrong_thread_only_while_local_tasks_live",
        on: When::NotSend,
        what: "not applicable: the runner cannot be moved to another thread",
    },
];

crate::__cases!(__names!());

impl<L: EventLoop> Clone for Kit<L> {
    fn clone(&self) -> Self {
        Kit {
            name: self.name,
            factory: self.factory.clone(),
            caps: self.caps,
            send: self.send,
            mover: self.mover,
            backend_tasks: self.backend_tasks,
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
/// with `$kit` (an expression of type `Kit<L>`, evaluated once per test): first
/// [`check_caps`] (once per process and kit), then the case under [`watchdog`].
///
/// Call it with parentheses so rustfmt formats the call: `suite!(tokio_multi, kit_expr);`.
#[macro_export]
macro_rules! suite {
    ($name:ident, $kit:expr) => {
        #[allow(non_snake_case)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::__cases!(__stamp!($kit));
        }
    };
}

/// The case list; `suite!` and [`CASES`] expand it. One line a case: `module::case`.
#[doc(hidden)]
#[macro_export]
macro_rules! __cases {
    ($then:ident!($($args:tt)*)) => {
        $crate::$then!($($args)*;
            lifecycle::caps_match_the_loop,
            lifecycle::progress_between_runs_follows_multi_thread,
            lifecycle::send_runner_moves_to_another_thread_between_runs,
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
            nested::a_blocking_job_may_run_another_runner,
            nested::a_runner_dropped_inside_a_run_neither_blocks_nor_panics,
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
            engine::yielding_task_does_not_starve_timers,
            idle::sleeping_main_future_parks,
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
                use $crate::{NoMover as _, SendMover as _, __IsSend as _, __NotSend as _};
                let kit = $kit;
                let mover = (&$crate::MoverProbe::of(&kit)).mover();
                let kit = (&$crate::__SendProbe::of(&kit)).attach(kit).with_mover(mover);
                $crate::__run_case(
                    kit,
                    concat!(stringify!($module), "::", stringify!($case)),
                    $crate::cases::$module::$case,
                );
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __names {
    (; $($module:ident :: $case:ident),* $(,)?) => {
        /// Every case of the kit, `module::case`, in the order [`suite!`] stamps them.
        pub const CASES: &[&str] = &[$(concat!(stringify!($module), "::", stringify!($case))),*];
    };
}
