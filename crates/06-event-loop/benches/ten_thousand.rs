//! Ten thousand connections, three servers, side by side:
//!
//! ```console
//! $ cargo bench -p event-loop
//! $ cargo bench -p event-loop -- --idle 2000 --active 50
//! ```
//!
//! For each of lesson 3's thread per client, this lesson's mio engine and
//! its Tokio engine, each on one thread (`--loops 1`) and on one per core
//! (all built with optimisations), and the Python server a
//! learner of the original lesson would have written instead (lesson 3's
//! protocol with `asyncio` streams, `tests/interop/asyncio_server.py`;
//! skipped, saying why, where `python3` is missing), it starts the server,
//! opens 10,000 idle connections (`--idle`; each does one round trip, so
//! the server surely holds it, then stays silent), and measures the
//! server's memory (RSS, from /proc) and its threads. Then, with those
//! connections still open, 200 active clients (`--active`) connect and all
//! start at the same instant: each sends 100 lines (`--round-trips`), one at
//! a time, waiting for each `ok`. The active clients are driven the way the
//! lesson's servers are: one thread per core (`--client-threads`), each
//! with a mio `Poll` for its share of the clients, so that they take as
//! little as they can of the cores the server runs on. It prints, for each
//! server:
//!
//! - the server's RSS with the idle connections open, and per connection
//!   (over its RSS when it had just started);
//! - its thread count;
//! - round trips per second, from that instant until the last client is
//!   done, and the p50 and p99 of one round trip.
//!
//! The lessons' servers run with `--max-clients` at idle + active (10,200),
//! so that nobody is told `busy`, and `--idle-timeout 0`, so the idle
//! connections stay (the Python server has neither cap nor timeout).
//! Everything is on loopback. The benchmark needs twice idle + active
//! open files in all (its clients and the server's side): it raises its own
//! soft limit towards the hard one, and says so and stops if the hard limit
//! is too low. Then it checks this lesson's targets: every engine holds the
//! connections in at most 64 MiB; on one thread it does at least lesson 3's
//! round trips per second, and with one loop per core at least 1.2 times
//! them; and prints each server's RSS and round trips against Python's,
//! with the Python version.
//!
//! Each server runs 5 times (`--runs`), the servers taking turns, and the
//! summary is the median of each figure, with the spread of the round
//! trips (the slowest run to the fastest).
//!
//! It is a plain program (`harness = false`), not a test: its figures depend
//! on the machine and pass or fail nothing.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Parser;
use common::say;
use mio::{Events, Interest, Poll, Token};
use testkit::bench::{Python, Server, median, percentile, show, times};
use testkit::hostile::resident_kib;

const EXAMPLES: &str = "\
Examples:
  cargo bench -p event-loop
      every server, 5 runs each
  cargo bench -p event-loop -- --runs 9 --only mio
      lesson 3 and the mio engine, 9 runs each
  cargo bench -p event-loop -- --idle 2000 --active 50
      a smaller load
  cargo bench -p event-loop -- --clients-nice 0 --client-threads 1
      one thread for the clients, at the server's priority";

/// Lesson 3's thread per client against both engines of lesson 6, with
/// 10,000 idle connections open.
#[derive(Parser)]
// The name a reader types, not the harness binary's hashed file name.
#[command(bin_name = "cargo bench -p event-loop --", after_help = EXAMPLES)]
struct Args {
    /// How many idle connections to hold open.
    #[arg(long, default_value_t = 10_000)]
    idle: usize,

    /// How many active clients.
    #[arg(long, default_value_t = 200)]
    active: usize,

    /// How many lines each active client sends, one at a time.
    #[arg(long, default_value_t = 100)]
    round_trips: usize,

    /// How many times to run each server, taking turns; the summary is the
    /// median of each figure, because one run on a busy machine can be far off.
    #[arg(long, default_value_t = 5)]
    runs: usize,

    /// The scheduling priority (nice value, 0 to 19) of the threads that
    /// drive the active clients. They stand in for clients on other
    /// machines: at 19 they take the CPU only when the server does not want
    /// it. At 0 they compete with the server for the same cores.
    #[arg(long, default_value_t = 19, value_parser = clap::value_parser!(i32).range(0..=19))]
    clients_nice: i32,

