//! Lesson 4's protocol, line by line, over raw sockets: every command and
//! every error, with the exact bytes. Write the server yourself, then run
//! `cargo test -p relay`: each test names what the server should do.
//!
//! Every test starts the real `04-relay serve` with `--listen 127.0.0.1:0`,
//! learns its port from its first line, and talks to it over loopback.

mod support;

use std::time::{Duration, Instant};

use relay::{RELAY_WAIT, Refusal};
use support::{
    book, book_section, exchange, expect_exact_line, expect_left, explains, register, register_all,
    register_two, register_with, short, start_server, with_section,
};
use testkit::{Connection, WAIT, show};

/// Where the chapter promises that the server closes gently after its last
/// line (`BYE`, `ERR line-too-long`, `ERR hello-first`): its writer thread
/// half-closes and drains, so that no reset destroys that line.
const GENTLE_CLOSE: &str = book::ONE_CLIENTS_CONVERSATION;

// ---------------------------------------------------------------------------
// HELLO
// ---------------------------------------------------------------------------

#[test]
fn hello_is_welcomed_with_the_address_the_server_sees() {
    explains(book::THE_PROTOCOL);
    let mut server = start_server(&[]);
    // register() checks the exact line: WELCOME alice 127.0.0.1:<our port>.
    let _alice = register(server.addr(), "alice");
    let line = server.expect_line(
        "joined",
        &with_section("when alice registers, the server should log it"),
    );
    assert!(
        line.starts_with("alice joined from 127.0.0.1:"),
        "when alice registers, the server should log `alice joined from 127.0.0.1:PORT`, her name and the address it sees her at; got {line:?} {}",
        book_section()
    );
}

#[test]
fn nothing_but_hello_is_accepted_before_it() {
    explains(book::THE_PROTOCOL);
    let server = start_server(&[]);
    let mut conn = Connection::open(server.addr());
    for line in [
        "LIST",
        "SEND bob hi",
        "ALL hi",
        "WHERE bob",
        "FOO",
        "",
        "hello alice",
    ] {
        exchange(&mut conn, line, "ERR hello-first");
    }
    let welcome = format!("WELCOME alice {}", conn.local_addr());
    exchange(&mut conn, "HELLO alice", &welcome);
}

#[test]
fn bad_names_are_refused() {
    explains(book::READING_A_COMMAND);
    let server = start_server(&[]);
    let mut conn = Connection::open(server.addr());
    let too_long = "x".repeat(33);
    for hello in [
        "HELLO".to_string(),
        "HELLO ".to_string(),
        format!("HELLO {too_long}"),
        "HELLO al!ce".to_string(),
        "HELLO 你好".to_string(),
        "HELLO  alice".to_string(),
    ] {
        conn.send_line(&hello);
        expect_exact_line(
            &mut conn,
            "ERR bad-name",
            &format!("`{hello}`: a name is 1 to 32 ASCII letters, digits, `_` or `-`"),
        );
    }
    // A wrong port, or a word too many, is a HELLO of the wrong form.
    for hello in [
        "HELLO alice 0",
        "HELLO alice 65536",
        "HELLO alice +80",
        "HELLO alice 80 x",
    ] {
        exchange(&mut conn, hello, "ERR usage HELLO <name> [<listen-port>]");
    }
    // The longest name, and every kind of character allowed, is fine.
    let longest = format!("Az09_-{}", "n".repeat(26));
    let welcome = format!("WELCOME {longest} {}", conn.local_addr());
    exchange(&mut conn, &format!("HELLO {longest} 65535"), &welcome);
}

/// Names are compared byte for byte. Only ASCII is allowed, so no Unicode
/// look-alike; ASCII ones remain: `alice`, `Alice` and `aIice` (a capital
/// i) are three clients. A name proves nothing about who uses it.
#[test]
fn names_are_compared_byte_for_byte_so_ascii_look_alikes_are_different_names() {
    explains(book::READING_A_COMMAND);
    let server = start_server(&[]);
    let [mut alice, _capital, _look_alike] =
        register_all(server.addr(), ["alice", "Alice", "aIice"]);
    exchange(&mut alice, "LIST", "PEERS Alice aIice alice");
}

#[test]
fn a_taken_name_is_refused_until_it_is_free_again() {
    explains(book::JOINING_AND_LEAVING);
    let mut server = start_server(&[]);
    let mut alice = register(server.addr(), "alice");
    let mut other = Connection::open(server.addr());
    exchange(&mut other, "HELLO alice", "ERR name-taken");
    exchange(&mut alice, "BYE", "BYE");
    alice.expect_orderly_close(&format!(
        "after answering alice's BYE, the server should close her connection gently {GENTLE_CLOSE}"
    ));
    server.expect_line(
        "alice left",
        &with_section("when alice has left, the server should log `alice left`"),
    );
    let welcome = format!("WELCOME alice {}", other.local_addr());
    exchange(&mut other, "HELLO alice", &welcome);
}

#[test]
fn a_second_hello_is_refused() {
    explains(book::THE_PROTOCOL);
    let server = start_server(&[]);
    let mut alice = register(server.addr(), "alice");
    exchange(&mut alice, "HELLO alice", "ERR already-registered");
    exchange(&mut alice, "HELLO bob", "ERR already-registered");
    exchange(&mut alice, "LIST", "PEERS alice");
}

#[test]
fn crlf_line_ends_work_as_telnet_sends_them() {
    explains(book::THE_PROTOCOL);
    let server = start_server(&[]);
    let mut conn = Connection::open(server.addr());
    conn.send(b"HELLO alice\r\nLIST\r\n");
    let welcome = format!("WELCOME alice {}", conn.local_addr());
    expect_exact_line(&mut conn, &welcome, "a `\\r` before the newline is ignored");
    expect_exact_line(
        &mut conn,
        "PEERS alice",
        "a `\\r` before the newline is ignored",
    );
}

// ---------------------------------------------------------------------------
// LIST, SEND, ALL
// ---------------------------------------------------------------------------

#[test]
fn list_names_every_client_sorted() {
    explains(book::THE_PROTOCOL);
    let server = start_server(&[]);
    let [mut carol, _alice, _bob] = register_all(server.addr(), ["carol", "alice", "bob"]);
    exchange(&mut carol, "LIST", "PEERS alice bob carol");
}

