//! What a line gets back: lesson 3's protocol, as plain functions on
//! buffers. Both engines call them, so the only difference between the two
//! is how the bytes get in and out.
//!
//! Lesson 3 reads lines with `common::read_line`, which *waits* for the
//! rest of a line. An event loop must never wait, so here the bytes that
//! have arrived sit in the connection's input buffer, and [`answer`] takes
//! out the lines that are whole and leaves the rest for the next read.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{ClientLines, count, describe, printable, say};

// ANCHOR: replies
/// The longest line, the reply to a line and the busy line are lesson 3's,
/// so that its clients, tests and scripts work against this server too.
pub use multi_client::{BUSY_REPLY, LINE_LIMIT, OK_REPLY};

/// What every client still connected is told when the server stops.
pub const BYE_REPLY: &[u8] = b"bye: server shutting down\n";

/// The line a client gets before it is disconnected for an over-long line
/// (lesson 3's, word for word).
pub fn too_long_reply() -> String {
    format!("error: line longer than {LINE_LIMIT} bytes, closing the connection\n")
}

/// The line a client gets before it is disconnected because its partial
/// line would pass the server's budget for all partial lines.
pub const OVER_BUDGET_REPLY: &[u8] =
    b"error: the server holds too many unfinished lines, closing the connection\n";
// ANCHOR_END: replies

// ANCHOR: answered
/// What [`answer`] did with the bytes it was given.
#[derive(Debug, PartialEq, Eq)]
pub struct Answered {
    /// How many lines got their `ok`.
    pub lines: usize,
    /// A line was longer than [`LINE_LIMIT`]: its refusal is in the output,
    /// and the connection must now be closed (gently: the rest of that line
    /// is still coming).
    pub too_long: bool,
}
// ANCHOR_END: answered

// ANCHOR: answer
/// Answers every whole line at the front of `input` (the bytes received and
/// not yet used): each is logged, removed, and gets `ok` in `output`. What
/// is left is the start of a line whose newline has not arrived yet; once
/// the client has `ended` its side, that is a last line, answered too.
/// Lines are cut as lesson 3's `common::read_line` cuts them: without the
/// `\n`, and without a `\r` just before it (`nc -C`, telnet).
pub fn answer(
    input: &mut Vec<u8>,
    ended: bool,
    log: &mut ClientLines,
    output: &mut Vec<u8>,
) -> Answered {
    let mut lines = 0;
    // Where the unused bytes start. The used ones are removed once at the
    // end: removing each line as it is answered would move the rest of the
    // buffer once per line.
    let mut start = 0;
    let mut too_long = false;
    loop {
        let rest = &input[start..];
        let newline = rest.iter().position(|&byte| byte == b'\n');
        // The limit is on the line without its newline.
        if newline.unwrap_or(rest.len()) > LINE_LIMIT {
            too_long = true;
            break;
        }
        match newline {
            Some(newline) => {
                let mut line = &rest[..newline];
                if let [before @ .., b'\r'] = line {
                    line = before;
                }
                answer_line(line, log, output);
                lines += 1;
                start += newline + 1;
            }
            None if ended && !rest.is_empty() => {
                // What lesson 3's read_line returns at the end of input: the
                // bytes as they are (no newline to cut, so no `\r` either).
                answer_line(rest, log, output);
                lines += 1;
                start = input.len();
            }
            None => break,
        }
    }
    if too_long {
        output.extend_from_slice(too_long_reply().as_bytes());
        input.clear();
    } else {
        input.drain(..start);
    }
    Answered { lines, too_long }
}
// ANCHOR_END: answer

/// Logs `line`, as long as `log` says so (at most LOG_LINES_PER_CLIENT
/// of one client's lines), and puts its `ok` in `output`.
fn answer_line(line: &[u8], log: &mut ClientLines, output: &mut Vec<u8>) {
    if log.note(line) {
        say!("[{}] {}", log.client(), printable(line));
    }
    output.extend_from_slice(OK_REPLY);
}