    /// Run only the servers whose name contains this (`mio`, `tokio`,
    /// `2 loops`, `Python`), beside lesson 3's, which the targets are
    /// measured against.
    #[arg(long, value_name = "TEXT")]
    only: Option<String>,

    /// How many threads drive the active clients, each with one `Poll`
    /// for its share of them. Default: one per core.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    client_threads: Option<u64>,

    /// `cargo bench` passes this to every benchmark; it means nothing here.
    #[arg(long, hide = true)]
    bench: bool,
}

impl Args {
    fn client_threads(&self) -> usize {
        self.client_threads
            .map_or_else(event_loop::default_loops, |n| n as usize)
    }
}

/// The most RSS either engine may use with the idle connections open.
const RSS_TARGET_MIB: f64 = 64.0;
/// Round trips per second against lesson 3's, at least: one loop on one
/// thread must keep up with a thread per client, and one loop per core
/// must do better.
const RATE_TARGET_ONE_LOOP: f64 = 1.0;
const RATE_TARGET_PER_CORE: f64 = 1.2;
/// How long a connect or a reply may take before the run counts as failed.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// The reply to every line.
const OK: &[u8] = b"ok\n";
/// Open files besides the connections: standard streams, pipes, a margin.
const SPARE_FILES: u64 = 256;

fn main() -> std::process::ExitCode {
    common::report(run(&Args::parse()))
}

fn run(args: &Args) -> anyhow::Result<()> {
    if args.idle == 0 || args.active == 0 || args.round_trips == 0 || args.runs == 0 {
        bail!("--idle, --active, --round-trips and --runs must be at least 1");
    }
    // This process holds one end of every connection, and the server it
    // starts (which inherits the limit) the other end.
    let files = (args.idle + args.active) as u64 + SPARE_FILES;
    allow_open_files(files)?;
    say!(
        "event-loop: {} idle connections held open while {} clients ({}, nice {}) do {} round \
         trips each ({} in all); {} CPUs, {} {}",
        args.idle,
        args.active,
        common::count(args.client_threads() as u64, "thread"),
        args.clients_nice,
        args.round_trips,
        args.active * args.round_trips,
        thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::consts::ARCH,
        std::env::consts::OS,
    );
    let cap = (args.idle + args.active).to_string();
    let limits = ["--max-clients", cap.as_str(), "--idle-timeout", "0"];
    let cores = event_loop::default_loops().to_string();
    let lesson6 = |engine, loops| {
        let options = ["--engine", engine, "--loops", loops];
        (
            PathBuf::from(env!("CARGO_BIN_EXE_06-event-loop")),
            [&options[..], &limits].concat(),
        )
    };
    let lesson3 = testkit::binary("multi-client", "03-multi-client");
    let mut servers: Vec<(String, PathBuf, Vec<&str>)> = vec![(
        "lesson 3, thread per client".into(),
        lesson3,
        limits.to_vec(),
    )];
    for (engine, loops) in [
        ("mio", "1"),
        ("mio", &cores),
        ("tokio", "1"),
        ("tokio", &cores),
    ] {
        let (bin, options) = lesson6(engine, loops);
        // Tokio's are worker threads, not loops of ours.
        let unit = if engine == "mio" { "loop" } else { "thread" };
        let plural = if loops == "1" { "" } else { "s" };
        servers.push((
            format!("lesson 6, {engine}, {loops} {unit}{plural}"),
            bin,
            options,
        ));
    }
    let python = Python::find();
    let script = testkit::interop_script("asyncio_server.py");
    let script = script.to_string_lossy();
    match &python {
        Ok(python) => {
            say!(
                "beside them: {} ({}), lesson 3's protocol with asyncio",
                python.version,
                python.path.display()
            );
            servers.push(("Python asyncio".into(), python.path.clone(), vec![&script]));
        }
        Err(why) => say!("the Python column is skipped: {why}"),
    }
    if let Some(only) = &args.only {
        servers.retain(|(name, ..)| name.starts_with("lesson 3") || name.contains(only.as_str()));
    }
    header(args.idle);
    // The servers take turns, so that whatever else the machine is doing
    // meanwhile slows them alike.
    let mut runs: Vec<Vec<Figures>> = servers.iter().map(|_| Vec::new()).collect();
    for _ in 0..args.runs {
        for ((name, bin, server_args), figures) in servers.iter().zip(&mut runs) {
            let run = measure(name, bin, server_args, args)?;
            run.print();
            figures.push(run);
        }
    }
    say!("median of {}:", common::count(args.runs as u64, "run"));
    let all: Vec<Figures> = runs.iter().map(|runs| Figures::median(runs)).collect();
    for figures in &all {
        figures.print();
    }
    let threads = &all[0];
    let engines = all
        .iter()
        .zip(&runs)
        .filter(|(f, _)| f.server.starts_with("lesson 6"));
    for (engine, runs) in engines {
        let target = if engine.server.ends_with(" 1 loop") || engine.server.ends_with(" 1 thread") {
            RATE_TARGET_ONE_LOOP
        } else {
            RATE_TARGET_PER_CORE
        };
        let rss_met = engine.rss_mib <= RSS_TARGET_MIB;
        let rate_met = engine.rate >= threads.rate * target;
        let rates = runs.iter().map(|run| run.rate);
        let (slowest, fastest) = (
            rates.clone().fold(f64::MAX, f64::min),
            rates.fold(0.0, f64::max),
        );
        say!(
            "{}: RSS {:.1} MiB with {} connections, target at most {RSS_TARGET_MIB} MiB: {}; \
             {:.0} round trips/s (runs {slowest:.0} to {fastest:.0}) against lesson 3's {:.0} \
             ({:.2}x), target at least {target}x: {}",
            engine.server,
            engine.rss_mib,
            args.idle,
            if rss_met { "met" } else { "MISSED" },
            engine.rate,
            threads.rate,
            engine.rate / threads.rate,
            if rate_met { "met" } else { "MISSED" },
        );
    }
    let py = all.iter().find(|f| f.server.starts_with("Python"));
    if let (Ok(python), Some(py)) = (&python, py) {
        for lesson in all.iter().filter(|f| f.server.starts_with("lesson")) {
            say!(
                "{}: RSS {:.1} MiB = {} Python asyncio's {:.1} MiB; {:.0} round trips/s = {} Python asyncio ({:.0}); {}",
                lesson.server,
                lesson.rss_mib,
                times(lesson.rss_mib, py.rss_mib),
                py.rss_mib,
                lesson.rate,
                times(lesson.rate, py.rate),
                py.rate,
                python.version,
            );
        }
    }
    Ok(())
}

