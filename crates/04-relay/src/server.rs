//! The server: one client's conversation on its reader thread, and `serve`,
//! a thread per client. The registry is in `registry.rs`, each client's
//! writer thread in `writer.rs`.

use std::io::{self, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use common::{Deadline, ReadLine, describe, is_timeout, lock, printable, read_line, say};

use crate::leaving::{Leaving, say_missed};
#[cfg(any(target_os = "linux", target_os = "android"))]
use crate::limits::UNSENT_LIMIT;
use crate::limits::{BUSY_REPLY, DEFAULT_PORT, LINE_LIMIT, RELAY_WAIT};
use crate::protocol::{Command, Refusal, parse_command};
use crate::registry::{Delivery, Outbox, Peer, QueueShare, Registered, Registry, enqueue};
use crate::writer::{WhyWriterStopped, write_lines};

// ANCHOR: client
/// What one client's reader thread knows about its client.
struct Client {
    seen_as: SocketAddr,
    /// Its own queue: replies go through the writer thread too.
    outbox: Outbox,
    /// Its name, once registered.
    name: Option<String>,
    registry: Arc<Registry>,
    /// How long it may send nothing once registered.
    idle_limit: Duration,
    /// Whether the log shows the text of relayed and refused lines
    /// (`--log-text`), or only how many bytes they had.
    log_text: bool,
}

/// What became of a reply queued for the client itself.
enum Replied {
    Queued,
    /// Its writer thread has ended: it gave up on the client (see `Leaving`).
    WriterGone,
}
// ANCHOR_END: client

impl Client {
    // ANCHOR: relay
    /// Relays `line` to the client called `to`, waiting at most RELAY_WAIT
    /// for room in its queue. The registry is locked only to find the
    /// queue, never during the wait.
    fn deliver(&self, to: &str, line: &str) -> Delivery {
        // exercise 4.2: begin
        let Some(outbox) = self.registry.outbox_of(to) else {
            return Delivery::Gone;
        };
        enqueue(
            &outbox,
            line,
            QueueShare::Relayed,
            Instant::now() + RELAY_WAIT,
        )
        // exercise 4.2: end
    }

    /// Relays `line` to every client but `me`. Returns the names of those
    /// whose queue stayed full for RELAY_WAIT: they miss this line.
    fn broadcast(&self, me: &str, line: &str) -> Vec<String> {
        let others = self.registry.outboxes_except(me);
        // First every queue with room, without waiting: a full queue must
        // not delay the line for anyone else.
        let now = Instant::now();
        let full: Vec<(String, Outbox)> = others
            .into_iter()
            .filter(|(_, outbox)| {
                matches!(
                    enqueue(outbox, line, QueueShare::Relayed, now),
                    Delivery::Full
                )
            })
            .collect();
        // Then the full ones, all within one RELAY_WAIT.
        let until = Instant::now() + RELAY_WAIT;
        full.into_iter()
            .filter(|(_, outbox)| {
                matches!(
                    enqueue(outbox, line, QueueShare::Relayed, until),
                    Delivery::Full
                )
            })
            .map(|(name, _)| name)
            .collect()
    }
    // ANCHOR_END: relay

    // ANCHOR: converse
    /// Reads lines and answers them until the client leaves, and says why.
    fn converse(&mut self, stream: TcpStream, hello_by: Instant) -> Leaving {
        // Until HELLO, a deadline (`common::Deadline`), not a timeout.
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
                // Before HELLO, the HELLO deadline: say why we close.
                Err(err) if is_timeout(&err) && self.name.is_none() => {
                    self.reply(&Refusal::HelloFirst.line());
                    return Leaving::Failed(err);
                }
                Err(err) if is_timeout(&err) => return Leaving::Idle,
                Err(err) => return Leaving::Failed(err),
            };
            let answer = match (&self.name, parse_command(&line)) {
                (_, Ok(Command::Bye)) => {
                    self.reply("BYE\n");
                    return Leaving::Bye;
                }
                (None, Ok(Command::Hello { name, listen_port })) => {
                    match self.register(name, listen_port) {
                        Ok(Registered::Welcomed { .. }) => {
                            // No more HELLO deadline: each read may now wait
                            // for the idle limit, which every line restarts.
                            lines.get_mut().until = None;
                            let _ = stream.set_read_timeout(Some(self.idle_limit));
                            Ok(None)
                        }
                        Ok(Registered::NotReading) => return Leaving::Stuck,
                        Err(refusal) => Err(refusal),
                    }
                }
                (None, Err(refusal)) if is_hello(&line) => Err(refusal),
                (None, _) => Err(Refusal::HelloFirst),
                (Some(_), Ok(Command::Hello { .. })) => Err(Refusal::AlreadyRegistered),
                (Some(me), Ok(command)) => self.act(me, command).map(Some),
                (Some(_), Err(refusal)) => Err(refusal),
            };
            let replied = match answer {
                Ok(None) => Replied::Queued,
                Ok(Some(reply)) => self.reply(&reply),
                Err(refusal) => {
                    self.say_refused(&line, &refusal);
                    self.reply(&refusal.line())
                }
            };
            if let Replied::WriterGone = replied {
                return Leaving::Lost;
            }
        }
    }
    // ANCHOR_END: converse

    // ANCHOR: reply
    /// Queues a reply for this client, waiting for room if its queue is
    /// full. The only one held up is the client that sends commands faster
    /// than it reads the answers: it is slowed down to the pace it reads
    /// at, as TCP itself would do. A client that stops reading altogether
    /// makes its writer give up after STUCK_AFTER, and then this returns
    /// `WriterGone`.
    fn reply(&self, line: &str) -> Replied {
        self.outbox.room.queued.fetch_add(1, Ordering::SeqCst);
        match self.outbox.lines.send(line.as_bytes().to_vec()) {
            Ok(()) => Replied::Queued,
            Err(_) => Replied::WriterGone,
        }
    }
    // ANCHOR_END: reply

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
                byte_count(line.len()),
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
            byte_count(text.len())
        }
    }

    /// The client as the log names it: its name, or its address before that.
    fn who(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("[{}]", self.seen_as),
        }
    }

    // ANCHOR: register
    /// `HELLO <name> [<listen-port>]`: joins the registry. The answer,
    /// `WELCOME <name> <address>`, is queued by the registry itself, first
    /// of all the lines this client gets.
    fn register(&mut self, name: String, listen_port: Option<u16>) -> Result<Registered, Refusal> {
        let peer = Peer {
            outbox: self.outbox.clone(),
            seen_as: self.seen_as,
            listen_port,
        };
        // An IPv4 client of a server listening on [::] shows up as
        // ::ffff:127.0.0.1; to_canonical() gives back 127.0.0.1.
        let seen_as = SocketAddr::new(self.seen_as.ip().to_canonical(), self.seen_as.port());
        let welcome = format!("WELCOME {name} {seen_as}\n");
        let registered = self.registry.register(&name, peer, &welcome)?;
        // Logged once the registry is unlocked.
        if let Registered::Welcomed { missed } = &registered {
            match listen_port {
                Some(port) => say!("{name} joined from {}, direct port {port}", self.seen_as),
                None => say!("{name} joined from {}", self.seen_as),
            }
            say_missed(missed, &format!("JOINED {name}"));
            self.name = Some(name);
        }
        Ok(registered)
    }
    // ANCHOR_END: register

    // ANCHOR: act
    /// A registered client's command. Returns the reply line. Each lookup
    /// in the registry locks it and lets go before anything waits or is
    /// logged.
    fn act(&self, me: &str, command: Command) -> Result<String, Refusal> {
        match command {
            Command::List => Ok(format!("PEERS {}\n", self.registry.names().join(" "))),
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
                // exercise 4.4: begin
                //~ let at: SocketAddr = todo!();
                let Some(peer) = self.registry.where_is(&name) else {
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
    // ANCHOR_END: act
}

/// `1 byte`, `12 bytes`.
fn byte_count(number: usize) -> String {
    common::count(number as u64, "byte")
}

/// Whether `line` is a `HELLO` (a malformed one gets its own refusal, not
/// `hello-first`).
fn is_hello(line: &[u8]) -> bool {
    line == b"HELLO" || line.starts_with(b"HELLO ")
}

// ANCHOR: serve_client
/// Serves one client until it leaves: starts its writer thread, reads its
/// lines, and on every way out removes it from the registry.
pub fn serve_client(
    stream: TcpStream,
    seen_as: SocketAddr,
    registry: Arc<Registry>,
    limits: ClientLimits,
    log_text: bool,
) {
    // The HELLO deadline counts from now, however the bytes trickle in.
    let hello_by = Instant::now() + limits.hello_timeout;
    let (outbox, why_stopped) = match start_writer(&stream, limits.stuck_after) {
        Ok(started) => started,
        Err(err) => {
            say!(
                "[{seen_as}] could not set up the connection: {}",
                describe(&err)
            );
            return;
        }
    };
    let mut client = Client {
        seen_as,
        outbox,
        name: None,
        registry,
        idle_limit: limits.idle_limit,
        log_text,
    };
    let mut why = client.converse(stream, hello_by);
    // If the writer gave up, that is why the conversation ended.
    if let Some(writer_why) = lock(&why_stopped).take() {
        why = writer_why;
    }
    match client.name.take() {
        Some(name) => {
            // Logged once the registry is unlocked.
            if let Some(missed) = client.registry.remove(&name, seen_as) {
                why.say_left(&name, &limits);
                say_missed(&missed, &format!("LEFT {name}"));
            }
        }
        None => why.say_unregistered(seen_as, limits.hello_timeout),
    }
    // `client.outbox` goes here: once the registry has let go of its copy
    // too, the writer thread sends what is queued and closes.
}
// ANCHOR_END: serve_client

// ANCHOR: start_writer

/// Starts the client's writer thread, on a handle of its own to the same
/// socket. Returns the client's queue, and where the writer says why it
/// gave up.
fn start_writer(
    stream: &TcpStream,
    stuck_after: Duration,
) -> io::Result<(Outbox, WhyWriterStopped)> {
    // Socket options belong to the socket, so every handle shares them.
    // TCP_NODELAY: each line goes out at once, rather than wait for the
    // last one's acknowledgement (Nagle's algorithm: the chapter, § What
    // one stuck receiver costs, says what it cost a chat of short lines).
    stream.set_nodelay(true)?;
    limit_unsent(stream)?;
    let writer = stream.try_clone()?;
    let (outbox, queue) = Outbox::new();
    let why_stopped = WhyWriterStopped::default();
    // The writer holds no sender of its own queue: the queue ends when the
    // client's reader thread and the registry have both let go of it.
    let (room, why) = (Arc::clone(&outbox.room), Arc::clone(&why_stopped));
    thread::spawn(move || write_lines(writer, queue, room, why, stuck_after));
    Ok((outbox, why_stopped))
}

/// Linux: at most UNSENT_LIMIT bytes wait unsent in the socket, so that a
/// write to a slow reader returns as soon as it has taken some (see
/// `write_by`). Elsewhere nothing: the write waits as it always did.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn limit_unsent(stream: &TcpStream) -> io::Result<()> {
    socket2::SockRef::from(stream).set_tcp_notsent_lowat(UNSENT_LIMIT)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn limit_unsent(_stream: &TcpStream) -> io::Result<()> {
    Ok(())
}
// ANCHOR_END: start_writer

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
    /// How long a registered client may send nothing before it is closed:
    /// DEFAULT_IDLE_LIMIT, unless `--idle-limit` says otherwise.
    pub idle_limit: Duration,
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
    let registry = Arc::new(Registry::default());
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
