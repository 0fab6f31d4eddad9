//! Lesson 6: ten thousand clients on one thread, and a server that shuts
//! down cleanly.
//!
//! Lesson 3 gives each client a thread, and caps them at 64. This lesson
//! serves lesson 3's protocol exactly (`ok` to each line, the 64 KiB limit,
//! the idle timeout, `busy` over the cap) to 10,000 clients and more, in two
//! ways the chapter compares:
//!
//! 1. [`protocol`]: what a line gets back, as plain functions on buffers
//!    that both engines call.
//! 2. [`by_hand`] (`--engine mio`, the default): one thread, non-blocking
//!    sockets, and readiness events from the kernel (epoll on Linux, kqueue
//!    on macOS) through `mio`. It shows what a runtime hides: the table of
//!    connections, their buffers, `WouldBlock`, the timers.
//! 3. [`with_tokio`] (`--engine tokio`): the same server as Tokio tasks.
//! 4. [`run`]: listen, then hand the listener to one engine. Both stop
//!    gracefully on SIGINT or SIGTERM, and both use one thread per core
//!    unless `--loops` says otherwise.

pub mod by_hand;
pub mod protocol;
pub mod with_tokio;

use std::time::Duration;

use common::say;

// ANCHOR: limits
/// Where the server listens unless told otherwise: lesson 3's address, so
/// lesson 3's clients find it.
pub const DEFAULT_ADDR: &str = multi_client::DEFAULT_ADDR;
/// The port used when `--listen` names only a host.
pub const DEFAULT_PORT: u16 = multi_client::DEFAULT_PORT;
/// How many clients are served at once unless `--max-clients` says
/// otherwise. A connection costs a few kilobytes here, not a thread.
pub const DEFAULT_MAX_CLIENTS: usize = 10_000;
/// How long a client may stay silent unless `--idle-timeout` says otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = multi_client::DEFAULT_IDLE_TIMEOUT;
/// How long a shutdown waits for clients to take their `bye` and close,
/// unless `--grace` says otherwise.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);
/// After refusing an over-long line, how long we discard what the client
/// still sends, waiting for it to close (lesson 3's `LINGER`).
pub const LINGER: Duration = multi_client::LINGER;
/// The most bytes read from a socket in one call. One buffer of this size
/// serves every connection of the event loop; only the unfinished end of
/// a line is kept per connection.
pub const READ_CHUNK: usize = 16 * 1024;
/// The most reads from one socket in one go. A client that sends without
/// pause would otherwise keep the one thread reading it, and every other
/// client waiting: past this, it waits for the next turn like everyone else.
pub const READS_PER_TURN: usize = 16;
/// The most reply bytes that may wait for a client to read them. A client
/// that sends lines and never reads its `ok`s would otherwise make us hold
/// its replies until memory runs out; past this, it is disconnected.
pub const OUTPUT_LIMIT: usize = 64 * 1024;
/// What a connection's buffers keep when they are empty. A buffer that grew
/// for a burst is given back, so 10,000 quiet connections cost 10,000 small
/// buffers, not 10,000 large ones.
pub const BUFFER_KEEP: usize = 1024;
/// The most bytes of partial lines (received, their newline not yet) the
/// server holds for all its connections together, unless
/// `--partial-lines-budget` says otherwise. Each connection's partial line
/// is bounded by LINE_LIMIT, but 10,000 connections each holding one near
/// the limit held 631 MiB; a connection whose partial line would need more
/// than is left is refused with an error line and closed.
pub const PARTIAL_LINES_BUDGET: usize = 64 * 1024 * 1024;
/// Out of file descriptors, how long we stop accepting (unless a connection
/// closes first, which frees one). Retrying at once would spin a core.
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Open descriptors the server needs besides its clients: the listener,
/// the epoll instance, the signal socket pair, standard streams, a few spare.
pub const SPARE_DESCRIPTORS: u64 = 64;
// ANCHOR_END: limits

// ANCHOR: config
/// Which of the two servers runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Readiness events, written by hand with mio: one thread per loop.
    Mio,
    /// Tokio tasks.
    Tokio,
}

/// How the server runs, from the command line.
#[derive(Clone, Debug)]
pub struct Config {
    /// The address to listen on.
    pub listen: String,
    pub engine: Engine,
    /// The cap on clients served at once.
    pub max_clients: usize,
    /// How long a client may stay silent; `None` for no limit.
    pub idle_timeout: Option<Duration>,
    /// How long a shutdown waits for clients to leave.
    pub grace: Duration,
    /// The most bytes of partial lines held for all connections together.
    pub partial_lines_budget: usize,
    /// How many event loops (mio), or Tokio worker threads, serve clients:
    /// each is a thread. 1 runs everything on the main thread.
    pub loops: usize,
}
// ANCHOR_END: config

// ANCHOR: run
/// Listens, then serves clients with the chosen engine until SIGINT or
/// SIGTERM, and shuts down gracefully (see the engines). A second signal
/// during the shutdown is an error: the server exits at once.
///
/// An error also means the server could not start (a bad address, a port
/// in use).
pub fn run(config: &Config) -> anyhow::Result<()> {
    // Whoever reads `listening on` may send SIGINT at once, before the
    // engine watches for it, and a signal with no handler kills the server
    // without a word to its clients. So the stop signals wait from here on
    // (blocked on this thread and every thread it starts) until the engine
    // has its handlers in place, and releases them.
    common::hold_stop_signals();
    let listener = common::listen(&config.listen, DEFAULT_PORT)?;
    raise_open_file_limit(config.max_clients as u64 + SPARE_DESCRIPTORS);
    match config.engine {
        Engine::Mio => by_hand::serve(listener, config),
        Engine::Tokio => with_tokio::serve(listener, config),
    }
}

/// Every connection is an open file. The usual soft limit, 1024, would stop
/// us near a thousand clients; the hard limit (the most an unprivileged
/// process may ask for) is often far higher. Raise the soft limit towards
/// `wanted`, and say so when the hard limit is lower.
fn raise_open_file_limit(wanted: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= wanted {
        return;
    }
    let hard = limit.maximum.unwrap_or(u64::MAX);
    let new = wanted.min(hard);
    let raised = rustix::process::Rlimit {
        current: Some(new),
        maximum: limit.maximum,
    };
    if new <= current || setrlimit(Resource::Nofile, raised).is_err() {
        say!(
            "note: at most {current} open files allowed (ulimit -n); fewer than --max-clients can connect"
        );
    } else if new < wanted {
        say!(
            "note: at most {new} open files allowed (ulimit -Hn); fewer than --max-clients can connect"
        );
    }
}
// ANCHOR_END: run

// ANCHOR: loops
/// How many event loops (or Tokio worker threads) serve clients unless
/// `--loops` says otherwise: one per core, since one loop is one thread and
/// uses one core (one, if the number of cores cannot be learned).
pub fn default_loops() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| cores.get())
}

/// The most loops `--loops` may ask for: more loops than cores only take
/// turns on them.
pub const MAX_LOOPS: usize = 256;
// ANCHOR_END: loops
