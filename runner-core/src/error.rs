//! The errors of the runner, its tasks and its context variables.

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::io;
use std::sync::Mutex;

pub(crate) const MSG_CLOSED: &str = "runner is closed";
pub(crate) const MSG_NESTED: &str =
    "cannot be called from a running event loop: a runner's loop (or a tokio runtime) is already running on this thread";
pub(crate) const MSG_INTERRUPTED: &str = "run was interrupted by ctrl-c (SIGINT)";
pub(crate) const MSG_NO_RUNTIME: &str =
    "there is no runner on this thread: call this from inside `Runner::run` (or a task it spawned), or spawn through a `LoopHandle`";
pub(crate) const MSG_NO_LOCAL: &str =
    "`!Send` tasks run on the runner's own thread: call `spawn_local` from the future passed to `Runner::run` or from another local task, not from a task on a worker thread";

/// Why a `Runner` call failed.
///
/// The Display text is one lowercase line that carries its cause, where there is one
/// (`the event loop could not be created: <the factory's error>`); so that an error-chain printer
/// does not print the cause twice, [`Error::source`] returns `None`, and the cause itself is the
/// variant's field.
#[derive(Debug)]
#[non_exhaustive]
pub enum RunError {
    /// The runner was closed: nothing more can run on it. The future was not polled.
    Closed,
    /// The call was made while an event loop was already running on this thread (from inside a
    /// run, inside a task, or inside a tokio runtime). The future was not polled.
    NestedRun,
    /// The first Ctrl-C (SIGINT) cancelled the main future.
    Interrupted,
    /// The loop factory failed; the runner stays [`State::Created`](crate::State::Created) and the
    /// next call tries again.
    LoopCreation(io::Error),
    /// The runner has `!Send` tasks (from `spawn_local`) on another thread; run and close it on
    /// that thread.
    WrongThread,
    /// A detached task panicked while [`UnhandledPanic::ShutdownRunner`](crate::UnhandledPanic)
    /// was in force; the main future was dropped.
    TaskPanicked(TaskPanicked),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Closed => f.write_str(MSG_CLOSED),
            RunError::NestedRun => f.write_str(MSG_NESTED),
            RunError::Interrupted => f.write_str(MSG_INTERRUPTED),
            RunError::WrongThread => f.write_str(MSG_WRONG_THREAD),
            RunError::LoopCreation(e) => write!(f, "the event loop could not be created: {e}"),
            RunError::TaskPanicked(p) => write!(f, "{p}"),
        }
    }
}

/// No `source()`: the one cause, [`RunError::LoopCreation`]'s, is already in the Display text.
impl Error for RunError {}

/// A detached task panicked and the runner was set to shut down on it.
#[derive(Debug)]
pub struct TaskPanicked {
    pub(crate) task: String,
    pub(crate) message: String,
}

impl TaskPanicked {
    /// The task's name, or its spawn location when it has none.
    pub fn task(&self) -> &str {
        &self.task
    }

    /// The panic message, when the payload was a string.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TaskPanicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "task {} panicked and the runner is set to shut down on unhandled panics: {}",
            self.task, self.message
        )
    }
}

/// Why a [`JoinHandle`](crate::JoinHandle) did not produce its task's output.
pub struct JoinError {
    repr: JoinRepr,
}

enum JoinRepr {
    Cancelled,
    /// Boxed, so that a `JoinError` is one pointer wide (it sits in every task's output slot).
    Panic(Box<Panicked>),
}

/// The payload sits behind a `Mutex` only to make `JoinError` `Sync` without `unsafe` (it is
/// never locked while shared: `into_panic` takes `self`); the message is read once, when the
/// error is made, so Display needs no lock.
struct Panicked {
    payload: Mutex<Box<dyn Any + Send + 'static>>,
    message: String,
}

impl JoinError {
    pub(crate) fn cancelled() -> Self {
        JoinError {
            repr: JoinRepr::Cancelled,
        }
    }

    pub(crate) fn panic(payload: Box<dyn Any + Send + 'static>) -> Self {
        JoinError {
            repr: JoinRepr::Panic(Box::new(Panicked {
                message: panic_message(payload.as_ref()).to_owned(),
                payload: Mutex::new(payload),
            })),
        }
    }

    /// True when the task was cancelled: aborted, or cancelled by the runner's close.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, JoinRepr::Cancelled)
    }

    /// True when the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, JoinRepr::Panic(_))
    }

    /// The panic message when the payload was a string; `"cancelled"` for a cancelled task.
    pub(crate) fn message(&self) -> &str {
        match &self.repr {
            JoinRepr::Panic(p) => &p.message,
            JoinRepr::Cancelled => "cancelled",
        }
    }

    /// The panic payload, to pass to [`std::panic::resume_unwind`].
    ///
    /// # Panics
    ///
    /// Panics when the task was cancelled rather than panicked; see
    /// [`try_into_panic`](Self::try_into_panic).
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .expect("`JoinError::into_panic` called on a cancelled task: check `is_panic` first")
    }

    /// The panic payload, or the error back when the task was cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            JoinRepr::Panic(p) => Ok(p
                .payload
                .into_inner()
                .unwrap_or_else(|poisoned| poisoned.into_inner())),
            repr @ JoinRepr::Cancelled => Err(JoinError { repr }),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            JoinRepr::Cancelled => f.write_str("task was cancelled"),
            JoinRepr::Panic(p) => write!(f, "task panicked: {}", p.message),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            JoinRepr::Cancelled => f.write_str("JoinError::Cancelled"),
            JoinRepr::Panic(p) => write!(f, "JoinError::Panic({:?})", p.message),
        }
    }
}

impl Error for JoinError {}

/// `try_spawn` and `LoopHandle::spawn` failed; the future was dropped, never polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpawnError {
    /// No runner is running on this thread.
    NoRunner,
    /// The runner is closed, or closing past the point where new tasks are accepted.
    Closed,
    /// `spawn_local` was called where `!Send` tasks cannot run.
    LocalUnsupported,
}

pub(crate) const MSG_WRONG_THREAD: &str =
    "this runner has `!Send` tasks (from `spawn_local`) that live on another thread: run and close it on the thread that spawned them";

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpawnError::NoRunner => MSG_NO_RUNTIME,
            SpawnError::Closed => MSG_CLOSED,
            SpawnError::LocalUnsupported => MSG_NO_LOCAL,
        })
    }
}

impl Error for SpawnError {}

impl From<SpawnError> for RunError {
    fn from(e: SpawnError) -> Self {
        match e {
            SpawnError::Closed => RunError::Closed,
            // `LoopHandle::spawn` never produces the other two; map them to the closest case.
            SpawnError::NoRunner | SpawnError::LocalUnsupported => RunError::Closed,
        }
    }
}

/// A misuse of a [`Token`](crate::Token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContextError {
    /// The token was created by another context variable.
    WrongVar,
    /// The token was created in another context.
    WrongContext,
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContextError::WrongVar => "token was created by a different context variable",
            ContextError::WrongContext => "token was created in a different context",
        })
    }
}

impl Error for ContextError {}

/// The text of a panic payload, when it is a string.
/// The message of a panic payload: the `&str` or `String` it holds, else `"Box<dyn Any>"`. Not
/// public API: the `runner` facade's test attribute reads it.
#[doc(hidden)]
pub fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "Box<dyn Any>"
    }
}
