//! The client, `04-relay join NAME`: it registers, listens on a port of its
//! own for direct messages, and turns what you type into commands.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use common::{Deadline, ReadLine, describe, is_timeout, lock, printable, read_line, say};

use crate::limits::{
    BUSY_REPLY, DEFAULT_PORT, EVENT_LIMIT, LINE_LIMIT, MAX_DIRECT_PEERS, NAME_LIMIT, START_SERVER,
};
use crate::protocol::valid_name;

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

// ANCHOR: hello
/// A client that has joined: its connection and what it has learned.
struct Session {
    stream: TcpStream,
    server: SocketAddr,
    name: String,
    timeout: Duration,
    /// Shared by the thread that reads what you type and the main thread.
    introductions: Arc<Mutex<Introductions>>,
}

/// What the client has learned about where peers listen.
#[derive(Default)]
struct Introductions {
    /// Where peers listen, from the server's answers to our own `WHERE`.
    known: HashMap<String, SocketAddr>,
    /// The names we sent `WHERE` for and have no answer to yet, in order.
    /// An `AT` for any other name is ignored: nobody but the answer to our
    /// own question may decide where our direct messages go.
    asked: Vec<String>,
    /// Direct messages waiting for an `AT` answer: (to, text).
    waiting: Vec<(String, String)>,
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
        let line = match read_line(&mut lines, LINE_LIMIT) {
            Ok(ReadLine::Line(line)) => line,
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
        let answer = printable(&line);
        let words: Vec<&str> = answer.split(' ').collect();
        let seen_as = match words[..] {
            ["WELCOME", welcomed, seen_as] if welcomed == name => seen_as,
            ["ERR", "name-taken"] => bail!(
                "the server at {server} already has a client called {name}: pick another name"
            ),
            ["ERR", "busy"] => bail!(
                "the server at {server} is serving the most clients it allows: try again later"
            ),
            _ => match common::wrong_server(&[4], "a relay server", server, &line) {
                Some(wrong) => bail!("{wrong}"),
                None => bail!("the server at {server} did not welcome us: {answer}"),
            },
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
            introductions: Arc::default(),
        };
        Ok((session, lines))
    }
}
// ANCHOR_END: hello

// ANCHOR: run
/// What the client's threads report to the main one.
enum Event {
    /// A line from the server.
    FromServer(Vec<u8>),
    /// The server closed the connection, or reading from it failed: why.
    ServerGone(String),
    /// The typing thread has said `BYE` (after `/quit`, or the end of input).
    Quitting,
    /// The typing thread could not send to the server: why.
    CannotSend(String),
}

impl Session {
    /// The event loop. A thread reads the server's lines, another what you
    /// type, which it sends to the server itself; this one prints what
    /// arrives, in order (lesson 1 does the same with replies).
    ///
    /// The channel to this thread is bounded (EVENT_LIMIT): when nobody
    /// reads our output, printing waits, the channel fills, the reading
    /// thread waits, and the server sees a client that reads slowly, or
    /// not at all. It slows its senders down, and after STUCK_AFTER drops
    /// us, rather than we buffer its lines without end. Typed lines do not
    /// go through this thread: if it had to wait to send while the server
    /// waited for us to read, neither would move.
    fn run(
        &mut self,
        lines: BufReader<TcpStream>,
        input: impl BufRead + Send + 'static,
    ) -> anyhow::Result<()> {
        let (events, next_event) = mpsc::sync_channel(EVENT_LIMIT);

        let (to_main, server) = (events.clone(), self.server);
        thread::spawn(move || read_server_lines(lines, server, &to_main));

        let typist = Typist {
            stream: self
                .stream
                .try_clone()
                .context("could not clone the socket")?,
            server: self.server,
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
                Event::ServerGone(why) | Event::CannotSend(why) => bail!("{why}"),
                Event::Quitting => close_by = Some(Instant::now() + self.timeout),
            }
        }
    }
}

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