#[test]
fn send_relays_one_line_to_one_client() {
    explains(book::THE_REGISTRY_AND_WHY_EVERY_CLIENT_HAS_A_QUEUE);
    let mut server = start_server(&[]);
    let [mut alice, mut bob] = register_all(server.addr(), ["alice", "bob"]);

    exchange(&mut alice, "SEND bob hi bob, 你好", "SENT bob");
    expect_exact_line(
        &mut bob,
        "FROM alice hi bob, 你好",
        "bob should get alice's text, spaces and all",
    );
    // The text may be empty.
    exchange(&mut alice, "SEND bob ", "SENT bob");
    expect_exact_line(&mut bob, "FROM alice ", "an empty text is relayed as it is");
    // To oneself is allowed: the line comes back (relayed first, then the
    // reply to SEND).
    bob.send_line("SEND bob note to self");
    expect_exact_line(
        &mut bob,
        "FROM bob note to self",
        "a client may send to itself",
    );
    expect_exact_line(&mut bob, "SENT bob", "and gets SENT for it");
    server.expect_line(
        &format!("alice -> bob: {} bytes", "hi bob, 你好".len()),
        &with_section("the server should log each relayed line, `SENDER -> RECEIVER: N bytes`"),
    );
    alice.expect_nothing(&format!(
        "alice should get nothing more: the lines she sent went to bob {}",
        book_section()
    ));
}

#[test]
fn send_to_a_client_that_is_not_there() {
    explains(book::THE_PROTOCOL);
    let server = start_server(&[]);
    let mut alice = register(server.addr(), "alice");
    exchange(&mut alice, "SEND carol hello?", "ERR no-such-peer carol");
    exchange(&mut alice, "SEND c@rol hello?", "ERR bad-name");
    exchange(&mut alice, "SEND carol", "ERR usage SEND <name> <text>");
    exchange(&mut alice, "SEND", "ERR usage SEND <name> <text>");
}

#[test]
fn all_reaches_every_other_client_and_not_the_sender() {
    explains(book::THE_REGISTRY_AND_WHY_EVERY_CLIENT_HAS_A_QUEUE);
    let mut server = start_server(&[]);
    let [mut alice, mut bob, mut carol] = register_all(server.addr(), ["alice", "bob", "carol"]);

    exchange(&mut carol, "ALL hello everyone", "SENT *");
    expect_exact_line(&mut alice, "FROM carol hello everyone", "ALL reaches alice");
    expect_exact_line(&mut bob, "FROM carol hello everyone", "ALL reaches bob");
    carol.expect_nothing(&format!(
        "carol sent `ALL hello everyone`: she should not get her own line back {}",
        book_section()
    ));
    exchange(&mut carol, "ALL", "ERR usage ALL <text>");
    server.expect_line(
        "carol -> everyone: 14 bytes",
        &with_section("the server should log each broadcast, `SENDER -> everyone: N bytes`"),
    );
}

#[test]
fn text_is_limited_so_that_every_from_line_fits() {
    explains(book::THE_LIMITS);
    let server = start_server(&[]);
    let longest_name = "n".repeat(32);
    let mut sender = register(server.addr(), &longest_name);
    let mut b = register(server.addr(), "b");
    expect_exact_line(
        &mut sender,
        "JOINED b",
        "the sender should hear that b joined",
    );
    // TEXT_LIMIT: 4096 - "FROM ".len() - 32 - " ".len() = 4058 bytes.
    let text = "t".repeat(4058);
    exchange(&mut sender, &format!("SEND b {text}"), "SENT b");
    let from = format!("FROM {longest_name} {text}");
    assert_eq!(
        from.len(),
        4096,
        "the test's longest FROM line should be 4096 bytes"
    );
    expect_exact_line(&mut b, &from, "a text of 4058 bytes is relayed");
    let text = "t".repeat(4059);
    exchange(&mut sender, &format!("SEND b {text}"), "ERR text-too-long");
    exchange(&mut sender, &format!("ALL {text}"), "ERR text-too-long");
}

// ---------------------------------------------------------------------------
// WHERE: the introduction
// ---------------------------------------------------------------------------

#[test]
fn where_gives_the_announced_port_not_the_connection_port() {
    explains(book::WHERE_THE_INTRODUCTION);
    let mut server = start_server(&[]);
    let mut alice = register(server.addr(), "alice");
    let bob = register_with(server.addr(), "HELLO bob 40123", "bob");
    let _carol = register(server.addr(), "carol");
    expect_exact_line(
        &mut alice,
        "JOINED bob",
        "alice should hear that bob joined",
    );
    expect_exact_line(
        &mut alice,
        "JOINED carol",
        "alice should hear that carol joined",
    );
    let bob_port = bob.local_addr().port();
    assert_ne!(bob_port, 40123, "the test needs bob's two ports to differ");

    // The IP the server saw bob at, and the port bob announced: not the
    // port of bob's connection to the server, where nobody listens.
    let why = format!(
        "alice sent `WHERE bob`, and bob had registered with `HELLO bob 40123`: the answer must be \
         the IP the server saw bob at with the port bob announced in HELLO, where bob listens, \
         not the port of bob's connection to the server ({bob_port}), an ephemeral port his \
         kernel picked for that one connection, where nobody listens"
    );
    alice.send_line("WHERE bob");
    expect_exact_line(&mut alice, "AT bob 127.0.0.1:40123", &why);
    alice.send_line("WHERE carol");
    expect_exact_line(
        &mut alice,
        "ERR not-listening carol",
        "carol registered with `HELLO carol`, announcing no port: alice's `WHERE carol` should be answered `ERR not-listening carol`, never with the port of carol's connection to the server, where nobody listens",
    );
    exchange(&mut alice, "WHERE dave", "ERR no-such-peer dave");
    exchange(&mut alice, "WHERE", "ERR usage WHERE <name>");
    exchange(&mut alice, "WHERE bob carol", "ERR bad-name");
    server.expect_line(
        "alice asked where bob is: 127.0.0.1:40123",
        &with_section(
            "the server should log each introduction, `ASKER asked where NAME is: ADDRESS`",
        ),
    );
}

