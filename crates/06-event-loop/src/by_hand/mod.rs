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
//!
//! This file is the loop: accepting, timers, the shutdown. One client's
//! state and its steps are in `connection.rs`; `--loops` in per_core.rs.

mod connection;
mod per_core;

pub use per_core::serve;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use common::{ClientLimit, Slot, count, describe, say};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::protocol::{BUSY_REPLY, BYE_REPLY, Ending, PartialLines, ShutdownTally, log_busy};
use crate::{ACCEPT_PAUSE, Config, READ_CHUNK};
use connection::{Connection, TurnOutcome};
use per_core::OtherLoops;

// ANCHOR: tokens
/// mio tells sockets apart by a number we choose when we register them.
const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);
/// The first loop has handed this one new clients (`--loops`, per_core.rs).
const HANDED: Token = Token(2);
/// Clients get 3, 4, 5... Numbers are never reused, so an old timer entry
/// can never be mistaken for a newer connection.
const FIRST_CLIENT: usize = 3;
/// The most events taken from the kernel in one wait; more wait for the
/// next turn.
const EVENTS_PER_TURN: usize = 1024;
// ANCHOR_END: tokens

// ANCHOR: serve
/// One event loop: serves clients on this thread until SIGINT or SIGTERM,
/// then shuts down gracefully, and returns what the shutdown did. A second
/// signal is an error: the server exits at once.
fn run_loop(mut server: Server) -> anyhow::Result<ShutdownTally> {
    let mut events = Events::with_capacity(EVENTS_PER_TURN);
    loop {
        let timeout = server.next_timeout(Instant::now());
        // The connections whose read budget ran out are read again after
        // this wait (which does not block while any is waiting) and after
        // its events: a signal that came meanwhile is seen first.
        let again = std::mem::take(&mut server.ready_again);
        if let Err(err) = server.poll.poll(&mut events, timeout) {
            server.ready_again = again;
            if err.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(err).context("could not wait for events");
        }
        for event in &events {
            match event.token() {
                LISTENER => server.accept_all(),
                SIGNALS => server.on_signals()?,
                HANDED => server.take_handed(),
                // A reset or an error shows as readable too: the read
                // that follows returns it.
                token => server.service(
                    token,
                    event.is_readable() || event.is_read_closed() || event.is_error(),
                ),
            }
        }
        for token in again {
            server.service(token, true);
        }
        let now = Instant::now();
        if let Some(tally) = server.shutdown_done(now) {
            return Ok(tally);
        }
        server.expire_deadlines(now);
        if server.accept_paused_until.is_some_and(|until| until <= now) {
            server.accept_paused_until = None;
            server.accept_all();
        }
    }
}
// ANCHOR_END: serve

// ANCHOR: server
/// The event loop's state: the listener, the table of connections, the
/// timers, and the one read buffer they all share.
struct Server {
    poll: Poll,
    /// SIGINT and SIGTERM, as one more source of events.
    signals: Signals,
    /// `None` once shutting down: the listener is closed at once. Only the
    /// first loop has one (`--loops`): it accepts for all of them.
    listener: Option<TcpListener>,
    /// The first loop: the others, to hand clients to. The others: the
    /// clients the first handed over (per_core.rs).
    loops: OtherLoops,
    connections: HashMap<Token, Connection>,
    /// The cap on clients, shared by every loop: each connection in the
    /// table holds one of its slots.
    limit: ClientLimit,
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
    /// The budget for partial lines that every connection of every loop
    /// takes from.
    partial_lines: PartialLines,
    max_clients: usize,
    /// How this loop's log lines begin: empty when it is the only one,
    /// `loop 2: ` when there are more.
    label: String,
    idle_timeout: Option<Duration>,
    grace: Duration,
    /// Set by the first signal: when the grace period ends, and the tally.
    shutting_down: Option<(Instant, ShutdownTally)>,
}
// ANCHOR_END: server