/// Raises this process's soft limit of open files to `wanted`, if the hard
/// limit allows; stops with a clear message if it does not.
fn allow_open_files(wanted: u64) -> anyhow::Result<()> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= wanted {
        return Ok(());
    }
    let hard = limit.maximum.unwrap_or(u64::MAX);
    if hard < wanted {
        bail!(
            "this benchmark needs {wanted} open files, and the hard limit is {hard} (ulimit -Hn): \
             raise it, or pass a smaller --idle"
        );
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(wanted),
            maximum: limit.maximum,
        },
    )
    .with_context(|| format!("could not raise the open-file limit from {current} to {wanted}"))?;
    say!("raised the open-file limit from {current} to {wanted} (the hard limit is {hard})");
    Ok(())
}

/// What one server measured.
struct Figures {
    server: String,
    rss_mib: f64,
    /// KiB per idle connection, over the RSS when the server had started.
    per_connection_kib: f64,
    threads: usize,
    rate: f64,
    p50: Duration,
    p99: Duration,
    /// The server's CPU time per round trip, all its threads together.
    cpu: Duration,
}

fn header(idle: usize) {
    say!(
        "{:<28} {:>14} {:>14} {:>8} {:>14} {:>10} {:>10} {:>10}",
        "server",
        format!("RSS at {idle}"),
        "per idle conn",
        "threads",
        "round trips/s",
        "p50",
        "p99",
        "CPU/trip"
    );
}

impl Figures {
    /// Each figure's median over `runs` (the upper middle one for an even
    /// number).
    fn median(runs: &[Figures]) -> Figures {
        Figures {
            server: runs[0].server.clone(),
            rss_mib: median(runs.iter().map(|f| f.rss_mib)),
            per_connection_kib: median(runs.iter().map(|f| f.per_connection_kib)),
            threads: median(runs.iter().map(|f| f.threads)),
            rate: median(runs.iter().map(|f| f.rate)),
            p50: median(runs.iter().map(|f| f.p50)),
            p99: median(runs.iter().map(|f| f.p99)),
            cpu: median(runs.iter().map(|f| f.cpu)),
        }
    }

