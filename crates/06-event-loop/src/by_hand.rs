//! The event loop by hand: one thread, non-blocking sockets, and readiness
//! events from the kernel through `mio` (epoll on Linux, kqueue on macOS).
//!
//! A blocking `read()` says "wake me when there are bytes". A thread can
//! only wait for one socket that way, so lesson 3 needs a thread per
//! client. Here every socket is non-blocking: a `read()` that finds nothing
//! fails at once with `WouldBlock`. Instead of waiting in `read()`, the one
//! thread waits in `poll()` for *all* the sockets at once, and the kernel
//! says which are ready. One turn of the loop:
//!
//! 1. wait for events (or for the next deadline);
//! 2. for each ready socket: read until `WouldBlock`, answer the whole
//!    lines, write what fits, remember the rest;
//! 3. close the connections whose deadline has passed.
//!
//! mio's events are *edge-triggered*: it reports a socket when it becomes
//! ready, not again while it stays ready. So a read must go on until
//! `WouldBlock`, or the bytes left behind would never be reported again.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown as Direction, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use common::{describe, say};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::protocol::{BUSY_REPLY, BYE_REPLY, Ending, Shutdown, answer, log_busy, plural};
use crate::{ACCEPT_PAUSE, BUFFER_KEEP, Config, LINGER, OUTPUT_LIMIT, READ_CHUNK, READS_PER_TURN};

// ANCHOR: tokens
/// mio tells sockets apart by a number we choose when we register them.
const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);
/// Clients get 2, 3, 4... Numbers are never reused, so an old timer entry
/// can never be mistaken for a newer connection.
const FIRST_CLIENT: usize = 2;
/// The most events taken from the kernel in one wait; more wait for the
/// next turn.
const EVENTS_PER_TURN: usize = 1024;
// ANCHOR_END: tokens

// ANCHOR: connection
/// One client, as the event loop holds it between events: everything a
/// thread in lesson 3 kept on its stack is here, in the table.
struct Connection {
    stream: TcpStream,
    client: SocketAddr,
    /// Bytes received and not yet answered: the start of a line whose
    /// newline has not come. At most LINE_LIMIT + READ_CHUNK bytes.
    input: Vec<u8>,
    /// Replies the kernel has not taken yet. At most OUTPUT_LIMIT bytes.
    output: Vec<u8>,
    /// Whether we asked mio for writable events (only while output waits:
    /// a socket with room in its send buffer is writable almost always, and
    /// asking for that all the time would wake us for nothing).
    writable_wanted: bool,
    /// The client closed its side (a read returned 0).
    ended: bool,
    /// When the client last sent something, for the idle timeout.
    heard: Instant,
    /// Set once we have said our last word and only wait to close.
    closing: Option<Closing>,
}

/// A connection on its way out: its last replies are being sent.
struct Closing {
    /// What the log will say when it is closed.
    ending: Ending,
    /// Whether we have sent FIN (shutdown of our writing side) after the
    /// last reply. Then we read and discard until the client closes too,
    /// so that nothing is left unread: closing with unread bytes would send
    /// a reset, which can destroy the last reply before it is read.
    fin_sent: bool,
    /// Closed then at the latest, whatever the client does.
    by: Instant,
}

/// What a turn left a connection in.
enum After {
    /// Still open; `more` says the read budget ran out before WouldBlock.
    Open { more: bool },
    /// To be closed, and logged with this ending.
    Close(Ending),
}
// ANCHOR_END: connection

impl Connection {
    fn new(stream: TcpStream, client: SocketAddr, now: Instant) -> Connection {
        Connection {
            stream,
            client,
            input: Vec::new(),
            output: Vec::new(),
            writable_wanted: false,
            ended: false,
            heard: now,
            closing: None,
        }
    }

    /// One turn for this connection: read what has arrived (if `readable`),
    /// write what fits, and take the next step of closing.
    fn turn(&mut self, readable: bool, chunk: &mut [u8], now: Instant) -> After {
        let mut more = false;
        if readable && !self.ended {
            match self.receive(chunk, now) {
                Ok(received) => more = received.more,
                Err(ending) => return After::Close(ending),
            }
        }
        if let Err(ending) = self.flush() {
            return After::Close(ending);
        }
        match self.step_closing() {
            Some(ending) => After::Close(ending),
            None => After::Open { more },
        }
    }

