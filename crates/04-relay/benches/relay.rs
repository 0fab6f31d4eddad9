//! Does one client that stops reading slow everyone else down? This
//! benchmark measures it: the real server, N clients in a ring sending
//! each other M messages with `SEND`, and an extra client that reads
//! everything (`sink`) or nothing (`stuck`); the two scenarios take turns,
//! and the summary is the median of each figure.
//!
//! ```console
//! $ cargo bench -p relay -- --clients 20 --messages 500 --runs 5
//! ```
//!
//! What it sends, what each figure means, and the results: 04-relay.md
//! § What one stuck receiver costs; `--help` for every option.

use std::io::{BufRead, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use common::{describe, lock, printable};
use relay::{LINE_LIMIT, MAX_CLIENTS_LIMIT, TEXT_LIMIT};
use testkit::bench::{median, percentile, show};

const EXAMPLES: &str = "\
Examples:
  cargo bench -p relay
      the default load, 5 runs
  cargo bench -p relay -- --clients 20 --messages 500 --runs 5
      a smaller load";

/// Relayed messages per second and delivery latency, with and without one
/// client that never reads.
#[derive(Parser)]
// The name a reader types, not the harness binary's hashed file name.
#[command(bin_name = "cargo bench -p relay --", after_help = EXAMPLES)]
struct Args {
    /// How many clients send (in a ring), besides the extra receiver.
    #[arg(long, default_value_t = 50)]
    clients: usize,

    /// How many messages each client sends, one at a time.
    #[arg(long, default_value_t = 2000)]
    messages: usize,

    /// Every this many messages, a client sends to the extra receiver
    /// (`sink` or `stuck`) instead of the next client in the ring.
    #[arg(long, value_name = "E", default_value_t = 5)]
    extra_every: usize,

    /// The length of each message's text in bytes (a timestamp, then
    /// padding).
    #[arg(long, value_name = "BYTES", default_value_t = 500)]
    size: usize,

    /// The most messages a client may have sent to one receiver (the next
    /// client, or the sink) that it has not read yet; 0 for no limit. The
    /// relay answers `SENT` once a line is in the receiver's queue, not once
    /// it is read, so waiting for `SENT` does not keep a sender from running
    /// ahead of a receiver whose turn on the CPU is late; the relay then
    /// makes the sender wait for room, and the latency measured would be
    /// the queue's.
    #[arg(long, value_name = "W", default_value_t = 100)]
    window: usize,

    /// How many times to run each scenario; the summary is the median.
    #[arg(long, default_value_t = 5)]
    runs: usize,

    /// Seconds any read may wait before the run counts as failed.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    timeout: u64,

    /// `cargo bench` passes this to every benchmark; it means nothing here.
    #[arg(long, hide = true)]
    bench: bool,
}

/// How often a client that has no room to send looks again.
const POLL: Duration = Duration::from_millis(1);

/// The timestamp at the start of every text: nanoseconds, zero-padded so
/// that every text has the same length; then a space and padding.
const STAMP_WIDTH: usize = 20;

fn main() -> std::process::ExitCode {
    common::report(run(&Args::parse()))
}

fn run(args: &Args) -> anyhow::Result<()> {
    check(args)?;
    let cpus = thread::available_parallelism().map_or(0, |n| n.get());
    common::say!(
        "04-relay: {} clients in a ring, {} messages each of {} bytes, 1 in {} to the extra receiver, window {}; {} of each scenario ({} CPUs, {} {})",
        args.clients,
        args.messages,
        args.size,
        args.extra_every,
        match args.window {
            0 => "off".to_string(),
            window => window.to_string(),
        },
        common::count(args.runs as u64, "run"),
        cpus,
        std::env::consts::ARCH,
        std::env::consts::OS,
    );
    header();
    let mut healthy = Vec::new();
    let mut stuck = Vec::new();
    let mut server_said = None;
    // The scenarios take turns, so that whatever else the machine is doing
    // meanwhile slows both alike.
    for _ in 0..args.runs {
        let figures = measure(Scenario::Healthy, args)?;
        figures.print();
        healthy.push(figures);
        let figures = measure(Scenario::Stuck, args)?;
        figures.print();
        server_said = server_said.or(figures.server_said.clone());
        stuck.push(figures);
    }
    let healthy = Figures::median(&healthy);
    let stuck = Figures::median(&stuck);
    common::say!("median of the runs:");
    healthy.print();
    stuck.print();
    common::say!(
        "stuck against no stuck: {:.2}x the ring messages per second; {:.2}x the latency at p50, {:.2}x at p99",
        stuck.rate / healthy.rate,
        stuck.p50.as_secs_f64() / healthy.p50.as_secs_f64(),
        stuck.p99.as_secs_f64() / healthy.p99.as_secs_f64(),
    );
    match server_said {
        Some(line) => common::say!("the server logged: {line}"),
        None => common::say!("the server never logged that the stuck client left"),
    }
    Ok(())
}

/// Refuses options the benchmark cannot run with.
fn check(args: &Args) -> anyhow::Result<()> {
    if args.clients < 2 || args.messages == 0 || args.runs == 0 {
        bail!("--clients must be at least 2, --messages and --runs at least 1");
    }
    if args.clients + 1 > MAX_CLIENTS_LIMIT {
        bail!(
            "--clients is at most {}: the server serves at most {MAX_CLIENTS_LIMIT} clients, one of them the extra receiver",
            MAX_CLIENTS_LIMIT - 1
        );
    }
    if args.extra_every < 2 {
        bail!("--extra-every must be at least 2 (1 would leave nothing for the ring)");
    }
    if !(STAMP_WIDTH + 1..=TEXT_LIMIT).contains(&args.size) {
        bail!(
            "--size must be between {} and {TEXT_LIMIT} bytes",
            STAMP_WIDTH + 1
        );
    }
    Ok(())
}

/// Whether the extra receiver reads what it is sent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Healthy,
    Stuck,
}

