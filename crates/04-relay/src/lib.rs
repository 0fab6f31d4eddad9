//! Lesson 4: clients talking through a server.
//!
//! In the original lesson, two clients talk *through* the server: the server
//! accepts client 1 and notes its address, accepts client 2 and notes its
//! address, then hands client 2's address to client 1, which connects to
//! client 2 directly. This lesson builds both halves of that idea:
//!
//! - the server **relays**: a client sends `SEND bob hi`, the server passes
//!   `FROM alice hi` on to bob;
//! - the server **introduces**: `WHERE bob` answers with the address where
//!   bob listens, and alice connects there herself.
//!
//! This file follows the chapter:
//!
//! 1. [the limits](LINE_LIMIT) every part below respects;
//! 2. [`parse_command`]: the protocol, one line at a time;
//! 3. [`Registry`]: who is here, each client with a **bounded** queue of
//!    lines for it, so one stuck receiver never blocks anyone else;
//! 4. [`serve_client`] and its writer thread: one client's conversation;
//! 5. [`serve`]: listen, and a thread per client with a cap (lesson 3);
//! 6. [`join`]: the client, which registers, listens on a port of its own
//!    for direct messages, and turns what you type into commands.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use common::{Deadline, ReadLine, describe, printable, read_line, say};

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
/// How many lines may wait for one client. The server never waits for a
/// receiver: it puts the line in the receiver's queue and goes on. A client
/// whose queue is full has stopped reading, and is dropped rather than let
/// its queue grow without end.
pub const QUEUE_LIMIT: usize = 128;
/// How many clients are served at once unless `--max-clients` says otherwise.
pub const DEFAULT_MAX_CLIENTS: usize = 64;
/// The most `--max-clients` allows: `PEERS` names every client on one line,
/// and 100 names of 32 bytes still fit in LINE_LIMIT.
pub const MAX_CLIENTS_LIMIT: usize = 100;
const _: () = assert!("PEERS".len() + MAX_CLIENTS_LIMIT * (1 + NAME_LIMIT) <= LINE_LIMIT);
/// How long a new connection has to send `HELLO`, counted from the
/// connect, unless `--hello-timeout` says otherwise. Until it registers, a
/// connection holds a client slot and can do nothing else; it is closed
/// rather than held for ever.
pub const DEFAULT_HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one write to a client may wait for room in its socket. A client
/// that stops reading fills its receive buffer and then our send buffer;
/// its writer thread gives up after this and drops it.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// After our last line to a client, how long we read and discard what it
/// still sends while waiting for it to close (see `common::close_gently`).
pub const LINGER: Duration = Duration::from_secs(2);
/// The line a client over the cap gets before its connection is closed.
pub const BUSY_REPLY: &[u8] = b"ERR busy\n";

/// The client waits this long to connect, for `WELCOME`, and for the
/// server to close after `BYE`, unless `--timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// How many peers may be connected to a client directly at once.
pub const MAX_DIRECT_PEERS: usize = 16;
/// How long a direct connection may stay silent before the client closes it.
pub const DIRECT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// What to run when nobody is listening.
const START_SERVER: &str = "cargo run -p relay -- serve";
// ANCHOR_END: limits

// ---------------------------------------------------------------------------
// The protocol
// ---------------------------------------------------------------------------

// ANCHOR: command
/// What a client can ask of the server: one line each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `HELLO <name> [<listen-port>]`: register, optionally with the port
    /// this client listens on for direct connections.
    Hello {
        name: String,
        listen_port: Option<u16>,
    },
    /// `LIST`: who is here.
    List,
    /// `SEND <name> <text>`: relay one line to one client.
    Send { to: String, text: String },
    /// `ALL <text>`: relay one line to every other client.
    All { text: String },
    /// `WHERE <name>`: where that client listens for direct connections.
    Where { name: String },
    /// `BYE`: leave.
    Bye,
}

/// Why a line was refused: the `ERR` line the client gets. The server
/// stays connected, except after `LineTooLong`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Anything but `HELLO` (or `BYE`) before registering.
    HelloFirst,
    /// A `HELLO` after registering.
    AlreadyRegistered,
    /// A name that breaks the rules (see [`valid_name`]).
    BadName,
    /// Someone else has this name.
    NameTaken,
    /// No registered client has this name.
    NoSuchPeer(String),
    /// This client registered without a listen port.
    NotListening(String),
    /// A known command with the wrong arguments; holds the right form.
    Usage(&'static str),
    /// Text longer than TEXT_LIMIT.
    TextTooLong,
    /// The line is not UTF-8.
    NotUtf8,
    /// A command word the server does not know (or an empty line).
    UnknownCommand,
    /// More than LINE_LIMIT bytes without a newline.
    LineTooLong,
}

impl Refusal {
    /// The whole `ERR` line, with its newline.
    pub fn line(&self) -> String {
        match self {
            Refusal::HelloFirst => "ERR hello-first\n".to_string(),
            Refusal::AlreadyRegistered => "ERR already-registered\n".to_string(),
            Refusal::BadName => "ERR bad-name\n".to_string(),
            Refusal::NameTaken => "ERR name-taken\n".to_string(),
            Refusal::NoSuchPeer(name) => format!("ERR no-such-peer {name}\n"),
            Refusal::NotListening(name) => format!("ERR not-listening {name}\n"),
            Refusal::Usage(form) => format!("ERR usage {form}\n"),
            Refusal::TextTooLong => "ERR text-too-long\n".to_string(),
            Refusal::NotUtf8 => "ERR not-utf8\n".to_string(),
            Refusal::UnknownCommand => "ERR unknown-command\n".to_string(),
            Refusal::LineTooLong => "ERR line-too-long\n".to_string(),
        }
    }
}

