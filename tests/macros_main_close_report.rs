//! `#[runner::main(print_close_report)]`: after closing, the runner's `CloseReport` is printed to
//! stderr as one line. Checked on a child process (this test binary run again), whose stderr the
//! parent reads.

use std::process::Command;

const CHILD: &str = "RUNNER_CLOSE_REPORT_CHILD";

#[runner::main(print_close_report)]
async fn leaves_two_tasks() -> u8 {
    let _a = runner::spawn(std::future::pending::<()>());
    let _b = runner::spawn(std::future::pending::<()>());
    runner::yield_now().await;
    7
}

#[runner::main]
async fn prints_nothing() -> u8 {
    let _a = runner::spawn(std::future::pending::<()>());
    8
}

/// In a child: runs both functions.
#[test]
fn child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    assert_eq!(leaves_two_tasks(), 7);
    assert_eq!(prints_nothing(), 8);
}

#[test]
fn the_report_is_printed_only_when_asked_for() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("#[runner::main]"))
        .collect();
    assert_eq!(
        lines,
        ["#[runner::main] closed the runner: 0 finished, 2 cancelled, 0 panicked, 0 blocking jobs left behind"],
        "stderr: {stderr}"
    );
}
