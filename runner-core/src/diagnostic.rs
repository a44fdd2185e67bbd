//! What the exception handler receives, and the policies that decide what is reported.

use std::any::Any;
use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use crate::error::panic_message;

/// The exception handler: one function that receives every [`Diagnostic`] of a runner.
pub(crate) type Handler = Arc<dyn Fn(&Diagnostic) + Send + Sync + 'static>;

/// What a runner does when a task panics and nobody observes it (its
/// [`JoinHandle`](crate::JoinHandle) was dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnhandledPanic {
    /// Report it to the exception handler and go on (the default; asyncio's behaviour).
    #[default]
    Report,
    /// Report it, and make the current `run` return
    /// [`RunError::TaskPanicked`](crate::RunError::TaskPanicked) promptly, dropping the main
    /// future. When no run is in progress, the next `run` returns it without polling its future.
    ShutdownRunner,
}

/// Which task a diagnostic is about.
#[derive(Debug, Clone)]
pub struct TaskInfo {
    pub(crate) name: Option<Arc<str>>,
    pub(crate) location: &'static Location<'static>,
    pub(crate) main: bool,
}

impl TaskInfo {
    /// The name given at spawn, if any (`main` for the main future).
    pub fn name(&self) -> Option<&str> {
        if self.main {
            Some("main")
        } else {
            self.name.as_deref()
        }
    }

    /// Where the task was spawned (or where `run` was called, for the main future).
    pub fn location(&self) -> &'static Location<'static> {
        self.location
    }

    /// True for the future passed to `run`.
    pub fn is_main(&self) -> bool {
        self.main
    }
}

impl fmt::Display for TaskInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} (spawned at {})", self.location),
            None => write!(f, "spawned at {}", self.location),
        }
    }
}

/// The cases a [`Diagnostic`] can be about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiagnosticKind {
    /// A task panicked and its `JoinHandle` had been dropped (or was dropped unread).
    UnobservedPanic,
    /// A task panicked while the runner was closing (asyncio's "unhandled exception during
    /// asyncio.run() shutdown").
    PanicDuringShutdown,
    /// Debug mode: one poll took longer than the slow-poll threshold.
    SlowPoll,
    /// Debug mode: the task was still pending when close cancelled it.
    PendingAtClose,
    /// A blocking job was still running when `blocking_shutdown_timeout` ran out; it was left
    /// behind.
    BlockingLeftBehind,
}

/// One thing the runner reports to its exception handler.
///
/// Its [`Display`](fmt::Display) text is one line that says everything a person needs: what
/// happened, the task's name (or `main`) and spawn location, the panic message, and the duration
/// for a slow poll.
pub struct Diagnostic {
    pub(crate) kind: DiagnosticKind,
    pub(crate) task: TaskInfo,
    pub(crate) payload: Option<Box<dyn Any + Send>>,
    pub(crate) message: Option<String>,
    pub(crate) duration: Option<Duration>,
}

impl Diagnostic {
    /// Which case this is.
    pub fn kind(&self) -> DiagnosticKind {
        self.kind
    }

    /// The task concerned.
    pub fn task(&self) -> &TaskInfo {
        &self.task
    }

    /// The panic payload, for the panic kinds.
    pub fn payload(&self) -> Option<&(dyn Any + Send)> {
        self.payload.as_deref()
    }

    /// The panic message, when the payload is a string.
    pub fn message(&self) -> Option<&str> {
        self.message
            .as_deref()
            .or_else(|| self.payload.as_deref().map(panic_message))
    }

    /// The poll's duration for [`DiagnosticKind::SlowPoll`]; the task's age for
    /// [`DiagnosticKind::PendingAtClose`] and [`DiagnosticKind::BlockingLeftBehind`].
    pub fn duration(&self) -> Option<Duration> {
        self.duration
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            DiagnosticKind::UnobservedPanic => "task panicked and nobody awaited it",
            DiagnosticKind::PanicDuringShutdown => "task panicked during runner shutdown",
            DiagnosticKind::SlowPoll => "slow poll",
            DiagnosticKind::PendingAtClose => "task was still pending at close and was cancelled",
            DiagnosticKind::BlockingLeftBehind => {
                "blocking job outlived blocking_shutdown_timeout and was left behind"
            }
        };
        write!(f, "{what}: task {}", self.task)?;
        if let Some(m) = self.message() {
            write!(f, ": {m}")?;
        }
        if let Some(d) = self.duration {
            let label = if self.kind == DiagnosticKind::SlowPoll {
                "took"
            } else {
                "age"
            };
            write!(f, " ({label} {d:?})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Diagnostic")
            .field("kind", &self.kind)
            .field("task", &self.task)
            .field("message", &self.message())
            .field("duration", &self.duration)
            .finish()
    }
}

/// The default handler: one line on stderr and a `tracing` event, so nothing is lost when no
/// subscriber is installed.
pub(crate) fn default_handler(d: &Diagnostic) {
    match d.kind {
        DiagnosticKind::SlowPoll | DiagnosticKind::PendingAtClose => {
            tracing::warn!(target: "runner", kind = ?d.kind, "{d}")
        }
        _ => tracing::error!(target: "runner", kind = ?d.kind, "{d}"),
    }
    eprintln!("runner: {d}");
}