/// Reads one command line (without its newline). It does no I/O, so a
/// test can throw any bytes at it.
///
/// The command word and the first arguments are separated by single
/// spaces; the text of `SEND` and `ALL` is the rest of the line, spaces
/// and all, and may be empty (`SEND bob ` sends an empty line).
pub fn parse_command(line: &[u8]) -> Result<Command, Refusal> {
    let line = std::str::from_utf8(line).map_err(|_| Refusal::NotUtf8)?;
    let (word, rest) = match line.split_once(' ') {
        Some((word, rest)) => (word, Some(rest)),
        None => (line, None),
    };
    match (word, rest) {
        ("HELLO", rest) => {
            let mut args = rest.unwrap_or("").split(' ');
            let name = args.next().unwrap_or("");
            if !valid_name(name) {
                return Err(Refusal::BadName);
            }
            let usage = Refusal::Usage("HELLO <name> [<listen-port>]");
            let listen_port = match args.next() {
                None => None,
                Some(port) => Some(parse_port(port).ok_or(usage.clone())?),
            };
            if args.next().is_some() {
                return Err(usage);
            }
            Ok(Command::Hello {
                name: name.to_string(),
                listen_port,
            })
        }
        ("LIST", None) => Ok(Command::List),
        ("LIST", Some(_)) => Err(Refusal::Usage("LIST")),
        ("SEND", rest) => {
            let Some((to, text)) = rest.and_then(|rest| rest.split_once(' ')) else {
                return Err(Refusal::Usage("SEND <name> <text>"));
            };
            if !valid_name(to) {
                return Err(Refusal::BadName);
            }
            Ok(Command::Send {
                to: to.to_string(),
                text: checked_text(text)?,
            })
        }
        ("ALL", Some(text)) => Ok(Command::All {
            text: checked_text(text)?,
        }),
        ("ALL", None) => Err(Refusal::Usage("ALL <text>")),
        ("WHERE", Some(name)) if valid_name(name) => Ok(Command::Where {
            name: name.to_string(),
        }),
        ("WHERE", Some(_)) => Err(Refusal::BadName),
        ("WHERE", None) => Err(Refusal::Usage("WHERE <name>")),
        ("BYE", None) => Ok(Command::Bye),
        ("BYE", Some(_)) => Err(Refusal::Usage("BYE")),
        _ => Err(Refusal::UnknownCommand),
    }
}

/// A name is 1 to NAME_LIMIT ASCII letters, digits, `_` and `-`. No spaces
/// (names are separated by spaces in `PEERS`), nothing invisible, and no
/// two names that look alike but differ in their bytes.
pub fn valid_name(name: &str) -> bool {
    (1..=NAME_LIMIT).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

/// A port in decimal digits, 1 to 65535 (`str::parse` would also take `+5`).
fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|&port| port != 0)
}

fn checked_text(text: &str) -> Result<String, Refusal> {
    if text.len() > TEXT_LIMIT {
        return Err(Refusal::TextTooLong);
    }
    Ok(text.to_string())
}
// ANCHOR_END: command

// ---------------------------------------------------------------------------
// The registry: who is here, and a bounded queue for each
// ---------------------------------------------------------------------------

// ANCHOR: registry
/// One registered client, as the other clients' threads reach it.
struct Peer {
    /// Its queue of lines to send. Only its own writer thread writes to its
    /// socket; everyone else puts lines here, without waiting.
    outbox: SyncSender<Vec<u8>>,
    /// A handle to its socket, to disconnect it when it is dropped.
    socket: Arc<TcpStream>,
    /// Its address as `accept()` gave it: the client's IP, and the
    /// ephemeral port its kernel picked for this one connection.
    seen_as: SocketAddr,
    /// The port it announced in `HELLO`, where it listens for direct
    /// connections.
    listen_port: Option<u16>,
}

/// Every registered client, by name. A `BTreeMap` keeps the names sorted,
/// as `PEERS` lists them.
#[derive(Default)]
pub struct Registry {
    peers: BTreeMap<String, Peer>,
}

/// The registry as every client's thread shares it.
pub type Shared = Arc<Mutex<Registry>>;

/// Takes the lock on the registry. A thread that panicked while holding it
/// "poisons" the lock; nothing here panics, and every change to the map is
/// one insert or remove, so the map is whole either way and we go on.
fn lock(registry: &Shared) -> MutexGuard<'_, Registry> {
    registry.lock().unwrap_or_else(PoisonError::into_inner)
}
// ANCHOR_END: registry

// ANCHOR: deliver
/// What happens to a line put in a client's queue.
enum Delivery {
    Queued,
    /// The queue is full: the client has stopped reading.
    Full,
    /// Its writer thread has ended: the connection is gone.
    Gone,
}

