//! Lesson 3: a server for many clients.
//!
//! The original lesson's server loops: accept a client; receive from it
//! again and again, replying `ok` to each message, until a receive returns
//! nothing (the client closed); close that client's socket; accept the next.
//! This file follows the chapter:
//!
//! 1. [`serve_one_at_a_time`]: exactly that loop. It serves clients one
//!    after another, and a second client waits until the first leaves. It
//!    stays runnable with `--one-at-a-time`, so you can watch the waiting.
//! 2. [`serve_client`]: one client's conversation, the same in both modes.
//!    The messages are lines, not reads; each line gets `ok`.
//! 3. [`serve_concurrently`]: the fix, a thread per client, with a cap on
//!    how many run at once.
//! 4. [`run`]: listen, then pick one of the two loops.

use std::io::{BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use common::{ClientLines, ReadLine, describe, printable, read_line, say};

// ANCHOR: limits
/// Where the server listens unless told otherwise: loopback, on the
/// original lesson's port.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7890";
/// The port used when `--listen` names only a host.
pub const DEFAULT_PORT: u16 = 7890;
/// The longest line we hold in memory (without its newline). A client that
/// sends more without a newline is told so and disconnected: without a
/// limit, one client that never sends `\n` makes us buffer until memory
/// runs out.
pub const LINE_LIMIT: usize = 64 * 1024;
/// How many clients are served at once unless `--max-clients` says otherwise.
pub const DEFAULT_MAX_CLIENTS: usize = 64;
/// How long a client may stay silent unless `--idle-timeout` says otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one reply may wait for room to be sent. A client that sends
/// lines but never reads the replies fills its receive buffer and then ours;
/// we drop such a client instead of waiting for it forever.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// After refusing an over-long line, how long we read and discard what the
/// client still sends, waiting for it to close (see `common::close_gently`).
pub const LINGER: Duration = Duration::from_secs(2);

/// The reply to every line.
pub const OK_REPLY: &[u8] = b"ok\n";
/// The line a client over the cap gets before we close its connection.
pub const BUSY_REPLY: &[u8] = b"busy: too many clients, try again later\n";
// ANCHOR_END: limits

// ANCHOR: one_at_a_time
/// The original lesson's loop: accept a client, serve it until it leaves,
/// then accept the next.
///
/// While `serve_client` runs, nobody calls `accept()`. A second client can
/// still connect: the kernel completes its handshake by itself and queues
/// the connection (up to the listen backlog), and the lines it sends wait in
/// that connection's receive buffer. But nothing reads them, so it gets no
/// `ok` until the first client has left and the loop comes round to it.
pub fn serve_one_at_a_time(listener: &TcpListener, idle_timeout: Option<Duration>) {
    // exercise 3.1: begin
    loop {
        match listener.accept() {
            Ok((stream, client)) => serve_client(stream, client, idle_timeout),
            Err(err) => {
                // Out of file descriptors for a moment (EMFILE), for
                // example; not a client that gave up while queued: Linux
                // still hands over its connection, and the first read
                // reports the reset (see common::serve_threads). The
                // pause keeps a lasting error from spinning a core.
                say!("could not accept a connection: {}", describe(&err));
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
    // exercise 3.1: end
}
// ANCHOR_END: one_at_a_time

// ANCHOR: serve_client
/// Serves one client until it leaves, and logs how it left.
///
/// Whatever the client does ends here, in one log line: the server goes on
/// to the next client (or, with a thread per client, this thread ends).
pub fn serve_client(stream: TcpStream, client: SocketAddr, idle_timeout: Option<Duration>) {
    say!("[{client}] connected");
    let mut log = ClientLines::new(client);
    let ending = converse(stream, client, idle_timeout, &mut log);
    // One summary line if some of its lines were not logged.
    log.finish();
    match ending {
        Ending::Finished => say!("[{client}] finished"),
        Ending::Idle(limit) => say!("[{client}] idle for {} s, closing", limit.as_secs()),
        Ending::TooLong => say!("[{client}] line longer than {LINE_LIMIT} bytes, closing"),
        Ending::Failed(err) => say!("[{client}] connection error: {}", describe(&err)),
    }
    // The socket was closed inside `converse`, when it went out of scope.
}

/// How a conversation with one client ended.
enum Ending {
    /// The client closed its side, and every line got its reply.
    Finished,
    /// The client sent nothing for this long.
    Idle(Duration),
    /// The client sent a line longer than LINE_LIMIT.
    TooLong,
    /// Reading or writing failed: a reset, or a client that went away
    /// without reading its replies.
    Failed(std::io::Error),
}
// ANCHOR_END: serve_client

// ANCHOR: converse
/// The original lesson's inner loop: receive, reply `ok`, again, until the
/// client closes. The messages are lines, not reads: `read_line` collects
/// bytes until the newline, whatever the reads were. At most
/// `common::LOG_LINES_PER_CLIENT` of one client's lines are logged.
fn converse(
    stream: TcpStream,
    client: SocketAddr,
    idle_timeout: Option<Duration>,
    log: &mut ClientLines,
) -> Ending {
    // The read timeout turns "silent forever" into an error (`None`: no
    // timeout); the write timeout, a client that stops reading.
    // exercise 3.2: begin
    //~ todo!();
    if let Err(err) = stream.set_read_timeout(idle_timeout) {
        return Ending::Failed(err);
    }
    // exercise 3.2: end
    if let Err(err) = stream.set_write_timeout(Some(WRITE_TIMEOUT)) {
        return Ending::Failed(err);
    }
    // The BufReader keeps what came after a newline for the next read_line.
    // exercise 3.3: begin
    let mut lines = BufReader::new(stream);
    loop {
        match read_line(&mut lines, LINE_LIMIT) {
            Ok(ReadLine::Line(line)) => {
                if log.note(&line) {
                    say!("[{client}] {}", printable(&line));
                }
                // Write to the socket under the BufReader (it keeps its bytes).
                if let Err(err) = lines.get_mut().write_all(OK_REPLY) {
                    // The client went away without reading (a reset, or
                    // "broken pipe"), or stopped reading for WRITE_TIMEOUT.
                    return Ending::Failed(err);
                }
            }
            // A read returned 0: the client closed its side. Every line has
            // had its `ok`, nothing is left unread: the drop sends a FIN.
            Ok(ReadLine::Closed) => return Ending::Finished,
            Ok(ReadLine::TooLong) => {
                let mut stream = lines.into_inner();
                let refusal =
                    format!("error: line longer than {LINE_LIMIT} bytes, closing the connection\n");
                let _ = stream.write_all(refusal.as_bytes()); // or it is gone
                // The rest of the long line is unread: a plain close would
                // send a reset that can destroy the refusal unread.
                common::close_gently(stream, LINGER);
                return Ending::TooLong;
            }
            // A timeout (WouldBlock on Unix, TimedOut on Windows): only the
            // idle timeout can cause it here.
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ending::Idle(idle_timeout.unwrap_or_default());
            }
            Err(err) => return Ending::Failed(err),
        }
    }
    // exercise 3.3: end
}
// ANCHOR_END: converse

// ANCHOR: concurrently
/// The fix: a thread per client, at most `max_clients` at once. A client
/// that is slow, silent or chatty now only keeps its own thread busy.
///
/// The accept loop, the cap and the `busy` refusal are in
/// `common::serve_threads`, because lessons 4 and 5 serve their clients the
/// same way; `serve_client` is the same as in the original loop.
pub fn serve_concurrently(
    listener: TcpListener,
    max_clients: usize,
    idle_timeout: Option<Duration>,
) {
    common::serve_threads(listener, max_clients, BUSY_REPLY, move |stream, client| {
        serve_client(stream, client, idle_timeout)
    });
}
// ANCHOR_END: concurrently

// ANCHOR: run
/// How the server runs, from the command line.
pub struct Config {
    /// The address to listen on.
    pub listen: String,
    /// Serve one client at a time, as the original lesson does.
    pub one_at_a_time: bool,
    /// The cap on clients served at once (with a thread per client).
    pub max_clients: usize,
    /// How long a client may stay silent; `None` for no limit.
    pub idle_timeout: Option<Duration>,
}

/// Listens, then serves clients until the process is stopped. Ctrl-C ends
/// the process at once, connections and all: this lesson has no graceful
/// shutdown.
///
/// An error means the server could not start (a bad address, a port in use).
pub fn run(config: &Config) -> anyhow::Result<()> {
    let listener = common::listen(&config.listen, DEFAULT_PORT)?;
    if config.one_at_a_time {
        serve_one_at_a_time(&listener, config.idle_timeout);
    } else {
        serve_concurrently(listener, config.max_clients, config.idle_timeout);
    }
    Ok(())
}
// ANCHOR_END: run
