//! One client's connection, as the event loop holds it between events:
//! its socket, its two buffers, and the steps of reading, writing and
//! closing it. The loop in `mod.rs` decides *when* each step runs; this
//! file says what each step does.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use common::{ClientLines, Slot};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::protocol::{Ending, OVER_BUDGET_REPLY, PartialShare, answer};
use crate::{BUFFER_KEEP, LINGER, OUTPUT_LIMIT, READS_PER_TURN};

// ANCHOR: connection
/// One client, as the event loop holds it between events: everything a
/// thread in lesson 3 kept on its stack is here, in the table.
pub(super) struct Connection {
    pub(super) stream: TcpStream,
    pub(super) client: SocketAddr,
    /// Bytes received and not yet answered: the start of a line whose
    /// newline has not come. At most LINE_LIMIT + READ_CHUNK bytes.
    input: Vec<u8>,
    /// Replies the kernel has not taken yet. At most OUTPUT_LIMIT bytes.
    pub(super) output: Vec<u8>,
    /// Whether we asked mio for writable events (only while output waits:
    /// a socket with room in its send buffer is writable almost always, and
    /// asking for that all the time would wake us for nothing).
    writable_wanted: bool,
    /// The client closed its side (a read returned 0).
    pub(super) ended: bool,
    /// When the client last sent something, for the idle timeout.
    heard: Instant,
    /// Set once we have said our last word and only wait to close.
    pub(super) closing: Option<Closing>,
    /// How many of its lines have been logged (the log of one client is
    /// bounded); `mod.rs` logs the summary when the connection closes.
    pub(super) log: ClientLines,
    /// Its part of the server's budget for partial lines: `input`'s length.
    partial: PartialShare,
    /// Its place under the cap on clients, given back when it is dropped.
    _slot: Slot,
}
// ANCHOR_END: connection

impl Connection {
    pub(super) fn new(
        stream: TcpStream,
        client: SocketAddr,
        now: Instant,
        partial: PartialShare,
        slot: Slot,
    ) -> Connection {
        Connection {
            stream,
            client,
            input: Vec::new(),
            output: Vec::new(),
            writable_wanted: false,
            ended: false,
            heard: now,
            closing: None,
            log: ClientLines::new(client),
            partial,
            _slot: slot,
        }
    }

    /// One turn for this connection: read what has arrived (if `readable`),
    /// write what fits, and take the next step of closing.
    pub(super) fn turn(&mut self, readable: bool, chunk: &mut [u8], now: Instant) -> TurnOutcome {
        let mut read_again = false;
        if readable && !self.ended {
            match self.receive(chunk, now) {
                Ok(received) => read_again = received.read_again,
                Err(ending) => return TurnOutcome::Close(ending),
            }
            self.keep_within_budget(now);
        }
        if let Err(ending) = self.flush() {
            return TurnOutcome::Close(ending);
        }
        match self.step_closing() {
            Some(ending) => TurnOutcome::Close(ending),
            None => TurnOutcome::Open { read_again },
        }
    }

    // ANCHOR: receive
    /// Reads until the kernel has nothing more for us (`WouldBlock`), at most
    /// READS_PER_TURN times, and answers the whole lines. Returns how many
    /// lines were answered, or the ending if the connection must close.
    pub(super) fn receive(&mut self, chunk: &mut [u8], now: Instant) -> Result<Received, Ending> {
        let mut received = Received::default();
        let mut drained = false;
        // exercise 6.1: begin
        for _ in 0..READS_PER_TURN {
            let n = match self.stream.read(chunk) {
                // End of input: the client closed its side.
                Ok(0) => {
                    self.ended = true;
                    break;
                }
                Ok(n) => n,
                // Nothing more for now. Not an error: mio will tell us when
                // more arrives.
                Err(err) if err.kind() == ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                Err(err) => return Err(Ending::Failed(err)),
            };
            self.heard = now;
            if self.closing.is_some() {
                // We have said our last word: read only to discard.
                continue;
            }
            self.input.extend_from_slice(&chunk[..n]);
            let answered = answer(&mut self.input, false, &mut self.log, &mut self.output);
            received.lines += answered.lines;
            if answered.too_long {
                self.close_after_output(Ending::TooLong, now + LINGER);
                continue;
            }
            if self.output.len() > OUTPUT_LIMIT {
                // Give the kernel a chance to take the replies first: only a
                // client that really is not reading is dropped.
                self.flush()?;
                if self.output.len() > OUTPUT_LIMIT {
                    return Err(Ending::NotReading(self.output.len()));
                }
            }
        }
        // exercise 6.1: end
        if self.ended && self.closing.is_none() {
            // A last line ended by the end of input still gets its `ok`.
            let answered = answer(&mut self.input, true, &mut self.log, &mut self.output);
            received.lines += answered.lines;
            self.close_after_output(Ending::Finished, now + LINGER);
        }
        // The budget ran out before WouldBlock: more may be waiting.
        received.read_again = !self.ended && !drained;
        if self.input.is_empty() && self.input.capacity() > BUFFER_KEEP {
            self.input = Vec::new();
        }
        Ok(received)
    }
    // ANCHOR_END: receive

