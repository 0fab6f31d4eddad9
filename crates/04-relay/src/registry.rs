//! The registry: who is here, and a bounded queue of lines for each. The
//! registry's lock is taken and released inside its own methods, so no
//! caller can hold it while it waits: it is locked only to find a queue,
//! never while waiting.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Instant;

use common::lock;

use crate::limits::{NOTICE_ROOM, QUEUE_LIMIT};
use crate::protocol::Refusal;

// ANCHOR: registry
/// One client's queue of lines to send, as every thread reaches it: a
/// bounded channel that only the client's writer thread reads from.
#[derive(Clone)]
pub(crate) struct Outbox {
    pub(crate) lines: SyncSender<Vec<u8>>,
    pub(crate) room: Arc<Room>,
}

impl Outbox {
    /// A new queue, and its receiving end for the writer thread.
    pub(crate) fn new() -> (Outbox, Receiver<Vec<u8>>) {
        let (lines, queue) = mpsc::sync_channel(QUEUE_LIMIT + NOTICE_ROOM);
        let room = Arc::new(Room::default());
        (Outbox { lines, room }, queue)
    }
}

/// What the senders to a queue and its writer thread share.
#[derive(Default)]
pub(crate) struct Room {
    /// How many lines are in the queue (the channel does not say).
    pub(crate) queued: AtomicUsize,
    /// Signalled by the writer thread each time it takes a line out, and
    /// when it ends: a sender waiting for room looks again.
    lock: Mutex<()>,
    signal: Condvar,
}

impl Room {
    /// Tells whoever waits for room to look again (the writer calls it).
    pub(crate) fn wake(&self) {
        let _guard = lock(&self.lock);
        self.signal.notify_all();
    }
}

/// One registered client, as the other clients' threads reach it.
pub(crate) struct Peer {
    /// Its queue. Only its own writer thread writes to its socket; everyone
    /// else puts lines here.
    pub(crate) outbox: Outbox,
    /// Its address as `accept()` gave it: the client's IP, and the
    /// ephemeral port its kernel picked for this one connection.
    pub(crate) seen_as: SocketAddr,
    /// The port it announced in `HELLO`, where it listens for direct
    /// connections.
    pub(crate) listen_port: Option<u16>,
}

/// What `WHERE` needs to know of a peer: a copy, taken under the lock.
#[derive(Clone, Copy)]
pub(crate) struct Contact {
    pub(crate) seen_as: SocketAddr,
    pub(crate) listen_port: Option<u16>,
}
// ANCHOR_END: registry

// ANCHOR: deliver
/// What happens to a line offered to a client's queue.
pub(crate) enum Delivery {
    Queued,
    /// The queue stayed full until the time given: the client reads
    /// slower than it is sent to, or not at all.
    Full,
    /// Its writer thread has ended, or it has left: the connection is gone.
    Gone,
}

/// How much of a queue a line may fill.
#[derive(Clone, Copy)]
pub(crate) enum QueueShare {
    /// A line relayed from another client: QUEUE_LIMIT lines at most.
    Relayed,
    /// `WELCOME`, `JOINED`, `LEFT`: also the NOTICE_ROOM kept beyond it.
    Notice,
}