/// The IP in an introduction is the one the server saw the client at, as
/// `accept()` gave it: not the asker's, not the server's, not a guess. A
/// server listening on `[::]` sees an IPv4 client as `::ffff:127.0.0.1`,
/// which `to_canonical` turns back into `127.0.0.1`.
#[test]
fn where_gives_the_ip_the_server_saw_that_client_at() {
    explains(book::WHERE_THE_INTRODUCTION);
    let mut server = testkit::Process::start(support::bin(), &["serve", "--listen", "[::]:0"]);
    let first = server.next_line(&format!(
        "the server started with `--listen [::]:0` should print `listening on [::]:PORT` {}",
        book_section()
    ));
    let port = first
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse::<u16>().ok())
        .unwrap_or_else(|| {
            panic!(
                "expected `listening on [::]:PORT`; got {first:?} {}",
                book_section()
            )
        });
    let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let v6 = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
    let mut alice = register(v6, "alice");
    let _bob = register_with(v4, "HELLO bob 40123", "bob");
    let _carol = register_with(v6, "HELLO carol 40124", "carol");
    expect_exact_line(
        &mut alice,
        "JOINED bob",
        "alice should hear that bob joined",
    );
    expect_exact_line(
        &mut alice,
        "JOINED carol",
        "alice should hear that carol joined",
    );
    alice.send_line("WHERE bob");
    expect_exact_line(
        &mut alice,
        "AT bob 127.0.0.1:40123",
        "the server listens on [::]; bob connected over IPv4 from 127.0.0.1 and announced port 40123, alice over IPv6 from ::1: `WHERE bob` should give the IP the server saw bob at, made canonical (`::ffff:127.0.0.1` is 127.0.0.1, `to_canonical`), with bob's port, not the asker's IP",
    );
    alice.send_line("WHERE carol");
    expect_exact_line(
        &mut alice,
        "AT carol [::1]:40124",
        "the server listens on [::]; carol connected over IPv6 from ::1 and announced port 40124: `WHERE carol` should give the IP the server saw carol at, not one written in the program",
    );
}

// ---------------------------------------------------------------------------
// BYE, JOINED, LEFT
// ---------------------------------------------------------------------------

#[test]
fn bye_is_answered_and_the_connection_closed() {
    explains(book::JOINING_AND_LEAVING);
    let mut server = start_server(&[]);
    let mut alice = register(server.addr(), "alice");
    exchange(&mut alice, "BYE", "BYE");
    alice.expect_orderly_close(&format!(
        "after answering alice's BYE, the server should take her out of the registry (her writer thread ends, and closes, once nobody holds her queue) and close her connection gently, with nothing after BYE: the LEFT notice is for the others {GENTLE_CLOSE}"
    ));
    server.expect_line(
        "alice left",
        &with_section("when alice has said BYE, the server should log `alice left`"),
    );
    // BYE before HELLO is fine too: leaving is always allowed.
    let mut shy = Connection::open(server.addr());
    exchange(&mut shy, "BYE", "BYE");
    shy.expect_orderly_close(&format!(
        "a client that says BYE before HELLO gets BYE too, and then the server should close its connection gently {GENTLE_CLOSE}"
    ));
    exchange(
        &mut register(server.addr(), "bob"),
        "BYE x",
        "ERR usage BYE",
    );
}

#[test]
fn joined_and_left_are_announced_however_a_client_leaves() {
    explains(book::JOINING_AND_LEAVING);
    let mut server = start_server(&[]);
    let mut watcher = register(server.addr(), "watcher");

    let mut polite = register(server.addr(), "polite");
    expect_exact_line(
        &mut watcher,
        "JOINED polite",
        "a new client is announced to the others",
    );
    exchange(&mut polite, "BYE", "BYE");
    expect_left(
        &mut server,
        &mut watcher,
        "polite",
        "a client that says BYE is announced as gone",
    );

    let closer = register(server.addr(), "closer");
    expect_exact_line(
        &mut watcher,
        "JOINED closer",
        "a new client is announced to the others",
    );
    drop(closer);
    expect_left(
        &mut server,
        &mut watcher,
        "closer",
        "a client that closes without BYE is announced as gone",
    );

    let mut crasher = register(server.addr(), "crasher");
    expect_exact_line(
        &mut watcher,
        "JOINED crasher",
        "a new client is announced to the others",
    );
    crasher.send(b"SEND watcher half a li");
    crasher.reset();
    expect_left(
        &mut server,
        &mut watcher,
        "crasher",
        "a client that resets mid-line is announced as gone",
    );
    // Every name is free again.
    for name in ["polite", "closer", "crasher"] {
        let _again = register(server.addr(), name);
    }
}

