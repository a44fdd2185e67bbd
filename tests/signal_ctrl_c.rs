//! Ctrl-C scoped to `run` (CONTRACT §3 "Ctrl-C"; upstream N13 interrupt_call_soon, N14
//! interrupt_wait, N15 interrupt_cancelled_task, N16 signal_install_not_supported_ok).
//!
//! A real SIGINT needs a process of its own: each test runs `examples/ctrl_c.rs` as a child,
//! waits until it prints `READY` (it does so from inside the run, or after it, exactly when it
//! waits for the signal: no sleeps, no race), sends SIGINT with `kill(2)`, and checks how the
//! child ended.
//!
//! Finding the example: cargo gives integration tests `CARGO_BIN_EXE_*` for binaries, not for
//! examples, and `cargo test --test signal_ctrl_c` does not build examples. So the first test
//! runs `$CARGO build --example ctrl_c` with the same features as this test binary and
//! `--message-format=json`, and takes the path from cargo's own `executable` field: no guessing
//! of profile or target directories, and never a stale binary. Cargo releases its build lock
//! before it runs tests, so the nested build does not wait on the outer one.

// Every scenario runs per backend: with none compiled in, there is nothing to run.
#![cfg(all(
    unix,
    any(
        feature = "tokio",
        feature = "smol",
        all(feature = "glommio", target_os = "linux")
    )
))]

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long any one step may take before the test fails instead of hanging. Generous: two
/// cores shared by several builds; a healthy step takes milliseconds.
const STEP: Duration = Duration::from_secs(60);

/// The ctrl_c example, built once per test binary.
fn example() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let mut features = Vec::new();
        if cfg!(feature = "tokio") {
            features.push("tokio");
        }
        if cfg!(feature = "smol") {
            features.push("smol");
        }
        if cfg!(feature = "glommio") {
            features.push("glommio");
        }
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--example", "ctrl_c", "--manifest-path", manifest])
            .args([
                "--message-format=json-render-diagnostics",
                "--no-default-features",
            ])
            .arg(format!("--features={}", features.join(",")));
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let out = cmd
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo to build the ctrl_c example");
        assert!(out.status.success(), "building examples/ctrl_c.rs failed");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let path = stdout
            .lines()
            .filter(|l| l.contains(r#""reason":"compiler-artifact""#))
            .filter(|l| l.contains(r#""kind":["example"]"#) && l.contains(r#""name":"ctrl_c""#))
            .find_map(|l| {
                let start = l.find(r#""executable":""#)? + r#""executable":""#.len();
                let len = l[start..].find('"')?;
                Some(PathBuf::from(&l[start..start + len]))
            })
            .expect("cargo reported no executable for the ctrl_c example");
        assert!(path.exists(), "{} does not exist", path.display());
        path
    })
}

/// The example running as a child process, its stdout read line by line.
struct Child {
    child: std::process::Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Receiver<String>,
}

impl Child {
    fn spawn(backend: &str, scenario: &str) -> Child {
        let mut cmd = Command::new(example());
        cmd.args([backend, scenario])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: `signal` is async-signal-safe, the only thing allowed between fork and exec.
        // An ignored SIGINT stays ignored across exec (a test run started in the background by a
        // non-interactive shell has it ignored), and then the runner rightly leaves it alone:
        // give the child the default disposition, as a terminal would.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawn the ctrl_c example");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (etx, stderr) = mpsc::channel();
        let mut err = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            let _ = etx.send(s);
        });
        Child {
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    /// Waits until the child prints exactly `want`.
    fn wait_line(&mut self, want: &str) {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = line == want;
                    self.seen.push(line);
                    if done {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!("no {want:?} line within {STEP:?}; saw {:?}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait();
                    panic!(
                        "the child ended ({status:?}) before printing {want:?}; saw {:?}; stderr: {}",
                        self.seen,
                        self.stderr.recv().unwrap_or_default()
                    )
                }
            }
        }
    }

    fn sigint(&self) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: plain FFI call; the pid is our child's, which has not been reaped yet.
        let rc = unsafe { libc::kill(pid, libc::SIGINT) };
        assert_eq!(rc, 0, "kill(SIGINT) failed");
    }

    /// Waits for the child to end; its status and every line it printed.
    fn finish(mut self) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + STEP;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for the child") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.seen.extend(self.lines.try_iter());
                panic!("the child did not end within {STEP:?}; saw {:?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        // The reader thread ends at EOF, which comes once the child is gone.
        while let Ok(line) = self.lines.recv_timeout(STEP) {
            self.seen.push(line);
        }
        let stderr = self.stderr.recv_timeout(STEP).unwrap_or_default();
        if !stderr.is_empty() {
            eprintln!("child stderr:\n{stderr}");
        }
        (status, self.seen)
    }
}

