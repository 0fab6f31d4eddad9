//! How much does serving one client at a time cost? This benchmark measures
//! it instead of claiming it:
//!
//! ```console
//! $ cargo bench -p multi-client
//! $ cargo bench -p multi-client -- --clients 50 --lines 1000
//! ```
//!
//! It starts the real server (built with optimisations) twice, once with a
//! thread per client and once with `--one-at-a-time`. Each time, N clients
//! (default 200) start at once; each connects, sends M lines (default 100),
//! waiting for the `ok` to each before sending the next, and leaves. It
//! prints, for each mode, round trips per second over the whole run and the
//! round-trip latency of one line (p50, p99, max), then the ratios.
//!
//! It is a plain program (`harness = false`), not a test: its figures depend
//! on the machine and pass or fail nothing.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Parser;

/// Round trips per second and latency: a thread per client against one
/// client at a time.
#[derive(Parser)]
struct Args {
    /// How many clients start at once.
    #[arg(long, default_value_t = 200)]
    clients: usize,

    /// How many lines each client sends, one at a time.
    #[arg(long, default_value_t = 100)]
    lines: usize,

    /// `cargo bench` passes this to every benchmark; it means nothing here.
    #[arg(long, hide = true)]
    bench: bool,
}

/// How long a client waits to connect or for a reply before the run counts
/// as failed. Generous on purpose: with one client at a time, a client may
/// wait for every client before it, and a client that finds the listen
/// backlog (128) full has its handshake retried by the kernel 1 s, then
/// 3 s, 7 s... later.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

fn main() -> std::process::ExitCode {
    common::report(run(&Args::parse()))
}

fn run(args: &Args) -> anyhow::Result<()> {
    if args.clients == 0 || args.lines == 0 {
        bail!("--clients and --lines must be at least 1");
    }
    let cpus = thread::available_parallelism().map_or(0, |n| n.get());
    common::say!(
        "03-multi-client: {} clients at once, {} lines each, {} round trips per mode ({} CPUs, {} {})",
        args.clients,
        args.lines,
        args.clients * args.lines,
        cpus,
        std::env::consts::ARCH,
        std::env::consts::OS,
    );
    // Every client must get a thread: the cap is the number of clients.
    let cap = args.clients.to_string();
    let threads = measure("thread per client", &["--max-clients", &cap], args)?;
    let one = measure("one at a time", &["--one-at-a-time"], args)?;

    common::say!(
        "{:<18} {:>9} {:>14} {:>10} {:>10} {:>10} {:>16}",
        "mode",
        "wall time",
        "round trips/s",
        "p50",
        "p99",
        "max",
        "slowest connect"
    );
    for figures in [&threads, &one] {
        common::say!(
            "{:<18} {:>7.2} s {:>14.0} {:>10} {:>10} {:>10} {:>16}",
            figures.mode,
            figures.wall.as_secs_f64(),
            figures.rate(),
            show(figures.percentile(50.0)),
            show(figures.percentile(99.0)),
            show(figures.percentile(100.0)),
            show(figures.slowest_connect),
        );
    }
    common::say!(
        "thread per client / one at a time: {:.1}x the round trips per second; p99 latency {:.1}x lower",
        threads.rate() / one.rate(),
        one.percentile(99.0).as_secs_f64() / threads.percentile(99.0).as_secs_f64(),
    );
    Ok(())
}

/// What one mode's run measured.
struct Figures {
    mode: &'static str,
    /// From the moment all clients start until the last one is done.
    wall: Duration,
    /// Every line's round trip (send the line, read its `ok`), sorted.
    latencies: Vec<Duration>,
    /// The longest any client waited for its connection.
    slowest_connect: Duration,
}

impl Figures {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }

    /// The latency that `percent` % of the round trips did not exceed.
    fn percentile(&self, percent: f64) -> Duration {
        let last = self.latencies.len().saturating_sub(1);
        let at = ((percent / 100.0) * last as f64).round() as usize;
        self.latencies.get(at).copied().unwrap_or_default()
    }
}

