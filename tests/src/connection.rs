//! Sockets on the test's side: [`Connection`], a client with timeouts and
//! assertions that show the exact bytes; [`FakeServer`], a listening socket
//! that checks what a client sends; and the kernel's view of a connection
//! ([`tcp_queues`]).

use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::{QUIET, WAIT};

/// A client connection from the test, with read and write timeouts, and
/// assertions that show the exact bytes when they fail.
pub struct Connection {
    reader: BufReader<TcpStream>,
    peer: SocketAddr,
}

impl Connection {
    /// Connects to `addr` within [`WAIT`].
    #[track_caller]
    pub fn open(addr: SocketAddr) -> Connection {
        let stream = match TcpStream::connect_timeout(&addr, WAIT) {
            Ok(stream) => stream,
            Err(err) => panic!("could not connect to the server at {addr}: {err}"),
        };
        Self::from_stream(stream)
    }

    /// Wraps a stream the test accepted or connected, setting its timeouts.
    #[track_caller]
    pub fn from_stream(stream: TcpStream) -> Connection {
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_write_timeout(Some(WAIT)).unwrap();
        let peer = stream.peer_addr().unwrap();
        Connection {
            reader: BufReader::new(stream),
            peer,
        }
    }

    /// The socket itself, for what the helpers do not cover.
    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// This side's address, as the other side sees it.
    #[track_caller]
    pub fn local_addr(&self) -> SocketAddr {
        self.stream().local_addr().unwrap()
    }

    /// Sends all of `bytes`.
    #[track_caller]
    pub fn send(&mut self, bytes: &[u8]) {
        let peer = self.peer;
        if let Err(err) = self.reader.get_mut().write_all(bytes) {
            panic!("could not send {} to {peer}: {err}", show(bytes));
        }
    }

    /// Sends `line` and `\n`.
    #[track_caller]
    pub fn send_line(&mut self, line: &str) {
        self.send(format!("{line}\n").as_bytes());
    }

    /// Half-closes: the peer reads end-of-input, and can still reply. The
    /// kernel refuses (NotConnected) once the peer has reset the
    /// connection, as a server does that closes its socket with our input
    /// unread, sometimes before the test gets here: that is said in words.
    #[track_caller]
    pub fn half_close(&self) {
        if let Err(err) = self.stream().shutdown(Shutdown::Write) {
            panic!(
                "the test could not half-close its side of the connection ({err}): the server \
                 had already reset it (RST). A socket closed with unread input is reset; read \
                 what the client sent (drain) or half-close first \
                 (book: 02-server.md § Step 7: close without losing the reply)"
            );
        }
    }

    /// Closes with a reset (RST) instead of the orderly FIN, as a crashed
    /// program or a dropped network does: SO_LINGER with a zero timeout.
    #[track_caller]
    pub fn reset(self) {
        let socket = socket2::SockRef::from(self.stream());
        socket.set_linger(Some(Duration::ZERO)).unwrap();
        drop(self);
    }