/// The chapter's table of refusals is the protocol's specification, so
/// every row is a case: each line is sent, by alice (registered) or by a
/// new connection, to a server where carol registered without a port, and
/// must get exactly the row's answer. The rows must also name every
/// `Refusal` there is, so that the table cannot leave one out.
#[test]
fn every_row_of_the_refusal_table() {
    explains(book::THE_PROTOCOL);
    let chapter = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/src/04-relay.md");
    let text = std::fs::read_to_string(chapter).unwrap();
    let rows: Vec<Vec<String>> = text
        .lines()
        .skip_while(|line| !line.starts_with("| the line | sent by | the answer | why |"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|row| {
            row.trim_matches('|')
                .split(" | ")
                .map(|cell| cell.trim().to_string())
                .collect()
        })
        .collect();
    assert!(
        rows.len() >= 20,
        "docs/src/04-relay.md should have the table `| the line | sent by | the answer | why |` with a row for each refusal; found {} rows {}",
        rows.len(),
        book_section()
    );

    let server = start_server(&[]);
    let _carol = register(server.addr(), "carol");
    let mut alice = register(server.addr(), "alice");
    let mut answers = Vec::new();
    for row in &rows {
        let [line, sender, answer, why] = &row[..] else {
            panic!(
                "the refusal table's row {row:?} should have four cells {}",
                book_section()
            );
        };
        let bytes = table_line(line);
        let answer = answer.trim_matches('`');
        let expected =
            format!("the line {line}, sent by {sender}, should be answered `{answer}`: {why}");
        let got = match sender.as_str() {
            "alice" => {
                alice.send(&[&bytes[..], b"\n"].concat());
                alice.read_line(&expected)
            }
            "a new connection" => {
                let mut conn = Connection::open(server.addr());
                conn.send(&[&bytes[..], b"\n"].concat());
                conn.read_line(&expected)
            }
            other => panic!(
                "the refusal table's rows are sent by `alice` or `a new connection`, not `{other}`"
            ),
        };
        assert!(
            got == answer,
            "{expected}; got `{}` {}",
            short(&got),
            book_section()
        );
        answers.push(answer.to_string());
    }

    // The refusals that answer a state rather than a line (full, busy) are
    // in the table after it, and tested on their own; they must be there.
    answers.extend(
        text.lines()
            .filter_map(|line| line.strip_prefix("| `ERR "))
            .map(|rest| format!("ERR {}", rest.split('`').next().unwrap_or(""))),
    );
    // Every refusal there is: this match stops compiling when one is added.
    let every = |refusal: &Refusal| match refusal {
        Refusal::HelloFirst
        | Refusal::AlreadyRegistered
        | Refusal::BadName
        | Refusal::NameTaken
        | Refusal::NoSuchPeer(_)
        | Refusal::Full(_)
        | Refusal::NotListening(_)
        | Refusal::Usage(_)
        | Refusal::TextTooLong
        | Refusal::ControlCharacter
        | Refusal::NotUtf8
        | Refusal::UnknownCommand
        | Refusal::LineTooLong => refusal.line(),
    };
    for refusal in [
        Refusal::HelloFirst,
        Refusal::AlreadyRegistered,
        Refusal::BadName,
        Refusal::NameTaken,
        Refusal::NoSuchPeer(String::new()),
        Refusal::Full(String::new()),
        Refusal::NotListening(String::new()),
        Refusal::Usage(""),
        Refusal::TextTooLong,
        Refusal::ControlCharacter,
        Refusal::NotUtf8,
        Refusal::UnknownCommand,
        Refusal::LineTooLong,
    ] {
        let code = every(&refusal);
        let code = code.trim_end();
        assert!(
            answers.iter().any(|answer| answer.starts_with(code)),
            "the chapter's refusal table should have a row for `{code}` {}",
            book_section()
        );
    }
}

/// A cell of the table's first column as the bytes sent: the code span's
/// text, with `\t` a tab, `\xNN` one byte, and `<N × c>` N copies of c.
fn table_line(cell: &str) -> Vec<u8> {
    if cell == "the empty line" {
        return Vec::new();
    }
    let unreadable = || -> ! {
        panic!(
            "the refusal table's line {cell} should be a code span, with `\\t`, `\\xNN` or `<N × c>` for what cannot be typed {}",
            book_section()
        )
    };
    let mut bytes = Vec::new();
    let mut rest = cell.trim_matches('`');
    while let Some(next) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("\\t") {
            bytes.push(b'\t');
            rest = after;
        } else if let Some(after) = rest.strip_prefix("\\x") {
            let byte = after
                .get(..2)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            bytes.push(byte.unwrap_or_else(|| unreadable()));
            rest = &after[2..];
        } else if let Some((repeat, after)) = rest.strip_prefix('<').and_then(|r| r.split_once('>'))
        {
            let (count, letter) = repeat.split_once(" × ").unwrap_or_else(|| unreadable());
            let count = count.parse().unwrap_or_else(|_| unreadable());
            bytes.extend(letter.repeat(count).bytes());
            rest = after;
        } else {
            bytes.extend(next.to_string().bytes());
            rest = &rest[next.len_utf8()..];
        }
    }
    bytes
}

// ---------------------------------------------------------------------------
// Lines that are not commands
// ---------------------------------------------------------------------------

#[test]
fn unknown_commands_and_wrong_forms() {
    explains(book::READING_A_COMMAND);
    // With --log-text, the log shows each refused line, escaped.
    let mut server = start_server(&["--log-text"]);
    let mut alice = register(server.addr(), "alice");
    exchange(&mut alice, "FOO", "ERR unknown-command");
    exchange(&mut alice, "", "ERR unknown-command");
    exchange(&mut alice, "list", "ERR unknown-command");
    exchange(&mut alice, "LIST everyone", "ERR usage LIST");
    alice.send(b"SEND bob caf\xe9\n");
    expect_exact_line(&mut alice, "ERR not-utf8", "the protocol is UTF-8 lines");
    let line = server.expect_line(
        "not-utf8",
        &with_section("the server should log each refused line"),
    );
    assert_eq!(
        line,
        "alice sent \"SEND bob caf\\xe9\": ERR not-utf8",
        "alice sent `SEND bob caf` and the byte 0xe9 to a server started with --log-text: the log should show the refused line with its bad byte escaped {}",
        book_section()
    );
    exchange(&mut alice, "LIST", "PEERS alice");
}

#[test]
fn control_characters_are_refused_never_relayed_and_logged_escaped() {
    explains(book::THE_PROTOCOL);
    let mut server = start_server(&["--log-text"]);
    let [mut alice, mut bob] = register_all(server.addr(), ["alice", "bob"]);
    alice.send(b"SEND bob \x1b[31mred\x07\n");
    expect_exact_line(
        &mut alice,
        "ERR control-character",
        "alice sent `SEND bob ESC [31mred BEL`: relayed text goes to other people's terminals, \
         and ESC starts terminal commands (colours, the cursor, the clipboard): the line should \
         be refused with `ERR control-character`",
    );
    alice.send(b"SEND bob plain\n");
    expect_exact_line(&mut alice, "SENT bob", "alice then sent `SEND bob plain`");
    bob.expect_bytes(
        b"FROM alice plain\n",
        &format!(
            "alice sent `SEND bob ESC [31mred BEL`, refused, then `SEND bob plain`: bob should \
             get only the plain line, never the refused one {}",
            book_section()
        ),
    );
    let line = server.expect_line(
        "ERR control-character",
        &with_section("the server should log the refused line"),
    );
    assert_eq!(
        line,
        "alice sent \"SEND bob \\u{1b}[31mred\\u{7}\": ERR control-character",
        "alice sent bob ESC [31mred and BEL to a server started with --log-text: the line is \
         refused, and the server's log must escape what it prints from the network {}",
        book_section()
    );
}

