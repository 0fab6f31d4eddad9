//! Clients that misbehave, as real ones do: crash mid-line, never speak,
//! flood, send garbage, open hundreds of connections at once, close without
//! reading. Every server lesson (3 to 5) runs this whole battery with
//! [`run_battery`]; lesson 2, which serves one client and exits, runs the
//! cases one by one on fresh servers with [`Case::act`].
//!
//! What "survives" means is the same for every server: after each case it
//! still answers a well-behaved client correctly (the lesson's test says what
//! that client does), it never prints a network byte raw, and its memory does
//! not keep growing when the battery is run again.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::thread;
use std::time::{Duration, Instant};

use crate::{Connection, Process, QUIET, WAIT};

/// How many connections the burst case opens at once: far over every
/// server's default cap of clients.
pub const BURST: usize = 500;

/// What the flood case sends without a newline: more than any line limit.
pub const FLOOD: usize = 1024 * 1024;

/// The bytes the garbage case sends: invalid UTF-8, a terminal escape that
/// would clear the screen, a bell, a NUL, and a newline.
pub const GARBAGE: &[u8] = b"caf\xe9 \x1b[2J\x07\x00 \xff\xfe\n";

/// One kind of misbehaving client.
#[derive(Clone, Copy, Debug)]
pub enum Case {
    /// Connects and closes at once, without a byte.
    CloseAtOnce,
    /// Connects and sends nothing (the connection is held open while the
    /// well-behaved client is checked, to prove it does not block anyone).
    SendNothing,
    /// Sends half a line, then resets the connection (SO_LINGER 0).
    ResetMidLine,
    /// Sends [`FLOOD`] bytes with no newline.
    FloodWithoutNewline,
    /// Sends [`GARBAGE`]: invalid UTF-8 and control characters.
    Garbage,
    /// Sends many lines in one write.
    ManyLinesInOneWrite,
    /// Sends one line a byte at a time.
    OneLineInManyWrites,
    /// Opens [`BURST`] connections at once, then closes them all.
    Burst,
    /// Sends a line and closes without reading the reply.
    CloseWithoutReading,
}

impl Case {
    /// What this client does, in words, for failure messages: which client,
    /// and what it sent. `line` is the request given to [`Case::act`].
    pub fn describe(self, line: &str) -> String {
        let sent = |bytes: &str| crate::show(bytes.as_bytes());
        match self {
            Case::CloseAtOnce => {
                "a client that connects and closes at once, without sending a byte".to_string()
            }
            Case::SendNothing => {
                "a client that connects and sends nothing, keeping the connection open".to_string()
            }
            Case::ResetMidLine => format!(
                "a client that sends half a line, {} (no newline), then resets the connection (RST)",
                crate::show(&line.as_bytes()[..line.len() / 2])
            ),
            Case::FloodWithoutNewline => {
                format!("a client that sends {FLOOD} bytes of `x` without a newline")
            }
            Case::Garbage => format!(
                "a client that sends {} (invalid UTF-8 and control characters), then half-closes",
                crate::show(GARBAGE)
            ),
            Case::ManyLinesInOneWrite => format!(
                "a client that sends {} 100 times in one write, then half-closes",
                sent(&format!("{line}\n"))
            ),
            Case::OneLineInManyWrites => format!(
                "a client that sends {} one byte per write, then half-closes",
                sent(&format!("{line}\n"))
            ),
            Case::Burst => format!(
                "a client that opens {BURST} connections at once, sends nothing, then closes them all"
            ),
            Case::CloseWithoutReading => format!(
                "a client that sends {} and closes without reading the reply",
                sent(&format!("{line}\n"))
            ),
        }
    }

    pub const ALL: [Case; 9] = [
        Case::CloseAtOnce,
        Case::SendNothing,
        Case::ResetMidLine,
        Case::FloodWithoutNewline,
        Case::Garbage,
        Case::ManyLinesInOneWrite,
        Case::OneLineInManyWrites,
        Case::Burst,
        Case::CloseWithoutReading,
    ];

    /// Plays this client against the server at `addr`. `line` is a request
    /// the server understands (without its newline), used where the case
    /// needs one. Returns a connection that must stay open while the
    /// well-behaved client is checked (for [`Case::SendNothing`]).
    #[track_caller]
    pub fn act(self, addr: SocketAddr, line: &str) -> Option<Connection> {
        match self {
            Case::CloseAtOnce => drop(Connection::open(addr)),
            Case::SendNothing => return Some(Connection::open(addr)),
            Case::ResetMidLine => {
                let mut conn = Connection::open(addr);
                conn.send(&line.as_bytes()[..line.len() / 2]);
                conn.reset();
            }
            Case::FloodWithoutNewline => flood(addr),
            Case::Garbage => {
                let mut conn = Connection::open(addr);
                conn.send(GARBAGE);
                conn.half_close();
                drain(conn);
            }
            Case::ManyLinesInOneWrite => {
                let mut conn = Connection::open(addr);
                conn.send(format!("{line}\n").repeat(100).as_bytes());
                conn.half_close();
                drain(conn);
            }
            Case::OneLineInManyWrites => {
                let mut conn = Connection::open(addr);
                conn.stream().set_nodelay(true).unwrap();
                for byte in format!("{line}\n").bytes() {
                    conn.send(&[byte]);
                }
                conn.half_close();
                drain(conn);
            }
            Case::Burst => burst(addr),
            Case::CloseWithoutReading => {
                let mut conn = Connection::open(addr);
                conn.send(format!("{line}\n").as_bytes());
                drop(conn);
            }
        }
        None
    }
}