    /// Reads one line (up to and including `\n`) within [`WAIT`] and returns
    /// it without the `\n`. `should` says what should have come.
    #[track_caller]
    pub fn read_line(&mut self, should: &str) -> String {
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Ok(_) if line.ends_with(b"\n") => {
                line.pop();
                match String::from_utf8(line) {
                    Ok(line) => line,
                    Err(err) => panic!("{should}; got invalid UTF-8: {}", show(err.as_bytes())),
                }
            }
            Ok(_) => panic!(
                "{should}; got {} and then the connection closed{}",
                show(&line),
                no_newline(&line)
            ),
            Err(err) => panic!(
                "{should}; got {} and then: {}{}",
                show(&line),
                waited(&err),
                no_newline(&line)
            ),
        }
    }

    /// Reads exactly `expected.len()` bytes within [`WAIT`] and asserts they
    /// are `expected`.
    #[track_caller]
    pub fn expect_bytes(&mut self, expected: &[u8], what: &str) {
        let mut got = vec![0; expected.len()];
        let mut filled = 0;
        while filled < got.len() {
            match self.reader.read(&mut got[filled..]) {
                Ok(0) => panic!(
                    "{what}: expected {}; got {} and then the connection closed",
                    show(expected),
                    show(&got[..filled])
                ),
                Ok(n) => filled += n,
                Err(err) => panic!(
                    "{what}: expected {}; got {} and then: {}",
                    show(expected),
                    show(&got[..filled]),
                    waited(&err)
                ),
            }
        }
        assert!(
            got == expected,
            "{what}: expected {}; got {}",
            show(expected),
            show(&got)
        );
    }

    /// Reads until the peer closes, within [`WAIT`], and returns the bytes.
    #[track_caller]
    pub fn read_to_end(&mut self, what: &str) -> Vec<u8> {
        let mut got = Vec::new();
        if let Err(err) = self.reader.read_to_end(&mut got) {
            panic!("{what}: got {} and then: {}", show(&got), waited(&err));
        }
        got
    }

    /// Asserts the peer closes the connection gently: a FIN, so that a read
    /// returns 0 within [`WAIT`], with no more bytes before it. A reset (RST)
    /// fails: it is what a server sends when it closes a socket whose input it
    /// did not read, and on the way it can destroy a reply still on its way
    /// (book: 02-server.md § Step 7: close without losing the reply).
    #[track_caller]
    pub fn expect_orderly_close(&mut self, what: &str) {
        let mut got = Vec::new();
        match self.reader.read_to_end(&mut got) {
            Ok(_) if got.is_empty() => {}
            Ok(_) => panic!(
                "{what}: expected the connection to close; got {} first",
                show(&got)
            ),
            Err(err) if err.kind() == ErrorKind::ConnectionReset => panic!(
                "{what}: expected a clean end of stream (FIN, a read returning 0); \
                 the connection was reset (RST) instead{}. A socket closed with unread \
                 input is reset; read what the client sent (drain) or half-close \
                 first (book: 02-server.md § Step 7: close without losing the reply)",
                if got.is_empty() {
                    String::new()
                } else {
                    format!(" after {}", show(&got))
                }
            ),
            Err(err) => panic!(
                "{what}: expected the connection to close; got {}",
                waited(&err)
            ),
        }
    }

    /// Asserts the peer resets the connection (RST) within [`WAIT`], with no
    /// more bytes before it. For the cases where a reset is the right ending.
    #[track_caller]
    pub fn expect_reset(&mut self, what: &str) {
        let mut got = Vec::new();
        match self.reader.read_to_end(&mut got) {
            Err(err) if got.is_empty() && err.kind() == ErrorKind::ConnectionReset => {}
            Ok(_) if got.is_empty() => panic!(
                "{what}: expected a reset (RST); the connection was closed gently (FIN) instead"
            ),
            Ok(_) => panic!("{what}: expected a reset (RST); got {} first", show(&got)),
            Err(err) => panic!("{what}: expected a reset (RST); got {}", waited(&err)),
        }
    }

    /// Asserts the peer closes the connection, gently or with a reset, within
    /// [`WAIT`], with no more bytes before that. Only for cases where either
    /// ending is right: a server that drops a client who would not stop
    /// sending may well reset it.
    #[track_caller]
    pub fn expect_closed_or_reset(&mut self, what: &str) {
        let mut got = Vec::new();
        match self.reader.read_to_end(&mut got) {
            Ok(_) if got.is_empty() => {}
            Err(err) if got.is_empty() && err.kind() == ErrorKind::ConnectionReset => {}
            Ok(_) => panic!(
                "{what}: expected the connection to close; got {} first",
                show(&got)
            ),
            Err(err) => panic!(
                "{what}: expected the connection to close; got {}",
                waited(&err)
            ),
        }
    }

    /// Asserts that nothing arrives within [`QUIET`] (and the connection stays open).
    #[track_caller]
    pub fn expect_nothing(&mut self, why: &str) {
        let stream = self.reader.get_ref();
        stream.set_read_timeout(Some(QUIET)).unwrap();
        let mut got = [0; 64];
        let result = self.reader.read(&mut got);
        self.reader.get_ref().set_read_timeout(Some(WAIT)).unwrap();
        match result {
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Ok(0) => panic!("{why}; but the connection was closed"),
            Ok(n) => panic!("{why}; but {} arrived", show(&got[..n])),
            Err(err) => panic!("{why}; but the read failed: {err}"),
        }
    }
}