/// Puts `line` in `outbox` without waiting. `try_send` never blocks: a
/// full queue is an answer, not a wait. That is the whole point: the
/// thread that relays a line belongs to the *sender*, and must not stop
/// because the receiver is slow.
fn enqueue(outbox: &SyncSender<Vec<u8>>, line: &str) -> Delivery {
    match outbox.try_send(line.as_bytes().to_vec()) {
        Ok(()) => Delivery::Queued,
        Err(TrySendError::Full(_)) => Delivery::Full,
        Err(TrySendError::Disconnected(_)) => Delivery::Gone,
    }
}

impl Registry {
    /// Relays `line` to the client called `to`. Returns false when there is
    /// no such client, or when it had to be dropped because it stopped
    /// reading (the line is then lost with it).
    fn deliver(&mut self, to: &str, line: &str) -> bool {
        let Some(peer) = self.peers.get(to) else {
            return false;
        };
        let why = match enqueue(&peer.outbox, line) {
            Delivery::Queued => return true,
            Delivery::Full => Leaving::Stuck,
            Delivery::Gone => Leaving::Lost,
        };
        let seen_as = peer.seen_as;
        self.remove(to, seen_as, why);
        false
    }

    /// Relays `line` to every client but `from`.
    fn broadcast(&mut self, from: &str, line: &str) {
        let others: Vec<String> = self.peers.keys().filter(|n| *n != from).cloned().collect();
        for name in others {
            self.deliver(&name, line);
        }
    }
}
// ANCHOR_END: deliver

// ANCHOR: join_leave
/// Why a client leaves the registry: how its `... left` log line ends.
enum Leaving {
    /// It said `BYE`.
    Bye,
    /// It closed the connection.
    Closed,
    /// Reading from it failed (a reset, for example).
    Failed(io::Error),
    /// It sent a line over LINE_LIMIT.
    TooLong,
    /// Its queue was full: it stopped reading.
    Stuck,
    /// Its writer thread ended: writing to it failed or timed out.
    Lost,
}

impl Registry {
    /// Registers `name`, queues `welcome` as its very first line, and tells
    /// everyone else `JOINED <name>`. False when `welcome` found no room:
    /// the client is not reading its answers, and is not registered.
    fn register(&mut self, name: &str, peer: Peer, welcome: &str) -> Result<bool, Refusal> {
        if self.peers.contains_key(name) {
            return Err(Refusal::NameTaken);
        }
        // Queued while we hold the lock, so nothing relayed to the new
        // client can get ahead of its WELCOME. Its queue is empty unless it
        // sent a pile of lines before HELLO without reading the answers.
        if !matches!(enqueue(&peer.outbox, welcome), Delivery::Queued) {
            return Ok(false);
        }
        match peer.listen_port {
            Some(port) => say!("{name} joined from {}, direct port {port}", peer.seen_as),
            None => say!("{name} joined from {}", peer.seen_as),
        }
        self.peers.insert(name.to_string(), peer);
        self.broadcast(name, &format!("JOINED {name}\n"));
        Ok(true)
    }

    /// Removes `name`, if it is still the client connected from `seen_as`
    /// (its name may already belong to someone new), and tells everyone
    /// else `LEFT <name>`.
    ///
    /// Telling them can find another client's queue full, and that client
    /// leaves too: the loop works through them all.
    fn remove(&mut self, name: &str, seen_as: SocketAddr, why: Leaving) {
        let mut leaving = vec![(name.to_string(), seen_as, why)];
        while let Some((name, seen_as, why)) = leaving.pop() {
            match self.peers.get(&name) {
                Some(peer) if peer.seen_as == seen_as => {}
                _ => continue, // gone already
            }
            let Some(peer) = self.peers.remove(&name) else {
                continue;
            };
            match &why {
                Leaving::Bye | Leaving::Closed => say!("{name} left"),
                Leaving::Failed(err) => say!("{name} left (connection error: {})", describe(err)),
                Leaving::TooLong => say!("{name} left (line longer than {LINE_LIMIT} bytes)"),
                Leaving::Stuck => {
                    say!(
                        "{name} left (dropped: {QUEUE_LIMIT} lines were waiting, it is not reading)"
                    )
                }
                Leaving::Lost => say!("{name} left (dropped: could not write to it)"),
            }
            if matches!(why, Leaving::Stuck | Leaving::Lost) {
                // Disconnect it: its reader thread sees the end and stops, and
                // a write its writer thread is stuck in fails at once.
                let _ = peer.socket.shutdown(Shutdown::Both);
            }
            let notice = format!("LEFT {name}\n");
            for (other, peer) in &self.peers {
                match enqueue(&peer.outbox, &notice) {
                    Delivery::Queued => {}
                    Delivery::Full => leaving.push((other.clone(), peer.seen_as, Leaving::Stuck)),
                    Delivery::Gone => leaving.push((other.clone(), peer.seen_as, Leaving::Lost)),
                }
            }
        }
    }
}
// ANCHOR_END: join_leave

// ---------------------------------------------------------------------------
// One client's conversation
// ---------------------------------------------------------------------------