    // ANCHOR: receive
    /// Reads until the kernel has nothing more for us (`WouldBlock`), at most
    /// READS_PER_TURN times, and answers the whole lines. Returns how many
    /// lines were answered, or the ending if the connection must close.
    fn receive(&mut self, chunk: &mut [u8], now: Instant) -> Result<Received, Ending> {
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
            let answered = answer(&mut self.input, false, self.client, &mut self.output);
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
            let answered = answer(&mut self.input, true, self.client, &mut self.output);
            received.lines += answered.lines;
            self.close_after_output(Ending::Finished, now + LINGER);
        }
        // The budget ran out before WouldBlock: more may be waiting.
        received.more = !self.ended && !drained;
        if self.input.is_empty() && self.input.capacity() > BUFFER_KEEP {
            self.input = Vec::new();
        }
        Ok(received)
    }
    // ANCHOR_END: receive

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
    fn update_interest(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
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
    fn close_after_output(&mut self, ending: Ending, by: Instant) {
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
            let _ = self.stream.shutdown(Direction::Write);
            closing.fin_sent = true;
        }
        None
    }

    /// When this connection must be closed unless something happens first.
    fn deadline(&self, idle_timeout: Option<Duration>) -> Option<Instant> {
        match &self.closing {
            Some(closing) => Some(closing.by),
            None => idle_timeout.map(|idle| self.heard + idle),
        }
    }
    // ANCHOR_END: closing
}

/// What one call to `receive` found.
#[derive(Default)]
struct Received {
    lines: usize,
    more: bool,
}

// ANCHOR: server
/// The event loop's state: the listener, the table of connections, the
/// timers, and the one read buffer they all share.
struct Server {
    poll: Poll,
    /// `None` once shutting down: the listener is closed at once.
    listener: Option<TcpListener>,
    connections: HashMap<Token, Connection>,
    next_token: usize,
    /// Every deadline, earliest first: one entry per connection (a few
    /// more for a moment). An entry is not updated when the client speaks;
    /// when it comes due, the connection's real deadline is looked up and
    /// the entry put back if that is later. So a busy client costs nothing
    /// here, and no turn scans all the connections.
    deadlines: BinaryHeap<Reverse<(Instant, Token)>>,
    /// Connections whose read budget ran out: read again next turn.
    ready_again: Vec<Token>,
    /// Out of file descriptors: no accepting until then.
    accept_paused_until: Option<Instant>,
    chunk: Vec<u8>,
    max_clients: usize,
    idle_timeout: Option<Duration>,
    grace: Duration,
    /// Set by the first signal: when the grace period ends, and the tally.
    shutdown: Option<(Instant, Shutdown)>,
}
// ANCHOR_END: server