impl Scenario {
    fn label(self) -> &'static str {
        match self {
            Scenario::Healthy => "no stuck",
            Scenario::Stuck => "stuck",
        }
    }

    /// The extra receiver's name.
    fn extra(self) -> &'static str {
        match self {
            Scenario::Healthy => "sink",
            Scenario::Stuck => "stuck",
        }
    }
}

/// What one run of one scenario measured.
struct Figures {
    scenario: Scenario,
    /// Ring messages received per second, from the start until the last
    /// client is done.
    rate: f64,
    /// The delivery latency of a ring message.
    p50: Duration,
    p99: Duration,
    /// Messages to the extra receiver answered `SENT`.
    extra_sent: usize,
    /// Messages to the extra receiver answered `ERR no-such-peer`.
    extra_refused: usize,
    /// Messages that waited for room under `--window`.
    waited: usize,
    /// From the start until the first client read `LEFT <extra>`.
    dropped_after: Option<Duration>,
    /// The server's log line about the extra receiver leaving.
    server_said: Option<String>,
}

fn header() {
    common::say!(
        "{:<9} {:>12} {:>9} {:>9} {:>10} {:>9} {:>13} {:>7}",
        "scenario",
        "ring msgs/s",
        "p50",
        "p99",
        "extra SENT",
        "extra ERR",
        "dropped after",
        "waited"
    );
}

impl Figures {
    fn print(&self) {
        common::say!(
            "{:<9} {:>12.0} {:>9} {:>9} {:>10} {:>9} {:>13} {:>7}",
            self.scenario.label(),
            self.rate,
            show(self.p50),
            show(self.p99),
            self.extra_sent,
            self.extra_refused,
            self.dropped_after.map_or("-".to_string(), show),
            self.waited,
        );
    }

    /// Each figure's median over `runs` (with an even number of runs, the
    /// upper of the two middle values). A run where the extra receiver was
    /// never dropped counts as the longest time to drop it.
    fn median(runs: &[Figures]) -> Figures {
        let dropped = median(
            runs.iter()
                .map(|f| f.dropped_after.unwrap_or(Duration::MAX)),
        );
        Figures {
            scenario: runs[0].scenario,
            rate: median(runs.iter().map(|f| f.rate)),
            p50: median(runs.iter().map(|f| f.p50)),
            p99: median(runs.iter().map(|f| f.p99)),
            extra_sent: median(runs.iter().map(|f| f.extra_sent)),
            extra_refused: median(runs.iter().map(|f| f.extra_refused)),
            waited: median(runs.iter().map(|f| f.waited)),
            dropped_after: (dropped != Duration::MAX).then_some(dropped),
            server_said: None,
        }
    }
}