// ANCHOR: writer
/// A client's writer thread: takes lines from its queue and writes them to
/// its socket, until every sender of the queue is gone (the client has
/// left the registry and its reader thread has ended).
///
/// This is the only thread that writes to this socket, so lines never mix,
/// and the only one that waits for this client to read. If it waits too
/// long (WRITE_TIMEOUT), or writing fails, it disconnects the client.
fn write_lines(mut stream: TcpStream, queue: Receiver<Vec<u8>>) {
    for line in queue {
        if stream.write_all(&line).is_err() {
            // Wake the reader thread (its read returns at once), so the
            // client leaves the registry.
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
    }
    // The last line (`BYE`, or `ERR line-too-long`) is written: close
    // without a reset destroying it (lesson 2).
    common::close_gently(stream, LINGER);
}
// ANCHOR_END: writer

// ANCHOR: serve_client
/// What one client's reader thread knows about its client.
struct Client {
    seen_as: SocketAddr,
    /// A handle to the socket, for the registry (to disconnect a client
    /// that stops reading) and for the socket's options.
    socket: Arc<TcpStream>,
    /// Its own queue: replies go through the writer thread too.
    outbox: SyncSender<Vec<u8>>,
    /// Its name, once registered.
    name: Option<String>,
    registry: Shared,
}

/// Serves one client until it leaves: starts its writer thread, reads its
/// lines, and on every way out removes it from the registry.
pub fn serve_client(
    stream: TcpStream,
    seen_as: SocketAddr,
    registry: Shared,
    hello_timeout: Duration,
) {
    // The HELLO deadline counts from now, however the bytes trickle in.
    let hello_by = Instant::now() + hello_timeout;
    // Socket options belong to the socket, so every handle shares them.
    // TCP_NODELAY: send each line at once. By default the kernel holds a
    // small write back until the previous one is acknowledged (Nagle's
    // algorithm), and the receiver delays its acknowledgements by up to
    // 40 ms hoping to send them with a reply: a chat of short lines would
    // stall for 40 ms at a time.
    let handles = stream
        .set_nodelay(true)
        .and_then(|()| stream.set_write_timeout(Some(WRITE_TIMEOUT)))
        .and_then(|()| Ok((stream.try_clone()?, stream.try_clone()?)));
    let (writer, socket) = match handles {
        Ok(handles) => handles,
        Err(err) => {
            say!(
                "[{seen_as}] could not set up the connection: {}",
                describe(&err)
            );
            return;
        }
    };
    let (outbox, queue) = mpsc::sync_channel(QUEUE_LIMIT);
    thread::spawn(move || write_lines(writer, queue));

    let mut client = Client {
        seen_as,
        socket: Arc::new(socket),
        outbox,
        name: None,
        registry,
    };
    let why = client.converse(stream, hello_by);
    match client.name.take() {
        Some(name) => lock(&client.registry).remove(&name, seen_as, why),
        None => match why {
            Leaving::Bye | Leaving::Closed => say!("[{seen_as}] left without registering"),
            Leaving::Failed(err) if is_timeout(&err) => say!(
                "[{seen_as}] no HELLO within {} s, closing",
                hello_timeout.as_secs_f64()
            ),
            Leaving::Failed(err) => say!("[{seen_as}] connection error: {}", describe(&err)),
            Leaving::TooLong => say!("[{seen_as}] line longer than {LINE_LIMIT} bytes, closing"),
            Leaving::Stuck => say!("[{seen_as}] dropped: it is not reading"),
            Leaving::Lost => say!("[{seen_as}] dropped: could not write to it"),
        },
    }
    // `client.outbox` goes here: once the registry has let go of its copy
    // too, the writer thread sends what is queued and closes.
}
// ANCHOR_END: serve_client

// ANCHOR: converse
impl Client {
    /// Reads lines and answers them until the client leaves, and says why.
    fn converse(&mut self, stream: TcpStream, hello_by: Instant) -> Leaving {
        // Until HELLO, every read may only wait for what is left of the
        // HELLO deadline (lesson 5 explains why a timeout is not enough).
        let mut lines = BufReader::new(Deadline {
            stream: &stream,
            until: Some(hello_by),
        });
        loop {
            let line = match read_line(&mut lines, LINE_LIMIT) {
                Ok(ReadLine::Line(line)) => line,
                Ok(ReadLine::Closed) => return Leaving::Closed,
                Ok(ReadLine::TooLong) => {
                    self.reply(&Refusal::LineTooLong.line());
                    return Leaving::TooLong;
                }
                Err(err) => {
                    // Only the HELLO deadline times out: say why we close.
                    if is_timeout(&err) && self.name.is_none() {
                        self.reply(&Refusal::HelloFirst.line());
                    }
                    return Leaving::Failed(err);
                }
            };
            let answer = match (&self.name, parse_command(&line)) {
                (_, Ok(Command::Bye)) => {
                    self.reply("BYE\n");
                    return Leaving::Bye;
                }
                (None, Ok(Command::Hello { name, listen_port })) => {
                    match self.register(name, listen_port) {
                        Ok(true) => {
                            // Registered clients may stay quiet as long as they like.
                            lines.get_mut().until = None;
                            let _ = stream.set_read_timeout(None);
                            Ok(None)
                        }
                        Ok(false) => return Leaving::Stuck,
                        Err(refusal) => Err(refusal),
                    }
                }
                (None, Err(refusal)) if is_hello(&line) => Err(refusal),
                (None, _) => Err(Refusal::HelloFirst),
                (Some(_), Ok(Command::Hello { .. })) => Err(Refusal::AlreadyRegistered),
                (Some(me), Ok(command)) => self.act(me, command).map(Some),
                (Some(_), Err(refusal)) => Err(refusal),
            };
            let delivered = match answer {
                Ok(None) => true,
                Ok(Some(reply)) => self.reply(&reply),
                Err(refusal) => {
                    say!(
                        "{} sent \"{}\": {}",
                        self.who(),
                        printable(&line),
                        refusal.line().trim_end()
                    );
                    self.reply(&refusal.line())
                }
            };
            if !delivered {
                return Leaving::Lost;
            }
        }
    }

    /// Queues a reply for this client, waiting for room if its queue is
    /// full. Other clients' lines never wait (`try_send`); a client's own
    /// replies do, because the only one held up is the client that sends
    /// commands faster than it reads the answers: it is slowed down to the
    /// pace it reads at, as TCP itself would do. A client that stops reading
    /// altogether makes its writer give up after WRITE_TIMEOUT, and then
    /// this returns false.
    fn reply(&self, line: &str) -> bool {
        self.outbox.send(line.as_bytes().to_vec()).is_ok()
    }

    /// The client as the log names it: its name, or its address before that.
    fn who(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("[{}]", self.seen_as),
        }
    }
}