/// By default the log says who sent how many bytes to whom, never the
/// text: the operator's log is no place for everyone's private lines, and
/// a log of every text grows as fast as anyone can send.
#[test]
fn the_log_says_who_sent_how_many_bytes_to_whom_never_the_text() {
    explains(book::RUN_IT);
    let mut server = start_server(&[]);
    let (mut alice, mut bob) = register_two(server.addr(), "alice", "bob");
    exchange(&mut alice, "SEND bob my secret", "SENT bob");
    expect_exact_line(&mut bob, "FROM alice my secret", "bob gets alice's line");
    exchange(&mut alice, "ALL secret plans", "SENT *");
    expect_exact_line(&mut bob, "FROM alice secret plans", "bob gets alice's line");
    exchange(&mut alice, "SEND b@b secret", "ERR bad-name");
    server.expect_line(
        "alice -> bob: 9 bytes",
        &with_section(
            "alice sent `SEND bob my secret`: the server should log `alice -> bob: 9 bytes`",
        ),
    );
    server.expect_line(
        "alice -> everyone: 12 bytes",
        &with_section(
            "alice sent `ALL secret plans`: the server should log `alice -> everyone: 12 bytes`",
        ),
    );
    server.expect_line(
        "alice sent 15 bytes: ERR bad-name",
        &with_section(
            "alice sent `SEND b@b secret`: the server should log the refusal and the line's length",
        ),
    );
    let log = server.stdout_now();
    assert!(
        !log.contains("secret"),
        "without --log-text the server must not log the text of anyone's lines; its log:\n{log}\n{}",
        book_section()
    );
}

#[test]
fn a_line_over_the_limit_is_refused_and_the_connection_closed() {
    explains(book::THE_LIMITS);
    let mut server = start_server(&[]);
    let [mut watcher, mut long] = register_all(server.addr(), ["watcher", "long"]);
    // One byte over the limit, and then more the server will never read: a
    // socket closed with unread input is reset, which would destroy the
    // ERR line before `long` reads it, unless the server closes gently.
    long.send(&vec![b'x'; 4097 + 64 * 1024]);
    expect_exact_line(
        &mut long,
        "ERR line-too-long",
        "a line over 4096 bytes is refused",
    );
    long.expect_orderly_close(&format!(
        "after ERR line-too-long, the server should close the connection gently, so that the ERR line is not destroyed by a reset {GENTLE_CLOSE}"
    ));
    let logged = expect_left(
        &mut server,
        &mut watcher,
        "long",
        "the dropped client is announced as gone",
    );
    assert!(
        logged.contains("long left (line longer than 4096 bytes)"),
        "the server should log why it dropped the client `long`; it logged `{logged}` {}",
        book_section()
    );
}

#[test]
fn a_line_of_exactly_the_limit_is_read_as_a_command() {
    explains(book::THE_LIMITS);
    let server = start_server(&[]);
    let mut alice = register(server.addr(), "alice");
    let line = format!("ALL {}", "x".repeat(4092));
    assert_eq!(line.len(), 4096, "the test's line should be 4096 bytes");
    // Read whole and answered (its text is over TEXT_LIMIT), not cut off.
    exchange(&mut alice, &line, "ERR text-too-long");
    exchange(&mut alice, "LIST", "PEERS alice");
}

// ---------------------------------------------------------------------------
// Limits: HELLO deadline, the cap
// ---------------------------------------------------------------------------

#[test]
fn a_connection_without_hello_is_closed_after_the_deadline() {
    explains(book::ONE_CLIENTS_CONVERSATION);
    let mut server = start_server(&["--hello-timeout", "1"]);
    let mut alice = register(server.addr(), "alice");
    let mut silent = Connection::open(server.addr());
    let addr = silent.local_addr();
    expect_exact_line(
        &mut silent,
        "ERR hello-first",
        "a connection that sends no HELLO within --hello-timeout is told so",
    );
    silent.expect_orderly_close(&format!(
        "after ERR hello-first, the server should close the silent connection gently {GENTLE_CLOSE}"
    ));
    server.expect_line(
        &format!("[{addr}] no HELLO within 1 s, closing"),
        &with_section("the server should log why it closed the silent connection"),
    );
    // Alice registered before the silent one connected, and has been quiet
    // for longer than the deadline since: registered clients may be.
    exchange(&mut alice, "LIST", "PEERS alice");
}

#[test]
fn a_client_over_the_cap_is_told_busy() {
    explains(book::THE_SERVER);
    let mut server = start_server(&["--max-clients", "2"]);
    let [mut alice, _bob] = register_all(server.addr(), ["alice", "bob"]);
    let mut third = Connection::open(server.addr());
    let got = third.read_to_end(&format!(
        "with --max-clients 2 and two clients registered, a third client should get `ERR busy` and then the end of the connection {}",
        book_section()
    ));
    assert_eq!(
        got,
        b"ERR busy\n",
        "with --max-clients 2 and two clients registered, a third client should get exactly `ERR busy`, then the connection closed; got {} {}",
        show(&got),
        book_section()
    );
    server.expect_line(
        "busy",
        &with_section("the server should log that it turned a client away"),
    );
    exchange(&mut alice, "LIST", "PEERS alice bob");
}

// ---------------------------------------------------------------------------
// The slow receiver
// ---------------------------------------------------------------------------

