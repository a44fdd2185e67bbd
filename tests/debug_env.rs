//! `RUNNER_DEBUG` (CONTRACT §3 "Debug mode"; upstream R4, N1, N2): "On with
//! `Builder::debug(true)` or, when not set, `RUNNER_DEBUG=1`". An explicit `debug(..)` wins over
//! the variable either way.
//!
//! The environment of a multi-threaded test process must not be changed (`set_var` races with
//! every thread reading it), so each case runs this test binary again as a child process, with
//! the variable set there, and only the ignored `child` test selected.

use std::process::Command;

/// What the child builds: `unset` leaves `Builder::debug` alone.
const EXPLICIT: &str = "RUNNER_DEBUG_TEST_EXPLICIT";
/// What the child must see: `true` or `false`.
const EXPECT: &str = "RUNNER_DEBUG_TEST_EXPECT";

/// The child side. Ignored in ordinary runs; `parent` runs it with `--ignored` in a process of
/// its own, whose environment it sets.
#[test]
#[ignore = "run by `runner_debug_env` in a child process"]
fn child() {
    let (Ok(explicit), Ok(expect)) = (std::env::var(EXPLICIT), std::env::var(EXPECT)) else {
        panic!("run by `runner_debug_env` only: {EXPLICIT} and {EXPECT} are not set");
    };
    let expect: bool = expect.parse().unwrap();
    let builder = runner::builder();
    let builder = match explicit.as_str() {
        "unset" => builder,
        on => builder.debug(on.parse().unwrap()),
    };
    let mut rt = builder.build();
    assert_eq!(rt.is_debug(), expect, "Runner::is_debug");
    let (main, task) = rt
        .run(async {
            let task = runner::spawn(async { runner::is_debug() }).await.unwrap();
            (runner::is_debug(), task)
        })
        .unwrap();
    assert_eq!(
        (main, task),
        (expect, expect),
        "is_debug in the run and in a task"
    );
    println!("child checked: is_debug == {expect}");
}

/// Runs `child` with `RUNNER_DEBUG` set to `env` (or removed) and the builder's debug `explicit`.
fn check(env: Option<&str>, explicit: Option<bool>, expect: bool) {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([
        "--ignored",
        "--exact",
        "child",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(
        EXPLICIT,
        explicit.map_or("unset".to_owned(), |b| b.to_string()),
    )
    .env(EXPECT, expect.to_string());
    match env {
        Some(v) => cmd.env("RUNNER_DEBUG", v),
        None => cmd.env_remove("RUNNER_DEBUG"),
    };
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let case = format!("RUNNER_DEBUG={env:?}, debug({explicit:?}), expected {expect}");
    assert!(
        out.status.success(),
        "{case}: child failed\n{stdout}\n{stderr}"
    );
    // The child really ran (a filter that matched nothing would also exit 0).
    assert!(
        stdout.contains(&format!("child checked: is_debug == {expect}")),
        "{case}: the child test did not run\n{stdout}"
    );
}

#[test]
fn runner_debug_env() {
    // Read when `debug` was not set: `1` or `true` (any case) turn debug mode on.
    check(Some("1"), None, true);
    check(Some("true"), None, true);
    check(Some("TRUE"), None, true);
    check(Some("0"), None, false);
    check(Some("false"), None, false);
    check(Some(""), None, false);
    check(None, None, false);
    // An explicit setting wins over the variable, either way.
    check(Some("1"), Some(false), false);
    check(Some("true"), Some(false), false);
    check(Some("0"), Some(true), true);
    check(None, Some(true), true);
}
