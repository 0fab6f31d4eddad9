//! The limits every part of lesson 4 respects, server and client: each one
//! answers a question a careless program leaves open.

use std::time::Duration;

// ANCHOR: limits
/// Where the server listens, and the client connects, unless told
/// otherwise: loopback, on the original lesson's port.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7788";
/// The port used when an address names only a host.
pub const DEFAULT_PORT: u16 = 7788;
/// The longest line either side sends or accepts, without its newline. A
/// peer that sends more without a newline is told `ERR line-too-long` and
/// disconnected: without a limit, a peer that never sends `\n` makes us
/// buffer until memory runs out.
pub const LINE_LIMIT: usize = 4096;
/// The longest name: 1 to 32 ASCII letters, digits, `_` and `-`.
pub const NAME_LIMIT: usize = 32;
/// The longest text a client may relay. `SEND bob <text>` arrives as
/// `FROM <sender> <text>`, and a long sender name makes that line longer
/// than the one that was sent: this limit keeps every `FROM` line within
/// LINE_LIMIT, whoever sends it.
pub const TEXT_LIMIT: usize = LINE_LIMIT - "FROM ".len() - NAME_LIMIT - " ".len();
// ANCHOR_END: limits

// ANCHOR: server_limits
/// How many relayed lines may wait for one client. A line relayed to a
/// client whose queue holds this many waits for room, on the *sender's*
/// thread, at most RELAY_WAIT: a sender that outruns its receiver is slowed
/// down to the receiver's pace. A full queue is not proof that a client
/// has stopped reading (it may only be slower than a flood), so nobody is
/// dropped for it.
pub const QUEUE_LIMIT: usize = 128;
/// Room in every queue beyond QUEUE_LIMIT, which relayed lines never take:
/// it is kept for the lines a client must not miss because someone else
/// floods it, `WELCOME`, `JOINED` and `LEFT`, and its own replies.
pub const NOTICE_ROOM: usize = 128;
/// How long a relayed line may wait for room in its receiver's queue.
/// Then `SEND` is answered `ERR full <name>`, and `ALL` leaves that
/// receiver out (`SENT * except <name>`). Long enough that a receiver
/// which reads, but is short of CPU for a moment, does not lose lines;
/// short enough that a sender is not held for long by one that has stopped.
pub const RELAY_WAIT: Duration = Duration::from_secs(2);
/// A client is dropped when the server could not write one line to it (at
/// most 4 KiB) for this long: it has stopped reading. On Linux a line
/// waits only for the client to take some kilobytes (see UNSENT_LIMIT), so
/// a client that keeps reading, even slowly, is not dropped. Elsewhere a
/// blocked write wakes only once a third of the socket's send buffer
/// (megabytes) is free, and a slow reader can be taken for a stopped one.
pub const STUCK_AFTER: Duration = Duration::from_secs(10);
/// On Linux, the most bytes a client's socket holds that are not sent yet
/// (TCP_NOTSENT_LOWAT). A write to a client that reads slowly then wakes
/// once it has taken half of this, not once a third of a send buffer of
/// megabytes is free.
pub const UNSENT_LIMIT: u32 = 16 * 1024;
/// How many clients are served at once unless `--max-clients` says otherwise.
pub const DEFAULT_MAX_CLIENTS: usize = 64;
/// The most `--max-clients` allows: `PEERS` names every client on one line,
/// and 100 names of 32 bytes still fit in LINE_LIMIT.
pub const MAX_CLIENTS_LIMIT: usize = 100;
const _: () = assert!("PEERS".len() + MAX_CLIENTS_LIMIT * (1 + NAME_LIMIT) <= LINE_LIMIT);
// `SENT * except` names at most every other client on one line too.
const _: () = assert!("SENT * except".len() + MAX_CLIENTS_LIMIT * (1 + NAME_LIMIT) <= LINE_LIMIT);
/// How long a registered client may send nothing before it is closed,
/// unless `--idle-limit` says otherwise. Each registered client holds one
/// of the max-clients slots: without a limit, 64 names that never say a
/// word would keep everyone else out for as long as they liked; with it,
/// for this long at most. Any line resets it, and the `join` client sends
/// one on its own every KEEPALIVE_EVERY (a `LIST` whose answer it keeps
/// to itself), so a person who only reads stays.
pub const DEFAULT_IDLE_LIMIT: Duration = Duration::from_secs(300);
/// How often the `join` client says something when its user does not:
/// well within DEFAULT_IDLE_LIMIT.
pub const KEEPALIVE_EVERY: Duration = Duration::from_secs(60);
const _: () = assert!(KEEPALIVE_EVERY.as_secs() * 2 <= DEFAULT_IDLE_LIMIT.as_secs());
/// How long a new connection has to send `HELLO`, counted from the
/// connect, unless `--hello-timeout` says otherwise. Until it registers, a
/// connection holds a client slot and can do nothing else; it is closed
/// rather than held for ever.
pub const DEFAULT_HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// After our last line to a client, how long we read and discard what it
/// still sends while waiting for it to close (see `common::close_gently`).
pub const LINGER: Duration = Duration::from_secs(2);
/// The line a client over the cap gets before its connection is closed.
pub const BUSY_REPLY: &[u8] = b"ERR busy\n";
// ANCHOR_END: server_limits

// ANCHOR: client_limits
/// The client waits this long to connect, for `WELCOME`, and for the
/// server to close after `BYE`, unless `--timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// How many lines from the server may wait for the client to print them.
/// When its output is not read (a pager waiting for a key, Ctrl-S), the
/// client stops reading the server once this many wait, and the server
/// treats it as any slow reader: it slows down those who send to it, and
/// drops it after STUCK_AFTER. Without a limit the client would keep every
/// line in memory, for as long as its output is stuck.
pub const EVENT_LIMIT: usize = 64;
/// How many peers may be connected to a client directly at once.
pub const MAX_DIRECT_PEERS: usize = 16;
/// How long a direct connection may last, from the accept: `HI`, the
/// message, the close. A deadline, so that a peer that trickles a byte now
/// and then cannot hold one of the MAX_DIRECT_PEERS places for long.
pub const DIRECT_DEADLINE: Duration = Duration::from_secs(10);
/// What to run when nobody is listening.
pub(crate) const START_SERVER: &str = "cargo run -p relay -- serve";
// ANCHOR_END: client_limits