/// A duration in the unit that suits it.
fn show(d: Duration) -> String {
    if d < Duration::from_millis(10) {
        format!("{:.3} ms", d.as_secs_f64() * 1e3)
    } else if d < Duration::from_secs(10) {
        format!("{:.0} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Starts the server with `mode_args`, runs every client against it at
/// once, and stops it.
fn measure(mode: &'static str, mode_args: &[&str], args: &Args) -> anyhow::Result<Figures> {
    let server = Server::start(mode_args)?;
    let addr = server.addr;
    // All clients wait at the barrier, so they start together; the main
    // thread waits there too, and starts the clock.
    let start = Arc::new(Barrier::new(args.clients + 1));
    let mut handles = Vec::with_capacity(args.clients);
    for n in 0..args.clients {
        let start = Arc::clone(&start);
        let lines = args.lines;
        let handle = thread::Builder::new()
            .name(format!("client {n}"))
            .stack_size(256 * 1024)
            .spawn(move || {
                start.wait();
                client(addr, n, lines)
            })
            .context("could not start a client thread")?;
        handles.push(handle);
    }
    start.wait();
    let began = Instant::now();
    let mut latencies = Vec::with_capacity(args.clients * args.lines);
    let mut slowest_connect = Duration::ZERO;
    for handle in handles {
        let run = handle
            .join()
            .map_err(|_| anyhow!("a client thread panicked"))??;
        latencies.extend(run.latencies);
        slowest_connect = slowest_connect.max(run.connect);
    }
    let wall = began.elapsed();
    latencies.sort_unstable();
    drop(server);
    Ok(Figures {
        mode,
        wall,
        latencies,
        slowest_connect,
    })
}

/// What one client measured.
struct ClientRun {
    connect: Duration,
    latencies: Vec<Duration>,
}

/// One client: connect, send `lines` lines one at a time, each waiting for
/// its `ok`, then half-close and wait for the server to close.
fn client(addr: SocketAddr, n: usize, lines: usize) -> anyhow::Result<ClientRun> {
    let began = Instant::now();
    let stream = TcpStream::connect_timeout(&addr, CLIENT_TIMEOUT)
        .with_context(|| format!("client {n} could not connect to {addr}"))?;
    let connect = began.elapsed();
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut replies = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut reply = String::new();
    let mut latencies = Vec::with_capacity(lines);
    for i in 0..lines {
        let line = format!("client {n} line {i}\n");
        let sent = Instant::now();
        writer
            .write_all(line.as_bytes())
            .with_context(|| format!("client {n} could not send line {i}"))?;
        reply.clear();
        replies
            .read_line(&mut reply)
            .with_context(|| format!("client {n} got no reply to line {i}"))?;
        latencies.push(sent.elapsed());
        if reply != "ok\n" {
            bail!("client {n} expected `ok` to line {i}, got {reply:?}");
        }
    }
    writer.shutdown(Shutdown::Write)?;
    reply.clear();
    replies.read_line(&mut reply)?;
    if !reply.is_empty() {
        bail!("client {n} expected the server to close, got {reply:?}");
    }
    Ok(ClientRun { connect, latencies })
}

/// The server under test; dropping it stops it.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(mode_args: &[&str]) -> anyhow::Result<Server> {
        // Cargo builds the package's binary for its benchmarks, in the same
        // (optimised) profile, and says where it is.
        let bin = env!("CARGO_BIN_EXE_03-multi-client");
        let mut child = Command::new(bin)
            .args(mode_args)
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start {bin}"))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let mut log = BufReader::new(stdout);
        let mut first = String::new();
        log.read_line(&mut first)?;
        let addr = first
            .trim_end()
            .strip_prefix("listening on ")
            .and_then(|addr| addr.parse().ok())
            .with_context(|| format!("the server's first line was {first:?}"))?;
        // The server logs every line it receives. Read the log and throw it
        // away, or the pipe fills up and the server blocks on printing.
        thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
        Ok(Server { child, addr })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