/// Puts `line` in `outbox`, waiting for room until `until` at most; with
/// `until` already past, it never waits. The wait is the *sender's*: the
/// thread that relays a line belongs to the client that sent it, so a
/// sender that outruns its receiver is slowed down to the receiver's pace,
/// and nobody else is. The registry is never locked while this waits.
pub(crate) fn enqueue(outbox: &Outbox, line: &str, share: QueueShare, until: Instant) -> Delivery {
    // exercise 4.2: begin
    let limit = match share {
        QueueShare::Relayed => QUEUE_LIMIT,
        QueueShare::Notice => QUEUE_LIMIT + NOTICE_ROOM,
    };
    let room = &outbox.room;
    // Checked and sent under the room lock, so that the writer's signal
    // cannot come between "no room" and the wait, and be missed.
    let mut guard = lock(&room.lock);
    loop {
        if room.queued.load(Ordering::SeqCst) < limit {
            room.queued.fetch_add(1, Ordering::SeqCst);
            match outbox.lines.try_send(line.as_bytes().to_vec()) {
                Ok(()) => return Delivery::Queued,
                Err(TrySendError::Disconnected(_)) => return Delivery::Gone,
                // Full although under the limit: a reply of the client's
                // own took the last place. Wait like any full queue.
                Err(TrySendError::Full(_)) => {
                    room.queued.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Delivery::Full;
        }
        guard = room
            .signal
            .wait_timeout(guard, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    // exercise 4.2: end
}
// ANCHOR_END: deliver

// ANCHOR: lookups
/// Every registered client, by name, behind the one lock that every
/// client's thread shares. A `BTreeMap` keeps the names sorted, as `PEERS`
/// lists them. The lock is taken and released inside each method: nothing
/// outside can hold it while it waits or logs.
#[derive(Default)]
pub struct Registry {
    peers: Mutex<BTreeMap<String, Peer>>,
}

/// How a `HELLO` that was not refused ended.
pub(crate) enum Registered {
    /// Registered, its `WELCOME` queued first; `missed`: the clients whose
    /// queue had no room for the `JOINED` notice.
    Welcomed { missed: Vec<String> },
    /// Its queue had no room even for `WELCOME`: it sent a pile of lines
    /// without reading the answers. Not registered.
    NotReading,
}

impl Registry {
    /// The queue of the client called `name`, if it is here.
    pub(crate) fn outbox_of(&self, name: &str) -> Option<Outbox> {
        lock(&self.peers).get(name).map(|peer| peer.outbox.clone())
    }

    /// The queue of every client but `me`, with its name.
    pub(crate) fn outboxes_except(&self, me: &str) -> Vec<(String, Outbox)> {
        lock(&self.peers)
            .iter()
            .filter(|(name, _)| *name != me)
            .map(|(name, peer)| (name.clone(), peer.outbox.clone()))
            .collect()
    }

    /// Every registered name, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        lock(&self.peers).keys().cloned().collect()
    }

    /// Where the client called `name` was seen, and the port it announced.
    pub(crate) fn where_is(&self, name: &str) -> Option<Contact> {
        lock(&self.peers).get(name).map(|peer| Contact {
            seen_as: peer.seen_as,
            listen_port: peer.listen_port,
        })
    }
    // ANCHOR_END: lookups

    // ANCHOR: join
    /// Registers `name`, queues `welcome` as its very first line, and tells
    /// everyone else `JOINED <name>`, never waiting (the registry is
    /// locked). Nothing is logged here: nothing logs while holding the
    /// lock that every client needs.
    pub(crate) fn register(
        &self,
        name: &str,
        peer: Peer,
        welcome: &str,
    ) -> Result<Registered, Refusal> {
        let mut peers = lock(&self.peers);
        if peers.contains_key(name) {
            return Err(Refusal::NameTaken);
        }
        // Queued while we hold the lock, so nothing relayed to the new
        // client can get ahead of its WELCOME. Its queue is empty unless it
        // sent a pile of lines before HELLO without reading the answers.
        if !matches!(
            enqueue(&peer.outbox, welcome, QueueShare::Notice, Instant::now()),
            Delivery::Queued
        ) {
            return Ok(Registered::NotReading);
        }
        let missed = notify(&peers, &format!("JOINED {name}\n"));
        peers.insert(name.to_string(), peer);
        Ok(Registered::Welcomed { missed })
    }
    // ANCHOR_END: join

    // ANCHOR: leave
    /// Removes `name`, if it is still the client connected from `seen_as`
    /// (its name may already belong to someone new), and tells everyone
    /// else `LEFT <name>`. Returns `None` if it was not registered, else who
    /// missed the notice.
    pub(crate) fn remove(&self, name: &str, seen_as: SocketAddr) -> Option<Vec<String>> {
        let mut peers = lock(&self.peers);
        // exercise 4.3: begin
        match peers.get(name) {
            Some(peer) if peer.seen_as == seen_as => {}
            _ => return None, // gone already, or the name is someone else's now
        }
        peers.remove(name);
        Some(notify(&peers, &format!("LEFT {name}\n")))
        // exercise 4.3: end
    }
    // ANCHOR_END: leave
}

// ANCHOR: notify

/// Queues `notice` for every registered client, never waiting (the caller
/// holds the registry's lock). Returns those whose queue had no room even
/// for a notice.
fn notify(peers: &BTreeMap<String, Peer>, notice: &str) -> Vec<String> {
    let now = Instant::now();
    peers
        .iter()
        .filter(|(_, peer)| {
            matches!(
                enqueue(&peer.outbox, notice, QueueShare::Notice, now),
                Delivery::Full
            )
        })
        .map(|(name, _)| name.clone())
        .collect()
}
// ANCHOR_END: notify

#[cfg(test)]
mod tests {
    use super::*;

    /// By the time a dropped client's thread cleans up, a new client may
    /// hold its name: `remove` must leave that one alone.
    #[test]
    fn remove_takes_out_a_name_only_if_it_is_still_that_clients() {
        let registry = Registry::default();
        let (outbox, _queue) = Outbox::new();
        let old = SocketAddr::from(([127, 0, 0, 1], 40000));
        let new = SocketAddr::from(([127, 0, 0, 1], 40001));
        let peer = Peer {
            outbox,
            seen_as: new,
            listen_port: None,
        };
        assert!(
            matches!(
                registry.register("bob", peer, "WELCOME bob\n"),
                Ok(Registered::Welcomed { .. })
            ),
            "bob should register in an empty registry"
        );
        let removed = registry.remove("bob", old);
        assert!(
            removed.is_none() && registry.names() == ["bob"],
            "the bob connected from {old} left, and his thread removes `bob`, but the name now belongs to a new bob connected from {new}: remove the peer only if its seen_as is the one given, else leave it and answer None (book: 04-relay.md § Joining and leaving)"
        );
        assert!(
            registry.remove("bob", new).is_some() && registry.names().is_empty(),
            "the bob connected from {new} left: remove should take him out and answer Some (book: 04-relay.md § Joining and leaving)"
        );
    }
}
