//! Lesson 3's line protocol, as checks any server that speaks it must pass:
//! `ok` to each line however the bytes arrive, a last line ended by the
//! end of input, the 64 KiB limit and its error line, the idle timeout,
//! `--max-clients` and the busy line, escaped logging, `nc`.
//!
//! Each check takes `start`, which starts the server under test with the
//! extra arguments given (through [`Process::server`], so with `--listen
//! 127.0.0.1:0`), and says in its failure message which section of lesson
//! 3's chapter defines the behaviour. Lesson 6 runs every check against
//! both of its engines.

use std::io::Read;
use std::thread;
use std::time::{Duration, Instant};

use crate::{Connection, Process, WAIT, run, tool};

/// Where lesson 3's chapter defines what a line is and what it gets back.
const LINES: &str = "(book: 03-multi-client.md § Lines, not reads, are the messages)";
/// Where it defines the limits, the idle timeout and the cap.
const LIMITS: &str = "(book: 03-multi-client.md § The limits)";
/// Where it says how a server survives clients that misbehave.
const MISBEHAVE: &str = "(book: 03-multi-client.md § Clients that misbehave)";
/// Where it explains the cap on clients and the busy line.
const CAP: &str = "(book: 03-multi-client.md § Why the cap)";

/// Sends `line` and a newline, and expects exactly `ok\n` back.
#[track_caller]
pub fn round_trip(conn: &mut Connection, line: &str) {
    conn.send_line(line);
    conn.expect_bytes(
        b"ok\n",
        &format!(
            "a client sent {line:?} and a newline: the server should reply `ok` to each line \
             (book: 03-multi-client.md § One client's conversation)"
        ),
    );
}

/// Half-closes, as a client does when it has nothing more to say, and
/// expects the server to close in return, gently: it has read everything.
#[track_caller]
pub fn leave(conn: &mut Connection) {
    conn.half_close();
    conn.expect_orderly_close(
        "the client half-closed (the server's read returns 0): the server should close the \
         connection too, with a clean end of stream (book: 03-multi-client.md § One client's conversation)",
    );
}

/// Waits for the server to log that a client left after half-closing.
#[track_caller]
pub fn expect_finished(server: &mut Process) {
    server.expect_line(
        "finished",
        "a client half-closed after its lines: the server should log `[ADDR] finished` \
         (book: 03-multi-client.md § One client's conversation)",
    );
}

