//! The command line of lesson 6. The lesson itself is in lib.rs.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  cargo run -p event-loop
      one thread, readiness events (mio), up to 10,000 clients on 127.0.0.1:7890
  cargo run -p event-loop -- --engine tokio
      the same server as Tokio tasks
  cargo run -p event-loop -- --max-clients 2 --idle-timeout 10 --grace 2
      a small cap, clients silent for 10 s disconnected, 2 s to say goodbye
  cargo run -p event-loop -- --partial-lines-budget 1000000
      at most 1 MB of unfinished lines held for all clients together
  cargo run -p event-loop -- --loops 1
      one event loop on one thread (the default is one per core)
  cargo run -p event-loop -- --engine tokio --loops 4
      Tokio with 4 worker threads (--loops 1: its current-thread runtime)

Then, in other terminals (each line you type gets `ok`; Ctrl-D ends):
  cargo run -p client
  nc -N 127.0.0.1 7890
  printf 'hello\\nworld\\n' | nc -N 127.0.0.1 7890

Ctrl-C (or kill PID) shuts down gracefully: every client gets
`bye: server shutting down`; a second Ctrl-C stops at once.";

/// Lesson 6: lesson 3's server for 10,000 clients on one thread per core.
///
/// Replies `ok` to every line each client sends, until the client closes,
/// exactly as lesson 3 does: lines over 64 KiB are refused, silent clients
/// are disconnected, and a client over --max-clients gets
/// `busy: too many clients, try again later`. Clients are served by one
/// event loop per core (--loops), each a thread with readiness events
/// (--engine mio), or by Tokio tasks (--engine tokio). The first line of
/// output is `listening on ADDR`; then one line per event, tagged with the
/// client's address. SIGINT (Ctrl-C) or SIGTERM
/// stops accepting, tells each client `bye: server shutting down`, waits at
/// most --grace seconds for them to leave, and exits.
#[derive(Parser)]
#[command(name = "06-event-loop", version, after_help = EXAMPLES)]
struct Args {
    /// The address to listen on: IP:PORT, or just IP (port 7890). Port 0
    /// picks a free port.
    #[arg(long, value_name = "ADDR", default_value = event_loop::DEFAULT_ADDR)]
    listen: String,

    /// Which server: `mio`, the event loop written by hand, or `tokio`,
    /// the same server as Tokio tasks.
    #[arg(long, value_enum, default_value_t = EngineArg::Mio)]
    engine: EngineArg,

    /// The most clients served at once; more are told `busy` and closed.
    #[arg(long, value_name = "N", default_value_t = event_loop::DEFAULT_MAX_CLIENTS as u64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_clients: u64,

    /// Seconds a client may stay silent before it is disconnected; 0 for no
    /// limit.
    #[arg(long, value_name = "SECS", default_value_t = event_loop::DEFAULT_IDLE_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(0..=86400))]
    idle_timeout: u64,

    /// On shutdown, the most seconds to wait for clients to read `bye` and
    /// close; those still there then are closed.
    #[arg(long, value_name = "SECS", default_value_t = event_loop::DEFAULT_GRACE.as_secs(),
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    grace: u64,

    /// The most bytes of unfinished lines (received, their newline not yet
    /// come) held for all clients together; a client whose line would need
    /// more is told so and closed.
    #[arg(long, value_name = "BYTES", default_value_t = event_loop::PARTIAL_LINES_BUDGET as u64,
          value_parser = clap::value_parser!(u64).range(1..=(1 << 40)))]
    partial_lines_budget: u64,

    /// How many threads serve clients: event loops (mio), each with its
    /// own clients, or Tokio's worker threads.
    /// Default: one per core. 1 serves everyone from the main thread.
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=event_loop::MAX_LOOPS as u64))]
    loops: Option<u64>,
}

#[derive(Clone, Copy, ValueEnum)]
enum EngineArg {
    Mio,
    Tokio,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = event_loop::Config {
        listen: args.listen,
        engine: match args.engine {
            EngineArg::Mio => event_loop::Engine::Mio,
            EngineArg::Tokio => event_loop::Engine::Tokio,
        },
        max_clients: args.max_clients as usize,
        idle_timeout: (args.idle_timeout > 0).then(|| Duration::from_secs(args.idle_timeout)),
        grace: Duration::from_secs(args.grace),
        partial_lines_budget: usize::try_from(args.partial_lines_budget).unwrap_or(usize::MAX),
        loops: args
            .loops
            .map_or_else(event_loop::default_loops, |n| n as usize),
    };
    common::report(event_loop::run(&config))
}