/// The ring client number `n`.
fn ring_name(n: usize) -> String {
    format!("c{n}")
}

/// Whether message `j` of ring client `n` goes to the extra receiver.
/// Offset by `n`, so the clients do not all turn to it at once.
fn to_extra(n: usize, j: usize, every: usize) -> bool {
    (n + j) % every == every - 1
}

/// Starts the server, registers the extra receiver and the ring, runs the
/// ring, and stops the server.
fn measure(scenario: Scenario, args: &Args) -> anyhow::Result<Figures> {
    let timeout = Duration::from_secs(args.timeout);
    let server = Server::start(args.clients + 1)?;
    let epoch = Instant::now();
    let flow = Arc::new(Flow::new(args));
    let (extra, members) = register_everyone(server.addr, scenario, args.clients, timeout)?;
    // The sink reads everything; the stuck client is held, never read, and
    // closed when this function returns.
    let (sink, _stuck) = start_extra(scenario, extra, args, &flow)?;
    let ring = start_ring(members, |n| Plan {
        n,
        clients: args.clients,
        messages: args.messages,
        size: args.size,
        every: args.extra_every,
        extra: scenario.extra(),
        stuck: scenario == Scenario::Stuck,
        epoch,
        flow: Arc::clone(&flow),
    })?;
    let (start, all_ready) = start_clock(ring.ready, ring.gos, args.clients, timeout);
    // The connections of the clients that are done, closed at the end.
    let (runs, _done, failures) = join_everyone(ring.handles, sink)?;
    fail_with_the_cause(&server, scenario, failures, all_ready)?;
    Ok(figures(scenario, runs, start, server))
}

impl Flow {
    fn new(args: &Args) -> Flow {
        Flow {
            window: match args.window {
                0 => usize::MAX,
                window => window,
            },
            ring_read: (0..args.clients).map(|_| AtomicUsize::new(0)).collect(),
            extra_sent: AtomicUsize::new(0),
            extra_read: AtomicUsize::new(0),
        }
    }
}

/// Registers the extra receiver first, then the ring, one at a time: ring
/// client n is then told `JOINED` for exactly the clients after it.
fn register_everyone(
    addr: SocketAddr,
    scenario: Scenario,
    clients: usize,
    timeout: Duration,
) -> anyhow::Result<(Member, Vec<Member>)> {
    let extra = Member::register(addr, scenario.extra(), timeout)?;
    let mut members = Vec::with_capacity(clients);
    for n in 0..clients {
        members.push(Member::register(addr, &ring_name(n), timeout)?);
    }
    Ok((extra, members))
}

/// The sink's thread, reading everything it is sent (no stuck); or the
/// stuck client, which nobody reads.
type ExtraReceiver = (Option<JoinHandle<anyhow::Result<Member>>>, Option<Member>);

/// Starts the sink's thread in the healthy scenario; in the stuck one,
/// hands back the stuck client to be held unread.
fn start_extra(
    scenario: Scenario,
    extra: Member,
    args: &Args,
    flow: &Arc<Flow>,
) -> anyhow::Result<ExtraReceiver> {
    if scenario == Scenario::Stuck {
        return Ok((None, Some(extra)));
    }
    let for_extra: usize = (0..args.clients)
        .map(|n| {
            (0..args.messages)
                .filter(|&j| to_extra(n, j, args.extra_every))
                .count()
        })
        .sum();
    let (clients, flow) = (args.clients, Arc::clone(flow));
    let sink = thread::Builder::new()
        .name("sink".to_string())
        .stack_size(256 * 1024)
        .spawn(move || {
            let mut extra = extra;
            extra.sink(clients, for_extra, &flow).map(|()| extra)
        })
        .context("could not start the sink's thread")?;
    Ok((Some(sink), None))
}

/// The ring's threads, and how to start them all at once.
struct Ring {
    handles: Vec<JoinHandle<Result<(ClientRun, Member), Failure>>>,
    /// One `go` for each client, sent the start.
    gos: Vec<Sender<Instant>>,
    /// Each client says here that it is ready.
    ready: Receiver<()>,
}