/// The reason for the bounded queues: a client that registers and never
/// reads must not slow down anyone else. With the simple design (the
/// sender's thread locks the registry and writes to each receiver's socket
/// itself), the sender's write blocks as soon as the stuck client's buffers
/// are full, with the lock held, and every other client waits with it.
///
/// Here the stuck client's buffers fill (its receive buffer is tiny, so
/// that takes a few lines, not megabytes), then its queue; from then on
/// each of alice's broadcasts waits RELAY_WAIT for room and leaves it out
/// (`SENT * except stuck`): the sender is slowed, nobody else. Bob gets
/// every line at once and his `LIST` is answered at once, even while
/// alice waits. After `--stuck-after` without a line written, it is
/// dropped: 6 s here rather than STUCK_AFTER (10 s), the same design with
/// less waiting, and still long enough for alice's `ALL` and `SEND` to each
/// wait RELAY_WAIT for it first.
#[test]
fn a_stuck_receiver_delays_nobody_and_is_dropped() {
    explains(book::THE_SLOW_RECEIVER_TESTED);
    let stuck_after = Duration::from_secs(6);
    let mut server = start_server(&["--stuck-after", &stuck_after.as_secs().to_string()]);
    let mut stuck = open_with_tiny_receive_buffer(server.addr());
    stuck.send_line("HELLO stuck");
    let welcome = format!("WELCOME stuck {}", stuck.local_addr());
    expect_exact_line(
        &mut stuck,
        &welcome,
        "stuck registers, and reads nothing more",
    );
    let [mut alice, mut bob] = register_all(server.addr(), ["alice", "bob"]);

    // Broadcast 4 KB lines until the stuck client has been dropped: its
    // socket buffers fill, then its queue (QUEUE_LIMIT lines), then each
    // broadcast waits RELAY_WAIT for it, until the server has written
    // nothing to it for --stuck-after and drops it.
    let text = "x".repeat(4000);
    let give_up = stuck_after + Duration::from_secs(30);
    let started = Instant::now();
    let mut first_wait: Option<Instant> = None;
    let mut dropped_after = None;
    let mut bob_heard_left = false;
    let mut bob_line = |bob: &mut Connection, expected: &str| {
        let mut got = bob.read_line(&format!("{expected} {}", book_section()));
        if got == "LEFT stuck" {
            bob_heard_left = true;
            got = bob.read_line(&format!("after LEFT stuck: {expected} {}", book_section()));
        }
        got
    };
    for n in 0.. {
        assert!(
            started.elapsed() < give_up,
            "after {} s of 4 KB lines that it never read, the stuck client should have been dropped and the others told `LEFT stuck`: a client the server cannot write a line to for --stuck-after ({} s) has stopped reading {}",
            give_up.as_secs(),
            stuck_after.as_secs(),
            book_section()
        );
        alice.send_line(&format!("ALL {n} {text}"));
        let expected = format!("FROM alice {n} {text}");
        let got = bob_line(
            &mut bob,
            &format!(
                "bob should get line {n} of alice's broadcast at once, however full the stuck client's queue is: a full queue delays only the sender, never the other receivers"
            ),
        );
        assert!(
            got == expected,
            "bob should get alice's broadcast lines in order, line {n} now; got {:?} {}",
            &got[..got.len().min(60)],
            book_section()
        );
        // Meanwhile alice's thread may be waiting for room in the stuck
        // client's queue: the registry must not be locked while it waits.
        let asked = Instant::now();
        bob.send_line("LIST");
        let peers = bob_line(
            &mut bob,
            "bob sent `LIST` while alice's broadcast may be waiting for the stuck client: he should be answered at once",
        );
        let list_took = asked.elapsed();
        assert!(
            peers.starts_with("PEERS alice bob"),
            "bob sent `LIST`: expected `PEERS alice bob ...`; got {peers:?} {}",
            book_section()
        );
        // Alice's reply waits at most RELAY_WAIT (2 s), less than the
        // 5 s every read may take.
        let mut reply = alice.read_line(&format!(
            "alice should get `SENT *` for each ALL, or `SENT * except stuck` within RELAY_WAIT ({} s) when the stuck client's queue has no room (ALL number {n}) {}",
            RELAY_WAIT.as_secs(),
            book_section()
        ));
        if reply == "LEFT stuck" {
            dropped_after = Some(n);
            reply = alice.read_line(&format!(
                "after LEFT stuck, alice should get `SENT *` for line {n} {}",
                book_section()
            ));
        }
        match reply.as_str() {
            "SENT *" => {}
            "SENT * except stuck" => {
                assert!(
                    list_took < RELAY_WAIT / 2,
                    "bob's `LIST` took {:.1} s while alice's ALL waited {} s for room in the stuck client's queue: a sender waiting for room must not hold the registry, nor delay anyone else {}",
                    list_took.as_secs_f64(),
                    RELAY_WAIT.as_secs(),
                    book_section()
                );
                if first_wait.is_none() {
                    first_wait = Some(Instant::now());
                    // A SEND to it waits as long, and is refused.
                    exchange(&mut alice, "SEND stuck hi", "ERR full stuck");
                }
            }
            _ => panic!(
                "alice sent `ALL {n} ...`: the server should answer `SENT *`, or `SENT * except stuck` when the stuck client's queue stayed full; got {reply:?} {}",
                book_section()
            ),
        }
        if dropped_after.is_some() {
            break;
        }
    }
    let (Some(n), Some(first_wait)) = (dropped_after, first_wait) else {
        panic!(
            "alice's broadcasts should have found the stuck client's queue full, and waited for it, before it was dropped {}",
            book_section()
        );
    };
    let after_first_wait = first_wait.elapsed();
    println!(
        "the stuck client was dropped after {n} lines, {:.1} s; {:.1} s after its queue was first found full",
        started.elapsed().as_secs_f64(),
        after_first_wait.as_secs_f64()
    );
    assert!(
        after_first_wait < stuck_after + Duration::from_secs(5),
        "the stuck client should be dropped within --stuck-after ({} s) of the server's last write to it; it took {:.1} s after its queue was first found full {}",
        stuck_after.as_secs(),
        after_first_wait.as_secs_f64(),
        book_section()
    );
    server.expect_line(
        &format!(
            "stuck left (dropped: it took no line for {} s, it is not reading)",
            stuck_after.as_secs()
        ),
        &with_section("the server should log why it dropped the stuck client"),
    );
    if !bob_heard_left {
        expect_exact_line(
            &mut bob,
            "LEFT stuck",
            "bob should hear that stuck was dropped",
        );
    }
    exchange(&mut alice, "LIST", "PEERS alice bob");
    // The stuck client's connection is closed: after everything that was
    // already in its buffers, it reads the end. A reset is a right ending
    // too: the server gave up on a client that would not read, and lines it
    // never took may still sit in the server's socket.
    let stuck_stream = stuck.stream();
    stuck_stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut drained = 0usize;
    let mut buf = vec![0; 1 << 16];
    loop {
        match std::io::Read::read(&mut &*stuck_stream, &mut buf) {
            Ok(0) => break,
            Ok(got) => drained += got,
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(err) => panic!(
                "the dropped client's connection should be closed; after {drained} bytes: {err} {}",
                book_section()
            ),
        }
    }
}

