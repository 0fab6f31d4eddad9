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
use std::sync::mpsc;
use std::thread;

use anyhow::Context;
use common::{ClientLimit, Slot, describe, say};
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Waker};

use super::{HANDED, LISTENER, Server, run_loop};
use crate::Config;
use crate::protocol::PartialLines;

// ANCHOR: other_loops
/// A client the first loop accepted for another: its socket, its address,
/// and its slot under the cap.
pub(super) type Handed = (TcpStream, SocketAddr, Slot);

/// The first loop's way to another loop: the channel its clients go down,
/// and the `Waker` that tells that loop to look.
struct Inbox {
    clients: mpsc::Sender<Handed>,
    waker: Waker,
}

/// What a loop knows of the others: the first, their inboxes and whose
/// turn the next client is (0: its own); each other, its end of the
/// channel. One loop alone: nothing.
#[derive(Default)]
pub(super) struct OtherLoops {
    inboxes: Vec<Inbox>,
    next_turn: usize,
    handed: Option<mpsc::Receiver<Handed>>,
}

impl OtherLoops {
    /// Sends a new client to the loop whose turn it is, or gives it back
    /// when the turn is this loop's, or that loop has already ended (it
    /// shut down first): then this loop keeps it.
    pub(super) fn hand(&mut self, client: Handed, label: &str) -> Option<Handed> {
        let turn = self.next_turn;
        self.next_turn = (turn + 1) % (self.inboxes.len() + 1);
        let Some(inbox) = turn.checked_sub(1).and_then(|n| self.inboxes.get(n)) else {
            return Some(client);
        };
        match inbox.clients.send(client) {
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

    /// The clients handed to this loop since it last looked.
    pub(super) fn handed(&self) -> Vec<Handed> {
        self.handed
            .as_ref()
            .map(|handed| handed.try_iter().collect())
            .unwrap_or_default()
    }
}

// ANCHOR_END: other_loops

// ANCHOR: per_core
/// Serves clients with `config.loops` event loops: the first on this
/// thread, each other on a thread of its own. Each sees the signal and
/// shuts down its own clients; the one summary line adds up what they did.
/// A second signal makes any of them return an error, and the server exits
/// at once.
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
        let waker = Waker::new(other.poll.registry(), HANDED)
            .context("could not make a waker for an event loop")?;
        let (clients, handed) = mpsc::channel();
        other.loops.handed = Some(handed);
        first.loops.inboxes.push(Inbox { clients, waker });
        others.push(other);
    }
    let (done, results) = mpsc::channel();
    for other in others {
        let done = done.clone();
        let name = other.label.trim_end_matches([':', ' ']).to_string();
        thread::Builder::new()
            .name(name)
            .spawn(move || done.send(run_loop(other)))
            .context("could not start a thread for an event loop")?;
    }
    drop(done);
    let mut total = run_loop(first)?;
    // Each other loop's result; a loop whose thread ended without one
    // dropped its sender, and the channel ends early.
    for _ in 2..=config.loops {
        let tally = results
            .recv()
            .context("an event loop stopped without shutting down")??;
        total.add(&tally);
    }
    say!("{}", total.summary());
    Ok(())
}
// ANCHOR_END: per_core