// ANCHOR: serve
/// Serves clients on this thread until SIGINT or SIGTERM, then shuts down
/// gracefully. A second signal is an error: the server exits at once.
pub fn serve(listener: std::net::TcpListener, config: &Config) -> anyhow::Result<()> {
    listener
        .set_nonblocking(true)
        .context("could not make the listener non-blocking")?;
    let mut listener = TcpListener::from_std(listener);
    let poll = Poll::new().context("could not create the event queue (epoll)")?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .context("could not watch the listener")?;
    // A signal arrives at any moment, in the middle of any code. signal-hook's
    // handler only records the signal in an atomic and writes a byte to a
    // Unix socket pair, whose other end is one more source of events: the
    // loop learns of the signal between two turns, where stopping is safe.
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("could not catch SIGINT")?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)
        .context("could not watch for signals")?;

    let mut server = Server {
        poll,
        listener: Some(listener),
        connections: HashMap::new(),
        next_token: FIRST_CLIENT,
        deadlines: BinaryHeap::new(),
        ready_again: Vec::new(),
        accept_paused_until: None,
        chunk: vec![0; READ_CHUNK],
        max_clients: config.max_clients,
        idle_timeout: config.idle_timeout,
        grace: config.grace,
        shutdown: None,
    };
    let mut events = Events::with_capacity(EVENTS_PER_TURN);
    loop {
        let timeout = server.next_timeout(Instant::now());
        if let Err(err) = server.poll.poll(&mut events, timeout) {
            if err.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(err).context("could not wait for events");
        }
        for event in &events {
            match event.token() {
                LISTENER => server.accept_all(),
                SIGNALS => {
                    for _signal in signals.pending() {
                        if server.shutdown.is_some() {
                            return Err(anyhow!(
                                "a second signal: stopped at once, with {} still connected",
                                plural(server.connections.len(), "client")
                            ));
                        }
                        server.begin_shutdown();
                    }
                }
                // A reset or an error shows as readable too: the read
                // that follows returns it.
                token => server.service(
                    token,
                    event.is_readable() || event.is_read_closed() || event.is_error(),
                ),
            }
        }
        for token in std::mem::take(&mut server.ready_again) {
            server.service(token, true);
        }
        let now = Instant::now();
        if let Some(summary) = server.shutdown_done(now) {
            say!("{summary}");
            return Ok(());
        }
        server.expire_deadlines(now);
        if server.accept_paused_until.is_some_and(|until| until <= now) {
            server.accept_paused_until = None;
            server.accept_all();
        }
    }
}
// ANCHOR_END: serve