/// Starts a thread for each ring client, which gets ready and waits for
/// the start.
fn start_ring(members: Vec<Member>, plan_of: impl Fn(usize) -> Plan) -> anyhow::Result<Ring> {
    let (ready_tx, ready) = mpsc::channel();
    let mut gos = Vec::with_capacity(members.len());
    let mut handles = Vec::with_capacity(members.len());
    for (n, member) in members.into_iter().enumerate() {
        let plan = plan_of(n);
        let (go_tx, go) = mpsc::channel();
        gos.push(go_tx);
        let ready = ready_tx.clone();
        let handle = thread::Builder::new()
            .name(ring_name(n))
            .stack_size(256 * 1024)
            .spawn(move || {
                // A client that is done keeps its connection open until
                // all are, or the others would be told it left. One that
                // fails closes it at once, so the others fail soon too; the
                // time of its failure is taken before that.
                let mut member = member;
                match member.converse(&plan, &ready, &go) {
                    Ok(run) => Ok((run, member)),
                    Err(err) => Err(Failure {
                        at: Instant::now(),
                        err,
                    }),
                }
            })
            .context("could not start a client thread")?;
        handles.push(handle);
    }
    Ok(Ring {
        handles,
        gos,
        ready,
    })
}

/// Starts the clock once every client is ready, then tells them all to go.
/// If one cannot get ready, dropping `gos` makes the others give up.
/// Returns the start, and whether every client got ready.
fn start_clock(
    ready: Receiver<()>,
    gos: Vec<Sender<Instant>>,
    clients: usize,
    timeout: Duration,
) -> (Instant, bool) {
    let all_ready = (0..clients).all(|_| ready.recv_timeout(timeout).is_ok());
    let start = Instant::now();
    if all_ready {
        for go in &gos {
            let _ = go.send(start);
        }
    }
    (start, all_ready)
}

/// Waits for every client and the sink: what each measured, the
/// connections of those that are done, and the failures.
fn join_everyone(
    handles: Vec<JoinHandle<Result<(ClientRun, Member), Failure>>>,
    sink: Option<JoinHandle<anyhow::Result<Member>>>,
) -> anyhow::Result<(Vec<ClientRun>, Vec<Member>, Vec<Failure>)> {
    let mut runs = Vec::with_capacity(handles.len());
    let mut failures = Vec::new();
    let mut done = Vec::with_capacity(handles.len() + 1);
    for handle in handles {
        match handle.join() {
            Ok(Ok((run, member))) => {
                runs.push(run);
                done.push(member);
            }
            Ok(Err(failure)) => failures.push(failure),
            Err(_) => bail!("a client thread panicked"),
        }
    }
    if let Some(sink) = sink {
        match sink.join() {
            Ok(Ok(member)) => done.push(member),
            Ok(Err(err)) => failures.push(Failure {
                at: Instant::now(),
                err,
            }),
            Err(_) => bail!("the sink's thread panicked"),
        }
    }
    Ok((runs, done, failures))
}

/// Fails with the first failure, the cause (the others, timeouts mostly,
/// follow from it), and what the server logged of those who left.
fn fail_with_the_cause(
    server: &Server,
    scenario: Scenario,
    failures: Vec<Failure>,
    all_ready: bool,
) -> anyhow::Result<()> {
    let first = failures
        .into_iter()
        .min_by_key(|failure| (failure.err.is::<Cancelled>(), failure.at));
    if let Some(first) = first {
        let left = server.left();
        let said = match left.len() {
            0 => String::new(),
            1..=3 => format!(" (the server logged: {})", left.join("; ")),
            n => format!(
                " (the server logged: {}; and {} more)",
                left[..3].join("; "),
                n - 3
            ),
        };
        bail!("{} scenario: {:#}{said}", scenario.label(), first.err);
    }
    if !all_ready {
        bail!(
            "{} scenario: the clients did not get ready",
            scenario.label()
        );
    }
    Ok(())
}