/// Whether `line` is a `HELLO` (a malformed one gets its own refusal, not
/// `hello-first`).
fn is_hello(line: &[u8]) -> bool {
    line == b"HELLO" || line.starts_with(b"HELLO ")
}

/// A read timeout shows up as WouldBlock on Unix and TimedOut on Windows.
fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}
// ANCHOR_END: converse

// ANCHOR: register
impl Client {
    /// `HELLO <name> [<listen-port>]`: joins the registry. The answer,
    /// `WELCOME <name> <address>`, is queued by the registry itself, first
    /// of all the lines this client gets. False: see [`Registry::register`].
    fn register(&mut self, name: String, listen_port: Option<u16>) -> Result<bool, Refusal> {
        let peer = Peer {
            outbox: self.outbox.clone(),
            socket: Arc::clone(&self.socket),
            seen_as: self.seen_as,
            listen_port,
        };
        // An IPv4 client of a server listening on [::] shows up as
        // ::ffff:127.0.0.1; to_canonical() gives back 127.0.0.1.
        let seen_as = SocketAddr::new(self.seen_as.ip().to_canonical(), self.seen_as.port());
        let welcome = format!("WELCOME {name} {seen_as}\n");
        let welcomed = lock(&self.registry).register(&name, peer, &welcome)?;
        if welcomed {
            self.name = Some(name);
        }
        Ok(welcomed)
    }
}
// ANCHOR_END: register

// ANCHOR: act
impl Client {
    /// A registered client's command. Returns the reply line.
    fn act(&self, me: &str, command: Command) -> Result<String, Refusal> {
        let mut registry = lock(&self.registry);
        match command {
            Command::List => {
                let names: Vec<&str> = registry.peers.keys().map(String::as_str).collect();
                Ok(format!("PEERS {}\n", names.join(" ")))
            }
            Command::Send { to, text } => {
                if !registry.deliver(&to, &format!("FROM {me} {text}\n")) {
                    return Err(Refusal::NoSuchPeer(to));
                }
                say!("{me} -> {to}: {}", printable(text.as_bytes()));
                Ok(format!("SENT {to}\n"))
            }
            Command::All { text } => {
                registry.broadcast(me, &format!("FROM {me} {text}\n"));
                say!("{me} -> everyone: {}", printable(text.as_bytes()));
                Ok("SENT *\n".to_string())
            }
            Command::Where { name } => {
                let Some(peer) = registry.peers.get(&name) else {
                    return Err(Refusal::NoSuchPeer(name));
                };
                // The introduction: the IP the server saw, with the port
                // the client *announced*. The port from accept() is the
                // client's outgoing ephemeral port, where nobody listens.
                let Some(port) = peer.listen_port else {
                    return Err(Refusal::NotListening(name));
                };
                let at = SocketAddr::new(peer.seen_as.ip().to_canonical(), port);
                say!("{me} asked where {name} is: {at}");
                Ok(format!("AT {name} {at}\n"))
            }
            // Handled by `converse` before it gets here.
            Command::Hello { .. } | Command::Bye => Err(Refusal::UnknownCommand),
        }
    }
}
// ANCHOR_END: act

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

// ANCHOR: serve
/// How the server runs, from the command line.
pub struct ServeOptions {
    /// The address to listen on.
    pub listen: String,
    /// The cap on clients served at once.
    pub max_clients: usize,
    /// How long a new connection has to send `HELLO`.
    pub hello_timeout: Duration,
}

/// Listens, then serves clients, a thread each, until the process is
/// stopped. An error means the server could not start.
pub fn serve(options: &ServeOptions) -> anyhow::Result<()> {
    let listener = common::listen(&options.listen, DEFAULT_PORT)?;
    let registry = Shared::default();
    let hello_timeout = options.hello_timeout;
    // A thread per client, at most max_clients at once (lesson 3).
    common::serve_threads(
        listener,
        options.max_clients,
        BUSY_REPLY,
        move |stream, client| serve_client(stream, client, Arc::clone(&registry), hello_timeout),
    );
    Ok(())
}
// ANCHOR_END: serve

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

// ANCHOR: join_options
/// How the client runs, from the command line.
pub struct JoinOptions {
    /// The name to register.
    pub name: String,
    /// The relay server's address.
    pub server: String,
    /// Listen for direct connections (and announce the port in `HELLO`).
    pub listen: bool,
    /// How long to wait to connect, for `WELCOME`, and for the close after `BYE`.
    pub timeout: Duration,
}
// ANCHOR_END: join_options

