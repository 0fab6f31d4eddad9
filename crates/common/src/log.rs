//! A server's log, which must never stop the service.
//!
//! Writing to standard output blocks once the pipe or terminal behind it is
//! full and nobody reads: a terminal paused with Ctrl-S, `server | less`
//! waiting for a key, a stalled log collector. A server that logs from its
//! client threads would then freeze, one thread after another, the accept
//! loop included. Escaping makes it worse: one control byte from a peer
//! prints as six.
//!
//! So once a server starts listening ([`crate::announce`] switches it on),
//! each line goes into a bounded queue that one writer thread empties. A
//! line that finds the queue full is dropped and counted, never waited for;
//! when the writer gets going again it says how many were lost. And one
//! line is at most [`LOG_LINE_LIMIT`] bytes: a peer's 64 KiB of escapes is
//! cut, with a marker saying how much.
//!
//! A client is different: what it prints is its work (the reply it was
//! asked for), so until a program listens, [`crate::say!`] writes directly
//! and waits for the reader.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread;
use std::time::{Duration, Instant};

// ANCHOR: limits
/// How many lines may wait for the writer before new ones are dropped.
pub const LOG_QUEUE_LINES: usize = 4096;
/// The most bytes of one log line; the rest is cut, with a marker.
pub const LOG_LINE_LIMIT: usize = 4096;
/// After writing a batch, how long the writer lets lines gather before the
/// next one. A line may show this much later; no line waits longer.
pub const LOG_BATCH_PAUSE: Duration = Duration::from_millis(2);
/// At exit, how long we wait for the writer to get the queued lines out.
pub const LOG_EXIT_WAIT: Duration = Duration::from_secs(2);
/// The most of one client's lines a server logs (lessons 3 and 6 log each
/// line a client sends). Past this, one line says the rest are not logged,
/// and the client's end brings one summary line: without a bound, one
/// client sending short lines grew a log file by 9 to 16 MB/s, nine times
/// what it sent. So one client makes at most this many lines plus two, each
/// at most LOG_LINE_LIMIT bytes, besides its `connected` and ending lines.
pub const LOG_LINES_PER_CLIENT: usize = 1000;
// ANCHOR_END: limits

struct Queue {
    sender: SyncSender<String>,
    /// Lines handed to the queue and not yet written.
    waiting: AtomicUsize,
    /// Lines dropped since the writer last said so.
    dropped: AtomicU64,
}

static QUEUE: OnceLock<Queue> = OnceLock::new();

/// From now on, [`crate::say!`] never waits for standard output: lines go
/// through the bounded queue. Called by [`crate::announce`] right after it
/// has written the `listening on` line itself, so every server logs this way
/// from then on. Calling it again does nothing.
pub fn log_without_blocking() {
    QUEUE.get_or_init(|| {
        let (sender, lines) = mpsc::sync_channel(LOG_QUEUE_LINES);
        // If the thread cannot start, lines stay queued and are then
        // dropped and counted: the service goes on.
        let _ = thread::Builder::new().name("log writer".into()).spawn(|| {
            // The stop signals never run their handler here: see
            // hold_stop_signals.
            hold_stop_signals();
            write_lines(lines)
        });
        Queue {
            sender,
            waiting: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
        }
    });
}

/// From now on, SIGINT and SIGTERM wait (they stay pending) instead of
/// reaching this thread, and every thread it starts from now on. The kernel
/// gives a signal sent to the process to a thread that does not block it,
/// and the handler runs on that thread.
///
/// - The log writer calls this first, and keeps them blocked. A handler
///   run on its thread, in its pause between batches, woke lesson 6's event
///   loop late (signal-hook's handler writes a byte the loop waits for): the
///   loop, thawed with a signal and a burst of lines both waiting, read the
///   whole burst before it saw the signal, and its shutdown found nothing
///   left to answer.
/// - A server that will catch them calls this before `listening on`, and
///   [`release_stop_signals`] once its handlers are in place: a signal that
///   comes in between, from whoever read that line, then shuts the server
///   down gracefully instead of killing it the default way.
pub fn hold_stop_signals() {
    stop_signals(true);
}

/// The stop signals reach this thread again (and the threads it starts
/// from now on); one that came while they were held arrives now.
pub fn release_stop_signals() {
    stop_signals(false);
}

fn stop_signals(hold: bool) {
    #[cfg(unix)]
    {
        use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
        let mut stop = SigSet::empty();
        stop.add(Signal::SIGINT);
        stop.add(Signal::SIGTERM);
        let how = if hold {
            SigmaskHow::SIG_BLOCK
        } else {
            SigmaskHow::SIG_UNBLOCK
        };
        // If this fails, the mask stays as it was: a signal may come
        // late, or, before the handlers, end the server the default way.
        let _ = pthread_sigmask(how, Some(&stop), None);
    }
    #[cfg(not(unix))]
    let _ = hold;
}