/// The figures of one run, from what each client measured; stops the
/// server once its log is read.
fn figures(scenario: Scenario, runs: Vec<ClientRun>, start: Instant, server: Server) -> Figures {
    let finished = runs.iter().map(|run| run.finished).max().unwrap_or(start);
    let wall = finished.saturating_duration_since(start);
    let dropped_after = runs
        .iter()
        .filter_map(|run| run.left_extra)
        .min()
        .map(|at| at.saturating_duration_since(start));
    let extra_sent = runs.iter().map(|run| run.extra_sent).sum();
    let extra_refused = runs.iter().map(|run| run.extra_refused).sum();
    let waited = runs.iter().map(|run| run.waited).sum();
    let mut latencies: Vec<Duration> = runs.into_iter().flat_map(|run| run.latencies).collect();
    latencies.sort_unstable();
    let server_said = server
        .left()
        .into_iter()
        .find(|line| line.starts_with(&format!("{} left", scenario.extra())));
    drop(server);
    Figures {
        scenario,
        rate: latencies.len() as f64 / wall.as_secs_f64(),
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        extra_sent,
        extra_refused,
        waited,
        dropped_after,
        server_said,
    }
}

/// Why a client thread gave up, and when: the earliest failure is the
/// cause, the others usually follow from it.
struct Failure {
    at: Instant,
    err: anyhow::Error,
}

/// The error of a client told to give up before the start because another
/// could not get ready: never the cause.
#[derive(Debug)]
struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("the benchmark gave up before the start")
    }
}

/// The benchmark's own flow control (see `--window`): how many messages
/// each receiver has read, shared by all the clients.
struct Flow {
    /// The most messages sent to one receiver and not read yet.
    window: usize,
    /// Ring messages read by each ring client.
    ring_read: Vec<AtomicUsize>,
    /// Messages sent to the sink (counted before they are sent).
    extra_sent: AtomicUsize,
    /// Messages the sink has read.
    extra_read: AtomicUsize,
}

impl Flow {
    /// Takes a place for one more message to the sink, if fewer than
    /// `window` are unread. In one atomic step, so that two clients can never
    /// both take the last place.
    fn to_sink(&self) -> bool {
        self.extra_sent
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |sent| {
                let read = self.extra_read.load(Ordering::SeqCst);
                (sent - read < self.window).then_some(sent + 1)
            })
            .is_ok()
    }
}

/// What one ring client does.
struct Plan {
    n: usize,
    clients: usize,
    messages: usize,
    size: usize,
    every: usize,
    /// The extra receiver's name.
    extra: &'static str,
    /// Whether the extra receiver is the stuck one: no flow control for
    /// it, and its `LEFT` and `ERR no-such-peer` are expected.
    stuck: bool,
    /// The instant the timestamps in the texts count from.
    epoch: Instant,
    flow: Arc<Flow>,
}

/// What one ring client measured.
struct ClientRun {
    /// When it had sent all its messages and received all its
    /// predecessor's.
    finished: Instant,
    /// The delivery latency of each message it received.
    latencies: Vec<Duration>,
    /// Its messages to the extra receiver answered `SENT`.
    extra_sent: usize,
    /// Its messages to the extra receiver answered `ERR no-such-peer`.
    extra_refused: usize,
    /// How many of its messages waited for room under `--window`.
    waited: usize,
    /// When it read `LEFT <extra>`.
    left_extra: Option<Instant>,
}

/// A registered client: its connection, for writing and for reading lines.
struct Member {
    name: String,
    writer: TcpStream,
    lines: Lines,
}

/// The answer to one `SEND`.
enum Reply {
    Sent,
    /// `ERR full` (the receiver's queue stayed full for RELAY_WAIT) or
    /// `ERR no-such-peer` (it has been dropped).
    Refused,
}

impl Member {
    /// Connects, sends `HELLO <name>` and waits for `WELCOME`.
    fn register(addr: SocketAddr, name: &str, timeout: Duration) -> anyhow::Result<Member> {
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .with_context(|| format!("{name} could not connect to {addr}"))?;
        stream.set_write_timeout(Some(timeout))?;
        // Each line goes out at once, rather than wait for an ACK.
        stream.set_nodelay(true)?;
        let lines = Lines::new(stream.try_clone()?, timeout)?;
        let mut member = Member {
            name: name.to_string(),
            writer: stream,
            lines,
        };
        member.send(&format!("HELLO {name}"))?;
        let line = member.next_line("WELCOME")?;
        if !line.starts_with(&format!("WELCOME {name} ")) {
            bail!("{name} expected WELCOME, got {line:?}");
        }
        Ok(member)
    }