impl Server {
    // ANCHOR: setup
    /// A loop with a new `Poll`, watching for signals (per_core.rs gives
    /// the first loop the listener). Every loop has its own `Signals`: each
    /// signal reaches every one of them.
    fn new(
        config: &Config,
        (limit, partial_lines): (ClientLimit, PartialLines),
        label: String,
    ) -> anyhow::Result<Server> {
        let poll = Poll::new().context("could not create the event queue (epoll)")?;
        // A signal's handler may do almost nothing: signal-hook's writes a
        // byte to a socket pair, whose other end is watched here (book:
        // 06-event-loop.md § Graceful shutdown).
        let mut signals = Signals::new([SIGINT, SIGTERM]).context("could not catch SIGINT")?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)
            .context("could not watch for signals")?;
        Ok(Server {
            poll,
            signals,
            listener: None,
            loops: OtherLoops::default(),
            connections: HashMap::new(),
            limit,
            next_token: FIRST_CLIENT,
            deadlines: BinaryHeap::new(),
            ready_again: Vec::new(),
            accept_paused_until: None,
            chunk: vec![0; READ_CHUNK],
            partial_lines,
            max_clients: config.max_clients,
            label,
            idle_timeout: config.idle_timeout,
            grace: config.grace,
            shutting_down: None,
        })
    }
    // ANCHOR_END: setup

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
                    // The cap counts the clients of every loop.
                    let Some(slot) = self.limit.try_take() else {
                        log_busy(client, self.max_clients);
                        common::refuse(stream.into(), BUSY_REPLY);
                        continue;
                    };
                    // This loop's client, or another's in turn.
                    let handed = (stream, client, slot);
                    if let Some((stream, client, slot)) = self.loops.hand(handed, &self.label) {
                        self.open(stream, client, slot);
                    }
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
                        "{}could not accept a connection: {} ({} open); pausing",
                        self.label,
                        describe(&err),
                        count(self.connections.len() as u64, "connection")
                    );
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_PAUSE);
                    return;
                }
            }
        }
    }
    // ANCHOR_END: accept

    // ANCHOR: hand_out
    /// The clients the first loop handed to this one. Once shutting down,
    /// a client that comes now is told `bye` and closed at once.
    fn take_handed(&mut self) {
        for (stream, client, slot) in self.loops.handed() {
            if self.shutting_down.is_some() {
                common::refuse(stream.into(), BYE_REPLY);
                continue; // its slot is freed here
            }
            self.open(stream, client, slot);
        }
    }
    // ANCHOR_END: hand_out

    // ANCHOR: open
    /// Adds a new client to the table and asks mio for its readable events.
    /// The client keeps its slot under the cap until it leaves the table.
    fn open(&mut self, mut stream: TcpStream, client: SocketAddr, slot: Slot) {
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
        let partial = self.partial_lines.share();
        self.connections
            .insert(token, Connection::new(stream, client, now, partial, slot));
        if let Some(idle) = self.idle_timeout {
            self.deadlines.push(Reverse((now + idle, token)));
        }
    }
    // ANCHOR_END: open

    // ANCHOR: service
    /// One connection's turn, after an event (or a spent read budget).
    fn service(&mut self, token: Token, readable: bool) {
        let now = Instant::now();
        let Some(conn) = self.connections.get_mut(&token) else {
            return; // closed earlier in this turn
        };
        let was_closing = conn.closing.is_some();
        match conn.turn(readable, &mut self.chunk, now) {
            TurnOutcome::Open { read_again } => {
                if let Err(err) = conn.update_interest(self.poll.registry(), token) {
                    self.close(token, Ending::Failed(err));
                    return;
                }
                if read_again {
                    self.ready_again.push(token);
                }
                // A connection that starts closing has a nearer deadline.
                if let (false, Some(closing)) = (was_closing, &conn.closing) {
                    self.deadlines.push(Reverse((closing.by, token)));
                }
            }
            TurnOutcome::Close(ending) => self.close(token, ending),
        }
    }

    /// Removes a connection from the table, logs why, and closes its socket.
    fn close(&mut self, token: Token, ending: Ending) {
        if let Some(mut conn) = self.connections.remove(&token) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            conn.log.finish();
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
            self.shutting_down.as_ref().map(|(grace_end, _)| *grace_end),
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
        let mut tally = ShutdownTally::default();
        say!(
            "{}shutting down: telling {} bye, waiting at most {} s",
            self.label,
            count(self.connections.len() as u64, "client"),
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
        self.shutting_down = Some((grace_end, tally));
    }
    // ANCHOR_END: shutdown

    // ANCHOR: shutdown_end
    /// The signals that arrived: the first begins the shutdown, a second
    /// stops the server at once.
    fn on_signals(&mut self) -> anyhow::Result<()> {
        let arrived = self.signals.pending().count();
        for _ in 0..arrived {
            if self.shutting_down.is_some() {
                // The count of every loop's clients: whichever loop says
                // this, the whole server stops.
                return Err(anyhow!(
                    "a second signal: stopped at once, with {} still connected",
                    count(self.limit.in_use() as u64, "client")
                ));
            }
            self.begin_shutdown();
            self.loops.stop_handing(); // the first loop's, with --loops
        }
        Ok(())
    }

    /// Once shutting down: the tally when every client has gone, or the
    /// grace period is over (the clients still there are closed then).
    fn shutdown_done(&mut self, now: Instant) -> Option<ShutdownTally> {
        let (grace_end, tally) = self.shutting_down.as_mut()?;
        if (!self.connections.is_empty() || self.loops.may_hand_more()) && now < *grace_end {
            return None;
        }
        tally.cut_off = self.connections.len();
        // Dropping the table closes every socket left.
        self.connections.clear();
        Some(std::mem::take(tally))
    }
    // ANCHOR_END: shutdown_end
}
