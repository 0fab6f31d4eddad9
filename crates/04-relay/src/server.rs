//! The server: the registry of who is here, each client with a bounded queue
//! and a writer thread of its own, one client's conversation, and `serve`.

use std::collections::BTreeMap;
use std::io::{self, BufReader, ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use common::{Deadline, ReadLine, describe, printable, read_line, say};

use crate::limits::{BUSY_REPLY, DEFAULT_PORT, LINE_LIMIT, LINGER, QUEUE_LIMIT, WRITE_TIMEOUT};
use crate::protocol::{Command, Refusal, parse_command};

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
    // exercise 4.2: begin
    match outbox.try_send(line.as_bytes().to_vec()) {
        Ok(()) => Delivery::Queued,
        Err(TrySendError::Full(_)) => Delivery::Full,
        Err(TrySendError::Disconnected(_)) => Delivery::Gone,
    }
    // exercise 4.2: end
}

impl Registry {
    /// Relays `line` to the client called `to`. Returns false when there is
    /// no such client, or when it had to be dropped because it stopped
    /// reading (the line is then lost with it).
    fn deliver(&mut self, to: &str, line: &str) -> bool {
        // exercise 4.2: begin
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
        // exercise 4.2: end
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

impl Leaving {
    /// The server's log line for registered client `name` leaving this way.
    fn say_left(&self, name: &str) {
        match self {
            Leaving::Bye | Leaving::Closed => say!("{name} left"),
            Leaving::Failed(err) => say!("{name} left (connection error: {})", describe(err)),
            Leaving::TooLong => say!("{name} left (line longer than {LINE_LIMIT} bytes)"),
            Leaving::Stuck => {
                say!("{name} left (dropped: {QUEUE_LIMIT} lines were waiting, it is not reading)")
            }
            Leaving::Lost => say!("{name} left (dropped: could not write to it)"),
        }
    }
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
        // exercise 4.3: begin
        let mut leaving = vec![(name.to_string(), seen_as, why)];
        while let Some((name, seen_as, why)) = leaving.pop() {
            match self.peers.get(&name) {
                Some(peer) if peer.seen_as == seen_as => {}
                _ => continue, // gone already
            }
            let Some(peer) = self.peers.remove(&name) else {
                continue;
            };
            why.say_left(&name);
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
        // exercise 4.3: end
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
    // algorithm), and the receiver delays its acknowledgements, hoping to
    // send them with a reply (on Linux for 40 ms at least, TCP_DELACK_MIN,
    // and up to 200 ms): a chat of short lines would stall that long at a
    // time.
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