    fn send(&mut self, line: &str) -> anyhow::Result<()> {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .with_context(|| format!("{} could not send to the server", self.name))
    }

    /// The next line from the server; `waiting_for` says what for, in the
    /// error if none comes within the timeout.
    fn next_line(&mut self, waiting_for: &str) -> anyhow::Result<String> {
        self.lines.poll(false)?;
        self.lines
            .next()
            .with_context(|| format!("{} (waiting for {waiting_for})", self.name))?
            .with_context(|| {
                format!(
                    "{}: nothing from the server within {} s (waiting for {waiting_for})",
                    self.name,
                    self.lines.timeout.as_secs_f64()
                )
            })
    }

    /// The sink: reads everything until it has received `expected` `FROM`
    /// lines.
    fn sink(&mut self, clients: usize, expected: usize, flow: &Flow) -> anyhow::Result<()> {
        let (mut joined, mut received) = (0, 0);
        while received < expected {
            let line = self.next_line(&format!("message {} of {expected}", received + 1))?;
            match line.split(' ').next() {
                Some("FROM") => {
                    received += 1;
                    flow.extra_read.fetch_add(1, Ordering::SeqCst);
                }
                Some("JOINED") if joined < clients => joined += 1,
                _ => bail!("sink: unexpected line {line:?}"),
            }
        }
        Ok(())
    }

    /// One ring client: gets ready, waits for the start, then sends its
    /// messages one at a time and reads until it has its predecessor's too.
    fn converse(
        &mut self,
        plan: &Plan,
        ready: &Sender<()>,
        go: &Receiver<Instant>,
    ) -> anyhow::Result<ClientRun> {
        self.wait_for_the_start(plan, ready, go)?;
        let Plan { n, clients, .. } = *plan;
        let previous = (n + clients - 1) % clients;
        let expected = (0..plan.messages)
            .filter(|&j| !to_extra(previous, j, plan.every))
            .count();
        let mut inbox = Inbox {
            index: n,
            previous: ring_name(previous),
            plan,
            latencies: Vec::with_capacity(expected),
            left_extra: None,
        };
        let mut sending = Sending::new(plan);
        while sending.awaiting.is_some()
            || sending.j < plan.messages
            || inbox.latencies.len() < expected
        {
            let blocked = self.send_next(plan, &mut sending)?;
            // While there is no room to send, look again every POLL.
            self.lines.poll(blocked)?;
            let line = match self.lines.next().context(self.name.clone())? {
                Some(line) => line,
                None if sending.progress.elapsed() < self.lines.timeout => continue,
                None => bail!(self.silence(plan, &sending, &inbox, expected)),
            };
            sending.progress = Instant::now();
            let reply = inbox.take(&self.name, &line)?;
            if !sending.take_reply(plan, reply) {
                bail!("{}: unexpected reply {line:?}", self.name);
            }
        }
        Ok(ClientRun {
            finished: Instant::now(),
            latencies: inbox.latencies,
            extra_sent: sending.extra_sent,
            extra_refused: sending.extra_refused,
            waited: sending.waited,
            left_extra: inbox.left_extra,
        })
    }

    /// Reads the `JOINED` notices of the clients after this one, says it
    /// is ready, and waits for the start.
    fn wait_for_the_start(
        &mut self,
        plan: &Plan,
        ready: &Sender<()>,
        go: &Receiver<Instant>,
    ) -> anyhow::Result<()> {
        for _ in plan.n + 1..plan.clients {
            let line = self.next_line("JOINED")?;
            if !line.starts_with("JOINED ") {
                bail!("{}: expected JOINED, got {line:?}", self.name);
            }
        }
        let _ = ready.send(());
        if go.recv_timeout(self.lines.timeout).is_err() {
            bail!(Cancelled);
        }
        Ok(())
    }

