//! Checks for lesson 3, the server for many clients. Write the server
//! yourself, then run `cargo test -p multi-client`: each test names what the
//! server should do.
//!
//! Every test starts the real `03-multi-client` with `--listen 127.0.0.1:0`,
//! learns its port from its first line, and talks to it over loopback.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use testkit::{Connection, Process, WAIT, run, snapshot_settings, tool};

fn server_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_03-multi-client"))
}

fn start_server(args: &[&str]) -> Process {
    Process::server(server_bin(), args)
}

/// Sends `line` and a newline, and expects exactly `ok\n` back.
fn round_trip(conn: &mut Connection, line: &str) {
    conn.send_line(line);
    conn.expect_bytes(
        b"ok\n",
        &format!("the server should reply `ok` to the line {line:?}"),
    );
}

/// Half-closes, as a client does when it has nothing more to say, and
/// expects the server to close in return.
fn leave(conn: &mut Connection) {
    conn.half_close();
    conn.expect_closed_or_reset(
        "after the client half-closes (a read returns 0), the server should close the connection",
    );
}

// ---------------------------------------------------------------------------
// One client
// ---------------------------------------------------------------------------

#[test]
fn one_client_gets_ok_for_each_line_and_the_log_shows_the_session() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    round_trip(&mut client, "hello");
    round_trip(&mut client, "你好");
    leave(&mut client);
    server.wait_for("finished");

    let log = server.stdout_now();
    let _guard = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("one_client", log);
}

// ---------------------------------------------------------------------------
// One at a time, and a thread per client
// ---------------------------------------------------------------------------

/// The server's log with each client's port numbered in the order of
/// `clients` (`127.0.0.1:[PORT 1]`, `127.0.0.1:[PORT 2]`), so a snapshot can
/// tell the clients apart; the listening port becomes `[PORT]`.
fn numbered(log: &str, clients: &[&Connection]) -> String {
    let mut log = log.to_string();
    for (n, client) in clients.iter().enumerate() {
        let addr = client.local_addr();
        log = log.replace(
            &format!("[{addr}]"),
            &format!("[{}:[PORT {}]]", addr.ip(), n + 1),
        );
    }
    log
}

#[test]
fn thread_per_client_answers_a_second_client_while_the_first_is_connected() {
    let mut server = start_server(&[]);
    let mut first = Connection::open(server.addr());
    round_trip(&mut first, "I am first, and I stay");
    let mut second = Connection::open(server.addr());
    second.send_line("I am second");
    second.expect_bytes(
        b"ok\n",
        "with a thread per client, the second client should get `ok` while the first is still connected",
    );
    // And the first is still served, after the second.
    round_trip(&mut first, "still here");

    // Each step waits for the server's log line, so this log has one order.
    leave(&mut second);
    server.wait_for("finished");
    leave(&mut first);
    server.wait_for("finished");
    let log = numbered(&server.stdout_now(), &[&first, &second]);
    let _guard = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("two_clients_at_once", log);
}

#[test]
fn one_at_a_time_makes_the_second_client_wait_until_the_first_leaves() {
    let mut server = start_server(&["--one-at-a-time"]);
    let mut first = Connection::open(server.addr());
    round_trip(&mut first, "I am first, and I stay");
    server.wait_for("] I am first");

    // The kernel completes the second client's handshake by itself (the
    // connection waits in the listen backlog) and takes its line into a
    // receive buffer...
    let mut second = Connection::open(server.addr());
    second.send_line("I am second");
    // ...but nothing reads it while the server is busy with the first.
    second.expect_nothing(
        "with --one-at-a-time, the second client must get no reply while the first is connected",
    );
    server.expect_no_line(
        "with --one-at-a-time, the server must not accept a second client while the first is connected",
    );
    round_trip(&mut first, "still here");

    leave(&mut first);
    second.expect_bytes(
        b"ok\n",
        "once the first client has left, the waiting second client should get its `ok`",
    );
    leave(&mut second);
    server.wait_for("] I am second");
    server.wait_for("finished");
    let log = numbered(&server.stdout_now(), &[&first, &second]);
    let _guard = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("one_at_a_time", log);
}

// ---------------------------------------------------------------------------
// Lines, however the bytes arrive
// ---------------------------------------------------------------------------

#[test]
fn two_lines_in_one_write_get_two_replies() {
    let server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    client.send(b"one\ntwo\n");
    client.expect_bytes(
        b"ok\nok\n",
        "two lines arriving in one read are two messages: two `ok`s",
    );
}

#[test]
fn a_line_in_several_writes_gets_one_reply_when_it_is_whole() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    // Send each piece at once instead of letting the kernel gather them.
    client.stream().set_nodelay(true).unwrap();
    client.send(b"hel");
    client.expect_nothing("half a line is not a message: no reply until its newline arrives");
    client.send(b"lo wor");
    client.expect_nothing("still no newline: still no reply");
    client.send(b"ld\n");
    client.expect_bytes(b"ok\n", "the line is whole now: one `ok`");
    let line = server.wait_for("hello");
    assert!(
        line.ends_with("] hello world"),
        "the server should print the whole line once, not its pieces; got {line:?}"
    );
}