    // ANCHOR: budget
    /// Takes from the server's budget for partial lines what `input` now
    /// holds (or gives back what it no longer holds). A connection whose
    /// partial line would need more than is left is refused: the error
    /// line after the replies already due, then a gentle close, as for a
    /// line over LINE_LIMIT.
    fn keep_within_budget(&mut self, now: Instant) {
        if self.closing.is_some() || self.partial.hold(self.input.len()) {
            return;
        }
        let needed = self.input.len();
        self.input = Vec::new();
        self.partial.hold(0);
        self.output.extend_from_slice(OVER_BUDGET_REPLY);
        self.close_after_output(Ending::OverBudget(needed), now + LINGER);
    }
    // ANCHOR_END: budget

    // ANCHOR: flush
    /// Writes as much of the waiting output as the kernel takes now. A
    /// write may take only part of it (the send buffer is nearly full):
    /// the rest stays, and is written when mio says the socket is writable.
    fn flush(&mut self) -> Result<(), Ending> {
        // exercise 6.2: begin
        while !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(0) => return Err(Ending::Failed(ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.output.drain(..n);
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                Err(err) => return Err(Ending::Failed(err)),
            }
        }
        // exercise 6.2: end
        if self.output.is_empty() && self.output.capacity() > BUFFER_KEEP {
            self.output = Vec::new();
        }
        Ok(())
    }

    /// Asks mio for writable events only while output is waiting.
    pub(super) fn update_interest(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        // exercise 6.2: begin
        let wanted = !self.output.is_empty();
        if wanted != self.writable_wanted {
            let interest = if wanted {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry.reregister(&mut self.stream, token, interest)?;
            self.writable_wanted = wanted;
        }
        // exercise 6.2: end
        Ok(())
    }
    // ANCHOR_END: flush

    // ANCHOR: closing
    /// From now on, the connection only sends what is in its output, then
    /// closes, by `by` at the latest.
    pub(super) fn close_after_output(&mut self, ending: Ending, by: Instant) {
        self.closing = Some(Closing {
            ending,
            fin_sent: false,
            by,
        });
    }

    /// The next step of a closing connection, once its output is all sent:
    /// if the client has closed too, close now (nothing is unread, so this
    /// is a FIN); if not, send FIN and wait for the client's.
    fn step_closing(&mut self) -> Option<Ending> {
        let closing = self.closing.as_mut()?;
        if !self.output.is_empty() {
            return None;
        }
        if self.ended {
            return self.closing.take().map(|closing| closing.ending);
        }
        if !closing.fin_sent {
            // If this fails, the client is gone: the next read says so.
            let _ = self.stream.shutdown(Shutdown::Write);
            closing.fin_sent = true;
        }
        None
    }

    /// When this connection must be closed unless something happens first.
    pub(super) fn deadline(&self, idle_timeout: Option<Duration>) -> Option<Instant> {
        match &self.closing {
            Some(closing) => Some(closing.by),
            None => idle_timeout.map(|idle| self.heard + idle),
        }
    }
    // ANCHOR_END: closing
}

// ANCHOR: closing_state
/// A connection on its way out: its last replies are being sent.
pub(super) struct Closing {
    /// What the log will say when it is closed.
    pub(super) ending: Ending,
    /// Whether we have sent FIN (shutdown of our writing side) after the
    /// last reply. Then we read and discard until the client closes too,
    /// so that nothing is left unread: closing with unread bytes would send
    /// a reset, which can destroy the last reply before it is read.
    fin_sent: bool,
    /// Closed then at the latest, whatever the client does.
    pub(super) by: Instant,
}
// ANCHOR_END: closing_state

/// What a turn left a connection in.
pub(super) enum TurnOutcome {
    /// Still open; `read_again` says the read budget ran out before
    /// WouldBlock, so more may be waiting.
    Open { read_again: bool },
    /// To be closed, and logged with this ending.
    Close(Ending),
}

/// What one call to `receive` found.
#[derive(Default)]
pub(super) struct Received {
    /// How many lines got their `ok`.
    pub(super) lines: usize,
    /// The read budget ran out before WouldBlock: read again next turn.
    read_again: bool,
}
