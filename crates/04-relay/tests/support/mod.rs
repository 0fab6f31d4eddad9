//! What lesson 4's test files share: the server and clients started the
//! same way every time, and a raw client that registers.

// Each test file uses a part of this module. Helpers outside #[test]
// functions fail the way tests do: by panicking.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::cell::Cell;
use std::net::SocketAddr;
use std::path::Path;

use testkit::{Connection, Process};

thread_local! {
    /// The chapter section that explains what the running test checks.
    /// Each test runs on a thread of its own, so each sets its own.
    static SECTION: Cell<&'static str> = const { Cell::new("The protocol") };
}

/// Names the heading of docs/src/04-relay.md that explains what the
/// running test checks. Called first in each test: every failure message
/// the helpers below make ends with it, as [`book_section`] writes it.
pub fn book(heading: &'static str) {
    SECTION.set(heading);
}

/// Where the chapter promises that the server closes gently after its last
/// line (`BYE`, `ERR line-too-long`, `ERR hello-first`): its writer thread
/// half-closes and drains, so that no reset destroys that line.
pub const GENTLE_CLOSE: &str = "(book: 04-relay.md § One client's conversation)";

/// `(book: 04-relay.md § HEADING)` for the running test: the end of every
/// failure message, so that a failure says where the chapter explains it.
pub fn book_section() -> String {
    format!("(book: 04-relay.md § {})", SECTION.get())
}

pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_04-relay"))
}

/// The relay server on a free port, with `extra` options.
pub fn start_server(extra: &[&str]) -> Process {
    let mut args = vec!["serve"];
    args.extend(extra);
    Process::server(bin(), &args)
}

/// A raw client that has sent `HELLO <name>` and checked the exact
/// `WELCOME <name> <its own address>`.
#[track_caller]
pub fn register(addr: SocketAddr, name: &str) -> Connection {
    register_with(addr, &format!("HELLO {name}"), name)
}

/// Two raw clients registered as `first` and `second`, once `first` has
/// heard `JOINED <second>`.
#[track_caller]
pub fn register_two(addr: SocketAddr, first: &str, second: &str) -> (Connection, Connection) {
    let [one, two] = register_all(addr, [first, second]);
    (one, two)
}

/// Raw clients registered in order, each past the `JOINED` news of the
/// ones after it: every client hears `JOINED <name>` for each client that
/// registers after it, in that order. So a test starts with its clients
/// all there and every one's next line its own business.
#[track_caller]
pub fn register_all<const N: usize>(addr: SocketAddr, names: [&str; N]) -> [Connection; N] {
    let mut clients: Vec<Connection> = Vec::with_capacity(N);
    for name in names {
        let newcomer = register(addr, name);
        for (earlier, client) in names.iter().zip(&mut clients) {
            expect_exact_line(
                client,
                &format!("JOINED {name}"),
                &format!("{earlier} should hear that {name} joined"),
            );
        }
        clients.push(newcomer);
    }
    clients
        .try_into()
        .unwrap_or_else(|_| unreachable!("one client per name"))
}

/// [`register`] with the HELLO line given whole (to announce a port).
#[track_caller]
pub fn register_with(addr: SocketAddr, hello: &str, name: &str) -> Connection {
    let mut conn = Connection::open(addr);
    conn.send_line(hello);
    let welcome = format!("WELCOME {name} {}", conn.local_addr());
    expect_exact_line(
        &mut conn,
        &welcome,
        &format!(
            "a client that sends `{hello}` should be answered with WELCOME, the name, and the client's address as the server sees it"
        ),
    );
    conn
}

/// Reads one line and asserts it is exactly `expected`. `why` says what a
/// correct server does, and for whom; the chapter section is added.
#[track_caller]
pub fn expect_exact_line(conn: &mut Connection, expected: &str, why: &str) {
    let got = conn.read_line(&format!(
        "{why}: expected `{}` {}",
        short(expected),
        book_section()
    ));
    assert!(
        got == expected,
        "{why}: expected `{}`; got `{}` {}",
        short(expected),
        short(&got),
        book_section()
    );
}

/// Sends `line` and asserts the next line back is exactly `expected`.
#[track_caller]
pub fn exchange(conn: &mut Connection, line: &str, expected: &str) {
    conn.send_line(line);
    expect_exact_line(
        conn,
        expected,
        &format!("the server should answer `{}`", short(line)),
    );
}

/// Waits (at most [`WAIT`]) for a line of `process`'s output that
/// contains `text`, as `Process::expect_line` does, and fails with `why`
/// (what a correct program prints, and when) and the chapter section.
#[track_caller]
pub fn wait_for(process: &mut Process, text: &str, why: &str) -> String {
    process.expect_line(text, &format!("{why} {}", book_section()))
}

/// Checks that `watcher` has been told `LEFT <name>`, once the server has
/// logged that `name` left, without waiting [`WAIT`] for a line that is
/// never coming. The server queues the notice when it removes the client,
/// before it logs the leaving: so `LEFT <name>` must come before the answer
/// to a `LIST` the watcher sends after the log line. Returns the log line.
#[track_caller]
pub fn expect_left(
    server: &mut Process,
    watcher: &mut Connection,
    name: &str,
    why: &str,
) -> String {
    let logged = wait_for(
        server,
        &format!("{name} left"),
        &format!("{why}: the server should log that {name} left"),
    );
    watcher.send_line("LIST");
    let expected = format!("LEFT {name}");
    let got = watcher.read_line(&format!(
        "{why}: once the server has logged `{logged}`, `{expected}` should come before the answer to a LIST {}",
        book_section()
    ));
    assert!(
        got == expected,
        "{why}: once the server has logged `{logged}`, `{expected}` should already be on its way, before the answer to the LIST sent after it; got `{}` {}",
        short(&got),
        book_section()
    );
    let peers = watcher.read_line(&format!(
        "after `{expected}`, the answer to LIST {}",
        book_section()
    ));
    assert!(
        peers.starts_with("PEERS"),
        "after `{expected}`, the answer to LIST should be `PEERS ...`; got `{}` {}",
        short(&peers),
        book_section()
    );
    logged
}

/// A long line cut to its start and length, for failure messages.
pub fn short(line: &str) -> String {
    match line.char_indices().nth(60) {
        Some((at, _)) => format!("{}... ({} bytes)", &line[..at], line.len()),
        None => line.to_string(),
    }
}

/// A `04-relay join NAME` client of `server`, past its `joined as NAME` line.
#[track_caller]
pub fn join(server: &Process, name: &str, extra: &[&str]) -> Process {
    let addr = server.addr().to_string();
    let mut args = vec!["join", name, "--server", &addr];
    args.extend(extra);
    let mut client = Process::start(bin(), &args);
    wait_for(
        &mut client,
        &format!("joined as {name}"),
        &format!("`04-relay join {name}` should register and say so once WELCOME comes"),
    );
    client
}