/// A listening socket in the test, standing in for a server, to check the
/// exact bytes a client sends and to answer it by hand.
pub struct FakeServer {
    pub(crate) listener: TcpListener,
}

impl FakeServer {
    /// Listens on a free loopback port.
    #[track_caller]
    pub fn start() -> FakeServer {
        Self::on("127.0.0.1:0")
    }

    /// Listens on `addr` (for example `[::1]:0`).
    #[track_caller]
    pub fn on(addr: &str) -> FakeServer {
        let listener = match TcpListener::bind(addr) {
            Ok(listener) => listener,
            Err(err) => panic!("could not listen on {addr}: {err}"),
        };
        FakeServer { listener }
    }

    #[track_caller]
    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap()
    }

    /// Accepts the next connection within [`WAIT`].
    #[track_caller]
    pub fn accept(&self, should: &str) -> Connection {
        self.listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    return Connection::from_stream(stream);
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(5));
                }
                Err(err) => panic!(
                    "{should}; no connection came within {} s ({err})",
                    WAIT.as_secs()
                ),
            }
        }
    }
}

/// A free loopback address where nothing listens (to test "refused").
#[track_caller]
pub fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// For a line that stopped before its newline: says that the newline is
/// what is missing (a peer that sent `LEFT bob` without `\n` shows up as a
/// wait for the rest of the line). Empty when nothing came.
fn no_newline(partial: &[u8]) -> &'static str {
    if partial.is_empty() {
        ""
    } else {
        " (a line without its newline: every line the protocol sends ends with `\\n`, and \
         the reader waits for it)"
    }
}

/// Bytes as a Rust byte string literal: `b"ok\n"`, for failure messages.
pub fn show(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "nothing".to_string();
    }
    let mut out = String::from("b\"");
    for &byte in bytes {
        out.extend(std::ascii::escape_default(byte).map(char::from));
    }
    out.push('"');
    out
}

fn waited(err: &std::io::Error) -> String {
    match err.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => {
            format!("nothing more within {} s", WAIT.as_secs())
        }
        _ => format!("an error: {err}"),
    }
}

/// A TCP socket's `(tx_queue, rx_queue)` in bytes, as /proc/net/tcp gives
/// them: sent and not yet acknowledged, received and not yet read.
pub type Queues = Option<(u64, u64)>;

/// The queues of both ends of a loopback IPv4 connection, from one reading
/// of /proc/net/tcp (Linux; elsewhere `None`): the socket from port `local`
/// to port `remote`, and the one back. That file lists every TCP socket of
/// the machine, tens of thousands on a busy test machine: it is read once
/// for both, and scanned without an allocation a row.
pub fn tcp_queues(local: u16, remote: u16) -> (Queues, Queues) {
    let Ok(table) = fs::read_to_string("/proc/net/tcp") else {
        return (None, None);
    };
    let (local, remote) = (format!(":{local:04X}"), format!(":{remote:04X}"));
    let (mut there, mut back) = (None, None);
    for row in table.lines().skip(1) {
        let mut fields = row.split_whitespace().skip(1);
        let (Some(from), Some(to)) = (fields.next(), fields.next()) else {
            continue;
        };
        let slot = if from.ends_with(&local) && to.ends_with(&remote) {
            &mut there
        } else if from.ends_with(&remote) && to.ends_with(&local) {
            &mut back
        } else {
            continue;
        };
        // After the two addresses: the state, then `tx_queue:rx_queue`.
        *slot = fields.nth(1).and_then(|queues| {
            let (tx, rx) = queues.split_once(':')?;
            Some((
                u64::from_str_radix(tx, 16).ok()?,
                u64::from_str_radix(rx, 16).ok()?,
            ))
        });
        if there.is_some() && back.is_some() {
            break;
        }
    }
    (there, back)
}
