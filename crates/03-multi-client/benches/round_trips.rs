//! How much does serving one client at a time cost? This benchmark measures
//! it instead of claiming it:
//!
//! ```console
//! $ cargo bench -p multi-client
//! $ cargo bench -p multi-client -- --clients 50 --lines 1000
//! ```
//!
//! It starts the real server (built with optimisations) in both modes: with
//! a thread per client, and with `--one-at-a-time`; and beside them the
//! Python servers a learner of the original lesson would have written
//! instead, speaking the same protocol (`tests/interop`): a thread per
//! client with `socketserver.ThreadingTCPServer`, and `asyncio` streams.
//! Where `python3` is missing, it says so and measures the lesson alone.
//! Each time, N clients
//! (default 200) connect, one every 100 µs (`--spacing-us`); 0.2 s after the
//! last one started, all of them start talking at the same instant: each
//! sends M lines (default 100), waiting for the `ok` to each before sending
//! the next, then leaves. For each mode it prints:
//!
//! - round trips per second, from that instant until the last client is done;
//! - the round-trip latency of one line (send it, read its `ok`), p50 and p99;
//! - how long a client waits for its first `ok`, from that instant, p50 and
//!   p99: with one client at a time, this is where the waiting shows, since
//!   a client that is being served gets its other replies at once;
//! - how many clients waited a second or more to connect.
//!
//! Each mode runs 5 times (`--runs`), the modes taking turns, and the summary
//! is the median of each figure, because one run on a busy machine can be
//! far off. Then it prints the ratios, the Python version among them.
//!
//! It is a plain program (`harness = false`), not a test: its figures depend
//! on the machine and pass or fail nothing.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Parser;
use testkit::bench::{Python, Server, median, percentile, show, times};

const EXAMPLES: &str = "\
Examples:
  cargo bench -p multi-client
      200 clients, 100 lines each, against every server
  cargo bench -p multi-client -- --clients 50 --lines 1000
      fewer clients, longer conversations";

/// Round trips per second and latency: a thread per client against one
/// client at a time.
#[derive(Parser)]
// The name a reader types, not the harness binary's hashed file name.
#[command(bin_name = "cargo bench -p multi-client --", after_help = EXAMPLES)]
struct Args {
    /// How many clients.
    #[arg(long, default_value_t = 200)]
    clients: usize,

    /// How many lines each client sends, one at a time.
    #[arg(long, default_value_t = 100)]
    lines: usize,

    /// Microseconds between one client's connect and the next one's.
    #[arg(long, value_name = "MICROSECONDS", default_value_t = 100)]
    spacing_us: u64,

    /// How many times to run each mode; the summary is the median.
    #[arg(long, default_value_t = 5)]
    runs: usize,

    /// `cargo bench` passes this to every benchmark; it means nothing here.
    #[arg(long, hide = true)]
    bench: bool,
}

/// How long after the last client started connecting all clients start
/// talking: time for the server to accept every connection it can.
const TALK_DELAY: Duration = Duration::from_millis(200);

/// How long a client waits to connect or for a reply before the run counts
/// as failed. Generous on purpose: with one client at a time, a client may
/// wait for every client before it, and a client that finds the listen
/// backlog (128) full has its handshake retried by its kernel 1 s, then
/// 3 s, 7 s... later.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

fn main() -> std::process::ExitCode {
    common::report(run(&Args::parse()))
}