// ANCHOR: ending
/// How a connection ended: one log line per client, as in lesson 3, plus the
/// two endings this lesson adds.
#[derive(Debug)]
pub enum Ending {
    /// The client closed its side, and every line got its reply.
    Finished,
    /// The client sent nothing for this long.
    Idle(Duration),
    /// The client sent a line longer than LINE_LIMIT.
    TooLong,
    /// Reading or writing failed: a reset, for example.
    Failed(io::Error),
    /// The client sent lines but did not read the replies, and this many
    /// bytes of them were waiting: more than its bound.
    NotReading(usize),
    /// The server is shutting down: the client was told `bye` and closed.
    ToldBye,
    /// The client's partial line, this many bytes, would have passed the
    /// budget for all partial lines: it was refused and closed.
    OverBudget(usize),
}

impl Ending {
    /// Logs this ending for `client`, as one line.
    pub fn log(&self, client: SocketAddr) {
        match self {
            Ending::Finished => say!("[{client}] finished"),
            Ending::Idle(limit) => say!("[{client}] idle for {} s, closing", limit.as_secs()),
            Ending::TooLong => say!("[{client}] line longer than {LINE_LIMIT} bytes, closing"),
            Ending::Failed(err) => say!("[{client}] connection error: {}", describe(err)),
            Ending::NotReading(waiting) => {
                say!(
                    "[{client}] not reading its replies ({} waiting), disconnected",
                    count(*waiting as u64, "byte")
                )
            }
            Ending::ToldBye => say!("[{client}] told bye, closed"),
            Ending::OverBudget(bytes) => say!(
                "[{client}] a partial line of {} over the budget for unfinished lines, closing",
                count(*bytes as u64, "byte")
            ),
        }
    }
}

/// Logs a client turned away because `max_clients` are connected
/// (lesson 3's line, word for word).
pub fn log_busy(client: SocketAddr, max_clients: usize) {
    say!("[{client}] busy: already serving the most clients allowed ({max_clients}), refused");
}
// ANCHOR_END: ending

// ANCHOR: budget
/// The budget for partial lines, shared by every connection: the bytes of
/// lines whose newline has not come yet, held for all clients together.
/// Cloning it gives another handle on the same budget.
#[derive(Clone)]
pub struct PartialLines {
    held: Arc<AtomicUsize>,
    budget: usize,
}

/// One connection's part of the [`PartialLines`] budget. Dropping it (when
/// the connection ends, however it ends) gives its bytes back.
pub struct PartialShare {
    lines: PartialLines,
    held: usize,
}

impl PartialLines {
    pub fn new(budget: usize) -> PartialLines {
        PartialLines {
            held: Arc::new(AtomicUsize::new(0)),
            budget,
        }
    }

    /// A new connection's share: nothing held yet.
    pub fn share(&self) -> PartialShare {
        PartialShare {
            lines: self.clone(),
            held: 0,
        }
    }
}

impl PartialShare {
    /// The connection now holds `bytes` of a partial line. Less than before
    /// always fits (the rest goes back to the budget); more fits only if
    /// what is left of the budget covers the growth. Returns false, holding
    /// what it held before, when it does not.
    pub fn hold(&mut self, bytes: usize) -> bool {
        let held = &self.lines.held;
        if bytes <= self.held {
            held.fetch_sub(self.held - bytes, Ordering::SeqCst);
            self.held = bytes;
            return true;
        }
        let more = bytes - self.held;
        let budget = self.lines.budget;
        // Check and add in one atomic step: if connections are ever served
        // from more than one thread, two must not both take the rest.
        let taken = held.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |total| {
            total.checked_add(more).filter(|&total| total <= budget)
        });
        if taken.is_ok() {
            self.held = bytes;
        }
        taken.is_ok()
    }
}

