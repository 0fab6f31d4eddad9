//! The client, `04-relay join NAME`: it registers, listens on a port of its
//! own for direct messages, and turns what you type into commands.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use common::{ReadLine, describe, is_timeout, lock, printable, read_line, say};

use crate::direct::{receive_direct, send_direct};
use crate::limits::{
    DEFAULT_PORT, EVENT_LIMIT, KEEPALIVE_EVERY, LINE_LIMIT, NAME_LIMIT, START_SERVER,
};
use crate::protocol::valid_name;
use crate::typing::Typist;

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
    /// How long a direct connection may last, from the accept:
    /// DIRECT_DEADLINE unless `--direct-deadline` says otherwise.
    pub direct_deadline: Duration,
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
        let deadline = options.direct_deadline;
        thread::spawn(move || receive_direct(listener, deadline));
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

// ANCHOR: session
/// A client that has joined: its connection and what it has learned.
struct Session {
    stream: TcpStream,
    server: SocketAddr,
    name: String,
    timeout: Duration,
    /// Shared by the thread that reads what you type and the main thread.
    introductions: Arc<Mutex<Introductions>>,
    /// How many `PEERS` answers to come are the keepalive's, not printed.
    unasked_peers: Arc<AtomicUsize>,
}

/// What the client has learned about where peers listen.
#[derive(Default)]
pub(crate) struct Introductions {
    /// Where peers listen, from the server's answers to our own `WHERE`.
    pub(crate) known: HashMap<String, SocketAddr>,
    /// The names we sent `WHERE` for and have no answer to yet, in order.
    /// An `AT` for any other name is ignored: nobody but the answer to our
    /// own question may decide where our direct messages go.
    pub(crate) asked: Vec<String>,
    /// Direct messages waiting for an `AT` answer: (to, text).
    pub(crate) waiting: Vec<(String, String)>,
}

impl Introductions {
    /// Whether we asked where `name` is (and now have the answer).
    fn answered(&mut self, name: &str) -> bool {
        match self.asked.iter().position(|asked| asked == name) {
            Some(at) => {
                self.asked.remove(at);
                true
            }
            None => false,
        }
    }
}

// ANCHOR_END: session

impl Session {
    // ANCHOR: hello
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
        // Each typed line goes out at once (see TCP_NODELAY in start_writer).
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(options.timeout))?;
        stream
            .write_all(hello.as_bytes())
            .map_err(|err| anyhow!("could not send to {server}: {}", describe(&err)))?;

        stream.set_read_timeout(Some(options.timeout))?;
        let mut lines = BufReader::new(stream.try_clone().context("could not clone the socket")?);
        let seen_as = read_welcome(&mut lines, server, name, options.timeout)?;
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
            introductions: Arc::default(),
            unasked_peers: Arc::default(),
        };
        Ok((session, lines))
    }
    // ANCHOR_END: hello

    // ANCHOR: event_loop
    /// The event loop: threads read the server and what you type, and this
    /// one prints what arrives, in order, through a bounded channel
    /// (EVENT_LIMIT): the chapter (§ The client) says why.
    fn run(
        &mut self,
        lines: BufReader<TcpStream>,
        input: impl BufRead + Send + 'static,
    ) -> anyhow::Result<()> {
        let (events, next_event) = mpsc::sync_channel(EVENT_LIMIT);

        let (to_main, server) = (events.clone(), self.server);
        thread::spawn(move || read_server_lines(lines, server, &to_main));

        let to_server = self
            .stream
            .try_clone()
            .context("could not clone the socket")?;
        let to_server = Arc::new(Mutex::new(to_server));
        let (keepalive, unasked) = (Arc::clone(&to_server), Arc::clone(&self.unasked_peers));
        thread::spawn(move || keep_alive(&keepalive, &unasked));
        let typist = Typist {
            stream: to_server,
            name: self.name.clone(),
            timeout: self.timeout,
            introductions: Arc::clone(&self.introductions),
        };
        thread::spawn(move || typist.run(input, &events));

        // Once BYE is sent, the server has `timeout` to close.
        let mut close_by: Option<Instant> = None;
        loop {
            let event = match close_by {
                None => next_event
                    .recv()
                    .map_err(|_| anyhow!("lost track of the connection to {}", self.server))?,
                Some(by) => {
                    let left = by.saturating_duration_since(Instant::now());
                    next_event.recv_timeout(left).map_err(|_| {
                        anyhow!(
                            "the server at {} did not close the connection within {} s of BYE",
                            self.server,
                            self.timeout.as_secs_f64()
                        )
                    })?
                }
            };
            match event {
                Event::FromServer(line) => self.heard(&line),
                Event::ServerGone(_) if close_by.is_some() => return Ok(()),
                Event::ServerGone(why) => bail!("{why}"),
                Event::CannotSend(err) => {
                    bail!("could not send to {}: {}", self.server, describe(&err))
                }
                Event::Quitting => close_by = Some(Instant::now() + self.timeout),
            }
        }
    }
    // ANCHOR_END: event_loop

    // ANCHOR: heard
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
                lock(&self.introductions).known.remove(name);
                say!("-- {name} left");
            }
            // The answer to a keepalive, not to the user.
            ["PEERS", ..] if take_one(&self.unasked_peers) => {}
            ["PEERS", ..] => say!("-- here: {}", words[1..].join(" ")),
            ["SENT", "*"] => say!("-- sent to everyone"),
            ["SENT", "*", missed] => say!("-- sent to everyone {missed}: their queue stayed full"),
            ["SENT", name] => say!("-- sent to {name}"),
            ["AT", name, at] => {
                let addr = at.parse().ok();
                let mut introductions = lock(&self.introductions);
                if !introductions.answered(name) {
                    drop(introductions);
                    say!(
                        "-- unexpected line from the server: {text} (we did not ask where {name} is)"
                    );
                    return;
                }
                // Known before it is printed: what is typed after seeing
                // the line finds it.
                if let Some(addr) = addr {
                    introductions.known.insert(name.to_string(), addr);
                }
                drop(introductions);
                say!("-- {name} listens for direct messages at {at}");
                if addr.is_some() {
                    self.send_waiting(name, addr);
                }
            }
            ["ERR", "not-listening" | "no-such-peer", name] => {
                say!("-- error: {}", words[1..].join(" "));
                // The answer to our WHERE, or to a SEND to nobody.
                if lock(&self.introductions).answered(name) {
                    self.send_waiting(name, None);
                }
            }
            ["ERR", "full", name] => {
                say!(
                    "-- not sent to {name}: its queue stayed full (it reads slower than it is sent to)"
                )
            }
            ["ERR", ..] => say!("-- error: {}", words[1..].join(" ")),
            ["BYE"] => say!("-- bye"),
            _ => say!("-- unexpected line from the server: {text}"),
        }
    }
    // ANCHOR_END: heard

    // ANCHOR: send_waiting
    /// Sends the direct messages that waited for `name`'s address, or drops
    /// them when it has none.
    fn send_waiting(&mut self, name: &str, addr: Option<SocketAddr>) {
        let ready: Vec<_> = {
            let mut introductions = lock(&self.introductions);
            let (ready, still) = introductions
                .waiting
                .drain(..)
                .partition(|(to, _)| to == name);
            introductions.waiting = still;
            ready
        };
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
    // ANCHOR_END: send_waiting
}