fn run(args: &Args) -> anyhow::Result<()> {
    if args.clients == 0 || args.lines == 0 || args.runs == 0 {
        bail!("--clients, --lines and --runs must be at least 1");
    }
    let cpus = thread::available_parallelism().map_or(0, |n| n.get());
    common::say!(
        "03-multi-client: {} clients (one every {} µs), {} lines each, {} round trips; {} of each mode ({} CPUs, {} {})",
        args.clients,
        args.spacing_us,
        args.lines,
        args.clients * args.lines,
        common::count(args.runs as u64, "run"),
        cpus,
        std::env::consts::ARCH,
        std::env::consts::OS,
    );
    let python = Python::find();
    match &python {
        Ok(python) => common::say!(
            "beside it: {} ({}), lesson 3's protocol with ThreadingTCPServer and with asyncio",
            python.version,
            python.path.display()
        ),
        Err(why) => common::say!("the Python columns are skipped: {why}"),
    }
    header();
    // Every client must get a thread: the cap is the number of clients.
    let cap = args.clients.to_string();
    let mut threads = Vec::new();
    let mut one = Vec::new();
    let mut py_threads = Vec::new();
    let mut py_asyncio = Vec::new();
    // The modes take turns, so that whatever else the machine is doing
    // meanwhile slows them alike.
    for _ in 0..args.runs {
        let figures = measure("thread per client", lesson(&["--max-clients", &cap])?, args)?;
        figures.print();
        threads.push(figures);
        let figures = measure("one at a time", lesson(&["--one-at-a-time"])?, args)?;
        figures.print();
        one.push(figures);
        if let Ok(python) = &python {
            let server = python_server(python, "threading_server.py")?;
            let figures = measure("Python threading", server, args)?;
            figures.print();
            py_threads.push(figures);
            let server = python_server(python, "asyncio_server.py")?;
            let figures = measure("Python asyncio", server, args)?;
            figures.print();
            py_asyncio.push(figures);
        }
    }
    let threads = Figures::median(&threads);
    let one = Figures::median(&one);
    common::say!("median of the runs:");
    threads.print();
    one.print();
    let pythons = python.ok().map(|python| {
        let (py_threads, py_asyncio) = (Figures::median(&py_threads), Figures::median(&py_asyncio));
        py_threads.print();
        py_asyncio.print();
        (python, py_threads, py_asyncio)
    });
    common::say!(
        "thread per client against one at a time: {:.1}x the round trips per second; \
         the first `ok` after {} instead of {} (p50), {} instead of {} (p99)",
        threads.rate / one.rate,
        show(threads.first_ok_p50),
        show(one.first_ok_p50),
        show(threads.first_ok_p99),
        show(one.first_ok_p99),
    );
    if let Some((python, py_threads, py_asyncio)) = pythons {
        for (lesson, name) in [(&threads, "threads"), (&one, "one at a time")] {
            common::say!(
                "lesson 3 ({name}) {:.0} round trips/s = {} Python ThreadingTCPServer ({:.0}), \
                 {} Python asyncio ({:.0}); {}",
                lesson.rate,
                times(lesson.rate, py_threads.rate),
                py_threads.rate,
                times(lesson.rate, py_asyncio.rate),
                py_asyncio.rate,
                python.version,
            );
        }
    }
    Ok(())
}

/// What one run of one mode measured.
struct Figures {
    mode: &'static str,
    /// Round trips per second, from the instant all clients start talking
    /// until the last one is done.
    rate: f64,
    /// The round trip of one line (send it, read its `ok`).
    line_p50: Duration,
    line_p99: Duration,
    /// A client's wait for its first `ok`, from the instant all start talking.
    first_ok_p50: Duration,
    first_ok_p99: Duration,
    /// How many clients waited a second or more to connect: the listen
    /// backlog was full, the server's kernel dropped their handshake, and
    /// their own kernel tried again 1 s later.
    slow_connects: usize,
}

fn header() {
    common::say!(
        "{:<18} {:>14} {:>10} {:>10} {:>11} {:>11} {:>14}",
        "mode",
        "round trips/s",
        "line p50",
        "line p99",
        "1st ok p50",
        "1st ok p99",
        "connects >1 s"
    );
}

impl Figures {
    fn print(&self) {
        common::say!(
            "{:<18} {:>14.0} {:>10} {:>10} {:>11} {:>11} {:>14}",
            self.mode,
            self.rate,
            show(self.line_p50),
            show(self.line_p99),
            show(self.first_ok_p50),
            show(self.first_ok_p99),
            self.slow_connects,
        );
    }

    /// Each figure's median over `runs` (with an even number of runs, the
    /// upper of the two middle values).
    fn median(runs: &[Figures]) -> Figures {
        Figures {
            mode: runs[0].mode,
            rate: median(runs.iter().map(|f| f.rate)),
            line_p50: median(runs.iter().map(|f| f.line_p50)),
            line_p99: median(runs.iter().map(|f| f.line_p99)),
            first_ok_p50: median(runs.iter().map(|f| f.first_ok_p50)),
            first_ok_p99: median(runs.iter().map(|f| f.first_ok_p99)),
            slow_connects: median(runs.iter().map(|f| f.slow_connects)),
        }
    }
}