    /// Sends the next message if no reply is awaited and its receiver has
    /// room under `--window`. Returns whether it had to wait for room.
    fn send_next(&mut self, plan: &Plan, sending: &mut Sending) -> anyhow::Result<bool> {
        if sending.awaiting.is_some() || sending.j == plan.messages {
            return Ok(false);
        }
        let next = (plan.n + 1) % plan.clients;
        let to_x = to_extra(plan.n, sending.j, plan.every);
        let room = match (to_x, plan.stuck) {
            (true, true) => true,
            (true, false) => plan.flow.to_sink(),
            (false, _) => {
                sending.ring_sent - plan.flow.ring_read[next].load(Ordering::SeqCst)
                    < plan.flow.window
            }
        };
        if !room {
            if !sending.counted_wait {
                (sending.waited, sending.counted_wait) = (sending.waited + 1, true);
            }
            return Ok(true);
        }
        let to = if to_x {
            plan.extra.to_string()
        } else {
            ring_name(next)
        };
        let stamp = plan.epoch.elapsed().as_nanos();
        let padding = &sending.padding;
        self.send(&format!("SEND {to} {stamp:0STAMP_WIDTH$} {padding}"))?;
        if !to_x {
            sending.ring_sent += 1;
        }
        sending.awaiting = Some(to);
        sending.j += 1;
        (sending.counted_wait, sending.progress) = (false, Instant::now());
        Ok(false)
    }

    /// Why nothing came within the timeout: what this client waited for.
    fn silence(&self, plan: &Plan, sending: &Sending, inbox: &Inbox, expected: usize) -> String {
        let j = sending.j;
        let why = match &sending.awaiting {
            Some(to) => format!("the reply to message {} (to {to})", j - 1),
            None if j < plan.messages => format!(
                "room to send message {j}: {} or the sink is not reading",
                ring_name((plan.n + 1) % plan.clients)
            ),
            None => format!(
                "message {} of {expected} from {}",
                inbox.latencies.len() + 1,
                inbox.previous
            ),
        };
        format!(
            "{}: nothing from the server within {} s (waiting for {why})",
            self.name,
            self.lines.timeout.as_secs_f64()
        )
    }
}

/// Where a ring client is in sending its messages.
struct Sending {
    /// The number of the next message to send.
    j: usize,
    /// Messages sent to the next client in the ring.
    ring_sent: usize,
    /// The receiver of the message whose reply has not come yet.
    awaiting: Option<String>,
    /// Whether the wait for room for message `j` is counted already.
    counted_wait: bool,
    /// The last time something was sent or read.
    progress: Instant,
    extra_sent: usize,
    extra_refused: usize,
    waited: usize,
    /// What fills each text after its timestamp.
    padding: String,
}

impl Sending {
    fn new(plan: &Plan) -> Sending {
        Sending {
            j: 0,
            ring_sent: 0,
            awaiting: None,
            counted_wait: false,
            progress: Instant::now(),
            extra_sent: 0,
            extra_refused: 0,
            waited: 0,
            padding: "x".repeat(plan.size - STAMP_WIDTH - 1),
        }
    }

    /// Counts a reply, if it is the one awaited (or there is none). False
    /// for a reply nobody awaited.
    fn take_reply(&mut self, plan: &Plan, reply: Option<(Reply, String)>) -> bool {
        let Some((reply, who)) = reply else {
            return true;
        };
        let Some(to) = self.awaiting.take_if(|to| *to == who) else {
            return false;
        };
        match reply {
            Reply::Sent if to == plan.extra => self.extra_sent += 1,
            Reply::Sent => {}
            Reply::Refused if plan.stuck && to == plan.extra => self.extra_refused += 1,
            Reply::Refused => {
                self.awaiting = Some(to);
                return false;
            }
        }
        true
    }
}

/// What a ring client makes of the lines that arrive unasked.
struct Inbox<'a> {
    index: usize,
    previous: String,
    plan: &'a Plan,
    latencies: Vec<Duration>,
    left_extra: Option<Instant>,
}

