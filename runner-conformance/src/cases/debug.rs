//! Debug mode: `is_debug`, slow polls, tasks pending at close (CONTRACT §3 "Debug mode"; upstream
//! R4, N1, N2). `RUNNER_DEBUG` needs a process of its own: see `tests/debug_env.rs`.
//!
//! The 150 ms polls below are `std::thread::sleep`, which never returns early; the default
//! threshold is 100 ms, so a blocking poll is always over it and the assertions on it cannot
//! flake. The polls that must *not* be reported are a few microseconds long: only a 100 ms stall
//! of the test thread by the OS could report one.

use std::panic::Location;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use runner_core::task::Builder as TaskBuilder;
use runner_core::{Builder, DiagnosticKind, EventLoop};

use crate::Kit;

const BLOCK: Duration = Duration::from_millis(150);

/// What the cases keep of a [`Diagnostic`](runner_core::Diagnostic).
#[derive(Debug, Clone)]
struct Seen {
    kind: DiagnosticKind,
    name: Option<String>,
    main: bool,
    file: &'static str,
    line: u32,
    duration: Option<Duration>,
    message: Option<String>,
    text: String,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// A builder on `kit`'s loop with `debug` set and a handler that collects every diagnostic.
fn collecting<L: EventLoop>(kit: &Kit<L>, debug: bool) -> (Builder<L>, Log) {
    let log: Log = Arc::default();
    let sink = log.clone();
    let builder = kit.builder().debug(debug).exception_handler(move |d| {
        let loc: &'static Location<'static> = d.task().location();
        sink.lock().unwrap().push(Seen {
            kind: d.kind(),
            name: d.task().name().map(str::to_owned),
            main: d.task().is_main(),
            file: loc.file(),
            line: loc.line(),
            duration: d.duration(),
            message: d.message().map(str::to_owned),
            text: d.to_string(),
        });
    });
    (builder, log)
}

fn of_kind(log: &Log, kind: DiagnosticKind) -> Vec<Seen> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|s| s.kind == kind)
        .cloned()
        .collect()
}

/// R4 `test_asyncio_run_debug`, N1 `test_debug`, N2 `test_debug_false`: "`is_debug()` inside the
/// run follows `Builder::debug`": in the main future, in tasks (on any worker), in local tasks, in
/// blocking jobs, on the runner and on its handle; outside any run it is false.
pub fn r4_is_debug_follows_builder<L: EventLoop>(kit: &Kit<L>) {
    let local = kit.capabilities().local_tasks;
    for on in [true, false] {
        let mut rt = kit.builder().debug(on).build();
        assert_eq!(rt.is_debug(), on, "{}", kit.name());
        let seen = rt
            .run(async move {
                let main = runner_core::is_debug();
                let task = runner_core::spawn(async {
                    runner_core::yield_now().await;
                    runner_core::is_debug()
                })
                .await
                .unwrap();
                let local = if local {
                    runner_core::spawn_local(async { runner_core::is_debug() })
                        .await
                        .unwrap()
                } else {
                    on
                };
                let blocking = runner_core::spawn_blocking(runner_core::is_debug)
                    .await
                    .unwrap();
                [main, task, local, blocking]
            })
            .unwrap();
        assert_eq!(seen, [on; 4], "{}: main, task, local, blocking", kit.name());
        assert_eq!(rt.handle().unwrap().is_debug(), on);
        assert!(!runner_core::is_debug(), "outside any run");
    }
}

/// "Polls of ... a task that take longer than the slow-poll threshold (default 100 ms) are
/// reported with the task's name, spawn location (`#[track_caller]`) and duration": a task that
/// blocks 150 ms inside one poll is reported exactly once, with the file and line it was spawned
/// from, named or not.
pub fn slow_task_poll_is_reported_once_with_its_location<L: EventLoop>(kit: &Kit<L>) {
    let (builder, log) = collecting(kit, true);
    let mut rt = builder.build();
    let blocks_once = || async {
        thread::sleep(BLOCK);
        runner_core::yield_now().await;
        runner_core::yield_now().await;
    };
    let (named_line, unnamed_line) = rt
        .run(async move {
            let named = TaskBuilder::new().name("sleeper");
            let (h, line) = (named.spawn(blocks_once()), line!());
            h.await.unwrap();
            let (h, unnamed_line) = (runner_core::spawn(blocks_once()), line!());
            h.await.unwrap();
            (line, unnamed_line)
        })
        .unwrap();
    rt.close().unwrap();
    let slow = of_kind(&log, DiagnosticKind::SlowPoll);
    let named: Vec<_> = slow.iter().filter(|s| s.line == named_line).collect();
    let unnamed: Vec<_> = slow.iter().filter(|s| s.line == unnamed_line).collect();
    assert_eq!(named.len(), 1, "{}: {slow:#?}", kit.name());
    assert_eq!(unnamed.len(), 1, "{}: {slow:#?}", kit.name());
    assert_eq!(
        slow.len(),
        2,
        "{}: only the two blocking polls: {slow:#?}",
        kit.name()
    );
    let (named, unnamed) = (named[0], unnamed[0]);
    assert_eq!(named.name.as_deref(), Some("sleeper"));
    assert_eq!(unnamed.name, None);
    for s in [named, unnamed] {
        assert_eq!(s.file, file!(), "{s:?}");
        assert!(!s.main);
        assert!(s.duration.is_some_and(|d| d >= BLOCK), "{s:?}");
        assert_eq!(s.message, None);
        let at = format!("{}:{}", s.file, s.line);
        assert!(
            s.text.contains("slow poll") && s.text.contains(&at),
            "{}",
            s.text
        );
    }
    assert!(named.text.contains("sleeper"), "{}", named.text);
}