fn has(lines: &[String], want: &str) -> bool {
    lines.iter().any(|l| l == want)
}

fn position(lines: &[String], want: &str) -> usize {
    lines
        .iter()
        .position(|l| l == want)
        .unwrap_or_else(|| panic!("no {want:?} line in {lines:?}"))
}

/// Runs a scenario that gets one Ctrl-C once it is ready.
fn one_ctrl_c(backend: &str, scenario: &str) -> (ExitStatus, Vec<String>) {
    let mut child = Child::spawn(backend, scenario);
    child.wait_line("READY");
    child.sigint();
    child.finish()
}

fn assert_interrupted(status: ExitStatus, lines: &[String]) {
    assert_eq!(status.code(), Some(130), "{status:?}, lines {lines:?}");
    assert!(has(lines, "run: interrupted"), "{lines:?}");
}

fn assert_killed_by_sigint(status: ExitStatus, lines: &[String]) {
    assert_eq!(
        status.signal(),
        Some(libc::SIGINT),
        "not killed by SIGINT: {status:?}, lines {lines:?}"
    );
    assert!(!has(lines, "still alive"), "{lines:?}");
}

/// (a) N13: a busy main future (a yield loop) is cancelled by the first Ctrl-C: `run` returns
/// `Interrupted` after the future was dropped.
fn busy_future_is_interrupted(backend: &str) {
    let (status, lines) = one_ctrl_c(backend, "busy");
    assert_interrupted(status, &lines);
    assert!(position(&lines, "drop guard ran") < position(&lines, "run: interrupted"));
}

/// (b) N14: a main future waiting on something that never completes: `Interrupted`, and the
/// awaited thing was dropped before `run` returned.
fn waiting_future_is_interrupted(backend: &str) {
    let (status, lines) = one_ctrl_c(backend, "wait");
    assert_interrupted(status, &lines);
    let returned = position(&lines, "run: interrupted");
    assert!(position(&lines, "awaited thing dropped") < returned);
    assert!(position(&lines, "drop guard ran") < returned);
}

/// (c) N15: with a grace, the main future sees `interrupted()` and returns a value: `run`
/// returns it.
fn grace_lets_main_return(backend: &str) {
    let (status, lines) = one_ctrl_c(backend, "grace");
    assert_eq!(status.code(), Some(0), "{status:?}, lines {lines:?}");
    assert!(has(&lines, "main future saw interrupted()"), "{lines:?}");
    assert!(has(&lines, "run returned: saved"), "{lines:?}");
}

/// (d) A second Ctrl-C during the grace ends the run at once with `Interrupted`.
fn second_ctrl_c_ends_grace(backend: &str) {
    let mut child = Child::spawn(backend, "grace-twice");
    child.wait_line("READY");
    child.sigint();
    child.wait_line("READY2");
    let second = Instant::now();
    child.sigint();
    let (status, lines) = child.finish();
    // The grace is 60 s; "at once" is checked as "well before the grace could have run out".
    // Half the grace leaves room for any load, and a run that waited the grace out fails.
    assert!(
        second.elapsed() < Duration::from_secs(30),
        "{:?}",
        second.elapsed()
    );
    assert_interrupted(status, &lines);
    assert!(has(&lines, "awaited thing dropped"), "{lines:?}");
}

/// (e) After `run` returned a value, Ctrl-C kills the process by SIGINT.
fn ctrl_c_after_value_kills(backend: &str) {
    let (status, lines) = one_ctrl_c(backend, "after-value");
    assert!(has(&lines, "run returned: 1"), "{lines:?}");
    assert_killed_by_sigint(status, &lines);
}