    fn print(&self) {
        say!(
            "{:<28} {:>14} {:>14} {:>8} {:>14.0} {:>10} {:>10} {:>10}",
            self.server,
            format!("{:.1} MiB", self.rss_mib),
            format!("{:.1} KiB", self.per_connection_kib),
            self.threads,
            self.rate,
            show(self.p50),
            show(self.p99),
            format!("{:.1} µs", self.cpu.as_secs_f64() * 1e6),
        );
    }
}

/// Starts one server, holds the idle connections, runs the active clients,
/// and stops it.
fn measure(
    name: &str,
    bin: &std::path::Path,
    server_args: &[&str],
    args: &Args,
) -> anyhow::Result<Figures> {
    let bin = bin.to_string_lossy();
    let server = Server::start(&bin, server_args)?;
    let started_kib = resident_kib(server.pid()).unwrap_or(0);

    let mut idle = Vec::with_capacity(args.idle);
    for n in 0..args.idle {
        idle.push(
            idle_connection(server.addr)
                .with_context(|| format!("{name}: idle connection {n} failed"))?,
        );
    }
    let held_kib = resident_kib(server.pid()).unwrap_or(0);
    let threads = thread_count(server.pid());

    // The active clients connect before the clock starts: each of
    // --client-threads drives its share of them.
    let per_thread = args.active.div_ceil(args.client_threads());
    let mut groups = Vec::new();
    for first in (0..args.active).step_by(per_thread) {
        let clients = first..args.active.min(first + per_thread);
        groups.push(
            ActiveClients::connect(server.addr, clients)
                .with_context(|| format!("{name}: the active clients could not connect"))?,
        );
    }
    // Each thread lowers its priority, then they all start at once.
    let start = Arc::new(Barrier::new(groups.len() + 1));
    let nice = args.clients_nice;
    let mut drivers = Vec::new();
    for mut clients in groups {
        let start = Arc::clone(&start);
        let lines = args.round_trips;
        let driver = thread::Builder::new()
            .name("active clients".into())
            .spawn(move || {
                // On Linux a thread has its own nice value: this lowers
                // only this one (lowering a priority never needs
                // privileges).
                let lowered = rustix::process::setpriority_process(None, nice);
                // Wait for the others even if that failed, or they wait
                // forever.
                start.wait();
                lowered.with_context(|| {
                    format!("could not lower the clients' priority to nice {nice}")
                })?;
                clients.run(lines)
            })
            .context("could not start a thread for the clients")?;
        drivers.push(driver);
    }
    let cpu_before = cpu_time(server.pid());
    start.wait();
    let began = Instant::now();
    let mut latencies = Vec::with_capacity(args.active * args.round_trips);
    for driver in drivers {
        let run = driver
            .join()
            .map_err(|_| anyhow!("{name}: a clients' thread panicked"))?;
        latencies.extend(run.with_context(|| format!("{name}: an active client failed"))?);
    }
    let wall = began.elapsed();
    let cpu = cpu_time(server.pid()).saturating_sub(cpu_before);
    drop(server);
    drop(idle);
    latencies.sort_unstable();
    Ok(Figures {
        server: name.to_string(),
        rss_mib: held_kib as f64 / 1024.0,
        per_connection_kib: held_kib.saturating_sub(started_kib) as f64 / args.idle as f64,
        threads,
        rate: latencies.len() as f64 / wall.as_secs_f64(),
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        cpu: cpu / (latencies.len().max(1) as u32),
    })
}

/// Connects, does one round trip (so the server has surely accepted and
/// registered the connection), and returns the silent connection.
fn idle_connection(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let mut stream = TcpStream::connect_timeout(&addr, CLIENT_TIMEOUT)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.write_all(b"idle\n")?;
    let mut reply = [0u8; 3];
    stream.read_exact(&mut reply)?;
    if &reply != b"ok\n" {
        bail!("expected `ok`, got {:?}", String::from_utf8_lossy(&reply));
    }
    Ok(stream)
}

/// The active clients, all on one thread with mio: one `Poll` for all
/// their sockets, as the servers under test do. A thread per client would
/// cost each round trip two thread switches on the same cores the server
/// runs on; clients on other machines would cost it nothing.
struct ActiveClients {
    poll: Poll,
    clients: Vec<ActiveClient>,
}