/// "Polls ... that take longer than the slow-poll threshold are reported": nothing else is. Tasks
/// and a main future that never block produce no report.
pub fn quick_polls_are_not_reported<L: EventLoop>(kit: &Kit<L>) {
    let (builder, log) = collecting(kit, true);
    let mut rt = builder.build();
    rt.run(async {
        let handles: Vec<_> = (0..10)
            .map(|_| {
                TaskBuilder::new().name("quick").spawn(async {
                    for _ in 0..20 {
                        runner_core::yield_now().await;
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    })
    .unwrap();
    rt.close().unwrap();
    let slow = of_kind(&log, DiagnosticKind::SlowPoll);
    assert!(slow.is_empty(), "{}: {slow:#?}", kit.name());
}

/// "Polls of the main future ... are reported": as the main future (`is_main`, name `main`),
/// located at the `run` call.
pub fn slow_main_poll_is_reported_as_main<L: EventLoop>(kit: &Kit<L>) {
    let (builder, log) = collecting(kit, true);
    let mut rt = builder.build();
    let block = async {
        runner_core::yield_now().await;
        thread::sleep(BLOCK);
        7
    };
    let (out, line) = (rt.run(block), line!());
    assert_eq!(out.unwrap(), 7);
    let slow = of_kind(&log, DiagnosticKind::SlowPoll);
    assert_eq!(slow.len(), 1, "{}: {slow:#?}", kit.name());
    let s = &slow[0];
    assert!(s.main, "{s:?}");
    assert_eq!(s.name.as_deref(), Some("main"));
    assert_eq!((s.file, s.line), (file!(), line), "the run call site");
    assert!(s.duration.is_some_and(|d| d >= BLOCK), "{s:?}");
    assert!(s.text.contains("main"), "{}", s.text);
}

/// "At close, each task still pending is listed with its spawn location": with its name and its
/// age; a task that finished is not listed.
pub fn close_in_debug_lists_pending_tasks<L: EventLoop>(kit: &Kit<L>) {
    let (builder, log) = collecting(kit, true);
    let mut rt = builder.build();
    let age = Duration::from_millis(30);
    let (named_line, unnamed_line) = rt
        .run(async move {
            let (h, line) = (TaskBuilder::new().name("forever").spawn(forever()), line!());
            drop(h);
            let (h, unnamed_line) = (runner_core::spawn(forever()), line!());
            drop(h);
            runner_core::spawn(async {}).await.unwrap();
            runner_core::time::sleep(age).await;
            (line, unnamed_line)
        })
        .unwrap();
    let report = rt.close().unwrap();
    assert_eq!(report.cancelled, 2, "{}: {report:?}", kit.name());
    let pending = of_kind(&log, DiagnosticKind::PendingAtClose);
    assert_eq!(pending.len(), 2, "{}: {pending:#?}", kit.name());
    let named = pending
        .iter()
        .find(|s| s.line == named_line)
        .expect("named task listed");
    let unnamed = pending
        .iter()
        .find(|s| s.line == unnamed_line)
        .expect("unnamed task listed");
    assert_eq!(named.name.as_deref(), Some("forever"));
    assert_eq!(unnamed.name, None);
    for s in [named, unnamed] {
        assert_eq!(s.file, file!());
        assert!(!s.main);
        assert!(s.duration.is_some_and(|d| d >= age), "the age: {s:?}");
        assert!(
            s.text.contains(&format!("{}:{}", s.file, s.line)),
            "{}",
            s.text
        );
    }
}

/// "Off, it costs no clock reads", and reports nothing: with `debug(false)` a 150 ms poll of a
/// task or of the main future, and a task pending at close, produce no diagnostic at all.
pub fn debug_off_reports_nothing<L: EventLoop>(kit: &Kit<L>) {
    let (builder, log) = collecting(kit, false);
    let mut rt = builder.build();
    rt.run(async {
        TaskBuilder::new()
            .name("sleeper")
            .spawn(async { thread::sleep(BLOCK) })
            .await
            .unwrap();
        drop(runner_core::spawn(forever()));
        thread::sleep(BLOCK);
    })
    .unwrap();
    let report = rt.close().unwrap();
    assert_eq!(report.cancelled, 1);
    let log = log.lock().unwrap();
    assert!(log.is_empty(), "{}: {log:#?}", kit.name());
}

async fn forever() {
    std::future::pending::<()>().await
}
