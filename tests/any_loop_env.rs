//! "`runner::AnyLoop` is one of the compiled-in backends, picked at run time from
//! `RUNNER_BACKEND` (`tokio`, `tokio-multi`, `smol`, `smol-multi`, `glommio`; unset means the
//! default): an unknown or not-compiled-in value is a `LoopCreation` error that lists the valid
//! choices."
//!
//! The variable is set only in child processes (this test binary, re-run on one test): setting it
//! in this multi-threaded process would race with every other test reading the environment.

#[path = "support/probe.rs"]
mod probe;

use std::process::Command;

use runner::{AnyLoop, Backend, RunError, Runner};

const CHILD: &str = "RUNNER_ANY_LOOP_ENV_CHILD";
const NAMES: [&str; 5] = ["tokio", "tokio-multi", "smol", "smol-multi", "glommio"];

/// In a child: makes a `Runner<AnyLoop>` the way an application would and prints what it got.
/// Not a test of its own (ignored): the other tests run it, with `--ignored`, in a child process
/// with `RUNNER_BACKEND` set, and check what it printed.
#[test]
#[ignore = "the child half of the other tests: they run it with --ignored in a child process"]
fn child_reports_its_backend() {
    assert!(
        std::env::var_os(CHILD).is_some(),
        "run by the other tests of this file, in a child process"
    );
    let mut rt = Runner::<AnyLoop>::default();
    match rt.run(async { probe::current_backend() }) {
        Ok(running) => {
            let chosen = rt.get_loop().unwrap().backend();
            println!("@chosen={chosen} running={running}@");
        }
        Err(RunError::LoopCreation(e)) => println!("@error={e}@"),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// Runs `child_reports_its_backend` with `RUNNER_BACKEND` set to `value` (or removed) and returns
/// what it printed between the `@` markers.
fn in_child(value: Option<&str>) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_reports_its_backend",
        "--ignored",
        "--nocapture",
    ])
    .env(CHILD, "1");
    match value {
        Some(v) => cmd.env(runner::RUNNER_BACKEND, v),
        None => cmd.env_remove(runner::RUNNER_BACKEND),
    };
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let start = stdout.find('@').expect("the child printed its report") + 1;
    let end = start + stdout[start..].find('@').unwrap();
    stdout[start..end].to_owned()
}

#[test]
fn each_value_picks_its_backend() {
    for name in NAMES {
        let backend = Backend::from_name(name);
        let report = in_child(Some(name));
        if Backend::compiled().any(|b| b.name() == name) {
            assert_eq!(backend.unwrap().name(), name);
            assert_eq!(report, format!("chosen={name} running={name}"));
        } else {
            let err = backend.unwrap_err().to_string();
            assert!(report.starts_with("error=RUNNER_BACKEND="), "{report}");
            assert!(err.contains("is not compiled in"), "{err}");
        }
    }
}

#[test]
fn unset_or_empty_means_the_default_backend() {
    let expected = match Backend::default_backend() {
        Some(b) => format!("chosen={b} running={b}"),
        None => "error=RUNNER_BACKEND is unset and this build of `runner` has no backend feature on (enable `tokio`, `smol` or `glommio`)".to_owned(),
    };
    assert_eq!(in_child(None), expected);
    assert_eq!(in_child(Some("")), expected);
}

#[test]
fn an_unknown_value_is_a_loop_creation_error_listing_the_choices() {
    let report = in_child(Some("asyncio"));
    let choices: Vec<&str> = Backend::compiled().map(|b| b.name()).collect();
    let expected = if choices.is_empty() {
        "error=RUNNER_BACKEND=\"asyncio\" is not a backend: none: this build of `runner` has no backend feature on (enable `tokio`, `smol` or `glommio`)".to_owned()
    } else {
        format!(
            "error=RUNNER_BACKEND=\"asyncio\" is not a backend: choose one of {}, or leave it unset",
            choices.join(", ")
        )
    };
    assert_eq!(report, expected);
}

#[test]
fn a_backend_not_compiled_in_names_its_feature() {
    for b in [
        Backend::Tokio,
        Backend::TokioMulti,
        Backend::Smol,
        Backend::SmolMulti,
        Backend::Glommio,
    ] {
        match AnyLoop::new(b) {
            Ok(lp) => {
                assert!(b.is_compiled());
                assert_eq!(lp.backend(), b);
            }
            Err(e) => {
                assert!(!b.is_compiled());
                assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
                let msg = e.to_string();
                assert!(
                    msg.contains(&format!("enable the `{}` feature of `runner`", b.feature())),
                    "{msg}"
                );
            }
        }
    }
}

#[test]
fn the_parser_is_exact() {
    // Names are matched exactly: a near miss is an error, not a guess.
    for near_miss in [
        "Tokio",
        "tokio_multi",
        " smol",
        "smol-local",
        "glommio-multi",
    ] {
        assert!(Backend::from_name(near_miss).is_err(), "{near_miss:?}");
    }
}
