//! The model-based test of the state machine (runner_conformance::model) on every flavour:
//! random sequences of run (value / panic / `Err`), get_loop, handle, spawn (pending, ready,
//! shutdown watchers that finish or panic in close's grace), abort, drop handle, await, close,
//! run after close and nested run, with or without a shutdown grace. The model predicts every
//! state, value and `CloseReport` exactly. Each sequence runs under the kit's watchdog.

#[path = "../../examples/custom_loop/minimal_loop.rs"]
#[allow(dead_code)]
mod minimal_loop;

use proptest::prelude::*;
use runner_conformance::model::{check_sequence, Op};
use runner_conformance::Kit;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<u8>().prop_map(Op::RunValue),
        1 => Just(Op::RunPanic),
        1 => any::<u8>().prop_map(Op::RunErr),
        1 => Just(Op::GetLoop),
        1 => any::<u8>().prop_map(Op::HandleSpawn),
        2 => Just(Op::SpawnPending),
        2 => any::<u8>().prop_map(Op::SpawnReady),
        2 => any::<u8>().prop_map(Op::SpawnJoin),
        1 => any::<u8>().prop_map(Op::SpawnWatcher),
        1 => Just(Op::SpawnPanicker),
        1 => any::<usize>().prop_map(Op::Abort),
        1 => any::<usize>().prop_map(Op::DropHandle),
        2 => any::<usize>().prop_map(Op::Await),
        1 => Just(Op::Close),
        1 => Just(Op::NestedRun),
    ]
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn silence_panics() {
    // The model's `RunPanic` steps panic on purpose; keep the output readable.
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let model = info
            .payload()
            .downcast_ref::<&str>()
            .is_some_and(|s| *s == "model panic");
        if !model {
            default(info);
        }
    }));
}

macro_rules! model_test {
    ($(#[$attr:meta])* $name:ident, $kit:expr) => {
        proptest! {
            #![proptest_config(config())]
            #[test]
            $(#[$attr])*
            fn $name(grace in any::<bool>(), ops in prop::collection::vec(op(), 1..40)) {
                silence_panics();
                let kit = $kit;
                runner_conformance::check_caps(&kit);
                runner_conformance::watchdog(
                    concat!("lifecycle model on ", stringify!($name)),
                    runner_conformance::watchdog_limit(),
                    move || check_sequence(&kit, grace, &ops),
                );
            }
        }
    };
}

model_test!(
    test_loop,
    Kit::new("test_loop", runner::testing::TestLoop::new)
);
model_test!(custom, Kit::new("custom", minimal_loop::MiniLoop::new));
#[cfg(feature = "tokio")]
model_test!(
    tokio_current,
    Kit::new("tokio_current", runner::tokio::TokioLoop::current_thread)
);
#[cfg(feature = "tokio")]
model_test!(
    tokio_multi,
    Kit::new("tokio_multi", || runner::tokio::TokioLoop::multi_thread(2)).multi_thread(true)
);
#[cfg(feature = "smol")]
model_test!(
    smol_local,
    Kit::new("smol_local", runner::smol::SmolLoop::local)
);
#[cfg(feature = "smol")]
model_test!(
    smol_multi,
    Kit::new("smol_multi", || runner::smol::SmolLoop::multi_thread(2)).multi_thread(true)
);
#[cfg(all(feature = "glommio", target_os = "linux"))]
model_test!(
    glommio,
    Kit::new("glommio", runner::glommio::GlommioLoop::new).send(false)
);