impl Server {
    // ANCHOR: accept
    /// Accepts every connection waiting in the backlog (the listener is
    /// edge-triggered too: one event may stand for many connections).
    fn accept_all(&mut self) {
        if self.accept_paused_until.is_some() {
            return;
        }
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, client)) => {
                    if self.connections.len() >= self.max_clients {
                        log_busy(client, self.max_clients);
                        common::refuse(stream.into(), BUSY_REPLY);
                        continue;
                    }
                    self.open(stream, client);
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                Err(err) => {
                    // Most often EMFILE: every file descriptor we may have
                    // is in use. The connection stays in the backlog, the
                    // listener stays ready, and accepting again at once
                    // would fail again, in a loop that spins a core. So
                    // pause, until a connection closes or ACCEPT_PAUSE.
                    say!(
                        "could not accept a connection: {} ({} open); pausing",
                        describe(&err),
                        plural(self.connections.len(), "connection")
                    );
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_PAUSE);
                    return;
                }
            }
        }
    }

    /// Adds a new client to the table and asks mio for its readable events.
    fn open(&mut self, mut stream: TcpStream, client: SocketAddr) {
        let token = Token(self.next_token);
        self.next_token += 1;
        if let Err(err) = self
            .poll
            .registry()
            .register(&mut stream, token, Interest::READABLE)
        {
            say!(
                "[{client}] could not watch the connection: {}",
                describe(&err)
            );
            return;
        }
        say!("[{client}] connected");
        let now = Instant::now();
        self.connections
            .insert(token, Connection::new(stream, client, now));
        if let Some(idle) = self.idle_timeout {
            self.deadlines.push(Reverse((now + idle, token)));
        }
    }
    // ANCHOR_END: accept

    // ANCHOR: service
    /// One connection's turn, after an event (or a spent read budget).
    fn service(&mut self, token: Token, readable: bool) {
        let now = Instant::now();
        let Some(conn) = self.connections.get_mut(&token) else {
            return; // closed earlier in this turn
        };
        let was_closing = conn.closing.is_some();
        match conn.turn(readable, &mut self.chunk, now) {
            After::Open { more } => {
                if let Err(err) = conn.update_interest(self.poll.registry(), token) {
                    self.close(token, Ending::Failed(err));
                    return;
                }
                if more {
                    self.ready_again.push(token);
                }
                // A connection that starts closing has a nearer deadline.
                if let (false, Some(closing)) = (was_closing, &conn.closing) {
                    self.deadlines.push(Reverse((closing.by, token)));
                }
            }
            After::Close(ending) => self.close(token, ending),
        }
    }

    /// Removes a connection from the table, logs why, and closes its socket.
    fn close(&mut self, token: Token, ending: Ending) {
        if let Some(mut conn) = self.connections.remove(&token) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            ending.log(conn.client);
            // The socket closes here, when `conn` is dropped.
        }
        // A file descriptor is free again: if accepting was paused for want
        // of one, try now.
        if self.accept_paused_until.take().is_some() {
            self.accept_all();
        }
    }
    // ANCHOR_END: service

    // ANCHOR: timers
    /// How long the next wait for events may last: until the earliest
    /// deadline, or forever if there is none.
    fn next_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.ready_again.is_empty() {
            return Some(Duration::ZERO);
        }
        let next = [
            self.deadlines.peek().map(|Reverse((due, _))| *due),
            self.accept_paused_until,
            self.shutdown.as_ref().map(|(grace_end, _)| *grace_end),
        ]
        .into_iter()
        .flatten()
        .min();
        next.map(|due| due.saturating_duration_since(now))
    }

    /// Closes the connections whose deadline has passed: silent for the
    /// idle timeout, or closing and out of time.
    fn expire_deadlines(&mut self, now: Instant) {
        while let Some(&Reverse((due, token))) = self.deadlines.peek() {
            if due > now {
                break;
            }
            self.deadlines.pop();
            // exercise 6.3: begin
            // An entry for a connection that is gone: skip it.
            let Some(conn) = self.connections.get_mut(&token) else {
                continue;
            };
            match conn.deadline(self.idle_timeout) {
                // The client spoke since this entry was made: not yet.
                Some(later) if later > now => self.deadlines.push(Reverse((later, token))),
                Some(_) => {
                    let ending = match conn.closing.take() {
                        Some(closing) => closing.ending,
                        None => Ending::Idle(self.idle_timeout.unwrap_or_default()),
                    };
                    self.close(token, ending);
                }
                None => {}
            }
            // exercise 6.3: end
        }
    }
    // ANCHOR_END: timers

    // ANCHOR: shutdown
    /// The first SIGINT or SIGTERM: stop accepting, answer what has already
    /// arrived, tell every client `bye`, and give them the grace period to
    /// read it and close.
    fn begin_shutdown(&mut self) {
        let now = Instant::now();
        let grace_end = now + self.grace;
        let mut tally = Shutdown::default();
        say!(
            "shutting down: telling {} bye, waiting at most {} s",
            plural(self.connections.len(), "client"),
            self.grace.as_secs()
        );
        // exercise 6.4: begin
        // Closing the listener makes the kernel refuse new connections at
        // once, and reset those waiting in the backlog.
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.accept_paused_until = None;
        let tokens: Vec<Token> = self.connections.keys().copied().collect();
        for token in tokens {
            let Some(conn) = self.connections.get_mut(&token) else {
                continue;
            };
            // A line that has already arrived still gets its reply.
            if !conn.ended {
                match conn.receive(&mut self.chunk, now) {
                    Ok(received) => tally.answered += received.lines,
                    Err(ending) => {
                        self.close(token, ending);
                        continue;
                    }
                }
            }
            match &mut conn.closing {
                None => {
                    conn.output.extend_from_slice(BYE_REPLY);
                    conn.close_after_output(Ending::ToldBye, grace_end);
                    tally.told += 1;
                }
                Some(closing) => closing.by = closing.by.min(grace_end),
            }
            // Send what fits now; the rest goes out as the loop turns.
            self.service(token, false);
        }
        // exercise 6.4: end
        self.shutdown = Some((grace_end, tally));
    }

    /// Once shutting down: the summary line when every client has gone, or
    /// the grace period is over (the clients still there are closed then).
    fn shutdown_done(&mut self, now: Instant) -> Option<String> {
        let (grace_end, tally) = self.shutdown.as_mut()?;
        if !self.connections.is_empty() && now < *grace_end {
            return None;
        }
        tally.cut_off = self.connections.len();
        // Dropping the table closes every socket left.
        self.connections.clear();
        Some(tally.summary())
    }
    // ANCHOR_END: shutdown
}