/// Sends [`FLOOD`] bytes without a newline, for as long as the server takes
/// them; the server is expected to refuse the line and close long before.
#[track_caller]
fn flood(addr: SocketAddr) {
    let mut stream = TcpStream::connect_timeout(&addr, WAIT).unwrap();
    stream.set_write_timeout(Some(WAIT)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < FLOOD {
        match stream.write(&chunk) {
            Ok(n) => sent += n,
            // The server closed (or reset) the connection: that is its
            // right with a line this long.
            Err(_) => break,
        }
    }
    let mut sink = Vec::new();
    let _ = stream.read_to_end(&mut sink);
}

/// Reads whatever the server sends until it closes (within [`WAIT`]).
fn drain(conn: Connection) {
    let mut sink = Vec::new();
    let _ = conn.stream().set_read_timeout(Some(WAIT));
    let _ = conn.stream().read_to_end(&mut sink);
    drop(conn);
}

/// Opens [`BURST`] connections as fast as it can, then closes them all.
#[track_caller]
fn burst(addr: SocketAddr) {
    let mut open = Vec::new();
    for _ in 0..BURST {
        // Past the listen backlog, a connect may wait for the kernel to
        // retry; give up on those rather than wait: the burst is the point.
        if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            open.push(stream);
        }
    }
    assert!(
        open.len() >= BURST / 4,
        "only {} of {BURST} connections in a burst were accepted by the kernel",
        open.len()
    );
    drop(open);
}

/// After a burst, waits until the server has noticed the closed connections
/// and freed their slots: a new connection is no longer refused as busy.
#[track_caller]
pub fn wait_until_not_busy(addr: SocketAddr) {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if !refused_busy(addr) {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "after a burst of {BURST} connections all closed, the server should free its client slots; it still answers `busy` after {} s",
        WAIT.as_secs()
    );
}

/// Whether a new connection is turned away at once with a busy line.
#[track_caller]
fn refused_busy(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, WAIT) else {
        return true;
    };
    stream.set_read_timeout(Some(QUIET)).unwrap();
    let mut first = [0; 64];
    match stream.read(&mut first) {
        Ok(n) => String::from_utf8_lossy(&first[..n])
            .to_lowercase()
            .contains("busy"),
        Err(_) => false,
    }
}

/// The resident memory of process `pid` in KiB (Linux: from /proc), or None
/// where that cannot be read.
pub fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// How much a server's memory may grow between a first and a second run of
/// the whole battery: a server that keeps something of every misbehaving
/// client (a flood's bytes, a burst's threads) grows by far more.
pub const GROWTH_LIMIT_KIB: u64 = 8 * 1024;

/// Runs every [`Case`] against `server`, and after each one checks that
/// `well_behaved(addr)` still gets correct answers; then runs the whole
/// battery a second time and checks the server's memory did not keep
/// growing. `line` is a request the server understands.
///
/// `well_behaved` should panic with a clear message when the answer is
/// wrong; the battery prints which case came before it.
pub fn run_battery(
    lesson: &str,
    server: &mut Process,
    line: &str,
    well_behaved: impl Fn(SocketAddr),
) {
    run_cases(lesson, server, line, &Case::ALL, well_behaved);
}

/// [`run_battery`] with only some of the cases.
pub fn run_cases(
    lesson: &str,
    server: &mut Process,
    line: &str,
    cases: &[Case],
    well_behaved: impl Fn(SocketAddr),
) {
    let addr = server.addr();
    well_behaved(addr);
    let mut after_first_round = None;
    for round in 1..=2 {
        for &case in cases {
            // Printed before the check, so a failure shows which case broke it.
            println!(
                "{lesson}, round {round}: a client that does {case:?}, then a well-behaved client"
            );
            let held = case.act(addr, line);
            if let Case::Burst = case {
                wait_until_not_busy(addr);
            }
            // A failure names the misbehaving client before it: the
            // well-behaved client's own message says what came back.
            let served = panic::catch_unwind(AssertUnwindSafe(|| well_behaved(addr)));
            if let Err(failure) = served {
                let message = failure
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| failure.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                panic!(
                    "{lesson}, round {round}: after {}, the server should still serve a well-behaved client; it did not:\n{message}",
                    case.describe(line)
                );
            }
            drop(held);
        }
        let rss = resident_kib(server.pid());
        if round == 1 {
            after_first_round = rss;
        } else if let (Some(first), Some(second)) = (after_first_round, rss) {
            assert!(
                second <= first + GROWTH_LIMIT_KIB,
                "{lesson}: the server's memory grew from {first} KiB to {second} KiB over a second run of the same misbehaving clients; something is kept for every client"
            );
        }
    }
    let log = server.stdout_now();
    for raw in ["\u{1b}", "\u{7}", "\u{0}"] {
        assert!(
            !log.contains(raw),
            "{lesson}: the server printed a control character from the network raw ({raw:?}); it must be escaped"
        );
    }
}
