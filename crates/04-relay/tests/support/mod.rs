//! What lesson 4's test files share: the server and clients started the
//! same way every time, and a raw client that registers.

// Each test file uses a part of this module. Helpers outside #[test]
// functions fail the way tests do: by panicking.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::cell::Cell;
use std::net::SocketAddr;
use std::path::Path;

use testkit::{Connection, Process};

/// The sections of docs/src/04-relay.md that the tests' failure messages
/// point to, each named once: a renamed heading is one line to change
/// here, and the book's test checks that each names a real section.
pub mod book {
    pub const A_FULL_QUEUE_SLOWS_THE_SENDER: &str =
        "(book: 04-relay.md § A full queue slows the sender)";
    pub const IDLE_CLIENTS: &str = "(book: 04-relay.md § Idle clients)";
    pub const JOINING_AND_LEAVING: &str = "(book: 04-relay.md § Joining and leaving)";
    pub const ONE_CLIENTS_CONVERSATION: &str = "(book: 04-relay.md § One client's conversation)";
    pub const READING_A_COMMAND: &str = "(book: 04-relay.md § Reading a command)";
    pub const RELAY_OR_DIRECT: &str = "(book: 04-relay.md § Relay or direct)";
    pub const RUN_IT: &str = "(book: 04-relay.md § Run it)";
    pub const SLOW_OR_STOPPED: &str = "(book: 04-relay.md § Slow, or stopped?)";
    pub const THE_CLIENT: &str = "(book: 04-relay.md § The client)";
    pub const THE_LIMITS: &str = "(book: 04-relay.md § The limits)";
    pub const THE_PROTOCOL: &str = "(book: 04-relay.md § The protocol)";
    pub const THE_REGISTRY_AND_WHY_EVERY_CLIENT_HAS_A_QUEUE: &str =
        "(book: 04-relay.md § The registry, and why every client has a queue)";
    pub const THE_SERVER: &str = "(book: 04-relay.md § The server)";
    pub const THE_SLOW_RECEIVER_TESTED: &str = "(book: 04-relay.md § The slow receiver, tested)";
    pub const WHERE_THE_INTRODUCTION: &str = "(book: 04-relay.md § WHERE: the introduction)";
}

thread_local! {
    /// The chapter section that explains what the running test checks.
    /// Each test runs on a thread of its own, so each sets its own.
    static SECTION: Cell<&'static str> = const { Cell::new(book::THE_PROTOCOL) };
}

/// Names the section of the chapter (one of [`book`]'s) that explains what
/// the running test checks. Called first in each test: every failure
/// message the helpers below make ends with it, as [`book_section`] gives
/// it.
pub fn explains(section: &'static str) {
    SECTION.set(section);
}

/// The running test's section, `(book: 04-relay.md § HEADING)`: the end of
/// every failure message, so that a failure says where the chapter
/// explains it.
pub fn book_section() -> String {
    SECTION.get().to_string()
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

/// `why` (what a correct program does, and for whom) followed by the
/// running test's chapter section: the message for the kit's
/// `Process::expect_line` and the like.
pub fn with_section(why: &str) -> String {
    format!("{why} {}", book_section())
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
    let logged = server.expect_line(
        &format!("{name} left"),
        &with_section(&format!("{why}: the server should log that {name} left")),
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
    client.expect_line(
        &format!("joined as {name}"),
        &with_section(&format!(
            "`04-relay join {name}` should register and say so once WELCOME comes"
        )),
    );
    client
}