impl Drop for PartialShare {
    fn drop(&mut self) {
        self.lines.held.fetch_sub(self.held, Ordering::SeqCst);
    }
}
// ANCHOR_END: budget

// ANCHOR: summary
/// What a graceful shutdown did, for its one summary line.
#[derive(Debug, Default)]
pub struct ShutdownTally {
    /// Clients that were connected when the signal came, and were told `bye`.
    pub told: usize,
    /// Lines that had already arrived and got their `ok` after the signal.
    pub answered: usize,
    /// Clients still connected when the grace period ran out, closed then.
    pub cut_off: usize,
}

impl ShutdownTally {
    /// Adds another event loop's tally to this one (`--loops`).
    pub fn add(&mut self, other: &ShutdownTally) {
        self.told += other.told;
        self.answered += other.answered;
        self.cut_off += other.cut_off;
    }

    /// `shut down: 812 clients told, 37 lines answered during the grace
    /// period`, and how many were cut off, if any.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "shut down: {} told, {} answered during the grace period",
            count(self.told as u64, "client"),
            count(self.answered as u64, "line")
        );
        if self.cut_off > 0 {
            line.push_str(&format!(
                ", {} still connected at its end",
                count(self.cut_off as u64, "client")
            ));
        }
        line
    }
}
// ANCHOR_END: summary

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 50000))
    }

    /// Runs `answer` on `bytes`, returning what it answered, the output,
    /// and the bytes left over.
    fn run(bytes: &[u8], ended: bool) -> (Answered, Vec<u8>, Vec<u8>) {
        let mut input = bytes.to_vec();
        let mut output = Vec::new();
        let answered = answer(
            &mut input,
            ended,
            &mut ClientLines::new(client()),
            &mut output,
        );
        (answered, output, input)
    }

    #[test]
    fn whole_lines_get_ok_and_a_partial_line_waits() {
        let (answered, output, left) = run(b"one\ntwo\r\nthr", false);
        assert_eq!(answered.lines, 2);
        assert_eq!(output, b"ok\nok\n");
        assert_eq!(
            left, b"thr",
            "the start of the third line waits for its newline"
        );
    }

    #[test]
    fn a_last_line_ended_by_end_of_input_counts() {
        let (answered, output, left) = run(b"last", true);
        assert_eq!(
            (answered.lines, output, left),
            (1, b"ok\n".to_vec(), vec![])
        );
        let (answered, output, _) = run(b"", true);
        assert_eq!((answered.lines, output), (0, vec![]));
    }

    #[test]
    fn the_limit_is_the_line_without_its_newline() {
        let mut line = vec![b'x'; LINE_LIMIT];
        line.push(b'\n');
        assert_eq!(run(&line, false).0.lines, 1);
        let mut long = vec![b'x'; LINE_LIMIT + 1];
        assert!(
            run(&long, false).0.too_long,
            "no newline yet, and already too long"
        );
        long.push(b'\n');
        let (answered, output, left) = run(&long, false);
        assert!(answered.too_long);
        assert_eq!(output, too_long_reply().as_bytes());
        assert!(left.is_empty());
    }

    #[test]
    fn partial_lines_share_one_budget_and_give_it_back() {
        let lines = PartialLines::new(100);
        let mut a = lines.share();
        let mut b = lines.share();
        assert!(a.hold(60));
        assert!(!b.hold(41), "60 of 100 held: 41 more do not fit");
        assert!(b.hold(40));
        assert!(a.hold(10), "less than before always fits");
        assert!(b.hold(90), "a's 50 bytes given back fit b's growth");
        drop(b);
        assert!(a.hold(100), "b's share is given back when it is dropped");
    }

    #[test]
    fn the_summary_reads_as_a_sentence() {
        let tally = ShutdownTally {
            told: 812,
            answered: 1,
            cut_off: 0,
        };
        assert_eq!(
            tally.summary(),
            "shut down: 812 clients told, 1 line answered during the grace period"
        );
    }
}