/// The thread that reads what you type, and sends it to the server.
struct Typist {
    stream: TcpStream,
    server: SocketAddr,
    name: String,
    timeout: Duration,
    introductions: Arc<Mutex<Introductions>>,
}

impl Typist {
    /// Sends each typed line until `/quit` or the end of input, then `BYE`,
    /// and tells the main thread.
    fn run(mut self, input: impl BufRead, events: &SyncSender<Event>) {
        let typed = (|| {
            for line in input.split(b'\n') {
                let Ok(line) = line else { break };
                if !self.typed(&line)? {
                    break;
                }
            }
            Ok(())
        })();
        // The main thread hears of it before the server can answer BYE and
        // close, so it takes that close for the end it asked for.
        let said = typed.and_then(|()| {
            let _ = events.send(Event::Quitting);
            self.send("BYE")
        });
        if let Err(why) = said {
            let _ = events.send(Event::CannotSend(why));
        }
    }

    /// Acts on one typed line. False for `/quit`.
    fn typed(&mut self, line: &[u8]) -> Result<bool, String> {
        let Ok(line) = std::str::from_utf8(line) else {
            say!("-- not sent: the protocol carries UTF-8 text only");
            return Ok(true);
        };
        match typed(line) {
            Typed::Line(line) if line.len() > LINE_LIMIT => {
                say!("-- not sent: longer than {LINE_LIMIT} bytes");
            }
            Typed::Line(line) => {
                // `/where NAME`: its answer is one we asked for.
                if let Some(name) = line.strip_prefix("WHERE ").filter(|name| valid_name(name)) {
                    lock(&self.introductions).asked.push(name.to_string());
                }
                self.send(&line)?;
            }
            Typed::Direct { to, text } => {
                let mut introductions = lock(&self.introductions);
                match introductions.known.get(&to) {
                    Some(&addr) => {
                        drop(introductions);
                        send_direct(&self.name, &to, addr, text, self.timeout);
                    }
                    None => {
                        // Ask the server first; `heard` sends it on `AT`.
                        introductions.asked.push(to.clone());
                        introductions.waiting.push((to.clone(), text));
                        drop(introductions);
                        self.send(&format!("WHERE {to}"))?;
                    }
                }
            }
            Typed::Quit => return Ok(false),
            Typed::Help(help) => say!("-- {help}"),
            Typed::Nothing => {}
        }
        Ok(true)
    }

    /// Sends one protocol line.
    fn send(&mut self, line: &str) -> Result<(), String> {
        self.stream
            .write_all(format!("{line}\n").as_bytes())
            .map_err(|err| format!("could not send to {}: {}", self.server, describe(&err)))
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
                lock(&self.introductions).known.remove(name);
                say!("-- {name} left");
            }
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
}
// ANCHOR_END: heard

// ---------------------------------------------------------------------------
// Direct connections
// ---------------------------------------------------------------------------

// ANCHOR: direct
/// Sends `text` straight to the peer at `addr`, on a thread of its own so
/// that a slow connect does not hold up the rest: connect, `HI <me>`, the
/// line, half-close, and read the peer's answer. The server never sees it.
/// Only a line the peer answered `OK` is printed as sent: a connection that
/// connects and takes our bytes proves nothing (a peer at its cap of
/// direct connections still completes the handshake, in its kernel, and
/// then answers `ERR busy`).
fn send_direct(me: &str, to: &str, addr: SocketAddr, text: String, timeout: Duration) {
    let (me, to) = (me.to_string(), to.to_string());
    thread::spawn(move || {
        let shown = printable(text.as_bytes());
        match direct_answer(&me, addr, &text, timeout) {
            Ok(answer) if answer == "OK" => say!("[direct to {to} at {addr}] {shown}"),
            Ok(answer) if answer == "ERR busy" => say!(
                "-- not sent directly to {to}: {to} is busy (as many direct connections as it allows), try again later: {shown}"
            ),
            Ok(answer) => say!(
                "-- not sent directly to {to}: {to} answered \"{}\": {shown}",
                printable(answer.as_bytes())
            ),
            Err(why) => say!("-- not sent directly to {to} at {addr}: {why}: {shown}"),
        }
    });
}