/// (e) After `run` panicked, Ctrl-C kills the process by SIGINT.
fn ctrl_c_after_panic_kills(backend: &str) {
    let (status, lines) = one_ctrl_c(backend, "after-panic");
    assert!(has(&lines, "run panicked: true"), "{lines:?}");
    assert_killed_by_sigint(status, &lines);
}

/// (e) After `run` was interrupted, the next Ctrl-C kills the process by SIGINT.
fn ctrl_c_after_interrupted_kills(backend: &str) {
    let mut child = Child::spawn(backend, "after-interrupted");
    child.wait_line("READY");
    child.sigint();
    child.wait_line("READY2");
    child.sigint();
    let (status, lines) = child.finish();
    assert!(has(&lines, "run: interrupted"), "{lines:?}");
    assert!(has(&lines, "awaited thing dropped"), "{lines:?}");
    assert_killed_by_sigint(status, &lines);
}

/// Short runs back to back: a Ctrl-C lands in a run or between two, and is never swallowed:
/// each of five children either has its run interrupted (`Interrupted`, exit status 130) or is
/// killed by SIGINT, as by default. (Where it lands is up to the timing; the two places are
/// checked one by one, deterministically, by `busy_future_is_interrupted` and
/// `ctrl_c_after_value_kills`.)
fn ctrl_c_between_runs_is_never_lost(backend: &str) {
    for _ in 0..5 {
        let (status, lines) = one_ctrl_c(backend, "run-loop");
        assert!(!has(&lines, "still alive"), "{lines:?}");
        let interrupted = status.code() == Some(130) && has(&lines, "run: interrupted");
        let killed = status.signal() == Some(libc::SIGINT);
        assert!(
            interrupted || killed,
            "the Ctrl-C was lost: neither interrupted nor killed by SIGINT: {status:?}, lines \
             {lines:?}"
        );
    }
}

/// (f) N16: a handler the program installed first is left alone: it sees the Ctrl-C, the run is
/// not interrupted and returns normally.
fn user_handler_first_is_left_alone(backend: &str) {
    let (status, lines) = one_ctrl_c(backend, "user-handler");
    assert!(
        has(
            &lines,
            "user handler installed (the previous one was the default)"
        ),
        "{lines:?}"
    );
    assert_eq!(status.code(), Some(0), "{status:?}, lines {lines:?}");
    assert!(
        has(&lines, "run returned: the program's own handler saw ctrl-c"),
        "{lines:?}"
    );
}

/// (f) A handler installed after the runner's own, which chains to it (as signal-hook does),
/// wins: the runner's handler, called through it, does nothing.
fn user_handler_late_wins(backend: &str) {
    let (status, lines) = one_ctrl_c(backend, "user-handler-late");
    assert!(
        has(
            &lines,
            "user handler installed (the previous one was a handler)"
        ),
        "the runner's handler was not installed by the first run: {lines:?}"
    );
    assert_eq!(status.code(), Some(0), "{status:?}, lines {lines:?}");
    assert!(
        has(&lines, "run returned: the program's own handler saw ctrl-c"),
        "{lines:?}"
    );
}

/// (g) N16: a run with `Interrupt::Auto` off the main thread does not intercept (even though a
/// main-thread run installed the runner's handler): Ctrl-C kills the process by SIGINT.
fn auto_off_main_thread_does_not_intercept(backend: &str) {
    let (status, lines) = one_ctrl_c(backend, "thread");
    assert!(!has(&lines, "run: interrupted"), "{lines:?}");
    assert_killed_by_sigint(status, &lines);
}

/// `Interrupt::Always` intercepts off the main thread too.
fn always_off_main_thread_intercepts(backend: &str) {
    let (status, lines) = one_ctrl_c(backend, "thread-always");
    assert_interrupted(status, &lines);
    assert!(has(&lines, "awaited thing dropped"), "{lines:?}");
}