// ANCHOR: join
/// Joins the relay as `options.name`, then sends what is typed on `input`
/// and prints what arrives, until `/quit` or the end of `input`.
pub fn join(options: &JoinOptions, input: impl BufRead + Send + 'static) -> anyhow::Result<()> {
    if !valid_name(&options.name) {
        bail!(
            "bad name {:?}: a name is 1 to {NAME_LIMIT} letters, digits, `_` or `-`",
            options.name
        );
    }
    // Connect, as in lesson 1. The kernel picks our local (ephemeral) port.
    let stream = common::connect(&options.server, DEFAULT_PORT, options.timeout, START_SERVER)?;
    let server = stream
        .peer_addr()
        .context("could not read the server's address")?;
    let local = stream
        .local_addr()
        .context("could not read our own address")?;
    say!("connected to {server} (local {local})");

    // Nobody can connect to that ephemeral port: it belongs to this one
    // connection. To be reachable we listen on a port of our own, on the IP
    // this connection leaves from (the one the server sees, unless a NAT
    // router stands between us), and announce it.
    let direct = if options.listen {
        Some(listen_for_direct(local.ip())?)
    } else {
        None
    };
    let direct_port = direct.as_ref().map(|(_, addr)| addr.port());

    let (mut session, lines) = Session::hello(stream, server, options, direct_port)?;
    if let Some((listener, _)) = direct {
        thread::spawn(move || receive_direct(listener));
    }
    session.run(lines, input)
}

/// Listens for direct connections on `ip`, on a port the kernel picks.
fn listen_for_direct(ip: IpAddr) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener =
        TcpListener::bind((ip, 0)).map_err(|err| common::bind_error(&format!("{ip}:0"), &err))?;
    let addr = listener
        .local_addr()
        .context("could not read the address we listen on")?;
    say!("listening for direct messages on {addr}");
    Ok((listener, addr))
}
// ANCHOR_END: join

// ANCHOR: hello
/// A client that has joined: its connection and what it has learned.
struct Session {
    stream: TcpStream,
    server: SocketAddr,
    name: String,
    timeout: Duration,
    /// Where peers listen, from the server's `AT` answers.
    known: HashMap<String, SocketAddr>,
    /// Direct messages waiting for an `AT` answer: (to, text).
    waiting: Vec<(String, String)>,
}

impl Session {
    /// Sends `HELLO` and waits for `WELCOME`. Returns the session and the
    /// reader of the server's lines, which may already hold the lines that
    /// came right after `WELCOME`.
    fn hello(
        mut stream: TcpStream,
        server: SocketAddr,
        options: &JoinOptions,
        direct_port: Option<u16>,
    ) -> anyhow::Result<(Session, BufReader<TcpStream>)> {
        let name = options.name.as_str();
        let hello = match direct_port {
            Some(port) => format!("HELLO {name} {port}\n"),
            None => format!("HELLO {name}\n"),
        };
        // Each typed line goes out at once (see TCP_NODELAY in serve_client).
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(options.timeout))?;
        stream
            .write_all(hello.as_bytes())
            .map_err(|err| anyhow!("could not send to {server}: {}", describe(&err)))?;

        stream.set_read_timeout(Some(options.timeout))?;
        let mut lines = BufReader::new(stream.try_clone().context("could not clone the socket")?);
        let answer = match read_line(&mut lines, LINE_LIMIT) {
            Ok(ReadLine::Line(line)) => printable(&line),
            Ok(ReadLine::Closed) => {
                bail!("the server at {server} closed the connection before answering HELLO")
            }
            Ok(ReadLine::TooLong) => {
                bail!("the server at {server} sent a line longer than {LINE_LIMIT} bytes")
            }
            Err(err) if is_timeout(&err) => bail!(
                "no answer to HELLO from {server} within {} s (is it a relay server? try: {START_SERVER})",
                options.timeout.as_secs_f64()
            ),
            Err(err) => bail!("lost the connection to {server}: {}", describe(&err)),
        };
        let words: Vec<&str> = answer.split(' ').collect();
        let seen_as = match words[..] {
            ["WELCOME", welcomed, seen_as] if welcomed == name => seen_as,
            ["ERR", "name-taken"] => bail!(
                "the server at {server} already has a client called {name}: pick another name"
            ),
            ["ERR", "busy"] => bail!(
                "the server at {server} is serving the most clients it allows: try again later"
            ),
            _ => bail!("the server at {server} did not welcome us: {answer}"),
        };
        say!("joined as {name}; the server sees us as {seen_as}");
        if let Some(port) = direct_port {
            say!(
                "(that port belongs to this one connection, and nobody listens there; peers reach us directly on port {port}, which we announced)"
            );
        }
        // From now on we wait for the server as long as it takes.
        stream.set_read_timeout(None)?;
        let session = Session {
            stream,
            server,
            name: name.to_string(),
            timeout: options.timeout,
            known: HashMap::new(),
            waiting: Vec::new(),
        };
        Ok((session, lines))
    }
}
// ANCHOR_END: hello

// ANCHOR: run
/// What the client's threads report to the main one.
enum Event {
    /// A line typed on standard input (without its newline).
    Typed(Vec<u8>),
    /// Standard input ended (Ctrl-D, or the end of a piped file).
    EndOfInput,
    /// A line from the server.
    FromServer(Vec<u8>),
    /// The server closed the connection, or reading from it failed: why.
    ServerGone(String),
}