/// Connects to `addr`, sends `HI <me>` and `text`, and returns the peer's
/// answer line, all within `timeout`; or why there is none.
fn direct_answer(
    me: &str,
    addr: SocketAddr,
    text: &str,
    timeout: Duration,
) -> Result<String, String> {
    let until = Instant::now() + timeout;
    let stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|err| format!("could not connect: {}", describe(&err)))?;
    let sent = stream
        .set_write_timeout(Some(timeout))
        .and_then(|()| (&stream).write_all(format!("HI {me}\n{text}\n").as_bytes()));
    // The peer may have answered and closed already (`ERR busy`): then
    // the write or the half-close fails, and the answer is still there to
    // read. So read it whatever happened here.
    let _ = stream.shutdown(Shutdown::Write);
    let mut answer = BufReader::new(Deadline {
        stream: &stream,
        until: Some(until),
    });
    match (read_line(&mut answer, LINE_LIMIT), sent) {
        (Ok(ReadLine::Line(line)), _) => Ok(String::from_utf8_lossy(&line).into_owned()),
        // No answer, and our bytes did not go out: that is why.
        (_, Err(err)) => Err(describe(&err)),
        (Ok(ReadLine::Closed), Ok(())) => {
            Err("it closed the connection without answering".to_string())
        }
        (Ok(ReadLine::TooLong), Ok(())) => Err(format!("an answer longer than {LINE_LIMIT} bytes")),
        (Err(err), Ok(())) if is_timeout(&err) => {
            Err(format!("no answer within {} s", timeout.as_secs_f64()))
        }
        (Err(err), Ok(())) => Err(describe(&err)),
    }
}

/// Accepts direct connections from peers, a thread each (at most
/// MAX_DIRECT_PEERS), and prints what they send.
fn receive_direct(listener: TcpListener, deadline: Duration) {
    common::serve_threads(
        listener,
        MAX_DIRECT_PEERS,
        BUSY_REPLY,
        move |stream, peer| {
            if let Err(why) = read_direct(&stream, deadline) {
                say!("-- direct connection from {peer}: {why}");
            }
        },
    );
}

/// One direct connection: `HI <name>`, then lines until the peer closes,
/// each answered `OK`, all within `deadline` (DIRECT_DEADLINE unless
/// `--direct-deadline` says otherwise) of the accept. A deadline, not a
/// read timeout: a timeout starts again with every byte, and a peer sending
/// one byte now and then would hold one of our MAX_DIRECT_PEERS places for
/// as long as it likes.
fn read_direct(stream: &TcpStream, deadline: Duration) -> Result<(), String> {
    let mut lines = BufReader::new(Deadline {
        stream,
        until: Some(Instant::now() + deadline),
    });
    let mut next = || match read_line(&mut lines, LINE_LIMIT) {
        Ok(ReadLine::Line(line)) => Ok(Some(line)),
        Ok(ReadLine::Closed) => Ok(None),
        Ok(ReadLine::TooLong) => Err(format!("a line longer than {LINE_LIMIT} bytes, closed")),
        Err(err) if is_timeout(&err) => Err(format!(
            "not finished within {} s, closed",
            deadline.as_secs()
        )),
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
    let _ = stream.set_write_timeout(Some(deadline));
    while let Some(line) = next()? {
        say!("[direct from {from}] {}", printable(&line));
        // The sender prints its message as sent only when this comes.
        (&*stream)
            .write_all(b"OK\n")
            .map_err(|err| describe(&err))?;
    }
    Ok(())
}
// ANCHOR_END: direct
