//! "`#[runner::main]` exits with status 130 when Ctrl-C interrupts the run." A real SIGINT to a
//! child process: this file is its own binary (`harness = false`) so that the child runs the
//! attribute's function on the process's main thread, where `Interrupt::Auto` is in force.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD: &str = "RUNNER_MACROS_INTERRUPT_CHILD";

#[runner::main]
async fn child() {
    println!("ready");
    std::future::pending::<()>().await;
}

fn main() {
    if std::env::var_os(CHILD).is_some() {
        child();
        unreachable!("the run never ends by itself");
    }
    #[cfg(unix)]
    parent();
    #[cfg(not(unix))]
    println!("0 passed, 0 failed, 1 skipped: SIGINT is POSIX only");
}

#[cfg(unix)]
fn parent() {
    use std::os::unix::process::ExitStatusExt;

    println!("test interrupted_main_exits_with_130 ...");
    use std::os::unix::process::CommandExt;

    let mut cmd = Command::new(std::env::current_exe().unwrap());
    // SAFETY: the closure runs in the forked child before exec and only calls signal(2), which
    // is async-signal-safe. It gives SIGINT its default disposition: a shell that starts the test
    // run in the background makes children inherit SIG_IGN, and the runner rightly does not
    // intercept an ignored signal.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = cmd.env(CHILD, "1").stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "the child's run started");
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) with a pid we own (our unreaped child) and a valid signal number.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);

    // Generous: the child only has to close an empty runner; a loaded CI machine may be slow.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the child did not exit within 60 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_ne!(
        status.signal(),
        Some(libc::SIGINT),
        "the runner did not intercept SIGINT: the process died of it"
    );
    assert_eq!(status.code(), Some(130), "{status}");
    println!("1 passed, 0 failed");
}
