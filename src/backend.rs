//! The one list of backends: [`Backend`] (names, order, features), [`DefaultLoop`] (the first
//! one compiled in), and the nesting probes of every backend compiled in. [`AnyLoop`] maps a
//! `Backend` to its constructor; the macros' support reads both.
//!
//! [`AnyLoop`]: crate::AnyLoop

use std::fmt;
use std::io;
use std::num::NonZeroUsize;
use std::sync::Once;

#[cfg(doc)]
use crate::AnyLoop;

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
    /// `tokio`: [`TokioLoop::current_thread`][TokioLoop::current_thread].
    ///
    #[cfg_attr(
        feature = "tokio",
        doc = "[TokioLoop::current_thread]: crate::tokio::TokioLoop::current_thread"
    )]
    #[cfg_attr(
        not(feature = "tokio"),
        doc = "[TokioLoop::current_thread]: crate#feature-flags"
    )]
    Tokio,
    /// `tokio-multi`: [`TokioLoop::multi_thread`][TokioLoop::multi_thread].
    ///
    #[cfg_attr(
        feature = "tokio",
        doc = "[TokioLoop::multi_thread]: crate::tokio::TokioLoop::multi_thread"
    )]
    #[cfg_attr(
        not(feature = "tokio"),
        doc = "[TokioLoop::multi_thread]: crate#feature-flags"
    )]
    TokioMulti,
    /// `smol`: [`SmolLoop::local`][SmolLoop::local].
    ///
    #[cfg_attr(
        feature = "smol",
        doc = "[SmolLoop::local]: crate::smol::SmolLoop::local"
    )]
    #[cfg_attr(not(feature = "smol"), doc = "[SmolLoop::local]: crate#feature-flags")]
    Smol,
    /// `smol-multi`: [`SmolLoop::multi_thread`][SmolLoop::multi_thread].
    ///
    #[cfg_attr(
        feature = "smol",
        doc = "[SmolLoop::multi_thread]: crate::smol::SmolLoop::multi_thread"
    )]
    #[cfg_attr(
        not(feature = "smol"),
        doc = "[SmolLoop::multi_thread]: crate#feature-flags"
    )]
    SmolMulti,
    /// `glommio`: [`GlommioLoop::new`][GlommioLoop::new] (Linux only).
    ///
    #[cfg_attr(
        feature = "glommio",
        doc = "[GlommioLoop::new]: crate::glommio::GlommioLoop::new"
    )]
    #[cfg_attr(
        not(feature = "glommio"),
        doc = "[GlommioLoop::new]: crate#feature-flags"
    )]
    Glommio,
}

/// Every backend flavour, in the precedence order of [`DefaultLoop`] (the current-thread flavour
/// of the first family compiled in): the order `compiled()` lists and `all_backends` runs.
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
    /// [`DefaultLoop`]: tokio, tokio-multi, smol, smol-multi, glommio.
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

    /// The backend of [`DefaultLoop`], what an unset `RUNNER_BACKEND` means;
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
        <DefaultFamily as crate::__private::MacroBackend>::CURRENT
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
                format!("none: {NO_BACKEND}")
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
                        format!("{RUNNER_BACKEND} is unset and {NO_BACKEND}"),
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

/// What a build without backend says, wherever it matters.
const NO_BACKEND: &str =
    "this build of `runner` has no backend feature on (enable `tokio`, `smol` or `glommio`)";

cfg_if::cfg_if! {
    // The one place the precedence is written as types; `Backend::default_backend` reads it, and
    // a unit test checks that it agrees with `ALL`.
    if #[cfg(feature = "tokio")] {
        /// The loop [`Runner::new()`](crate::Runner::new) and [`run`](crate::run) use:
        /// `TokioLoop::current_thread()`. See the crate docs for the precedence.
        ///
        /// # Examples
        ///
        /// ```
        /// let mut rt: runner::Runner<runner::DefaultLoop> = runner::Runner::new();
        /// assert_eq!(rt.run(async { 5 }).unwrap(), 5);
        /// ```
        pub type DefaultLoop = runner_tokio::TokioLoop;
        pub(crate) type DefaultFamily = crate::__private::Tokio;
    } else if #[cfg(feature = "smol")] {
        /// The loop [`Runner::new()`](crate::Runner::new) and [`run`](crate::run) use:
        /// `SmolLoop::local()`. See the crate docs for the precedence.
        pub type DefaultLoop = runner_smol::SmolLoop;
        pub(crate) type DefaultFamily = crate::__private::Smol;
    } else if #[cfg(all(feature = "glommio", target_os = "linux"))] {
        /// The loop [`Runner::new()`](crate::Runner::new) and [`run`](crate::run) use:
        /// `GlommioLoop::new()`. See the crate docs for the precedence.
        pub type DefaultLoop = runner_glommio::GlommioLoop;
        pub(crate) type DefaultFamily = crate::__private::Glommio;
    } else {
        /// The loop [`Runner::new()`](crate::Runner::new) and [`run`](crate::run) use: with no
        /// backend feature, the std-only reference loop.
        pub type DefaultLoop = runner_core::testing::TestLoop;
        pub(crate) type DefaultFamily = crate::__private::TestBackend;
    }
}

/// Registers with runner-core the nesting probe of every backend compiled in, once, so that a
/// runner of any backend returns `NestedRun` where any of them is driving the thread.
pub(crate) fn register_nesting_probes() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(feature = "tokio")]
        runner_core::register_runtime_probe(runner_core::RuntimeProbe::new(
            "tokio",
            <runner_tokio::TokioLoop as runner_core::EventLoop>::is_nested,
        ));
        #[cfg(all(feature = "glommio", target_os = "linux"))]
        runner_core::register_runtime_probe(runner_core::RuntimeProbe::new(
            "glommio",
            <runner_glommio::GlommioLoop as runner_core::EventLoop>::is_nested,
        ));
    });
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

    #[test]
    fn the_default_is_the_first_current_thread_flavour_compiled_in() {
        let first = ALL
            .into_iter()
            .find(|b| b.is_compiled() && !b.is_multi_thread());
        assert_eq!(Backend::default_backend(), first);
    }
}
