//! Neutral I/O: a library that does TCP (an echo server and its client, on loopback only) with no
//! executor named anywhere in it, run unchanged on every backend flavour this build has.
//!
//! ```text
//! cargo run --example neutral_io --all-features                       # every backend in turn
//! RUNNER_BACKEND=tokio cargo run --example neutral_io --all-features   # one, in a fresh process
//! ```
//!
//! The sockets are async-io's `Async<TcpListener>` / `Async<TcpStream>` (what async-net wraps):
//! they work inside any run because async-io has its own reactor. On smol that reactor is the
//! loop's own; on tokio and glommio, async-io starts one more thread, `async-io`, for the whole
//! process. The example prints the process's threads named `async-io` after each backend (Linux),
//! which is that cost.

/// The "library": an echo service over TCP, executor-neutral.
mod echo {
    use std::io;
    use std::net::{Ipv4Addr, TcpListener, TcpStream};

    use async_io::Async;
    use futures_lite::{AsyncReadExt, AsyncWriteExt};

    /// Binds a listener on an ephemeral loopback port and serves `connections` clients, each on
    /// its own task, echoing what they send until they close. Returns the port.
    pub(crate) fn serve(
        connections: usize,
    ) -> io::Result<(u16, runner::JoinHandle<io::Result<usize>>)> {
        let listener = Async::<TcpListener>::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.get_ref().local_addr()?.port();
        let server = runner::spawn(async move {
            let mut echoed = Vec::new();
            for _ in 0..connections {
                let (stream, _) = listener.accept().await?;
                echoed.push(runner::spawn(echo_one(stream)));
            }
            let mut bytes = 0;
            for task in echoed {
                bytes += task.await.map_err(io::Error::other)??;
            }
            Ok(bytes)
        });
        Ok((port, server))
    }

    async fn echo_one(mut stream: Async<TcpStream>) -> io::Result<usize> {
        let mut buf = [0u8; 1024];
        let mut total = 0;
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok(total);
            }
            stream.write_all(&buf[..n]).await?;
            total += n;
        }
    }

    /// Connects, sends `msg`, and returns what came back.
    pub(crate) async fn ask(port: u16, msg: &str) -> io::Result<String> {
        let mut stream = Async::<TcpStream>::connect((Ipv4Addr::LOCALHOST, port)).await?;
        stream.write_all(msg.as_bytes()).await?;
        let mut back = vec![0u8; msg.len()];
        stream.read_exact(&mut back).await?;
        Ok(String::from_utf8_lossy(&back).into_owned())
    }
}

/// The threads of this process named `async-io` (Linux; 0 elsewhere).
fn async_io_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "async-io")
        .count()
}

fn run_on(backend: runner::Backend) -> std::io::Result<()> {
    let mut rt = runner::Runner::builder()
        .loop_factory(move || runner::AnyLoop::with_workers(backend, 2))
        .build();
    let answers = rt
        .run(async {
            let clients = 4;
            let (port, server) = echo::serve(clients)?;
            let asks: Vec<_> = (0..clients)
                .map(|i| runner::spawn(echo::ask(port, if i % 2 == 0 { "ping" } else { "hello" })))
                .collect();
            let mut answers = Vec::new();
            for ask in asks {
                answers.push(ask.await.map_err(std::io::Error::other)??);
            }
            let bytes = server.await.map_err(std::io::Error::other)??;
            assert_eq!(bytes, 2 * 4 + 2 * 5);
            Ok::<_, std::io::Error>(answers)
        })
        .map_err(std::io::Error::other)??;
    assert_eq!(answers, ["ping", "hello", "ping", "hello"]);
    rt.close().map_err(std::io::Error::other)?;
    println!(
        "{backend:<11} echoed {} messages over loopback; async-io threads in the process: {}",
        answers.len(),
        async_io_threads()
    );
    Ok(())
}

fn main() -> std::io::Result<()> {
    if std::env::var_os(runner::RUNNER_BACKEND).is_some() {
        return run_on(runner::Backend::from_env()?);
    }
    let mut ran = 0;
    for backend in runner::Backend::compiled() {
        run_on(backend)?;
        ran += 1;
    }
    assert!(ran > 0, "enable at least one backend feature");
    Ok(())
}
