//! [`AnyLoop`]: one of the compiled-in backends, picked at run time.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::rc::Rc;
use std::sync::Arc;

use runner_core::{EventLoop, LocalSpawner, Spawner};

use crate::backend::{default_workers, Backend};

/// One of the compiled-in backends, picked at run time: a loop type for programs that let the
/// user (or CI) choose the executor, as `RUNNER_BACKEND=smol-multi ./app`.
///
/// It implements [`EventLoop`] by delegating every call to the loop it holds, so
/// `Runner<AnyLoop>` behaves as a runner on that backend. Its `EventLoop::default_loop` is
/// [`from_env`](Self::from_env), so `Runner::<AnyLoop>::default()` reads `RUNNER_BACKEND` when the
/// runner first needs its loop. The variants exist only for the backends compiled in.
///
/// `AnyLoop` is `Send` unless the `glommio` feature is on (a glommio executor is bound to its
/// thread); `Runner<AnyLoop>` follows.
///
/// # Examples
///
/// ```
/// use runner::{AnyLoop, Runner};
///
/// # #[cfg(any(feature = "tokio", feature = "smol", feature = "glommio"))] {
/// // Reads RUNNER_BACKEND at the first run: `tokio`, `tokio-multi`, `smol`, `smol-multi`,
/// // `glommio`, or unset for the default backend.
/// let mut rt = Runner::<AnyLoop>::default();
/// # if std::env::var_os("RUNNER_BACKEND").is_none() {
/// let backend = rt.get_loop().unwrap().backend();
/// assert_eq!(Some(backend), runner::Backend::default_backend());
/// # }
/// assert_eq!(rt.run(async { runner::spawn(async { 6 * 7 }).await.unwrap() }).unwrap(), 42);
/// # }
/// ```
///
/// A backend that is not compiled in is a [`RunError::LoopCreation`](crate::RunError::LoopCreation)
/// that lists the valid choices:
///
/// ```
/// use runner::{AnyLoop, Backend, RunError, Runner};
///
/// # #[cfg(not(feature = "smol"))] {
/// let mut rt = Runner::builder()
///     .loop_factory(|| AnyLoop::new(Backend::Smol))
///     .build();
/// let Err(RunError::LoopCreation(e)) = rt.run(async {}) else { panic!() };
/// assert!(e.to_string().contains("enable the `smol` feature"));
/// # }
/// ```
#[non_exhaustive]
pub enum AnyLoop {
    /// `tokio` or `tokio-multi`.
    #[cfg(feature = "tokio")]
    Tokio(crate::tokio::TokioLoop),
    /// `smol` or `smol-multi`.
    #[cfg(feature = "smol")]
    Smol(crate::smol::SmolLoop),
    /// `glommio`.
    #[cfg(all(feature = "glommio", target_os = "linux"))]
    Glommio(crate::glommio::GlommioLoop),
    /// Never made: keeps every `match` valid whatever backends are compiled in.
    #[doc(hidden)]
    __Never(Infallible),
}

fn absurd(never: &Infallible) -> ! {
    match *never {}
}

/// Calls `$body` with `$l` bound to the loop inside, whatever the variant; `$arg`s are the
/// arguments `$body` uses (the never-made variant consumes them, so a build with no backend has
/// no unused variables).
macro_rules! delegate {
    ($self:expr, ($($arg:ident),*), $l:ident => $body:expr) => {
        match $self {
            #[cfg(feature = "tokio")]
            AnyLoop::Tokio($l) => $body,
            #[cfg(feature = "smol")]
            AnyLoop::Smol($l) => $body,
            #[cfg(all(feature = "glommio", target_os = "linux"))]
            AnyLoop::Glommio($l) => $body,
            AnyLoop::__Never(never) => {
                $(let _ = &$arg;)*
                absurd(&never)
            }
        }
    };
}

impl AnyLoop {
    /// The loop `RUNNER_BACKEND` names (unset or empty: the default backend's), made now. Multi-
    /// thread flavours get one worker per CPU.
    ///
    /// # Errors
    ///
    /// As [`Backend::from_env`] for the variable, then as the backend's constructor.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(any(feature = "tokio", feature = "smol", feature = "glommio"))] {
    /// let mut rt = runner::Runner::builder()
    ///     .loop_factory(runner::AnyLoop::from_env)
    ///     .build();
    /// assert_eq!(rt.run(async { 1 }).unwrap(), 1);
    /// # }
    /// ```
    pub fn from_env() -> io::Result<AnyLoop> {
        AnyLoop::new(Backend::from_env()?)
    }