/// With `--max-clients 2` and one of two clients gone, a new client is
/// served: a slot is given back when its client's thread (or task) ends,
/// just after the server logs `finished`, so it may need a second try.
#[track_caller]
pub fn a_freed_slot_serves_the_next_client(server: &Process) {
    let deadline = Instant::now() + WAIT;
    let what = "with --max-clients 2, one of two clients left and a fourth sent `my turn`";
    loop {
        let mut fourth = Connection::open(server.addr());
        fourth.send_line("my turn");
        let reply = fourth.read_line(&format!(
            "{what}: it should get `ok` (book: 03-multi-client.md § Why the cap)"
        ));
        if reply == "ok" {
            break;
        }
        assert!(
            reply.starts_with("busy") && Instant::now() < deadline,
            "{what}: once a client has left, its place should be free for the next (a slot is \
             given back when its thread ends); it got {reply:?} \
             (book: 03-multi-client.md § Why the cap)"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// One client: `ok` for each line, a clean close after it leaves, and the
/// log's `connected`, each line, `finished`.
pub fn one_client_gets_ok_for_each_line(start: impl Fn(&[&str]) -> Process) {
    let mut server = start(&[]);
    let mut client = Connection::open(server.addr());
    let me = client.local_addr();
    round_trip(&mut client, "hello");
    round_trip(&mut client, "你好");
    leave(&mut client);
    for expected in ["connected", "hello", "你好", "finished"] {
        let line = server.wait_for(&format!("[{me}] {expected}"));
        assert_eq!(
            line,
            format!("[{me}] {expected}"),
            "the server should log `[ADDR] {expected}` for this client {LINES}"
        );
    }
}

/// Two clients at once: the second is answered while the first stays.
pub fn a_second_client_is_answered_while_the_first_is_connected(
    start: impl Fn(&[&str]) -> Process,
) {
    let server = start(&[]);
    let mut first = Connection::open(server.addr());
    round_trip(&mut first, "I am first, and I stay");
    let mut second = Connection::open(server.addr());
    second.send_line("I am second");
    second.expect_bytes(
        b"ok\n",
        "the second client should get `ok` while the first is still connected: one silent \
         client must not make the others wait (book: 03-multi-client.md § The fix: a thread per client, with a cap)",
    );
    round_trip(&mut first, "still here");
    leave(&mut second);
    leave(&mut first);
}

pub fn two_lines_in_one_write_get_two_replies(start: impl Fn(&[&str]) -> Process) {
    let server = start(&[]);
    let mut client = Connection::open(server.addr());
    client.send(b"one\ntwo\n");
    client.expect_bytes(
        b"ok\nok\n",
        "a client sent `one\\ntwo\\n` in one write: two lines arriving in one read are two \
         messages, so two `ok`s (book: 03-multi-client.md § Lines, not reads, are the messages)",
    );
}

pub fn a_line_in_several_writes_gets_one_reply_when_it_is_whole(
    start: impl Fn(&[&str]) -> Process,
) {
    let mut server = start(&[]);
    let mut client = Connection::open(server.addr());
    // Send each piece at once instead of letting the kernel gather them.
    client.stream().set_nodelay(true).unwrap();
    client.send(b"hel");
    client.expect_nothing(
        "a client sent `hel`: half a line is not a message, no reply until its newline \
         arrives (book: 03-multi-client.md § Lines, not reads, are the messages)",
    );
    client.send(b"lo wor");
    client.expect_nothing(
        "the client then sent `lo wor`: still no newline, so still no reply \
         (book: 03-multi-client.md § Lines, not reads, are the messages)",
    );
    client.send(b"ld\n");
    client.expect_bytes(
        b"ok\n",
        "the client then sent `ld\\n`: the line `hello world` is whole now, one `ok` \
         (book: 03-multi-client.md § Lines, not reads, are the messages)",
    );
    let line = server.expect_line(
        "hello",
        "the server should log the line `hello world` once it is whole \
         (book: 03-multi-client.md § Lines, not reads, are the messages)",
    );
    assert!(
        line.ends_with("] hello world"),
        "a client sent `hel`, `lo wor` and `ld\\n` in three writes: the server should log the \
         whole line once, not its pieces; it logged {line:?} \
         (book: 03-multi-client.md § Lines, not reads, are the messages)"
    );
}

pub fn a_utf8_character_split_between_reads_is_logged_whole(start: impl Fn(&[&str]) -> Process) {
    let mut server = start(&[]);
    let mut client = Connection::open(server.addr());
    client.stream().set_nodelay(true).unwrap();
    // 你 is e4 bd a0: the first two bytes now, the last one later.
    client.send(b"\xe4\xbd");
    client.expect_nothing(
        "a client sent the first two bytes of `你` (e4 bd): half a character is not a line, \
         no reply yet (book: 03-multi-client.md § Lines, not reads, are the messages)",
    );
    client.send(b"\xa0\xe5\xa5\xbd\n");
    client.expect_bytes(
        b"ok\n",
        "the client then sent the rest of `你好` and a newline: the line is whole now, one `ok` \
         (book: 03-multi-client.md § Lines, not reads, are the messages)",
    );
    let line = server.expect_line(
        "好",
        "the server should log the line `你好` once it is whole \
         (book: 03-multi-client.md § Lines, not reads, are the messages)",
    );
    assert!(
        line.ends_with("] 你好"),
        "a client sent `你好` split inside its first character: the server should log the \
         line once it is whole, not the pieces of a character; it logged {line:?} \
         (book: 03-multi-client.md § Lines, not reads, are the messages)"
    );
}

pub fn a_last_line_without_newline_still_gets_its_reply(start: impl Fn(&[&str]) -> Process) {
    // What the original lesson's Python client sends: no newline, then close.
    let mut server = start(&[]);
    let mut client = Connection::open(server.addr());
    client.send(b"no newline");
    client.half_close();
    client.expect_bytes(
        b"ok\n",
        "a client sent `no newline` and half-closed: a last line ended by the client closing \
         its side is still a message (book: 03-multi-client.md § Lines, not reads, are the messages)",
    );
    client.expect_orderly_close(
        "after replying to the last line, the server should close the connection with a clean \
         end of stream (book: 03-multi-client.md § One client's conversation)",
    );
    server.expect_line(
        "] no newline",
        "the server should log the last line, `no newline` \
         (book: 03-multi-client.md § Lines, not reads, are the messages)",
    );
    server.expect_line(
        "] finished",
        "the client half-closed: the server should log `[ADDR] finished` \
         (book: 03-multi-client.md § One client's conversation)",
    );
}

pub fn empty_lines_are_messages_too(start: impl Fn(&[&str]) -> Process) {
    let mut server = start(&[]);
    let mut client = Connection::open(server.addr());
    client.send(b"\n\r\n");
    client.expect_bytes(
        b"ok\nok\n",
        "a client sent `\\n\\r\\n`: an empty line (and `\\r\\n`, as `nc -C` and telnet send) is a \
         message, one `ok` each (book: 03-multi-client.md § Lines, not reads, are the messages)",
    );
    leave(&mut client);
    expect_finished(&mut server);
    let log = server.stdout_now();
    let empty = log.lines().filter(|line| line.ends_with("] ")).count();
    assert_eq!(
        empty, 2,
        "a client sent two empty lines: the server should log each as `[ADDR] ` with nothing \
         after it (book: 03-multi-client.md § Lines, not reads, are the messages); log:\n{log}"
    );
}

pub fn a_line_over_the_limit_is_refused_and_the_server_lives_on(
    start: impl Fn(&[&str]) -> Process,
) {
    let mut server = start(&[]);
    let mut client = Connection::open(server.addr());
    client.send(&vec![b'x'; 64 * 1024 + 1]);
    let what = "a client sent 65537 bytes without a newline, one more than LINE_LIMIT";
    let refusal = client.read_line(&format!(
        "{what}: it should get one error line \
         (book: 03-multi-client.md § Lines, not reads, are the messages)"
    ));
    assert_eq!(
        refusal, "error: line longer than 65536 bytes, closing the connection",
        "{what}: the error line should be exactly this \
         (book: 03-multi-client.md § Lines, not reads, are the messages)"
    );
    client.expect_orderly_close(&format!(
        "{what}: after the error line the server should close that connection gently \
         (common::close_gently: half-close, then read what is left), so that the client reads \
         the error line and then a clean end of stream, not a reset \
         (book: 03-multi-client.md § Lines, not reads, are the messages)"
    ));
    let line = server.expect_line(
        "longer than",
        &format!(
            "{what}: the server should log the refusal \
             (book: 03-multi-client.md § Clients that misbehave)"
        ),
    );
    assert!(
        line.ends_with("] line longer than 65536 bytes, closing"),
        "{what}: the server should log `[ADDR] line longer than 65536 bytes, closing`; it logged \
         {line:?} (book: 03-multi-client.md § Clients that misbehave)"
    );

    let mut other = Connection::open(server.addr());
    round_trip(&mut other, "the server is still here");
}

pub fn a_line_of_exactly_the_limit_is_accepted(start: impl Fn(&[&str]) -> Process) {
    let server = start(&[]);
    let mut client = Connection::open(server.addr());
    let mut line = vec![b'x'; 64 * 1024];
    line.push(b'\n');
    client.send(&line);
    client.expect_bytes(
        b"ok\n",
        "a client sent a line of exactly 65536 bytes (without its newline): that is within \
         the limit, and gets `ok` (book: 03-multi-client.md § Lines, not reads, are the messages)",
    );
}

pub fn a_client_over_the_cap_is_told_busy_and_the_others_keep_working(
    start: impl Fn(&[&str]) -> Process,
) {
    let mut server = start(&["--max-clients", "2"]);
    let mut first = Connection::open(server.addr());
    round_trip(&mut first, "one");
    let mut second = Connection::open(server.addr());
    round_trip(&mut second, "two");

    let mut third = Connection::open(server.addr());
    let busy = third.read_to_end(&format!(
        "with --max-clients 2 and two clients connected, a third should be told `busy` {CAP}"
    ));
    assert_eq!(
        busy, b"busy: too many clients, try again later\n",
        "with --max-clients 2, a third client should get exactly the busy line, then the connection closed {CAP}"
    );
    let line = server.wait_for("busy");
    assert!(
        line.ends_with("] busy: already serving the most clients allowed (2), refused"),
        "the server should log the refusal; got {line:?} {CAP}"
    );
    round_trip(&mut first, "one again");
    round_trip(&mut second, "two again");
    leave(&mut second);
    server.wait_for("finished");

    a_freed_slot_serves_the_next_client(&server);
    round_trip(&mut first, "the first is still served");
}

/// A server started with `--max-clients 1`, the client that holds the one
/// slot, and a second client whose `bytes` were sent before the server could
/// accept it: stopped (SIGSTOP), the server cannot accept, and the kernel
/// completes the handshake and queues the bytes, so they are there, unread,
/// when it refuses.
fn over_the_cap_with_bytes_queued(
    start: impl Fn(&[&str]) -> Process,
    bytes: &[u8],
) -> (Process, Connection, Connection) {
    let server = start(&["--max-clients", "1"]);
    let mut first = Connection::open(server.addr());
    round_trip(&mut first, "I hold the only slot");
    server.freeze();
    let mut refused = Connection::open(server.addr());
    refused.send(bytes);
    server.thaw();
    (server, first, refused)
}

/// A client over the cap that sent lines before it was accepted reads the
/// busy line and a clean end of stream, not a reset. `book` is the section
/// that teaches the refusal, in the lesson under test.
pub fn a_client_over_the_cap_that_sent_lines_reads_the_busy_line_not_a_reset(
    start: impl Fn(&[&str]) -> Process,
    book: &str,
) {
    let (_server, mut first, second) =
        over_the_cap_with_bytes_queued(start, &b"I did not wait to be told\n".repeat(100));
    let mut got = Vec::new();
    let ended = second.stream().read_to_end(&mut got);
    let what = format!(
        "with --max-clients 1 and one client connected, a second connected and at once sent \
         100 lines: it should read the busy line, not a reset, then a clean end of stream. \
         Closing a socket with unread input sends a reset, which can destroy the busy line on \
         its way; common::refuse writes it, half-closes and reads what has arrived {book}"
    );
    match ended {
        Ok(_) if got == b"busy: too many clients, try again later\n" => {}
        Ok(_) => panic!(
            "{what}; it got {} and then the end of stream",
            crate::show(&got)
        ),
        Err(err) => panic!(
            "{what}; it got {} and then {err} ({:?})",
            crate::show(&got),
            err.kind()
        ),
    }
    round_trip(&mut first, "still served");
}

/// A client over the cap that sent far more than `common::refuse` drains
/// (`REFUSE_DRAIN_LIMIT`, 64 KiB) is reset: the server stopped reading it.
/// `book` is the section that teaches the refusal.
pub fn a_refused_client_that_floods_is_drained_only_so_far(
    start: impl Fn(&[&str]) -> Process,
    book: &str,
) {
    // The whole mebibyte is there, unread, when the server refuses (about
    // 4 MB fit in the buffers of a Linux loopback connection). A drain with
    // no bound reads all of it and closes cleanly; a bounded one stops at
    // 64 KiB and closes with the rest unread, which resets the connection.
    let (server, mut first, flooder) =
        over_the_cap_with_bytes_queued(start, &vec![b'x'; 1024 * 1024]);
    let mut got = Vec::new();
    let ended = flooder.stream().read_to_end(&mut got);
    // The busy line comes with a FIN (refuse half-closes first), so the
    // read may end cleanly before the reset comes. A third client's busy
    // line says the accept loop has closed the flooder's socket (it refuses
    // one client after the other); by then the reset has arrived, and the
    // socket holds it as its pending error.
    let mut third = Connection::open(server.addr());
    third.read_to_end(&format!(
        "with --max-clients 1 and one client connected, a second connected and sent 1 MiB \
         before it was accepted, then a third connected: it should be told `busy` {book}"
    ));
    let reset = ended.is_err() || matches!(flooder.stream().take_error(), Ok(Some(_)));
    if !reset {
        panic!(
            "with --max-clients 1 and one client connected, a second connected and sent 1 MiB \
             before it was accepted: refusing it should read at most REFUSE_DRAIN_LIMIT (64 KiB) \
             of that and close, which resets the connection (the client's own doing); it got \
             {} and a clean end of stream, so the server read the whole mebibyte. A drain with \
             no bound lets one refused client keep the accept loop reading for as long as it \
             sends {book}",
            crate::show(&got)
        );
    }
    round_trip(&mut first, "still served");
}

pub fn a_silent_client_is_disconnected_after_the_idle_timeout(start: impl Fn(&[&str]) -> Process) {
    let mut server = start(&["--idle-timeout", "1"]);
    let mut client = Connection::open(server.addr());
    let addr = client.local_addr();
    round_trip(&mut client, "hello, and then nothing");
    let what = "with --idle-timeout 1, a client sent one line and then nothing, keeping the \
                connection open";
    client.expect_orderly_close(&format!(
        "{what}: after 1 s of silence the server should disconnect it, with a clean end of \
         stream (book: 03-multi-client.md § Clients that misbehave)"
    ));
    // The client's line was logged before its `ok` was sent; the next line
    // about this client says how its connection ended.
    server.expect_line(
        &format!("[{addr}] hello, and then nothing"),
        &format!(
            "{what}: the server should log the line \
             (book: 03-multi-client.md § Lines, not reads, are the messages)"
        ),
    );
    let line = server.expect_line(
        &format!("[{addr}] "),
        &format!(
            "{what}: the server should log why it closed \
             (book: 03-multi-client.md § Clients that misbehave)"
        ),
    );
    assert!(
        line.ends_with("] idle for 1 s, closing"),
        "{what}: the server should log `[ADDR] idle for 1 s, closing` (a read that times out is \
         the idle timeout, not a connection error); it logged {line:?} \
         (book: 03-multi-client.md § Clients that misbehave)"
    );
}

pub fn a_client_that_keeps_talking_is_not_idle(start: impl Fn(&[&str]) -> Process) {
    let server = start(&["--idle-timeout", "1"]);
    let mut client = Connection::open(server.addr());
    // Two and a half seconds of talk, a line every quarter second: the
    // client is never silent for a second, so it must not be cut off.
    for n in 0..10 {
        round_trip(&mut client, &format!("still talking, {n}"));
        thread::sleep(Duration::from_millis(250));
    }
    leave(&mut client);
}

pub fn a_reset_is_logged_as_one_line(start: impl Fn(&[&str]) -> Process) {
    let mut server = start(&[]);
    let mut client = Connection::open(server.addr());
    round_trip(&mut client, "about to vanish");
    let addr = client.local_addr();
    client.reset();
    let what = "a client sent a line, got `ok`, then reset the connection (RST, SO_LINGER 0)";
    let line = server.expect_line(
        "connection error",
        &format!(
            "{what}: the server should log a connection error \
             (book: 03-multi-client.md § Clients that misbehave)"
        ),
    );
    assert_eq!(
        line,
        format!("[{addr}] connection error: reset by peer"),
        "{what}: the server should log it as one line for that client \
         (book: 03-multi-client.md § Clients that misbehave)"
    );
    let mut other = Connection::open(server.addr());
    round_trip(&mut other, "others are still served");
}

pub fn control_characters_and_invalid_utf8_are_logged_escaped(start: impl Fn(&[&str]) -> Process) {
    let mut server = start(&[]);
    let mut client = Connection::open(server.addr());
    client.send(b"\x1b[31mred\x07 caf\xe9\n");
    client.expect_bytes(
        b"ok\n",
        &format!("any bytes make a line, even invalid UTF-8 {LINES}"),
    );
    let line = server.wait_for("red");
    assert!(
        line.ends_with("] \\u{1b}[31mred\\u{7} caf\\xe9"),
        "bytes from the network must be logged escaped (common::printable); got {line:?} {MISBEHAVE}"
    );
}

/// Three clients, their lines interleaved: each gets exactly its own
/// replies, and the log shows each client's own lines, in order. Returns
/// each client's log lines (without its address tag), for a snapshot.
pub fn each_client_of_several_gets_its_own_replies(
    start: impl Fn(&[&str]) -> Process,
) -> Vec<Vec<String>> {
    let mut server = start(&[]);
    let mut clients: Vec<Connection> = (0..3).map(|_| Connection::open(server.addr())).collect();
    for round in 0..3 {
        for (n, client) in clients.iter_mut().enumerate() {
            round_trip(client, &format!("client {n}, line {round}"));
        }
    }
    let addrs: Vec<_> = clients.iter().map(Connection::local_addr).collect();
    for client in &mut clients {
        leave(client);
    }
    // The three threads finish in any order, and waiting for one client's
    // line would consume (and so miss) another's that came first: wait for
    // three `finished` lines, whoever's they are. The transcripts below
    // check that each client has its own.
    for _ in &addrs {
        server.wait_for("] finished");
    }
    let log = server.stdout_now();
    let mut transcripts = Vec::new();
    for (n, addr) in addrs.iter().enumerate() {
        let tag = format!("[{addr}] ");
        let own: Vec<&str> = log
            .lines()
            .filter_map(|line| line.strip_prefix(&tag))
            .collect();
        let expected = [
            "connected".to_string(),
            format!("client {n}, line 0"),
            format!("client {n}, line 1"),
            format!("client {n}, line 2"),
            "finished".to_string(),
        ];
        assert_eq!(
            own, expected,
            "each client's log lines, tagged with its address, should be its own, in order {LINES}"
        );
        transcripts.push(own.iter().map(|line| line.to_string()).collect());
    }
    transcripts
}

/// `printf 'hello\nfrom nc\n' | nc -N 127.0.0.1 PORT` prints `ok` twice.
/// Needs OpenBSD nc: mark the test that calls it
/// `#[cfg_attr(not(has_nc), ignore = "...")]`, as for every nc test.
pub fn nc_with_half_close_gets_ok_per_line(start: impl Fn(&[&str]) -> Process) {
    let Some(nc) = tool("nc") else { return };
    let mut server = start(&[]);
    let port = server.addr().port().to_string();
    // -N: shut down the sending side when the input ends, so the server
    // reads end-of-input, replies to the last line and closes; nc then exits.
    let done = run(&nc, &["-N", "127.0.0.1", &port], "hello\nfrom nc\n");
    done.assert_success("printf 'hello\\nfrom nc\\n' | nc -N 127.0.0.1 PORT");
    assert_eq!(
        done.stdout, "ok\nok\n",
        "nc should print one `ok` per line {LINES}; {done}"
    );
    server.wait_for("] from nc");
    server.wait_for("] finished");
}

/// Without -N, nc keeps the connection open after its input ends; the
/// idle timeout ends it. Needs OpenBSD nc, as the check above.
pub fn nc_without_half_close_is_ended_by_the_idle_timeout(start: impl Fn(&[&str]) -> Process) {
    let Some(nc) = tool("nc") else { return };
    let mut server = start(&["--idle-timeout", "1"]);
    let port = server.addr().port().to_string();
    let done = run(&nc, &["127.0.0.1", &port], "hello\n");
    done.assert_success("printf 'hello\\n' | nc 127.0.0.1 PORT, with --idle-timeout 1");
    assert_eq!(
        done.stdout, "ok\n",
        "nc should print the `ok` for its line, and exit when the idle timeout closes the connection {LIMITS}; {done}"
    );
    server.wait_for("] hello");
    server.wait_for("] idle for 1 s, closing");
}