/// A Ctrl-C is attributed to the run that was intercepting when it arrived, or to none; never to
/// a later run. The child raises SIGINT inside a run that returns at once, then starts another
/// run, in rounds: each Ctrl-C interrupts its run or kills the process by SIGINT, and never
/// interrupts the next run. Many children, so that the watcher is late some of the time.
fn ctrl_c_never_reaches_the_next_run(backend: &str) {
    let (mut interrupted, mut killed) = (0, 0);
    for _ in 0..20 {
        let (status, lines) = Child::spawn(backend, "boundary").finish();
        assert!(
            !lines.iter().any(|l| l.contains("second run")),
            "a Ctrl-C of the first run interrupted the second: {status:?}, lines {lines:?}"
        );
        interrupted += lines
            .iter()
            .filter(|l| l.ends_with("first run interrupted"))
            .count();
        if status.signal() == Some(libc::SIGINT) {
            killed += 1;
        } else if status.code() != Some(0) || !has(&lines, "rounds: 50") {
            panic!("neither 50 rounds nor killed by SIGINT: {status:?}, lines {lines:?}");
        }
    }
    eprintln!(
        "{backend}: {interrupted} Ctrl-Cs interrupted their run, {killed} came too late for it \
         and killed the process"
    );
}

/// A thread forks and execs in a loop during the first run, which makes the loop's and the
/// Ctrl-C handler's descriptors: no child inherits any of them (each is close-on-exec from
/// birth, not marked so a moment later).
fn first_run_descriptors_never_reach_a_child(backend: &str) {
    let (status, lines) = Child::spawn(backend, "fork-exec").finish();
    assert_eq!(status.code(), Some(0), "{status:?}, lines {lines:?}");
    assert!(has(&lines, "leaked: none"), "{lines:?}");
    // The check has something to find: the run made descriptors (at least the socket pair).
    let made = lines
        .iter()
        .find_map(|l| l.strip_prefix("descriptors made: "))
        .unwrap_or_else(|| panic!("no descriptor line in {lines:?}"));
    assert!(made.matches(',').count() >= 1, "{lines:?}");
}

/// One `#[test]` per scenario for a backend (the scenario bodies above are shared).
macro_rules! backend {
    ($module:ident, $backend:literal, $($cfg:tt)*) => {
        #[cfg($($cfg)*)]
        mod $module {
            #[test]
            fn busy_future_is_interrupted() {
                super::busy_future_is_interrupted($backend);
            }
            #[test]
            fn waiting_future_is_interrupted() {
                super::waiting_future_is_interrupted($backend);
            }
            #[test]
            fn grace_lets_main_return() {
                super::grace_lets_main_return($backend);
            }
            #[test]
            fn second_ctrl_c_ends_grace() {
                super::second_ctrl_c_ends_grace($backend);
            }
            #[test]
            fn ctrl_c_after_value_kills() {
                super::ctrl_c_after_value_kills($backend);
            }
            #[test]
            fn ctrl_c_after_panic_kills() {
                super::ctrl_c_after_panic_kills($backend);
            }
            #[test]
            fn ctrl_c_after_interrupted_kills() {
                super::ctrl_c_after_interrupted_kills($backend);
            }
            #[test]
            fn ctrl_c_between_runs_is_never_lost() {
                super::ctrl_c_between_runs_is_never_lost($backend);
            }
            #[test]
            fn user_handler_first_is_left_alone() {
                super::user_handler_first_is_left_alone($backend);
            }
            #[test]
            fn user_handler_late_wins() {
                super::user_handler_late_wins($backend);
            }
            #[test]
            fn auto_off_main_thread_does_not_intercept() {
                super::auto_off_main_thread_does_not_intercept($backend);
            }
            #[test]
            fn ctrl_c_never_reaches_the_next_run() {
                super::ctrl_c_never_reaches_the_next_run($backend);
            }
            #[test]
            fn first_run_descriptors_never_reach_a_child() {
                super::first_run_descriptors_never_reach_a_child($backend);
            }
            #[test]
            fn always_off_main_thread_intercepts() {
                super::always_off_main_thread_intercepts($backend);
            }
        }
    };
}

backend!(tokio_current, "tokio", feature = "tokio");
backend!(tokio_multi, "tokio-multi", feature = "tokio");
backend!(smol_local, "smol", feature = "smol");
backend!(smol_multi, "smol-multi", feature = "smol");
backend!(
    glommio,
    "glommio",
    all(feature = "glommio", target_os = "linux")
);