/// Runs every client against `server`, and stops it.
fn measure(mode: &'static str, server: Server, args: &Args) -> anyhow::Result<Figures> {
    let addr = server.addr;
    let spacing = Duration::from_micros(args.spacing_us);
    let began = Instant::now();
    let talk = began + spacing * args.clients as u32 + TALK_DELAY;
    let mut handles = Vec::with_capacity(args.clients);
    for n in 0..args.clients {
        let plan = Plan {
            addr,
            n,
            lines: args.lines,
            connect: began + spacing * n as u32,
            talk,
        };
        let handle = thread::Builder::new()
            .name(format!("client {n}"))
            .stack_size(256 * 1024)
            .spawn(move || client(&plan))
            .context("could not start a client thread")?;
        handles.push(handle);
    }
    let mut latencies = Vec::with_capacity(args.clients * args.lines);
    let mut first_oks = Vec::with_capacity(args.clients);
    let mut slow_connects = 0;
    for handle in handles {
        let run = handle
            .join()
            .map_err(|_| anyhow!("a client thread panicked"))??;
        latencies.extend(run.latencies);
        first_oks.push(run.first_ok);
        if run.connect >= Duration::from_secs(1) {
            slow_connects += 1;
        }
    }
    let wall = talk.elapsed();
    drop(server);
    latencies.sort_unstable();
    first_oks.sort_unstable();
    Ok(Figures {
        mode,
        rate: latencies.len() as f64 / wall.as_secs_f64(),
        line_p50: percentile(&latencies, 50.0),
        line_p99: percentile(&latencies, 99.0),
        first_ok_p50: percentile(&first_oks, 50.0),
        first_ok_p99: percentile(&first_oks, 99.0),
        slow_connects,
    })
}

/// What one client does, and when.
struct Plan {
    addr: SocketAddr,
    n: usize,
    lines: usize,
    /// When it connects.
    connect: Instant,
    /// When it starts sending (all clients at the same instant).
    talk: Instant,
}

/// What one client measured.
struct ClientRun {
    /// How long connecting took.
    connect: Duration,
    /// From the instant all clients start talking to this one's first `ok`.
    first_ok: Duration,
    /// Each line's round trip.
    latencies: Vec<Duration>,
}

/// One client: connect, wait for the instant to talk, send `lines` lines
/// one at a time, each waiting for its `ok`, then half-close and wait for
/// the server to close.
fn client(plan: &Plan) -> anyhow::Result<ClientRun> {
    let Plan { addr, n, .. } = *plan;
    thread::sleep(plan.connect.saturating_duration_since(Instant::now()));
    let started = Instant::now();
    let stream = TcpStream::connect_timeout(&addr, CLIENT_TIMEOUT)
        .with_context(|| format!("client {n} could not connect to {addr}"))?;
    let connect = started.elapsed();
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut replies = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    thread::sleep(plan.talk.saturating_duration_since(Instant::now()));

    let mut reply = String::new();
    let mut latencies = Vec::with_capacity(plan.lines);
    let mut first_ok = Duration::ZERO;
    for i in 0..plan.lines {
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
        if i == 0 {
            first_ok = plan.talk.elapsed();
        }
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
    Ok(ClientRun {
        connect,
        first_ok,
        latencies,
    })
}

/// Lesson 3's server with `mode_args`.
fn lesson(mode_args: &[&str]) -> anyhow::Result<Server> {
    // Cargo builds the package's binary for its benchmarks, in the same
    // (optimised) profile, and says where it is.
    Ok(Server::start(
        env!("CARGO_BIN_EXE_03-multi-client"),
        mode_args,
    )?)
}

/// The Python stand-in `tests/interop/SCRIPT`.
fn python_server(python: &Python, script: &str) -> anyhow::Result<Server> {
    let script = testkit::interop_script(script);
    Ok(Server::start(
        &python.path.to_string_lossy(),
        &[&script.to_string_lossy()],
    )?)
}
