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
use common::{ClientLimit, Slot, say};
use mio::Waker;
use mio::net::TcpStream;

use super::{HANDED, Server, run_loop};
use crate::Config;
use crate::protocol::PartialLines;

// ANCHOR: per_core
/// A client the first loop accepted for another: its socket, its address,
/// and its slot under the cap.
pub(super) type Handed = (TcpStream, SocketAddr, Slot);

/// The first loop's way to another loop: the channel its clients go down,
/// and the `Waker` that tells that loop to look.
pub(super) struct Inbox {
    pub(super) clients: mpsc::Sender<Handed>,
    pub(super) waker: Waker,
}

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
    let mut first = Server::new(Some(listener), config, shared.clone(), label(1))?;
    // Every loop is ready (its signals caught) before any of them starts.
    let mut others = Vec::new();
    for n in 2..=config.loops {
        let mut other = Server::new(None, config, shared.clone(), label(n))?;
        let waker = Waker::new(other.poll.registry(), HANDED)
            .context("could not make a waker for an event loop")?;
        let (clients, handed) = mpsc::channel();
        other.handed = Some(handed);
        first.others.push(Inbox { clients, waker });
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
