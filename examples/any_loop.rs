//! Pick the backend at run time: `Runner<AnyLoop>` reads `RUNNER_BACKEND` (`tokio`,
//! `tokio-multi`, `smol`, `smol-multi`, `glommio`; unset means the default backend) when it first
//! needs its loop, and an unknown or missing backend is a `LoopCreation` error that lists the
//! choices of this build.
//!
//! ```text
//! cargo run --example any_loop
//! RUNNER_BACKEND=smol-multi cargo run --example any_loop --features smol
//! RUNNER_BACKEND=nope cargo run --example any_loop      # exits 2 with the valid choices
//! ```

use std::process::ExitCode;

use runner::{AnyLoop, RunError, Runner};

fn main() -> ExitCode {
    let mut rt = Runner::<AnyLoop>::default();
    let answer = rt.run(async {
        let task = runner::spawn(async {
            runner::time::sleep(std::time::Duration::from_millis(1)).await;
            6 * 7
        });
        task.await.unwrap()
    });
    match answer {
        Ok(n) => {
            let backend = rt.get_loop().expect("made by the run").backend();
            println!("ran on {backend}: {n}");
            ExitCode::SUCCESS
        }
        Err(e @ RunError::LoopCreation(_)) => {
            // One line with its cause: "the event loop could not be created: RUNNER_BACKEND=..."
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
