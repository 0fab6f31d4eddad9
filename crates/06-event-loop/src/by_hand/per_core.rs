//! One event loop per core (`--loops N`).
//!
//! One loop is one thread, so it uses one core however many the machine
//! has. `--loops N` runs N loops, each with its own `Poll` and its own
//! table of connections: no connection is ever touched by two threads, so
//! nothing about it needs a lock. What the loops share is small and atomic:
//! the cap on clients and the budget for partial lines.
//!
//! The first loop alone listens. It accepts every client and hands them
//! round in turn: its own, then one for each other loop, sent down a
//! channel with a `Waker` that makes the other loop's wait for events
//! return. Linux could spread the clients itself (`SO_REUSEPORT`, one
//! listening socket per loop); the chapter's "One loop per core" says why
//! this lesson does not.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{self, TryRecvError};
use std::thread;

use anyhow::Context;
use common::{ClientLimit, Slot, describe, say};
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Waker};

use super::{HANDED, LISTENER, Server, run_loop};
use crate::Config;
use crate::protocol::{PartialLines, ShutdownTally};

// ANCHOR: other_loops
/// A client the first loop accepted for another: its socket, its address,
/// and its slot under the cap.
pub(super) type Handed = (TcpStream, SocketAddr, Slot);

/// The first loop's way to another loop: the channel its clients go down
/// (`None` once it hands out no more), and the `Waker` that tells that loop
/// to look.
struct Inbox {
    clients: Option<mpsc::Sender<Handed>>,
    waker: Arc<Waker>,
}

/// What a loop knows of the others: the first, their inboxes and whose
/// turn the next client is (0: its own); each other, its end of the
/// channel until the first stops handing clients out. One loop alone:
/// nothing.
#[derive(Default)]
pub(super) struct OtherLoops {
    inboxes: Vec<Inbox>,
    next_turn: usize,
    handed: Option<mpsc::Receiver<Handed>>,
    /// Each other loop keeps its own `Waker` too. Dropping a `Waker` closes
    /// its file descriptor, and the kernel forgets a wake-up not yet seen:
    /// the first loop, done before this one, would take the last one with it.
    _waker: Option<Arc<Waker>>,
}

// ANCHOR_END: other_loops

impl OtherLoops {
    // ANCHOR: hand
    /// Sends a new client to the loop whose turn it is, or gives it back
    /// when the turn is this loop's, or that loop has already ended (it
    /// shut down first): then this loop keeps it.
    pub(super) fn hand(&mut self, client: Handed, label: &str) -> Option<Handed> {
        let turn = self.next_turn;
        self.next_turn = (turn + 1) % (self.inboxes.len() + 1);
        let Some(inbox) = turn.checked_sub(1).and_then(|n| self.inboxes.get(n)) else {
            return Some(client);
        };
        let Some(clients) = &inbox.clients else {
            return Some(client);
        };
        match clients.send(client) {
            // The other loop learns of it at its next wait for events.
            Ok(()) => {
                if let Err(err) = inbox.waker.wake() {
                    say!("{label}could not wake another loop: {}", describe(&err));
                }
                None
            }
            Err(mpsc::SendError(client)) => Some(client),
        }
    }

    /// The clients handed to this loop since it last looked. Once the
    /// first loop has stopped handing them out, the channel is let go.
    pub(super) fn handed(&mut self) -> Vec<Handed> {
        let mut clients = Vec::new();
        while let Some(handed) = &self.handed {
            match handed.try_recv() {
                Ok(client) => clients.push(client),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => self.handed = None,
            }
        }
        clients
    }

    // ANCHOR_END: hand

    // ANCHOR: stop_handing
    /// Whether a client may still be handed to this loop: a loop that is
    /// shutting down waits for that to end too, or a client accepted just
    /// before the signal would be dropped with the channel, without `bye`.
    pub(super) fn may_hand_more(&self) -> bool {
        self.handed.is_some()
    }

    /// The first loop, shutting down, hands out no more clients: the
    /// channels end, and each other loop is woken to see that.
    pub(super) fn stop_handing(&mut self) {
        for inbox in &mut self.inboxes {
            // The channel ends with its sender: end it first, then wake the
            // other loop, or it may look before it has ended.
            inbox.clients = None;
            let _ = inbox.waker.wake();
        }
    }
    // ANCHOR_END: stop_handing
}

// ANCHOR: per_core
/// Serves clients with `config.loops` event loops: one on this thread, or
/// more each on a thread of its own, this one waiting for them. Each loop
/// sees the signal and shuts down its own clients; the one summary line
/// adds up what they did. A second signal makes any of them return an
/// error, and the server exits at once.
pub fn serve(listener: std::net::TcpListener, config: &Config) -> anyhow::Result<()> {
    let shared = (
        ClientLimit::new(config.max_clients),
        PartialLines::new(config.partial_lines_budget),
    );
    let label = |n: usize| match config.loops {
        1 => String::new(),
        _ => format!("loop {n}: "),
    };
    let mut first = Server::new(config, shared.clone(), label(1))?;
    listener
        .set_nonblocking(true)
        .context("could not make the listener non-blocking")?;
    let mut listener = TcpListener::from_std(listener);
    first
        .poll
        .registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .context("could not watch the listener")?;
    first.listener = Some(listener);
    // Every loop is ready (its signals caught) before any of them starts.
    let mut others = Vec::new();
    for n in 2..=config.loops {
        let mut other = Server::new(config, shared.clone(), label(n))?;
        let waker = Arc::new(
            Waker::new(other.poll.registry(), HANDED)
                .context("could not make a waker for an event loop")?,
        );
        let (clients, handed) = mpsc::channel();
        other.loops.handed = Some(handed);
        other.loops._waker = Some(Arc::clone(&waker));
        first.loops.inboxes.push(Inbox {
            clients: Some(clients),
            waker,
        });
        others.push(other);
    }
    // ANCHOR_END: per_core
    // ANCHOR: per_core_run
    // Every loop watches for signals now: a signal held since before
    // `listening on` (lib.rs, run) arrives, and each loop sees it at its
    // first wait. The loops' threads, started after this, take signals too.
    common::release_stop_signals();
    // One loop runs on this thread. More each run on a thread of their
    // own, and this one waits for whichever ends first.
    if others.is_empty() {
        let tally = run_loop(first)?;
        say!("{}", tally.summary());
        return Ok(());
    }
    let (done, results) = mpsc::channel();
    for (n, server) in (1..).zip(std::iter::once(first).chain(others)) {
        let done = done.clone();
        thread::Builder::new()
            .name(format!("loop {n}"))
            .spawn(move || done.send(run_loop(server)))
            .context("could not start a thread for an event loop")?;
    }
    drop(done);
    let mut total = ShutdownTally::default();
    for _ in 1..=config.loops {
        // The first error (a second signal, which any loop may be the one
        // to see) ends the server at once: the process exits with the
        // other loops in it. A loop whose thread ended without a result
        // dropped its sender, and the channel ends early.
        let tally = results
            .recv()
            .context("an event loop stopped without shutting down")??;
        total.add(&tally);
    }
    say!("{}", total.summary());
    Ok(())
}
// ANCHOR_END: per_core_run