impl Inbox<'_> {
    /// Takes one line: a `FROM` (its latency is noted) or a `LEFT` of the
    /// stuck client gives `None`; a reply to a `SEND` gives the reply and
    /// the name it is about. Anything else is an error.
    fn take(&mut self, me: &str, line: &str) -> anyhow::Result<Option<(Reply, String)>> {
        let words: Vec<&str> = line.splitn(3, ' ').collect();
        match words[..] {
            ["FROM", from, text] if from == self.previous => {
                let now = self.plan.epoch.elapsed();
                let stamp: u64 = text
                    .get(..STAMP_WIDTH)
                    .and_then(|stamp| stamp.parse().ok())
                    .with_context(|| format!("{me}: no timestamp in {line:?}"))?;
                self.latencies
                    .push(now.saturating_sub(Duration::from_nanos(stamp)));
                self.plan.flow.ring_read[self.index].fetch_add(1, Ordering::SeqCst);
                Ok(None)
            }
            ["SENT", to] => Ok(Some((Reply::Sent, to.to_string()))),
            ["ERR", "no-such-peer" | "full", to] => Ok(Some((Reply::Refused, to.to_string()))),
            ["LEFT", who] if who == self.plan.extra && self.plan.stuck => {
                self.left_extra.get_or_insert_with(Instant::now);
                Ok(None)
            }
            ["LEFT", who] => bail!(
                "{me}: the server dropped {who}, which reads all the time (its queue filled up, or writing to it failed)"
            ),
            _ => bail!("{me}: unexpected line {line:?}"),
        }
    }
}

/// Lines from the server, read with a timeout that can be short (POLL)
/// without losing a line cut in two by it, as `common::read_line` would.
struct Lines {
    stream: TcpStream,
    buffer: Vec<u8>,
    /// The bytes read and not yet taken: `buffer[start..end]`.
    start: usize,
    end: usize,
    /// The long timeout, and whether the short one is set instead.
    timeout: Duration,
    polling: bool,
}

impl Lines {
    fn new(stream: TcpStream, timeout: Duration) -> anyhow::Result<Lines> {
        stream.set_read_timeout(Some(timeout))?;
        Ok(Lines {
            stream,
            buffer: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            timeout,
            polling: false,
        })
    }

    /// Sets the read timeout to POLL (true) or to the long timeout.
    fn poll(&mut self, polling: bool) -> anyhow::Result<()> {
        if polling != self.polling {
            let wait = if polling { POLL } else { self.timeout };
            self.stream.set_read_timeout(Some(wait))?;
            self.polling = polling;
        }
        Ok(())
    }

    /// The next line, without its newline; `None` if none came within the
    /// read timeout.
    fn next(&mut self) -> anyhow::Result<Option<String>> {
        loop {
            let unread = &self.buffer[self.start..self.end];
            if let Some(newline) = unread.iter().position(|&byte| byte == b'\n') {
                let line = printable(&unread[..newline]);
                self.start += newline + 1;
                return Ok(Some(line));
            }
            if unread.len() > LINE_LIMIT {
                bail!("the server sent a line over {LINE_LIMIT} bytes");
            }
            // Keep the part of a line at the front, and read after it.
            self.buffer.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
            match self.stream.read(&mut self.buffer[self.end..]) {
                Ok(0) => bail!("the server closed the connection"),
                Ok(n) => self.end += n,
                Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(None);
                }
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => bail!("lost the connection: {}", describe(&err)),
            }
        }
    }
}

/// The server under test (dropping it stops it), and its log lines that
/// say a client left.
struct Server {
    /// Kept for its drop, which stops the server.
    _running: testkit::bench::Server,
    addr: SocketAddr,
    left: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(max_clients: usize) -> anyhow::Result<Server> {
        // Cargo builds the package's binary for its benchmarks, in the same
        // (optimised) profile, and says where it is.
        let bin = env!("CARGO_BIN_EXE_04-relay");
        let cap = max_clients.to_string();
        // The server logs every message it relays: read it all, keeping
        // the lines that say a client left, and why.
        let left = Arc::new(Mutex::new(Vec::new()));
        let noted = Arc::clone(&left);
        let server = testkit::bench::Server::start_reading_log(
            bin,
            &["serve", "--max-clients", &cap],
            move |mut log| {
                let mut line = Vec::new();
                while matches!(log.read_until(b'\n', &mut line), Ok(1..)) {
                    let words = line.splitn(3, |&byte| byte == b' ').nth(1);
                    if matches!(words, Some(b"left" | b"left\n")) {
                        lock(&noted).push(printable(line.trim_ascii_end()));
                    }
                    line.clear();
                }
            },
        )?;
        Ok(Server {
            addr: server.addr,
            _running: server,
            left,
        })
    }

    /// The server's log lines that say a client left.
    fn left(&self) -> Vec<String> {
        lock(&self.left).clone()
    }
}
