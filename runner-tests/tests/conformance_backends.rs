//! The conformance kit on every backend flavour compiled in, plus the hand-written loop of the
//! `custom_loop` example and core's std-only reference loop.

#[path = "../../examples/custom_loop/minimal_loop.rs"]
#[allow(dead_code)]
mod minimal_loop;

use runner_conformance::{suite, Kit};

#[cfg(feature = "tokio")]
suite!(
    tokio_current,
    Kit::new("tokio_current", runner::tokio::TokioLoop::current_thread)
);
#[cfg(feature = "tokio")]
suite!(
    tokio_multi,
    Kit::new("tokio_multi", || runner::tokio::TokioLoop::multi_thread(2)).multi_thread(true)
);
#[cfg(feature = "smol")]
suite!(
    smol_local,
    Kit::new("smol_local", runner::smol::SmolLoop::local)
);
#[cfg(feature = "smol")]
suite!(
    smol_multi,
    Kit::new("smol_multi", || runner::smol::SmolLoop::multi_thread(2)).multi_thread(true)
);
#[cfg(all(feature = "glommio", target_os = "linux"))]
suite!(
    glommio,
    Kit::new("glommio", runner::glommio::GlommioLoop::new).send(false)
);
suite!(custom, Kit::new("custom", minimal_loop::MiniLoop::new));
suite!(
    test_loop,
    Kit::new("test_loop", runner::testing::TestLoop::new)
);
#[cfg(any(
    feature = "tokio",
    feature = "smol",
    all(feature = "glommio", target_os = "linux")
))]
suite!(
    any_loop,
    Kit::new("any_loop", runner::AnyLoop::from_env)
        .multi_thread(runner::Backend::from_env().is_ok_and(runner::Backend::is_multi_thread))
        .send(!cfg!(all(feature = "glommio", target_os = "linux")))
);