impl Session {
    /// The event loop: a thread waits for typed lines, another for the
    /// server's lines, and this one handles whichever comes first (lesson 1
    /// does the same with replies).
    fn run(
        &mut self,
        lines: BufReader<TcpStream>,
        input: impl BufRead + Send + 'static,
    ) -> anyhow::Result<()> {
        let (events, next_event) = mpsc::channel();

        let (to_main, server) = (events.clone(), self.server);
        thread::spawn(move || read_server_lines(lines, server, &to_main));

        thread::spawn(move || {
            for line in input.split(b'\n') {
                let Ok(line) = line else { break };
                if events.send(Event::Typed(line)).is_err() {
                    return;
                }
            }
            let _ = events.send(Event::EndOfInput);
        });

        loop {
            match next_event.recv() {
                Ok(Event::Typed(line)) => {
                    if !self.typed(&line)? {
                        return self.quit(&next_event);
                    }
                }
                Ok(Event::EndOfInput) => return self.quit(&next_event),
                Ok(Event::FromServer(line)) => self.heard(&line),
                Ok(Event::ServerGone(why)) => bail!("{why}"),
                Err(mpsc::RecvError) => bail!("lost track of the connection to {}", self.server),
            }
        }
    }

    /// `/quit`: says `BYE`, and waits for the server's `BYE` and close.
    fn quit(&mut self, next_event: &Receiver<Event>) -> anyhow::Result<()> {
        self.send("BYE")?;
        loop {
            match next_event.recv_timeout(self.timeout) {
                Ok(Event::FromServer(line)) => self.heard(&line),
                Ok(Event::ServerGone(_)) => return Ok(()),
                Ok(Event::Typed(_) | Event::EndOfInput) => {}
                Err(_) => bail!(
                    "the server at {} did not close the connection within {} s of BYE",
                    self.server,
                    self.timeout.as_secs_f64()
                ),
            }
        }
    }

    /// Sends one protocol line.
    fn send(&mut self, line: &str) -> anyhow::Result<()> {
        self.stream
            .write_all(format!("{line}\n").as_bytes())
            .map_err(|err| anyhow!("could not send to {}: {}", self.server, describe(&err)))
    }
}

/// The server-reading thread: each line to the main thread, then why it ended.
fn read_server_lines(
    mut lines: BufReader<TcpStream>,
    server: SocketAddr,
    events: &mpsc::Sender<Event>,
) {
    let why = loop {
        match read_line(&mut lines, LINE_LIMIT) {
            Ok(ReadLine::Line(line)) => {
                if events.send(Event::FromServer(line)).is_err() {
                    return;
                }
            }
            Ok(ReadLine::Closed) => break format!("the server at {server} closed the connection"),
            Ok(ReadLine::TooLong) => {
                break format!("the server at {server} sent a line longer than {LINE_LIMIT} bytes");
            }
            Err(err) => break format!("lost the connection to {server}: {}", describe(&err)),
        }
    };
    let _ = events.send(Event::ServerGone(why));
}
// ANCHOR_END: run

// ANCHOR: typed
/// What a typed line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Typed {
    /// A protocol line to send to the server as it is.
    Line(String),
    /// `/direct NAME TEXT`: send TEXT straight to NAME, not through the server.
    Direct { to: String, text: String },
    /// `/quit`.
    Quit,
    /// `/help`, or a command we do not know: print this.
    Help(String),
    /// An empty line: nothing.
    Nothing,
}

/// The commands, for `/help`.
pub const HELP: &str = "commands: /list, /to NAME TEXT, /all TEXT (or just TEXT), /where NAME, /direct NAME TEXT, /quit";

/// Turns a typed line into what to do. A plain line goes to everyone.
pub fn typed(line: &str) -> Typed {
    let line = line.trim_end_matches('\r');
    if line.is_empty() {
        return Typed::Nothing;
    }
    if !line.starts_with('/') {
        return Typed::Line(format!("ALL {line}"));
    }
    let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
    let (first, text) = rest.split_once(' ').unwrap_or((rest, ""));
    match command {
        "/list" => Typed::Line("LIST".to_string()),
        "/to" => Typed::Line(format!("SEND {first} {text}")),
        "/all" => Typed::Line(format!("ALL {rest}")),
        "/where" => Typed::Line(format!("WHERE {rest}")),
        "/direct" if valid_name(first) => Typed::Direct {
            to: first.to_string(),
            text: text.to_string(),
        },
        "/direct" => Typed::Help("usage: /direct NAME TEXT".to_string()),
        "/quit" => Typed::Quit,
        "/help" => Typed::Help(HELP.to_string()),
        _ => Typed::Help(format!("unknown command {command}; {HELP}")),
    }
}

impl Session {
    /// Acts on one typed line. False for `/quit`.
    fn typed(&mut self, line: &[u8]) -> anyhow::Result<bool> {
        let Ok(line) = std::str::from_utf8(line) else {
            say!("-- not sent: the protocol carries UTF-8 text only");
            return Ok(true);
        };
        match typed(line) {
            Typed::Line(line) if line.len() > LINE_LIMIT => {
                say!("-- not sent: longer than {LINE_LIMIT} bytes");
            }
            Typed::Line(line) => self.send(&line)?,
            Typed::Direct { to, text } => match self.known.get(&to) {
                Some(&addr) => send_direct(&self.name, &to, addr, text, self.timeout),
                None => {
                    // Ask the server first; `heard` sends it on `AT`.
                    self.waiting.push((to.clone(), text));
                    self.send(&format!("WHERE {to}"))?;
                }
            },
            Typed::Quit => return Ok(false),
            Typed::Help(help) => say!("-- {help}"),
            Typed::Nothing => {}
        }
        Ok(true)
    }
}
// ANCHOR_END: typed