/// The writer thread: the only one that may wait for standard output.
///
/// It writes in batches: every line queued by the time it wakes, under one
/// lock and one flush, then a pause of [`LOG_BATCH_PAUSE`]. Woken for each
/// line instead, it would cost a busy server a system call (a futex wake)
/// per line on the server's own thread: lesson 6's event loop, which logs
/// every line on its one thread, measured half its speed that way.
fn write_lines(lines: Receiver<String>) {
    while let Ok(first) = lines.recv() {
        let mut out = io::stdout().lock();
        let mut written = 0;
        for line in std::iter::once(first).chain(lines.try_iter().take(LOG_QUEUE_LINES)) {
            let _ = out.write_all(line.as_bytes());
            written += 1;
        }
        let _ = out.flush();
        if let Some(queue) = QUEUE.get() {
            queue.waiting.fetch_sub(written, Ordering::SeqCst);
            let dropped = queue.dropped.swap(0, Ordering::SeqCst);
            if dropped > 0 {
                let _ = writeln!(
                    out,
                    "... {dropped} log line{} dropped (the log was not being read fast enough)",
                    if dropped == 1 { "" } else { "s" }
                );
                let _ = out.flush();
            }
        }
        drop(out);
        thread::sleep(LOG_BATCH_PAUSE);
    }
}

/// Writes one line: through the queue once a server listens, or else
/// straight to standard output (see the module's notes).
pub(crate) fn write_line(line: std::fmt::Arguments) {
    let Some(queue) = QUEUE.get() else {
        let mut out = io::stdout().lock();
        let _ = out.write_fmt(line);
        let _ = out.write_all(b"\n");
        let _ = out.flush();
        return;
    };
    let mut text = String::new();
    let _ = text.write_fmt(line);
    let mut text = cut(text, LOG_LINE_LIMIT);
    text.push('\n');
    queue.waiting.fetch_add(1, Ordering::SeqCst);
    match queue.sender.try_send(text) {
        Ok(()) => {}
        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
            queue.waiting.fetch_sub(1, Ordering::SeqCst);
            queue.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// `text` cut to at most `limit` bytes (on a character boundary), with a
/// marker saying how many bytes were left out.
fn cut(mut text: String, limit: usize) -> String {
    if text.len() <= limit {
        return text;
    }
    let mut at = limit;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let left_out = text.len() - at;
    text.truncate(at);
    text.push_str(&format!(" ... [cut: {left_out} more bytes]"));
    text
}

/// The log of one client's lines, bounded by [`LOG_LINES_PER_CLIENT`].
pub struct ClientLines {
    client: SocketAddr,
    /// Lines received from this client, logged or not.
    lines: u64,
    /// Their bytes, without the newlines.
    bytes: u64,
}

impl ClientLines {
    pub fn new(client: SocketAddr) -> ClientLines {
        ClientLines {
            client,
            lines: 0,
            bytes: 0,
        }
    }

    /// The client whose lines these are.
    pub fn client(&self) -> SocketAddr {
        self.client
    }

    /// Counts one line the client sent, and says whether to log it: yes
    /// for the first [`LOG_LINES_PER_CLIENT`]; the next one is replaced by
    /// a note that the rest are not logged, and the others are only counted.
    /// The caller logs the line, escaped, when this returns true.
    pub fn note(&mut self, line: &[u8]) -> bool {
        self.lines += 1;
        self.bytes += line.len() as u64;
        let limit = LOG_LINES_PER_CLIENT as u64;
        if self.lines == limit + 1 {
            crate::say!(
                "[{}] more than {LOG_LINES_PER_CLIENT} lines: the rest of this client's lines are not logged",
                self.client
            );
        }
        self.lines <= limit
    }

    /// At the client's end: one summary line, if some lines were not
    /// logged (a client under the bound has every line in the log already).
    pub fn finish(&self) {
        let limit = LOG_LINES_PER_CLIENT as u64;
        if self.lines > limit {
            crate::say!(
                "[{}] {} received ({}), {} not logged",
                self.client,
                crate::count(self.lines, "line"),
                crate::count(self.bytes, "byte"),
                self.lines - limit
            );
        }
    }
}

/// Waits, at most [`LOG_EXIT_WAIT`], until every queued line is written.
/// Called before a program exits, so its last lines are not lost.
pub fn flush_log() {
    let Some(queue) = QUEUE.get() else {
        return;
    };
    let deadline = Instant::now() + LOG_EXIT_WAIT;
    while queue.waiting.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn a_long_line_is_cut_on_a_character_boundary_with_a_marker() {
        assert_eq!(cut("short".to_string(), 10), "short");
        assert_eq!(cut("abcdef".to_string(), 4), "abcd ... [cut: 2 more bytes]");
        // `你` is three bytes: a cut inside it moves back before it.
        assert_eq!(cut("a你好".to_string(), 2), "a ... [cut: 6 more bytes]");
    }
}
