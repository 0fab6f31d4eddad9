//! The server: the registry of who is here, each client with a bounded queue
//! and a writer thread of its own, one client's conversation, and `serve`.

use std::collections::BTreeMap;
use std::io::{self, BufReader, ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use common::{Deadline, ReadLine, describe, printable, read_line, say};

use crate::limits::{
    BUSY_REPLY, DEFAULT_PORT, LINE_LIMIT, LINGER, NOTICE_ROOM, QUEUE_LIMIT, RELAY_WAIT,
};
use crate::protocol::{Command, Refusal, parse_command};

// ---------------------------------------------------------------------------
// The registry: who is here, and a bounded queue for each
// ---------------------------------------------------------------------------

// ANCHOR: registry
/// One client's queue of lines to send, as every thread reaches it: a
/// bounded channel that only the client's writer thread reads from.
#[derive(Clone)]
struct Outbox {
    lines: SyncSender<Vec<u8>>,
    room: Arc<Room>,
}

/// What the senders to a queue and its writer thread share.
#[derive(Default)]
struct Room {
    /// How many lines wait in the queue (the channel does not say).
    waiting: AtomicUsize,
    /// Signalled by the writer thread each time it takes a line out, and
    /// when it ends: a sender waiting for room looks again.
    lock: Mutex<()>,
    signal: Condvar,
}

/// One registered client, as the other clients' threads reach it.
struct Peer {
    /// Its queue. Only its own writer thread writes to its socket; everyone
    /// else puts lines here.
    outbox: Outbox,
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

/// Takes a lock. A thread that panicked while holding it "poisons" the
/// lock; nothing here panics, and every change under a lock is one insert
/// or remove, so what it guards is whole either way and we go on.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
// ANCHOR_END: registry

// ANCHOR: deliver
/// What happens to a line offered to a client's queue.
enum Delivery {
    Queued,
    /// The queue stayed full until the time given: the client reads
    /// slower than it is sent to, or not at all.
    Full,
    /// Its writer thread has ended, or it has left: the connection is gone.
    Gone,
}

/// How much of a queue a line may fill.
#[derive(Clone, Copy)]
enum Kind {
    /// A line relayed from another client: QUEUE_LIMIT lines at most.
    Relayed,
    /// `WELCOME`, `JOINED`, `LEFT`: also the NOTICE_ROOM kept beyond it.
    Notice,
}

impl Outbox {
    /// A new queue, and its receiving end for the writer thread.
    fn new() -> (Outbox, Receiver<Vec<u8>>) {
        let (lines, queue) = mpsc::sync_channel(QUEUE_LIMIT + NOTICE_ROOM);
        let room = Arc::new(Room::default());
        (Outbox { lines, room }, queue)
    }
}

impl Room {
    /// Tells whoever waits for room to look again (the writer calls it).
    fn wake(&self) {
        let _guard = lock(&self.lock);
        self.signal.notify_all();
    }
}

/// Puts `line` in `outbox`, waiting for room until `until` at most; with
/// `until` already past, it never waits. The wait is the *sender's*: the
/// thread that relays a line belongs to the client that sent it, so a
/// sender that outruns its receiver is slowed down to the receiver's pace,
/// and nobody else is. The registry is never locked while this waits.
fn enqueue(outbox: &Outbox, line: &str, kind: Kind, until: Instant) -> Delivery {
    // exercise 4.2: begin
    let limit = match kind {
        Kind::Relayed => QUEUE_LIMIT,
        Kind::Notice => QUEUE_LIMIT + NOTICE_ROOM,
    };
    let room = &outbox.room;
    // Checked and sent under the room lock, so that the writer's signal
    // cannot come between "no room" and the wait, and be missed.
    let mut guard = lock(&room.lock);
    loop {
        if room.waiting.load(Ordering::SeqCst) < limit {
            room.waiting.fetch_add(1, Ordering::SeqCst);
            match outbox.lines.try_send(line.as_bytes().to_vec()) {
                Ok(()) => return Delivery::Queued,
                Err(TrySendError::Disconnected(_)) => return Delivery::Gone,
                // Full although under the limit: a reply of the client's
                // own took the last place. Wait like any full queue.
                Err(TrySendError::Full(_)) => {
                    room.waiting.fetch_sub(1, Ordering::SeqCst);
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

impl Client {
    /// Relays `line` to the client called `to`, waiting at most RELAY_WAIT
    /// for room in its queue. The registry is locked only to find the
    /// queue, never during the wait.
    fn deliver(&self, to: &str, line: &str) -> Delivery {
        // exercise 4.2: begin
        let outbox = match lock(&self.registry).peers.get(to) {
            Some(peer) => peer.outbox.clone(),
            None => return Delivery::Gone,
        };
        enqueue(&outbox, line, Kind::Relayed, Instant::now() + RELAY_WAIT)
        // exercise 4.2: end
    }

    /// Relays `line` to every client but `me`. Returns the names of those
    /// whose queue stayed full for RELAY_WAIT: they miss this line.
    fn broadcast(&self, me: &str, line: &str) -> Vec<String> {
        let others: Vec<(String, Outbox)> = lock(&self.registry)
            .peers
            .iter()
            .filter(|(name, _)| *name != me)
            .map(|(name, peer)| (name.clone(), peer.outbox.clone()))
            .collect();
        // First every queue with room, without waiting: a full queue must
        // not delay the line for anyone else.
        let now = Instant::now();
        let full: Vec<(String, Outbox)> = others
            .into_iter()
            .filter(|(_, outbox)| {
                matches!(enqueue(outbox, line, Kind::Relayed, now), Delivery::Full)
            })
            .collect();
        // Then the full ones, all within one RELAY_WAIT.
        let until = Instant::now() + RELAY_WAIT;
        full.into_iter()
            .filter(|(_, outbox)| {
                matches!(enqueue(outbox, line, Kind::Relayed, until), Delivery::Full)
            })
            .map(|(name, _)| name)
            .collect()
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
    /// Its writer could not write a line within `--stuck-after`
    /// (STUCK_AFTER unless told otherwise): it stopped reading.
    Stuck,
    /// Writing to it failed.
    Lost,
}

impl Leaving {
    /// The server's log line for registered client `name` leaving this way
    /// (`stuck_after`: how long its writer waited, for `Stuck`).
    fn say_left(&self, name: &str, stuck_after: Duration) {
        match self {
            Leaving::Bye | Leaving::Closed => say!("{name} left"),
            Leaving::Failed(err) => say!("{name} left (connection error: {})", describe(err)),
            Leaving::TooLong => say!("{name} left (line longer than {LINE_LIMIT} bytes)"),
            Leaving::Stuck => say!(
                "{name} left (dropped: it took no line for {} s, it is not reading)",
                stuck_after.as_secs()
            ),
            Leaving::Lost => say!("{name} left (dropped: could not write to it)"),
        }
    }
}

/// Says, once the registry is unlocked, who missed a notice because its
/// queue was full even for notices (it is far behind; it is not dropped
/// for that: its writer drops it if it stops reading).
fn say_missed(missed: &[String], notice: &str) {
    if !missed.is_empty() {
        say!("{} missed `{notice}`: queue full", missed.join(", "));
    }
}

impl Registry {
    /// Registers `name`, queues `welcome` as its very first line, and tells
    /// everyone else `JOINED <name>`, never waiting (the registry is
    /// locked). Returns who missed the notice, or `None` when `welcome`
    /// found no room: the client is not reading its answers, and is not
    /// registered. Nothing is logged here: nothing logs while holding the
    /// lock that every client needs.
    fn register(
        &mut self,
        name: &str,
        peer: Peer,
        welcome: &str,
    ) -> Result<Option<Vec<String>>, Refusal> {
        if self.peers.contains_key(name) {
            return Err(Refusal::NameTaken);
        }
        // Queued while we hold the lock, so nothing relayed to the new
        // client can get ahead of its WELCOME. Its queue is empty unless it
        // sent a pile of lines before HELLO without reading the answers.
        if !matches!(
            enqueue(&peer.outbox, welcome, Kind::Notice, Instant::now()),
            Delivery::Queued
        ) {
            return Ok(None);
        }
        let missed = self.notify(&format!("JOINED {name}\n"));
        self.peers.insert(name.to_string(), peer);
        Ok(Some(missed))
    }

    /// Queues `notice` for every registered client, never waiting. Returns
    /// those whose queue had no room even for a notice.
    fn notify(&self, notice: &str) -> Vec<String> {
        let now = Instant::now();
        self.peers
            .iter()
            .filter(|(_, peer)| {
                matches!(
                    enqueue(&peer.outbox, notice, Kind::Notice, now),
                    Delivery::Full
                )
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Removes `name`, if it is still the client connected from `seen_as`
    /// (its name may already belong to someone new), and tells everyone
    /// else `LEFT <name>`. Returns `None` if it was not registered, else who
    /// missed the notice.
    fn remove(&mut self, name: &str, seen_as: SocketAddr) -> Option<Vec<String>> {
        // exercise 4.3: begin
        match self.peers.get(name) {
            Some(peer) if peer.seen_as == seen_as => {}
            _ => return None, // gone already, or the name is someone else's now
        }
        self.peers.remove(name);
        Some(self.notify(&format!("LEFT {name}\n")))
        // exercise 4.3: end
    }
}
// ANCHOR_END: join_leave

// ---------------------------------------------------------------------------
// One client's conversation
// ---------------------------------------------------------------------------

// ANCHOR: writer
/// Why a writer thread gave up on its client, for the reader thread to say.
type GaveUp = Arc<Mutex<Option<Leaving>>>;

/// A client's writer thread: takes lines from its queue and writes them to
/// its socket, until every sender of the queue is gone (the client has
/// left the registry and its reader thread has ended).
///
/// This is the only thread that writes to this socket, so lines never mix,
/// and the only one that waits for this client to read. Each line it takes
/// out makes room, and wakes any sender waiting for room. A line it cannot
/// write within `stuck_after` (STUCK_AFTER unless `--stuck-after` says
/// otherwise) means the client has stopped reading: it is dropped. A client
/// that reads, however slowly, takes a line (4 KiB at most) far sooner, and
/// is never dropped for being slow.
fn write_lines(
    mut stream: TcpStream,
    queue: Receiver<Vec<u8>>,
    room: Arc<Room>,
    gave_up: GaveUp,
    stuck_after: Duration,
) {
    for line in &queue {
        room.waiting.fetch_sub(1, Ordering::SeqCst);
        room.wake();
        if let Err(err) = write_by(&mut stream, &line, Instant::now() + stuck_after) {
            *lock(&gave_up) = Some(if is_timeout(&err) {
                Leaving::Stuck
            } else {
                Leaving::Lost
            });
            // Wake the reader thread (its read returns at once), so the
            // client leaves the registry; and let senders waiting for room
            // see that the queue is gone.
            let _ = stream.shutdown(Shutdown::Both);
            drop(queue);
            room.wake();
            return;
        }
    }
    // The last line (`BYE`, or `ERR line-too-long`) is written: close
    // without a reset destroying it (lesson 2).
    common::close_gently(stream, LINGER);
}

/// Writes all of `bytes` by `until`. A write timeout alone is not a
/// deadline: it is a budget for one `write` call, `write_all` calls `write`
/// again after every short write, each with the whole timeout, and a client
/// whose buffers take a few bytes now and then would hold a write for ever.
/// So each write may only wait for what is left of the time.
fn write_by(stream: &mut TcpStream, mut bytes: &[u8], until: Instant) -> io::Result<()> {
    while !bytes.is_empty() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::from(ErrorKind::TimedOut));
        }
        stream.set_write_timeout(Some(left))?;
        match stream.write(bytes) {
            Ok(0) => return Err(io::Error::from(ErrorKind::WriteZero)),
            Ok(written) => bytes = &bytes[written..],
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
// ANCHOR_END: writer

// ANCHOR: serve_client
/// What one client's reader thread knows about its client.
struct Client {
    seen_as: SocketAddr,
    /// Its own queue: replies go through the writer thread too.
    outbox: Outbox,
    /// Its name, once registered.
    name: Option<String>,
    registry: Shared,
    /// Whether the log shows the text of relayed and refused lines
    /// (`--log-text`), or only how many bytes they had.
    log_text: bool,
}

/// Serves one client until it leaves: starts its writer thread, reads its
/// lines, and on every way out removes it from the registry.
pub fn serve_client(
    stream: TcpStream,
    seen_as: SocketAddr,
    registry: Shared,
    limits: ClientLimits,
    log_text: bool,
) {
    let ClientLimits {
        hello_timeout,
        stuck_after,
    } = limits;
    // The HELLO deadline counts from now, however the bytes trickle in.
    let hello_by = Instant::now() + hello_timeout;
    // Socket options belong to the socket, so every handle shares them.
    // TCP_NODELAY: send each line at once. By default the kernel holds a
    // small write back until the previous one is acknowledged (Nagle's
    // algorithm), and the receiver delays its acknowledgements, hoping to
    // send them with a reply (on Linux for 40 ms at least, TCP_DELACK_MIN,
    // and up to 200 ms): a chat of short lines would stall that long at a
    // time.
    let writer = stream.set_nodelay(true).and_then(|()| stream.try_clone());
    let writer = match writer {
        Ok(writer) => writer,
        Err(err) => {
            say!(
                "[{seen_as}] could not set up the connection: {}",
                describe(&err)
            );
            return;
        }
    };
    let (outbox, queue) = Outbox::new();
    let gave_up = GaveUp::default();
    // The writer holds no sender of its own queue: the queue ends when the
    // client's reader thread and the registry have both let go of it.
    let (room, why_writer) = (Arc::clone(&outbox.room), Arc::clone(&gave_up));
    thread::spawn(move || write_lines(writer, queue, room, why_writer, stuck_after));

    let mut client = Client {
        seen_as,
        outbox,
        name: None,
        registry,
        log_text,
    };
    let mut why = client.converse(stream, hello_by);
    // If the writer gave up, that is why the conversation ended.
    if let Some(writer_why) = lock(&gave_up).take() {
        why = writer_why;
    }
    match client.name.take() {
        Some(name) => {
            let removed = lock(&client.registry).remove(&name, seen_as);
            // Logged once the registry is unlocked.
            if let Some(missed) = removed {
                why.say_left(&name, stuck_after);
                say_missed(&missed, &format!("LEFT {name}"));
            }
        }
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
                    self.say_refused(&line, &refusal);
                    self.reply(&refusal.line())
                }
            };
            if !delivered {
                return Leaving::Lost;
            }
        }
    }

    /// Queues a reply for this client, waiting for room if its queue is
    /// full. The only one held up is the client that sends commands faster
    /// than it reads the answers: it is slowed down to the pace it reads
    /// at, as TCP itself would do. A client that stops reading altogether
    /// makes its writer give up after STUCK_AFTER, and then this returns
    /// false.
    fn reply(&self, line: &str) -> bool {
        self.outbox.room.waiting.fetch_add(1, Ordering::SeqCst);
        self.outbox.lines.send(line.as_bytes().to_vec()).is_ok()
    }

    /// Logs a refused line: only its length, unless `--log-text` (it may
    /// be someone's private text with a typo in the command).
    fn say_refused(&self, line: &[u8], refusal: &Refusal) {
        let refusal = refusal.line();
        if self.log_text {
            say!(
                "{} sent \"{}\": {}",
                self.who(),
                printable(line),
                refusal.trim_end()
            );
        } else {
            say!(
                "{} sent {}: {}",
                self.who(),
                bytes(line.len()),
                refusal.trim_end()
            );
        }
    }

    /// What the log says of a relayed text: by default who sent how many
    /// bytes to whom, never the text. The operator's log is no place for
    /// everyone's private lines, and a log of every text grows as fast as
    /// anyone can send. `--log-text` shows it, escaped, for a demo.
    fn logged(&self, text: &str) -> String {
        if self.log_text {
            printable(text.as_bytes())
        } else {
            bytes(text.len())
        }
    }

    /// The client as the log names it: its name, or its address before that.
    fn who(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("[{}]", self.seen_as),
        }
    }
}

/// `1 byte`, `12 bytes`.
fn bytes(number: usize) -> String {
    common::count(number as u64, "byte")
}

/// Whether `line` is a `HELLO` (a malformed one gets its own refusal, not
/// `hello-first`).
fn is_hello(line: &[u8]) -> bool {
    line == b"HELLO" || line.starts_with(b"HELLO ")
}

/// A read timeout shows up as WouldBlock on Unix and TimedOut on Windows.
pub(crate) fn is_timeout(err: &io::Error) -> bool {
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
            seen_as: self.seen_as,
            listen_port,
        };
        // An IPv4 client of a server listening on [::] shows up as
        // ::ffff:127.0.0.1; to_canonical() gives back 127.0.0.1.
        let seen_as = SocketAddr::new(self.seen_as.ip().to_canonical(), self.seen_as.port());
        let welcome = format!("WELCOME {name} {seen_as}\n");
        let registered = lock(&self.registry).register(&name, peer, &welcome)?;
        // Logged once the registry is unlocked.
        let Some(missed) = registered else {
            return Ok(false);
        };
        match listen_port {
            Some(port) => say!("{name} joined from {}, direct port {port}", self.seen_as),
            None => say!("{name} joined from {}", self.seen_as),
        }
        say_missed(&missed, &format!("JOINED {name}"));
        self.name = Some(name);
        Ok(true)
    }
}
// ANCHOR_END: register

// ANCHOR: act
impl Client {
    /// A registered client's command. Returns the reply line. The registry
    /// is locked only to look something up, never while waiting, and
    /// nothing is logged while it is locked.
    fn act(&self, me: &str, command: Command) -> Result<String, Refusal> {
        match command {
            Command::List => {
                let registry = lock(&self.registry);
                let names: Vec<&str> = registry.peers.keys().map(String::as_str).collect();
                Ok(format!("PEERS {}\n", names.join(" ")))
            }
            Command::Send { to, text } => {
                match self.deliver(&to, &format!("FROM {me} {text}\n")) {
                    Delivery::Queued => {}
                    Delivery::Full => {
                        say!("{me} -> {to}: not relayed, {to}'s queue stayed full");
                        return Err(Refusal::Full(to));
                    }
                    Delivery::Gone => return Err(Refusal::NoSuchPeer(to)),
                }
                say!("{me} -> {to}: {}", self.logged(&text));
                Ok(format!("SENT {to}\n"))
            }
            Command::All { text } => {
                let missed = self.broadcast(me, &format!("FROM {me} {text}\n"));
                say!("{me} -> everyone: {}", self.logged(&text));
                if missed.is_empty() {
                    return Ok("SENT *\n".to_string());
                }
                let missed = missed.join(" ");
                say!("{me} -> everyone: not relayed to {missed}, their queue stayed full");
                Ok(format!("SENT * except {missed}\n"))
            }
            Command::Where { name } => {
                let registry = lock(&self.registry);
                // exercise 4.4: begin
                //~ let at: SocketAddr = todo!();
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
                // exercise 4.4: end
                drop(registry);
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
/// The time limits of one client's connection.
#[derive(Clone, Copy, Debug)]
pub struct ClientLimits {
    /// How long a new connection has to send `HELLO`, from the connect.
    pub hello_timeout: Duration,
    /// How long one line may wait to be written to a client before it is
    /// dropped as not reading: STUCK_AFTER, unless `--stuck-after` says
    /// otherwise (the tests use a short one so as not to wait 10 s).
    pub stuck_after: Duration,
}

/// How the server runs, from the command line.
pub struct ServeOptions {
    /// The address to listen on.
    pub listen: String,
    /// The cap on clients served at once.
    pub max_clients: usize,
    /// How long a new connection has to send `HELLO`, and how long a line
    /// may wait to be written before its client is dropped.
    pub limits: ClientLimits,
    /// Log the text of relayed and refused lines, not only their length.
    pub log_text: bool,
}

/// Listens, then serves clients, a thread each, until the process is
/// stopped. An error means the server could not start.
pub fn serve(options: &ServeOptions) -> anyhow::Result<()> {
    let listener = common::listen(&options.listen, DEFAULT_PORT)?;
    let registry = Shared::default();
    let (limits, log_text) = (options.limits, options.log_text);
    // A thread per client, at most max_clients at once (lesson 3).
    common::serve_threads(
        listener,
        options.max_clients,
        BUSY_REPLY,
        move |stream, client| {
            serve_client(stream, client, Arc::clone(&registry), limits, log_text);
        },
    );
    Ok(())
}
// ANCHOR_END: serve

#[cfg(test)]
mod tests {
    use super::*;

    /// By the time a dropped client's thread cleans up, a new client may
    /// hold its name: `remove` must leave that one alone.
    #[test]
    fn remove_takes_out_a_name_only_if_it_is_still_that_clients() {
        let mut registry = Registry::default();
        let (outbox, _queue) = Outbox::new();
        let old = SocketAddr::from(([127, 0, 0, 1], 40000));
        let new = SocketAddr::from(([127, 0, 0, 1], 40001));
        let peer = Peer {
            outbox,
            seen_as: new,
            listen_port: None,
        };
        assert!(
            matches!(registry.register("bob", peer, "WELCOME bob\n"), Ok(Some(_))),
            "bob should register in an empty registry"
        );
        let removed = registry.remove("bob", old);
        assert!(
            removed.is_none() && registry.peers.contains_key("bob"),
            "the bob connected from {old} left, and his thread removes `bob`, but the name now belongs to a new bob connected from {new}: remove the peer only if its seen_as is the one given, else leave it and answer None (book: 04-relay.md § Joining and leaving)"
        );
        assert!(
            registry.remove("bob", new).is_some() && !registry.peers.contains_key("bob"),
            "the bob connected from {new} left: remove should take him out and answer Some (book: 04-relay.md § Joining and leaving)"
        );
    }
}