/// A full queue is not proof that a client stopped reading: a flood fills
/// the queue of a receiver that reads as fast as it can. The flooder's own
/// relayed lines wait for room; the receiver is never dropped.
#[test]
fn a_flood_of_sends_slows_its_sender_and_never_drops_a_reading_receiver() {
    explains(book::A_FULL_QUEUE_SLOWS_THE_SENDER);
    let mut server = start_server(&[]);
    let (victim, mut attacker) = register_two(server.addr(), "victim", "attacker");
    // Thousands of SENDs in one write, sent on a thread of their own while
    // the victim reads (more than the socket buffers hold while nobody
    // reads the attacker's answers).
    let lines = 5000;
    let flood = "SEND victim hi\n".repeat(lines);
    let mut writer = attacker.stream().try_clone().unwrap();
    let sending =
        std::thread::spawn(move || std::io::Write::write_all(&mut writer, flood.as_bytes()));
    // The victim reads all along, on a thread of its own, while this one
    // reads the attacker's answers: a wrong answer fails at once.
    let reading = std::thread::spawn(move || {
        let mut victim = victim;
        for n in 0..lines {
            let got = victim.read_line(&format!(
                "attacker sent `SEND victim hi` {lines} times in one write, and victim reads all along: victim should get every line and never be dropped, since a full queue only slows the sender; line {n} did not come {}",
                book_section()
            ));
            if got != "FROM attacker hi" {
                return Err(format!(
                    "attacker sent `SEND victim hi` {lines} times: line {n} victim got should be `FROM attacker hi`; got `{got}` {}",
                    book_section()
                ));
            }
        }
        Ok(victim)
    });
    for n in 0..lines {
        let got = attacker.read_line(&format!(
            "attacker sent `SEND victim hi` {lines} times while victim reads: answer {n} should be `SENT victim` {}",
            book_section()
        ));
        assert!(
            got == "SENT victim",
            "attacker sent `SEND victim hi` {lines} times in one write while victim read all along: answer {n} should be `SENT victim`; got `{got}`. A full queue only slows the sender: a line that finds the receiver's queue full waits for room (RELAY_WAIT at most), and a receiver that reads makes room all the time; a full queue is no reason to refuse the line or to drop the receiver {}",
            book_section()
        );
    }
    let mut victim = match reading.join().unwrap() {
        Ok(victim) => victim,
        Err(message) => panic!("{message}"),
    };
    sending.join().unwrap().unwrap();
    exchange(&mut victim, "LIST", "PEERS attacker victim");
    let log = server.stdout_now();
    assert!(
        !log.contains("victim left"),
        "victim read every line and must not be dropped; the server's log:\n{log}\n{}",
        book_section()
    );
}

/// A connection whose receive buffer is as small as the kernel allows
/// (SO_RCVBUF set before connecting): a client that never reads is full
/// after a few kilobytes, not megabytes.
fn open_with_tiny_receive_buffer(addr: std::net::SocketAddr) -> Connection {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .unwrap_or_else(|err| panic!("could not make a socket: {err}"));
    socket
        .set_recv_buffer_size(1)
        .unwrap_or_else(|err| panic!("could not set SO_RCVBUF: {err}"));
    socket
        .connect_timeout(&addr.into(), WAIT)
        .unwrap_or_else(|err| panic!("could not connect to the server at {addr}: {err}"));
    Connection::from_stream(socket.into())
}

/// The next line that is not `JOINED` or `LEFT` news.
fn next_answer(conn: &mut Connection, expected: &str) -> String {
    loop {
        let line = conn.read_line(expected);
        if !line.starts_with("JOINED ") && !line.starts_with("LEFT ") {
            return line;
        }
    }
}

/// The mistake the design is about: waiting for room in a full queue with
/// the registry locked. Then one receiver that never reads makes every
/// other client wait: each of their `SEND`, `HELLO` and `LIST` needs the
/// registry, and gets it only when the sender's RELAY_WAIT is over.
///
/// `stuck` never reads, and its receive buffer is tiny. alice sends it 4 KB
/// lines until one is answered `ERR full stuck`: its queue is full, and
/// alice's thread, with many more of her lines to relay, waits for room
/// again at once. For the next RELAY_WAIT and more, bob sends carol a line,
/// asks `LIST`, and a new client registers, over and over: each must be
/// answered at once.
#[test]
fn a_sender_waiting_for_room_holds_up_nobody_else() {
    explains(book::A_FULL_QUEUE_SLOWS_THE_SENDER);
    let server = start_server(&[]);
    let mut stuck = open_with_tiny_receive_buffer(server.addr());
    stuck.send_line("HELLO stuck");
    let welcome = format!("WELCOME stuck {}", stuck.local_addr());
    expect_exact_line(
        &mut stuck,
        &welcome,
        "stuck registers, and reads nothing more",
    );
    let mut alice = register(server.addr(), "alice");
    let (mut bob, mut carol) = register_two(server.addr(), "bob", "carol");

    let text = "x".repeat(4000);
    let lines = 3000;
    let flood = format!("SEND stuck {text}\n").repeat(lines);
    let mut writer = alice.stream().try_clone().unwrap();
    std::thread::spawn(move || std::io::Write::write_all(&mut writer, flood.as_bytes()));
    // Each SEND is answered `SENT stuck` until stuck's buffers and queue are
    // full; then the next waits RELAY_WAIT for room and is refused.
    alice
        .stream()
        .set_read_timeout(Some(RELAY_WAIT + Duration::from_secs(2)))
        .unwrap();
    let mut sent = 0;
    loop {
        let got = next_answer(
            &mut alice,
            &format!(
                "alice sent `SEND stuck <4000 bytes>` {lines} times in one write to stuck, a client that never reads: after {sent} `SENT stuck`, its queue is full, and the next SEND should wait at most RELAY_WAIT ({} s) for room and be answered `ERR full stuck`: the wait must be bounded {}",
                RELAY_WAIT.as_secs(),
                book_section()
            ),
        );
        match got.as_str() {
            "SENT stuck" => sent += 1,
            "ERR full stuck" => break,
            _ => panic!(
                "alice's SEND number {sent} to stuck, a registered client that never reads, got `{}`: it should be `SENT stuck` while its queue has room, then `ERR full stuck` after RELAY_WAIT. A full queue only slows the sender: it is no reason to drop the receiver {}",
                short(&got),
                book_section()
            ),
        }
        assert!(
            sent < lines,
            "all {lines} of alice's 4 KB lines to stuck, who never reads, were answered `SENT stuck`: its queue should be bounded (QUEUE_LIMIT lines), then each SEND waits for room and is refused {}",
            book_section()
        );
    }
    // alice's thread now waits for room again, for her next line, and the
    // next: RELAY_WAIT each. Meanwhile everyone else is served at once.
    let rule = "the registry is locked only to find a queue, never while waiting: a sender waiting for room in a full queue holds up nobody else";
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < RELAY_WAIT + Duration::from_millis(500) {
        n += 1;
        let asked = Instant::now();
        bob.send_line(&format!("SEND carol ping {n}"));
        let got = next_answer(
            &mut carol,
            &format!(
                "bob sent `SEND carol ping {n}` while alice waited for room in stuck's queue: carol should get it at once; {rule} {}",
                book_section()
            ),
        );
        assert_eq!(
            got,
            format!("FROM bob ping {n}"),
            "bob sent `SEND carol ping {n}` {}",
            book_section()
        );
        let got = next_answer(
            &mut bob,
            &format!(
                "bob sent `SEND carol ping {n}`: he should be answered `SENT carol` at once; {rule} {}",
                book_section()
            ),
        );
        assert_eq!(
            got,
            "SENT carol",
            "bob sent `SEND carol ping {n}` {}",
            book_section()
        );
        let took = asked.elapsed();
        assert!(
            took < RELAY_WAIT / 2,
            "bob's `SEND carol ping {n}` took {:.1} s to reach carol while alice's `SEND stuck` waited for room in stuck's full queue: {rule} {}",
            took.as_secs_f64(),
            book_section()
        );
        let asked = Instant::now();
        bob.send_line("LIST");
        let got = next_answer(
            &mut bob,
            &format!(
                "bob sent `LIST` while alice waited for room in stuck's queue: he should be answered at once; {rule} {}",
                book_section()
            ),
        );
        let took = asked.elapsed();
        assert!(
            got.starts_with("PEERS "),
            "bob sent `LIST`: expected `PEERS ...`; got `{got}` {}",
            book_section()
        );
        assert!(
            took < RELAY_WAIT / 2,
            "bob's `LIST` took {:.1} s while alice's `SEND stuck` waited for room in stuck's full queue: {rule} {}",
            took.as_secs_f64(),
            book_section()
        );
        let asked = Instant::now();
        let name = format!("new{n}");
        let mut new = Connection::open(server.addr());
        new.send_line(&format!("HELLO {name}"));
        let got = next_answer(
            &mut new,
            &format!(
                "a new client sent `HELLO {name}` while alice waited for room in stuck's queue: it should be welcomed at once; {rule} {}",
                book_section()
            ),
        );
        let took = asked.elapsed();
        assert!(
            got.starts_with(&format!("WELCOME {name} ")),
            "a new client sent `HELLO {name}`: expected `WELCOME {name} ...`; got `{got}` {}",
            book_section()
        );
        assert!(
            took < RELAY_WAIT / 2,
            "a new client's `HELLO {name}` took {:.1} s to be welcomed while alice's `SEND stuck` waited for room in stuck's full queue: {rule} {}",
            took.as_secs_f64(),
            book_section()
        );
        new.send_line("BYE");
    }
    drop(stuck);
}