/// One active client: its socket, the reply read so far, when its line
/// went out, and how many round trips it has done.
struct ActiveClient {
    number: usize,
    stream: mio::net::TcpStream,
    reply: Vec<u8>,
    sent: Instant,
    done: usize,
}

impl ActiveClients {
    /// Connects clients number `numbers` (they tell the lines apart).
    fn connect(addr: SocketAddr, numbers: std::ops::Range<usize>) -> anyhow::Result<ActiveClients> {
        let poll = Poll::new()?;
        let mut clients = Vec::with_capacity(numbers.len());
        for n in numbers {
            let stream = TcpStream::connect_timeout(&addr, CLIENT_TIMEOUT)
                .with_context(|| format!("client {n} could not connect"))?;
            stream.set_nonblocking(true)?;
            let mut stream = mio::net::TcpStream::from_std(stream);
            poll.registry()
                .register(&mut stream, Token(clients.len()), Interest::READABLE)?;
            clients.push(ActiveClient {
                number: n,
                stream,
                reply: Vec::new(),
                sent: Instant::now(),
                done: 0,
            });
        }
        Ok(ActiveClients { poll, clients })
    }

    /// Every client sends `lines` lines, one at a time, each after the
    /// `ok` to the one before; returns how long each round trip took.
    fn run(&mut self, lines: usize) -> anyhow::Result<Vec<Duration>> {
        let mut latencies = Vec::with_capacity(self.clients.len() * lines);
        for client in &mut self.clients {
            client.send()?;
        }
        let mut finished = 0;
        let mut events = Events::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        while finished < self.clients.len() {
            match self.poll.poll(&mut events, Some(CLIENT_TIMEOUT)) {
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                waited => waited.context("could not wait for the replies")?,
            }
            if events.is_empty() {
                bail!("no reply came in {} s", CLIENT_TIMEOUT.as_secs());
            }
            for event in &events {
                let client = &mut self.clients[event.token().0];
                let n = client.number;
                // Edge-triggered: read until the kernel has nothing more.
                loop {
                    match client.stream.read(&mut chunk) {
                        Ok(0) => bail!("client {n}: the server closed the connection"),
                        Ok(got) => client.reply.extend_from_slice(&chunk[..got]),
                        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(err) => return Err(err).context(format!("client {n} could not read")),
                    }
                }
                if client.reply.len() < OK.len() && OK.starts_with(&client.reply) {
                    continue; // the rest of `ok` is still on its way
                }
                if client.reply != OK {
                    bail!(
                        "client {n} expected `ok` to line {}, got {:?}",
                        client.done,
                        String::from_utf8_lossy(&client.reply)
                    );
                }
                latencies.push(client.sent.elapsed());
                client.reply.clear();
                client.done += 1;
                if client.done == lines {
                    finished += 1;
                } else {
                    client.send()?;
                }
            }
        }
        Ok(latencies)
    }
}

impl ActiveClient {
    /// Sends the next line. It is short and the client's only one in
    /// flight, so the kernel takes it whole at once.
    fn send(&mut self) -> anyhow::Result<()> {
        let n = self.number;
        let line = format!("client {n} line {}\n", self.done);
        self.sent = Instant::now();
        let written = self
            .stream
            .write(line.as_bytes())
            .with_context(|| format!("client {n} could not send"))?;
        if written != line.len() {
            bail!(
                "client {n}: the kernel took {written} of {} bytes",
                line.len()
            );
        }
        Ok(())
    }
}

/// The server's thread count, from /proc (0 where that cannot be read).
fn thread_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |tasks| tasks.count())
}

/// How much CPU time process `pid` has used so far, all its threads
/// together, those that have ended included (Linux's /proc/PID/stat, in
/// clock ticks, usually 10 ms; zero where that cannot be read).
fn cpu_time(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // After the command's name in parentheses: utime and stime are the
    // 12th and 13th fields.
    let fields: Vec<u64> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split(' ').map(|f| f.parse().unwrap_or(0)).collect())
        .unwrap_or_default();
    let ticks = fields.get(11).unwrap_or(&0) + fields.get(12).unwrap_or(&0);
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    Duration::from_nanos(ticks * 1_000_000_000 / per_second)
}