    /// A loop of the given backend flavour; multi-thread flavours get one worker per CPU.
    ///
    /// # Errors
    ///
    /// An [`io::ErrorKind::InvalidInput`] error listing the valid choices when `backend` is not
    /// compiled in; otherwise as the backend's constructor.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "tokio")] {
    /// use runner::{AnyLoop, Backend};
    ///
    /// let lp = AnyLoop::new(Backend::TokioMulti).unwrap();
    /// assert_eq!(lp.backend(), Backend::TokioMulti);
    /// # }
    /// ```
    pub fn new(backend: Backend) -> io::Result<AnyLoop> {
        AnyLoop::with_workers(backend, default_workers())
    }

    /// A loop of the given backend flavour, with `workers` threads (at least 1) for the
    /// multi-thread flavours; the others ignore it.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// let lp = runner::AnyLoop::with_workers(runner::Backend::SmolMulti, 2).unwrap();
    /// assert!(lp.backend().is_multi_thread());
    /// # }
    /// ```
    pub fn with_workers(backend: Backend, workers: usize) -> io::Result<AnyLoop> {
        // Validates the name against this build, with the message that lists the choices.
        let backend = Backend::from_name(backend.name())?;
        let _ = workers; // only the multi-thread flavours read it
        match backend {
            #[cfg(feature = "tokio")]
            Backend::Tokio => crate::tokio::TokioLoop::current_thread().map(AnyLoop::Tokio),
            #[cfg(feature = "tokio")]
            Backend::TokioMulti => {
                crate::tokio::TokioLoop::multi_thread(workers).map(AnyLoop::Tokio)
            }
            #[cfg(feature = "smol")]
            Backend::Smol => crate::smol::SmolLoop::local().map(AnyLoop::Smol),
            #[cfg(feature = "smol")]
            Backend::SmolMulti => crate::smol::SmolLoop::multi_thread(workers).map(AnyLoop::Smol),
            #[cfg(all(feature = "glommio", target_os = "linux"))]
            Backend::Glommio => crate::glommio::GlommioLoop::new().map(AnyLoop::Glommio),
            #[allow(unreachable_patterns)]
            other => unreachable!("{other} passed `from_name`, so it is compiled in"),
        }
    }

    /// Which backend flavour this loop is.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "tokio")] {
    /// let lp = runner::AnyLoop::new(runner::Backend::Tokio).unwrap();
    /// assert_eq!(lp.backend().name(), "tokio");
    /// # }
    /// ```
    pub fn backend(&self) -> Backend {
        match self {
            #[cfg(feature = "tokio")]
            AnyLoop::Tokio(l) if l.is_multi_thread() => Backend::TokioMulti,
            #[cfg(feature = "tokio")]
            AnyLoop::Tokio(_) => Backend::Tokio,
            #[cfg(feature = "smol")]
            AnyLoop::Smol(l) if l.is_multi_thread() => Backend::SmolMulti,
            #[cfg(feature = "smol")]
            AnyLoop::Smol(_) => Backend::Smol,
            #[cfg(all(feature = "glommio", target_os = "linux"))]
            AnyLoop::Glommio(_) => Backend::Glommio,
            AnyLoop::__Never(never) => absurd(never),
        }
    }
}

impl EventLoop for AnyLoop {
    fn default_loop() -> io::Result<Self> {
        AnyLoop::from_env()
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        delegate!(self, (fut), l => l.block_on(fut))
    }

    fn spawner(&self) -> Arc<dyn Spawner> {
        // The backend's own spawner, not a wrapper: its `spawn_task` (no box per task) applies.
        delegate!(self, (), l => l.spawner())
    }

    fn local_spawner(&self) -> Option<Rc<dyn LocalSpawner>> {
        delegate!(self, (), l => l.local_spawner())
    }

    fn is_multi_thread(&self) -> bool {
        delegate!(self, (), l => EventLoop::is_multi_thread(l))
    }

    fn workers(&self) -> usize {
        delegate!(self, (), l => EventLoop::workers(l))
    }

    fn enter<R, F: FnOnce() -> R>(&self, f: F) -> Option<R> {
        // The chosen backend's answer: the inline first poll of `run` where it allows it.
        delegate!(self, (f), l => l.enter(f))
    }

    fn is_nested() -> bool {
        // An associated function sees no variant, so any compiled-in backend's "inside a runtime"
        // counts; the contract makes a running tokio runtime nesting for every runner anyway.
        let nested = false;
        #[cfg(feature = "tokio")]
        let nested = nested || <crate::tokio::TokioLoop as EventLoop>::is_nested();
        #[cfg(feature = "smol")]
        let nested = nested || <crate::smol::SmolLoop as EventLoop>::is_nested();
        #[cfg(all(feature = "glommio", target_os = "linux"))]
        let nested = nested || <crate::glommio::GlommioLoop as EventLoop>::is_nested();
        nested
    }

    fn shutdown(self) {
        delegate!(self, (), l => l.shutdown())
    }
}

impl fmt::Debug for AnyLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        delegate!(self, (f), l => f.debug_tuple("AnyLoop").field(l).finish())
    }
}