// ANCHOR: heard
impl Session {
    /// Prints one line from the server in words, and acts on introductions.
    fn heard(&mut self, line: &[u8]) {
        let text = printable(line);
        let words: Vec<&str> = text.splitn(3, ' ').collect();
        match words[..] {
            ["FROM", from, said] => say!("[{from}] {said}"),
            ["FROM", from] => say!("[{from}] "),
            ["JOINED", name] => say!("-- {name} joined"),
            ["LEFT", name] => {
                // Where it listened is no longer worth anything.
                self.known.remove(name);
                say!("-- {name} left");
            }
            ["PEERS", ..] => say!("-- here: {}", words[1..].join(" ")),
            ["SENT", "*"] => say!("-- sent to everyone"),
            ["SENT", name] => say!("-- sent to {name}"),
            ["AT", name, at] => {
                say!("-- {name} listens for direct messages at {at}");
                if let Ok(addr) = at.parse() {
                    self.known.insert(name.to_string(), addr);
                    self.send_waiting(name, Some(addr));
                }
            }
            ["ERR", "not-listening" | "no-such-peer", name] => {
                say!("-- error: {}", words[1..].join(" "));
                self.send_waiting(name, None);
            }
            ["ERR", ..] => say!("-- error: {}", words[1..].join(" ")),
            ["BYE"] => say!("-- bye"),
            _ => say!("-- unexpected line from the server: {text}"),
        }
    }

    /// Sends the direct messages that waited for `name`'s address, or drops
    /// them when it has none.
    fn send_waiting(&mut self, name: &str, addr: Option<SocketAddr>) {
        let (ready, still): (Vec<_>, Vec<_>) =
            self.waiting.drain(..).partition(|(to, _)| to == name);
        self.waiting = still;
        for (to, text) in ready {
            match addr {
                Some(addr) => send_direct(&self.name, &to, addr, text, self.timeout),
                None => say!(
                    "-- not sent directly to {to}: {}",
                    printable(text.as_bytes())
                ),
            }
        }
    }
}
// ANCHOR_END: heard

// ---------------------------------------------------------------------------
// Direct connections
// ---------------------------------------------------------------------------

// ANCHOR: direct
/// Sends `text` straight to the peer at `addr`, on a thread of its own so
/// that a slow connect does not hold up the rest: connect, `HI <me>`, the
/// line, half-close. The server never sees it.
fn send_direct(me: &str, to: &str, addr: SocketAddr, text: String, timeout: Duration) {
    let (me, to) = (me.to_string(), to.to_string());
    thread::spawn(move || {
        let sent = TcpStream::connect_timeout(&addr, timeout).and_then(|mut stream| {
            stream.set_write_timeout(Some(timeout))?;
            stream.write_all(format!("HI {me}\n{text}\n").as_bytes())?;
            stream.shutdown(Shutdown::Write)
        });
        match sent {
            Ok(()) => say!("[direct to {to} at {addr}] {}", printable(text.as_bytes())),
            Err(err) => say!(
                "-- could not reach {to} directly at {addr}: {}",
                describe(&err)
            ),
        }
    });
}

/// Accepts direct connections from peers, a thread each (at most
/// MAX_DIRECT_PEERS), and prints what they send.
fn receive_direct(listener: TcpListener) {
    common::serve_threads(listener, MAX_DIRECT_PEERS, BUSY_REPLY, |stream, peer| {
        if let Err(why) = read_direct(stream) {
            say!("-- direct connection from {peer}: {why}");
        }
    });
}

/// One direct connection: `HI <name>`, then lines until the peer closes.
fn read_direct(stream: TcpStream) -> Result<(), String> {
    stream
        .set_read_timeout(Some(DIRECT_IDLE_TIMEOUT))
        .map_err(|err| describe(&err))?;
    let mut lines = BufReader::new(stream);
    let mut next = || match read_line(&mut lines, LINE_LIMIT) {
        Ok(ReadLine::Line(line)) => Ok(Some(line)),
        Ok(ReadLine::Closed) => Ok(None),
        Ok(ReadLine::TooLong) => Err(format!("a line longer than {LINE_LIMIT} bytes, closed")),
        Err(err) => Err(describe(&err)),
    };
    // The peer says who it is. Nothing proves it: anyone who can reach
    // this port can claim any name (the chapter says more).
    let first = next()?.unwrap_or_default();
    let from = match std::str::from_utf8(&first)
        .ok()
        .and_then(|l| l.strip_prefix("HI "))
    {
        Some(name) if valid_name(name) => name.to_string(),
        _ => {
            return Err(format!(
                "expected HI <name>, got \"{}\"; closed",
                printable(&first)
            ));
        }
    };
    while let Some(line) = next()? {
        say!("[direct from {from}] {}", printable(&line));
    }
    Ok(())
}
// ANCHOR_END: direct