// ANCHOR: read_welcome
/// Reads the server's answer to `HELLO`: `WELCOME <name> <address>`, and
/// returns the address the server sees us at; or why we are not welcome.
fn read_welcome(
    lines: &mut BufReader<TcpStream>,
    server: SocketAddr,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<String> {
    let line = match read_line(lines, LINE_LIMIT) {
        Ok(ReadLine::Line(line)) => line,
        Ok(ReadLine::Closed) => {
            bail!("the server at {server} closed the connection before answering HELLO")
        }
        Ok(ReadLine::TooLong) => {
            bail!("the server at {server} sent a line longer than {LINE_LIMIT} bytes")
        }
        Err(err) if is_timeout(&err) => bail!(
            "no answer to HELLO from {server} within {} s (is it a relay server? try: {START_SERVER})",
            timeout.as_secs_f64()
        ),
        Err(err) => bail!("lost the connection to {server}: {}", describe(&err)),
    };
    let answer = printable(&line);
    let words: Vec<&str> = answer.split(' ').collect();
    match words[..] {
        ["WELCOME", welcomed, seen_as] if welcomed == name => Ok(seen_as.to_string()),
        ["ERR", "name-taken"] => {
            bail!("the server at {server} already has a client called {name}: pick another name")
        }
        ["ERR", "busy"] => {
            bail!("the server at {server} is serving the most clients it allows: try again later")
        }
        _ => match common::wrong_server(&[4], "a relay server", server, &line) {
            Some(wrong) => bail!("{wrong}"),
            None => bail!("the server at {server} did not welcome us: {answer}"),
        },
    }
}
// ANCHOR_END: read_welcome

// ANCHOR: run
/// What the client's threads report to the main one.
pub(crate) enum Event {
    /// A line from the server.
    FromServer(Vec<u8>),
    /// The server closed the connection, or reading from it failed: why.
    ServerGone(String),
    /// The typing thread has said `BYE` (after `/quit`, or the end of input).
    Quitting,
    /// The typing thread could not send to the server.
    CannotSend(io::Error),
}

// ANCHOR_END: run

// ANCHOR: read_server_lines
/// The server-reading thread: each line to the main thread, then why it ended.
fn read_server_lines(
    mut lines: BufReader<TcpStream>,
    server: SocketAddr,
    events: &SyncSender<Event>,
) {
    let why = loop {
        match read_line(&mut lines, LINE_LIMIT) {
            Ok(ReadLine::Line(line)) => {
                // Waits while the main thread is behind: see `run`.
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
// ANCHOR_END: read_server_lines

// ANCHOR: keep_alive
/// Says something to the server every KEEPALIVE_EVERY, so that a user who
/// only reads is not closed as idle (`serve --idle-limit`): a `LIST`, whose
/// answer `heard` keeps to itself. Ends with the connection.
fn keep_alive(to_server: &Mutex<TcpStream>, unasked_peers: &AtomicUsize) {
    loop {
        thread::sleep(KEEPALIVE_EVERY);
        unasked_peers.fetch_add(1, Ordering::SeqCst);
        if lock(to_server).write_all(b"LIST\n").is_err() {
            return;
        }
    }
}

/// Takes one from `count` if it is not zero; says whether it did.
fn take_one(count: &AtomicUsize) -> bool {
    count
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}
// ANCHOR_END: keep_alive
