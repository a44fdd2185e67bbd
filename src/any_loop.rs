//! [`AnyLoop`]: one of the compiled-in backends, picked at run time.

use std::fmt;
use std::future::Future;
use std::io;
use std::num::NonZeroUsize;
use std::rc::Rc;
use std::sync::Arc;

use runner_core::{EventLoop, LocalSpawner, Spawner};

/// The environment variable [`AnyLoop::from_env`] and [`Backend::from_env`] read.
///
/// # Examples
///
/// ```
/// use std::process::Command;
///
/// // Choose the backend of a child program that uses `Runner<AnyLoop>`.
/// let mut cmd = Command::new("my-app");
/// cmd.env(runner::RUNNER_BACKEND, "smol-multi");
/// ```
pub const RUNNER_BACKEND: &str = "RUNNER_BACKEND";

/// A backend flavour, by the name `RUNNER_BACKEND` gives it.
///
/// Every variant exists whatever features are on; [`Backend::compiled`] lists the ones this build
/// can run, and [`AnyLoop::new`] refuses the others with an error that says which feature to
/// enable.
///
/// # Examples
///
/// ```
/// use runner::Backend;
///
/// assert_eq!(Backend::from_name("tokio-multi").ok(), cfg!(feature = "tokio").then_some(Backend::TokioMulti));
/// assert_eq!(Backend::TokioMulti.name(), "tokio-multi");
/// assert!(Backend::SmolMulti.is_multi_thread());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// `tokio`: [`TokioLoop::current_thread`](crate::tokio::TokioLoop::current_thread).
    Tokio,
    /// `tokio-multi`: [`TokioLoop::multi_thread`](crate::tokio::TokioLoop::multi_thread).
    TokioMulti,
    /// `smol`: [`SmolLoop::local`](crate::smol::SmolLoop::local).
    Smol,
    /// `smol-multi`: [`SmolLoop::multi_thread`](crate::smol::SmolLoop::multi_thread).
    SmolMulti,
    /// `glommio`: [`GlommioLoop::new`](crate::glommio::GlommioLoop::new) (Linux only).
    Glommio,
}

const ALL: [Backend; 5] = [
    Backend::Tokio,
    Backend::TokioMulti,
    Backend::Smol,
    Backend::SmolMulti,
    Backend::Glommio,
];