#[test]
fn a_utf8_character_split_between_reads_is_printed_whole() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    client.stream().set_nodelay(true).unwrap();
    // 你 is e4 bd a0: the first two bytes now, the last one later.
    client.send(b"\xe4\xbd");
    client.expect_nothing("half a character is not a line: no reply yet");
    client.send(b"\xa0\xe5\xa5\xbd\n");
    client.expect_bytes(b"ok\n", "the line is whole now: one `ok`");
    let line = server.wait_for("好");
    assert!(
        line.ends_with("] 你好"),
        "the server should print the line once it is whole, not the pieces of a character; got {line:?}"
    );
}

#[test]
fn a_last_line_without_newline_still_gets_its_reply() {
    // What the original lesson's Python client sends: no newline, then close.
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    client.send(b"no newline");
    client.half_close();
    client.expect_bytes(
        b"ok\n",
        "a last line ended by the client closing its side (no newline) is still a message",
    );
    client.expect_closed_or_reset("then the server should close the connection");
    server.wait_for("] no newline");
    server.wait_for("] finished");
}

#[test]
fn empty_lines_are_messages_too() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    client.send(b"\n\r\n");
    client.expect_bytes(
        b"ok\nok\n",
        "an empty line (and `\\r\\n`, as `nc -C` and telnet send) is a message: one `ok` each",
    );
    leave(&mut client);
    server.wait_for("finished");
    let log = server.stdout_now();
    let empty = log.lines().filter(|line| line.ends_with("] ")).count();
    assert_eq!(
        empty, 2,
        "the server should log each empty line as `[ADDR] ` with nothing after it; log:\n{log}"
    );
}

#[test]
fn a_line_over_the_limit_is_refused_and_the_server_lives_on() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    client.send(&vec![b'x'; 64 * 1024 + 1]);
    let refusal = client.read_line("a line over 64 KiB should get one error line");
    assert_eq!(
        refusal, "error: line longer than 65536 bytes, closing the connection",
        "the error line for an over-long line"
    );
    client.expect_closed_or_reset(
        "after refusing an over-long line, the server should close that connection",
    );
    let line = server.wait_for("longer than");
    assert!(
        line.ends_with("] line longer than 65536 bytes, closing"),
        "the server should log the refusal; got {line:?}"
    );

    let mut other = Connection::open(server.addr());
    round_trip(&mut other, "the server is still here");
}

#[test]
fn a_line_of_exactly_the_limit_is_accepted() {
    let server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    let mut line = vec![b'x'; 64 * 1024];
    line.push(b'\n');
    client.send(&line);
    client.expect_bytes(
        b"ok\n",
        "a line of exactly 64 KiB (without its newline) is within the limit",
    );
}

// ---------------------------------------------------------------------------
// The cap, the idle timeout, clients that go away
// ---------------------------------------------------------------------------

#[test]
fn a_client_over_the_cap_is_told_busy_and_the_others_keep_working() {
    let mut server = start_server(&["--max-clients", "2"]);
    let mut first = Connection::open(server.addr());
    round_trip(&mut first, "one");
    let mut second = Connection::open(server.addr());
    round_trip(&mut second, "two");

    let mut third = Connection::open(server.addr());
    let busy = third.read_to_end("with --max-clients 2, a third client should be told `busy`");
    assert_eq!(
        busy, b"busy: too many clients, try again later\n",
        "with --max-clients 2, a third client should get exactly the busy line, then the connection closed"
    );
    server.wait_for("busy");
    round_trip(&mut first, "one again");
    round_trip(&mut second, "two again");
    leave(&mut second);
    server.wait_for("finished");
    let log = numbered(&server.stdout_now(), &[&first, &second, &third]);
    {
        let _guard = snapshot_settings().bind_to_scope();
        insta::assert_snapshot!("over_the_cap", log);
    }

    // The second client's place is free again as soon as its thread ends,
    // just after it logs `finished`: a new client may need a second try.
    let deadline = Instant::now() + WAIT;
    loop {
        let mut fourth = Connection::open(server.addr());
        fourth.send_line("my turn");
        let reply = fourth.read_line("a client after one of two has left should get `ok`");
        if reply == "ok" {
            break;
        }
        assert!(
            reply.starts_with("busy") && Instant::now() < deadline,
            "once a client has left, its place should be free for the next; got {reply:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
    round_trip(&mut first, "the first is still served");
}

#[test]
fn a_silent_client_is_disconnected_after_the_idle_timeout() {
    let mut server = start_server(&["--idle-timeout", "1"]);
    let mut client = Connection::open(server.addr());
    round_trip(&mut client, "hello, and then nothing");
    client.expect_closed_or_reset(
        "a client silent for longer than --idle-timeout should be disconnected",
    );
    let line = server.wait_for("idle");
    assert!(
        line.ends_with("] idle for 1 s, closing"),
        "the server should log why it closed; got {line:?}"
    );
}

#[test]
fn a_reset_is_logged_as_one_line() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    round_trip(&mut client, "about to vanish");
    let addr = client.local_addr();
    client.reset();
    let line = server.wait_for("connection error");
    assert_eq!(
        line,
        format!("[{addr}] connection error: reset by peer"),
        "a reset should be logged as one line for that client"
    );
    let mut other = Connection::open(server.addr());
    round_trip(&mut other, "others are still served");
}

#[test]
fn a_client_that_closes_without_reading_is_dropped_and_the_others_served() {
    let mut server = start_server(&[]);
    // Many lines, and gone without reading one reply: writing the replies
    // fails (the client's kernel answers them with a reset).
    let mut rude = Connection::open(server.addr());
    let addr = rude.local_addr();
    rude.send("line\n".repeat(1000).as_bytes());
    drop(rude);
    let line = server.wait_for(&format!("[{addr}] connection error: "));
    assert!(
        line.ends_with("reset by peer")
            || line.ends_with("broken pipe (the peer closed the connection)"),
        "a client that went away without reading should be logged as a connection error; got {line:?}"
    );
    let mut polite = Connection::open(server.addr());
    round_trip(&mut polite, "others are still served");
}

#[test]
fn control_characters_and_invalid_utf8_are_logged_escaped() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    client.send(b"\x1b[31mred\x07 caf\xe9\n");
    client.expect_bytes(b"ok\n", "any bytes make a line, even invalid UTF-8");
    let line = server.wait_for("red");
    assert!(
        line.ends_with("] \\u{1b}[31mred\\u{7} caf\\xe9"),
        "bytes from the network must be printed escaped; got {line:?}"
    );
}