// ---------------------------------------------------------------------------
// Clients that send faster than they read, or very slowly
// ---------------------------------------------------------------------------

/// A client may send many commands before reading any answer (pipelining).
/// The server must slow it down to the pace it reads at, not drop it: its
/// own answers wait for room in its queue, and TCP holds back the rest.
#[test]
fn a_client_that_sends_many_commands_at_once_gets_every_answer() {
    explains(book::ONE_CLIENTS_CONVERSATION);
    let server = start_server(&[]);
    let mut conn = Connection::open(server.addr());
    let commands = 5000;
    let mut all = String::from("HELLO eager\n");
    all.push_str(&"LIST\n".repeat(commands));
    all.push_str("BYE\n");
    // Send on a second thread while this one reads, as a pipelining client
    // does: the answers (45 KB) and the commands together are more than the
    // socket buffers hold while nobody reads.
    let mut writer = conn.stream().try_clone().unwrap();
    let sending =
        std::thread::spawn(move || std::io::Write::write_all(&mut writer, all.as_bytes()));
    let welcome = format!("WELCOME eager {}", conn.local_addr());
    expect_exact_line(&mut conn, &welcome, "the first answer");
    for n in 0..commands {
        let got = conn.read_line(&format!(
            "a client that sends {commands} commands in one go, and reads all along, should get every answer: the server waits for room in the client's own queue rather than drop it; answer {n} did not come {}",
            book_section()
        ));
        assert_eq!(
            got,
            "PEERS eager",
            "answer {n} to LIST, of {commands} sent in one go {}",
            book_section()
        );
    }
    expect_exact_line(&mut conn, "BYE", "the answer to the last command, BYE");
    conn.expect_orderly_close(&format!(
        "after BYE the server should close the connection gently {GENTLE_CLOSE}"
    ));
    sending.join().unwrap().unwrap();
}

/// The HELLO deadline counts from the connect. A read timeout alone starts
/// again at every read, and a client sending a byte every 400 ms would
/// never trip it, holding a client slot for as long as it likes.
#[test]
fn the_hello_deadline_counts_from_the_connect_not_from_each_read() {
    explains(book::ONE_CLIENTS_CONVERSATION);
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let server = start_server(&["--hello-timeout", "1"]);
    let mut conn = Connection::open(server.addr());
    let hello = b"HELLO slowpoke\n"; // 15 bytes: 6 s at this pace
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writer = conn.stream().try_clone().unwrap();
    let (counter, stopped) = (Arc::clone(&sent), Arc::clone(&stop));
    let sending = std::thread::spawn(move || {
        for byte in hello {
            if stopped.load(Ordering::SeqCst)
                || std::io::Write::write_all(&mut writer, &[*byte]).is_err()
            {
                return;
            }
            counter.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(400));
        }
    });
    expect_exact_line(
        &mut conn,
        "ERR hello-first",
        "a client that trickles its HELLO a byte every 400 ms should be cut off when --hello-timeout (1 s) has passed since it connected",
    );
    let when = sent.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    assert!(
        when < hello.len(),
        "the server should give up on the slow HELLO while it is still coming in, 1 s after the connect; it answered only after all {when} bytes {}",
        book_section()
    );
    conn.expect_orderly_close(&format!(
        "after ERR hello-first, the server should close the connection gently {GENTLE_CLOSE}"
    ));
    sending.join().unwrap();
}