impl Backend {
    /// Its `RUNNER_BACKEND` name: `tokio`, `tokio-multi`, `smol`, `smol-multi` or `glommio`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(runner::Backend::SmolMulti.name(), "smol-multi");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Tokio => "tokio",
            Backend::TokioMulti => "tokio-multi",
            Backend::Smol => "smol",
            Backend::SmolMulti => "smol-multi",
            Backend::Glommio => "glommio",
        }
    }

    /// The cargo feature of `runner` that compiles it in.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(runner::Backend::SmolMulti.feature(), "smol");
    /// ```
    pub const fn feature(self) -> &'static str {
        match self {
            Backend::Tokio | Backend::TokioMulti => "tokio",
            Backend::Smol | Backend::SmolMulti => "smol",
            Backend::Glommio => "glommio",
        }
    }

    /// True for the flavours whose tasks run on worker threads, also between runs.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(runner::Backend::TokioMulti.is_multi_thread());
    /// assert!(!runner::Backend::Glommio.is_multi_thread());
    /// ```
    pub const fn is_multi_thread(self) -> bool {
        matches!(self, Backend::TokioMulti | Backend::SmolMulti)
    }

    /// True when this build can run it: its feature is on (and, for glommio, the target is
    /// Linux).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(runner::Backend::Tokio.is_compiled(), cfg!(feature = "tokio"));
    /// ```
    pub const fn is_compiled(self) -> bool {
        match self {
            Backend::Tokio | Backend::TokioMulti => cfg!(feature = "tokio"),
            Backend::Smol | Backend::SmolMulti => cfg!(feature = "smol"),
            Backend::Glommio => cfg!(all(feature = "glommio", target_os = "linux")),
        }
    }

    /// Every backend flavour this build can run, in the precedence order of
    /// [`DefaultLoop`](crate::DefaultLoop): tokio, tokio-multi, smol, smol-multi, glommio.
    ///
    /// # Examples
    ///
    /// ```
    /// let names: Vec<_> = runner::Backend::compiled().map(|b| b.name()).collect();
    /// # #[cfg(all(feature = "tokio", not(feature = "smol"), not(feature = "glommio")))]
    /// assert_eq!(names, ["tokio", "tokio-multi"]);
    /// ```
    pub fn compiled() -> impl Iterator<Item = Backend> {
        ALL.into_iter().filter(|b| b.is_compiled())
    }

    /// The backend of [`DefaultLoop`](crate::DefaultLoop), what an unset `RUNNER_BACKEND` means;
    /// `None` when no backend feature is on (the default loop is then
    /// [`TestLoop`](crate::testing::TestLoop)).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "tokio")]
    /// assert_eq!(runner::Backend::default_backend(), Some(runner::Backend::Tokio));
    /// ```
    pub fn default_backend() -> Option<Backend> {
        // Current-thread flavours first, in the precedence order: that is what DefaultLoop is.
        ALL.into_iter()
            .filter(|b| !b.is_multi_thread())
            .find(|b| b.is_compiled())
    }

    /// The backend a `RUNNER_BACKEND` value names, when this build has it.
    ///
    /// # Errors
    ///
    /// An [`io::ErrorKind::InvalidInput`] error whose message lists the valid choices for this
    /// build, when `name` is no backend's name or names one that is not compiled in (the message
    /// then says which feature to enable).
    ///
    /// # Examples
    ///
    /// ```
    /// let err = runner::Backend::from_name("asyncio").unwrap_err();
    /// assert!(err.to_string().contains("is not a backend"));
    /// ```
    pub fn from_name(name: &str) -> io::Result<Backend> {
        let choices = || {
            let names: Vec<&str> = Backend::compiled().map(Backend::name).collect();
            if names.is_empty() {
                "none: this build of `runner` has no backend feature on (enable `tokio`, `smol` or `glommio`)"
                    .to_owned()
            } else {
                format!("choose one of {}, or leave it unset", names.join(", "))
            }
        };
        match ALL.into_iter().find(|b| b.name() == name) {
            Some(b) if b.is_compiled() => Ok(b),
            Some(b) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{RUNNER_BACKEND}={name:?}: the {} backend is not compiled in (enable the `{}` feature of `runner`{}); {}",
                    b.feature(),
                    b.feature(),
                    if b == Backend::Glommio { ", on Linux" } else { "" },
                    choices()
                ),
            )),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{RUNNER_BACKEND}={name:?} is not a backend: {}", choices()),
            )),
        }
    }

    /// The backend `RUNNER_BACKEND` names; unset or empty means
    /// [`default_backend`](Self::default_backend).
    ///
    /// # Errors
    ///
    /// As [`from_name`](Self::from_name), and when the variable is unset in a build with no
    /// backend or is not Unicode.
    ///
    /// # Examples
    ///
    /// ```
    /// // In a process started with `RUNNER_BACKEND=tokio-multi`, this is `TokioMulti`.
    /// let backend = runner::Backend::from_env();
    /// # if std::env::var_os("RUNNER_BACKEND").is_none() {
    /// # assert_eq!(backend.ok(), runner::Backend::default_backend());
    /// # }
    /// ```
    pub fn from_env() -> io::Result<Backend> {
        Backend::from_var(std::env::var(RUNNER_BACKEND))
    }

    fn from_var(var: Result<String, std::env::VarError>) -> io::Result<Backend> {
        match var {
            Ok(name) if !name.is_empty() => Backend::from_name(&name),
            Ok(_) | Err(std::env::VarError::NotPresent) => {
                Backend::default_backend().ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{RUNNER_BACKEND} is unset and this build of `runner` has no backend feature on (enable `tokio`, `smol` or `glommio`)"),
                    )
                })
            }
            Err(std::env::VarError::NotUnicode(raw)) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{RUNNER_BACKEND}={raw:?} is not Unicode"),
            )),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// The worker count of a multi-thread [`AnyLoop`] made by [`AnyLoop::new`]: one per CPU.