// ---------------------------------------------------------------------------
// Several clients at once
// ---------------------------------------------------------------------------

#[test]
fn each_client_of_several_gets_its_own_replies_and_log_lines() {
    let mut server = start_server(&[]);
    let mut clients: Vec<Connection> = (0..3).map(|_| Connection::open(server.addr())).collect();
    // Interleave the clients' lines: each must get exactly its own replies.
    for round in 0..3 {
        for (n, client) in clients.iter_mut().enumerate() {
            round_trip(client, &format!("client {n}, line {round}"));
        }
    }
    let addrs: Vec<_> = clients.iter().map(Connection::local_addr).collect();
    for client in &mut clients {
        leave(client);
    }
    for _ in 0..3 {
        server.wait_for("finished");
    }

    // The log interleaves the clients in whatever order their threads ran,
    // so it is checked client by client: each client's own lines, in order.
    let log = server.stdout_now();
    let mut transcripts = String::new();
    for (n, addr) in addrs.iter().enumerate() {
        let tag = format!("[{addr}] ");
        transcripts.push_str(&format!("client {n}:\n"));
        for line in log.lines().filter_map(|line| line.strip_prefix(&tag)) {
            transcripts.push_str(&format!("  {line}\n"));
        }
    }
    let _guard = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("three_clients", transcripts);
}

// ---------------------------------------------------------------------------
// nc, and starting up
// ---------------------------------------------------------------------------

#[test]
fn nc_with_half_close_gets_ok_per_line() {
    let Some(nc) = tool("nc") else { return };
    let mut server = start_server(&[]);
    let port = server.addr().port().to_string();
    // -N: shut down the sending side when the input ends, so the server
    // reads end-of-input, replies to the last line and closes; nc then exits.
    let done = run(&nc, &["-N", "127.0.0.1", &port], "hello\nfrom nc\n");
    done.assert_success("printf 'hello\\nfrom nc\\n' | nc -N 127.0.0.1 PORT");
    assert_eq!(
        done.stdout, "ok\nok\n",
        "nc should print one `ok` per line; {done}"
    );
    server.wait_for("] from nc");
    server.wait_for("] finished");
}

#[test]
fn nc_without_half_close_is_ended_by_the_idle_timeout() {
    let Some(nc) = tool("nc") else { return };
    // Without -N, nc never tells the server its input has ended: it keeps
    // the connection open and waits for the server. The line still gets its
    // `ok` at once (the newline ends it); the server ends the connection
    // when the client has been silent for --idle-timeout, and nc exits.
    let mut server = start_server(&["--idle-timeout", "1"]);
    let port = server.addr().port().to_string();
    let done = run(&nc, &["127.0.0.1", &port], "hello\n");
    done.assert_success("printf 'hello\\n' | nc 127.0.0.1 PORT, with --idle-timeout 1");
    assert_eq!(
        done.stdout, "ok\n",
        "nc should print the `ok` for its line; {done}"
    );
    server.wait_for("] hello");
    server.wait_for("] idle for 1 s, closing");
}

#[test]
fn a_port_in_use_is_one_line_on_stderr() {
    let first = start_server(&[]);
    testkit::assert_port_in_use_is_one_line(server_bin(), &[], first.addr());
}