pub(crate) fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// One of the compiled-in backends, picked at run time: a loop type for programs that let the
/// user (or CI) choose the executor, as `RUNNER_BACKEND=smol-multi ./app`.
///
/// It implements [`EventLoop`] by delegating every call to the loop it holds, so
/// `Runner<AnyLoop>` behaves as a runner on that backend. Its `EventLoop::default_loop` is
/// [`from_env`](Self::from_env), so `Runner::<AnyLoop>::new()` reads `RUNNER_BACKEND` when the
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
/// let mut rt = Runner::<AnyLoop>::new();
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
/// let mut rt = Runner::<AnyLoop>::builder()
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
    /// Never made: keeps the enum matchable by reference when no backend is compiled in.
    #[doc(hidden)]
    #[cfg(not(any(
        feature = "tokio",
        feature = "smol",
        all(feature = "glommio", target_os = "linux")
    )))]
    __None(std::convert::Infallible),
}

/// Calls `$body` with `$l` bound to the loop inside, whatever the variant.
macro_rules! delegate {
    ($self:expr, $l:ident => $body:expr) => {
        match $self {
            #[cfg(feature = "tokio")]
            AnyLoop::Tokio($l) => $body,
            #[cfg(feature = "smol")]
            AnyLoop::Smol($l) => $body,
            #[cfg(all(feature = "glommio", target_os = "linux"))]
            AnyLoop::Glommio($l) => $body,
            #[cfg(not(any(
                feature = "tokio",
                feature = "smol",
                all(feature = "glommio", target_os = "linux")
            )))]
            AnyLoop::__None(never) =>
            {
                #[allow(unreachable_code, clippy::clone_on_copy)]
                match never.clone() {}
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
    /// let mut rt = runner::Runner::<runner::AnyLoop>::builder()
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
        let _ = workers;
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
            #[cfg(not(any(
                feature = "tokio",
                feature = "smol",
                all(feature = "glommio", target_os = "linux")
            )))]
            AnyLoop::__None(never) =>
            {
                #[allow(unreachable_code, clippy::clone_on_copy)]
                match never.clone() {}
            }
        }
    }
}

// With no backend compiled in, the delegating methods have no variant to hand their arguments to.
#[cfg_attr(
    not(any(
        feature = "tokio",
        feature = "smol",
        all(feature = "glommio", target_os = "linux")
    )),
    allow(unused_variables)
)]
impl EventLoop for AnyLoop {
    fn default_loop() -> io::Result<Self> {
        AnyLoop::from_env()
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        delegate!(self, l => l.block_on(fut))
    }

    fn spawner(&self) -> Arc<dyn Spawner> {
        delegate!(self, l => l.spawner())
    }

    fn local_spawner(&self) -> Option<Rc<dyn LocalSpawner>> {
        delegate!(self, l => l.local_spawner())
    }

    fn is_multi_thread(&self) -> bool {
        delegate!(self, l => EventLoop::is_multi_thread(l))
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
        delegate!(self, l => l.shutdown())
    }
}

// With no backend compiled in, the delegating methods have no variant to hand their arguments to.
#[cfg_attr(
    not(any(
        feature = "tokio",
        feature = "smol",
        all(feature = "glommio", target_os = "linux")
    )),
    allow(unused_variables)
)]
impl fmt::Debug for AnyLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        delegate!(self, l => f.debug_tuple("AnyLoop").field(l).finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::env::VarError;

    #[test]
    fn unset_and_empty_mean_the_default() {
        let d = Backend::default_backend();
        assert_eq!(Backend::from_var(Err(VarError::NotPresent)).ok(), d);
        assert_eq!(Backend::from_var(Ok(String::new())).ok(), d);
    }
}
