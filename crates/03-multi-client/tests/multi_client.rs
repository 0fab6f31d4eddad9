//! Checks for lesson 3, the server for many clients. Write the server
//! yourself, then run `cargo test -p multi-client`: each test names what the
//! server should do.
//!
//! Every test starts the real `03-multi-client` with `--listen 127.0.0.1:0`,
//! learns its port from its first line, and talks to it over loopback.

// Helpers fail the test by panicking, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod book;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::*;
use testkit::line_protocol::{self, expect_finished, leave, round_trip};
use testkit::{Connection, Process, WAIT, run, snapshot_settings, tool};

fn server_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_03-multi-client"))
}

fn start_server(args: &[&str]) -> Process {
    Process::server(server_bin(), args)
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
    expect_finished(&mut server);

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
        &format!(
            "a first client is connected and stays; a second one sent `I am second`: with a thread \
         per client, the second should get `ok` while the first is still connected \
         {}",
            book::THE_FIX_A_THREAD_PER_CLIENT_WITH_A_CAP
        ),
    );
    // And the first is still served, after the second.
    round_trip(&mut first, "still here");

    // Each step waits for the server's log line, so this log has one order.
    leave(&mut second);
    expect_finished(&mut server);
    leave(&mut first);
    expect_finished(&mut server);
    let log = numbered(&server.stdout_now(), &[&first, &second]);
    let _guard = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("two_clients_at_once", log);
}

#[test]
fn one_at_a_time_makes_the_second_client_wait_until_the_first_leaves() {
    let mut server = start_server(&["--one-at-a-time"]);
    let mut first = Connection::open(server.addr());
    round_trip(&mut first, "I am first, and I stay");
    server.expect_line(
        "] I am first",
        &format!(
            "a client sent `I am first, and I stay`: the server should log it \
         {}",
            book::ONE_CLIENTS_CONVERSATION
        ),
    );

    // The kernel completes the second client's handshake by itself (the
    // connection waits in the listen backlog) and takes its line into a
    // receive buffer...
    let mut second = Connection::open(server.addr());
    second.send_line("I am second");
    // ...but nothing reads it while the server is busy with the first.
    second.expect_nothing(&format!(
        "with --one-at-a-time, a second client sent `I am second` while the first is still \
         connected: it must get no reply until the first leaves \
         {}",
        book::THE_ORIGINAL_LOOP_ONE_CLIENT_AT_A_TIME
    ));
    server.expect_no_line(&format!(
        "with --one-at-a-time, the server must not accept a second client while the first is \
         connected {}",
        book::THE_ORIGINAL_LOOP_ONE_CLIENT_AT_A_TIME
    ));
    round_trip(&mut first, "still here");

    leave(&mut first);
    second.expect_bytes(
        b"ok\n",
        &format!(
            "with --one-at-a-time, once the first client has left, the server should accept the \
         waiting second client and reply `ok` to the line it sent \
         {}",
            book::THE_ORIGINAL_LOOP_ONE_CLIENT_AT_A_TIME
        ),
    );
    leave(&mut second);
    server.expect_line(
        "] I am second",
        &format!(
            "the second client's line should be logged once the server serves it \
         {}",
            book::TRY_IT_THE_SECOND_CLIENT_WAITS
        ),
    );
    expect_finished(&mut server);
    let log = numbered(&server.stdout_now(), &[&first, &second]);
    let _guard = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("one_at_a_time", log);
}

// ---------------------------------------------------------------------------
// Lines, however the bytes arrive
// ---------------------------------------------------------------------------

#[test]
fn two_lines_in_one_write_get_two_replies() {
    line_protocol::two_lines_in_one_write_get_two_replies(start_server);
}

#[test]
fn a_line_in_several_writes_gets_one_reply_when_it_is_whole() {
    line_protocol::a_line_in_several_writes_gets_one_reply_when_it_is_whole(start_server);
}

#[test]
fn a_utf8_character_split_between_reads_is_printed_whole() {
    line_protocol::a_utf8_character_split_between_reads_is_logged_whole(start_server);
}

#[test]
fn a_last_line_without_newline_still_gets_its_reply() {
    line_protocol::a_last_line_without_newline_still_gets_its_reply(start_server);
}

#[test]
fn empty_lines_are_messages_too() {
    line_protocol::empty_lines_are_messages_too(start_server);
}

#[test]
fn a_line_over_the_limit_is_refused_and_the_server_lives_on() {
    line_protocol::a_line_over_the_limit_is_refused_and_the_server_lives_on(start_server);
}

#[test]
fn a_line_of_exactly_the_limit_is_accepted() {
    line_protocol::a_line_of_exactly_the_limit_is_accepted(start_server);
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
    let what = "with --max-clients 2 and two clients connected, a third client connected";
    // The server's first line about the third client says whether it was
    // refused: a `connected` means it got a thread, and the test need not
    // wait for a busy line that will never come.
    let me = format!("[{}]", third.local_addr());
    let line = loop {
        let line = server.next_line(&format!(
            "{what}: the server should log `{me} busy: already serving the most clients \
             allowed (2), refused` {}",
            book::WHY_THE_CAP
        ));
        if line.contains(&me) {
            break line;
        }
    };
    assert!(
        line.contains("busy"),
        "{what}: it should be told `busy` and closed, without a thread of its own, while two \
         slots are held; the server logged {line:?} instead. Is each slot held until its \
         client's thread ends? A slot dropped at once (not kept, or not moved into the thread: \
         `let _ = slot` does not move it) gives its place back before the client is served \
         {}",
        book::WHY_THE_CAP
    );
    let busy = third.read_to_end(&format!(
        "{what}: it should be told `busy` and closed {}",
        book::WHY_THE_CAP
    ));
    assert_eq!(
        testkit::show(&busy),
        testkit::show(b"busy: too many clients, try again later\n"),
        "{what}: it should get exactly the busy line, then the connection closed \
         {}",
        book::WHY_THE_CAP
    );
    round_trip(&mut first, "one again");
    round_trip(&mut second, "two again");
    leave(&mut second);
    expect_finished(&mut server);
    let log = numbered(&server.stdout_now(), &[&first, &second, &third]);
    {
        let _guard = snapshot_settings().bind_to_scope();
        insta::assert_snapshot!("over_the_cap", log);
    }

    line_protocol::a_freed_slot_serves_the_next_client(&server);
    round_trip(&mut first, "the first is still served");
}

#[test]
fn a_client_over_the_cap_that_sent_lines_reads_the_busy_line_not_a_reset() {
    line_protocol::a_client_over_the_cap_that_sent_lines_reads_the_busy_line_not_a_reset(
        start_server,
        book::WHY_THE_CAP,
    );
}

#[test]
fn a_refused_client_that_floods_is_drained_only_so_far() {
    line_protocol::a_refused_client_that_floods_is_drained_only_so_far(
        start_server,
        book::WHY_THE_CAP,
    );
}

#[test]
fn a_silent_client_is_disconnected_after_the_idle_timeout() {
    line_protocol::a_silent_client_is_disconnected_after_the_idle_timeout(start_server);
}

#[test]
fn a_reset_is_logged_as_one_line() {
    line_protocol::a_reset_is_logged_as_one_line(start_server);
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
    let what = "a client sent `line\\n` 1000 times in one write and closed without reading a reply";
    let line = server.expect_line(
        &format!("[{addr}] connection error: "),
        &format!(
            "{what}: writing the `ok`s fails, and the server should log a connection error \
             for that client {}",
            book::CLIENTS_THAT_MISBEHAVE
        ),
    );
    assert!(
        line.ends_with("reset by peer")
            || line.ends_with("broken pipe (the peer closed the connection)"),
        "{what}: the server should log `connection error: reset by peer` or \
         `connection error: broken pipe (the peer closed the connection)`; it logged {line:?} \
         {}",
        book::CLIENTS_THAT_MISBEHAVE
    );
    let mut polite = Connection::open(server.addr());
    round_trip(&mut polite, "others are still served");
}

#[test]
fn control_characters_and_invalid_utf8_are_logged_escaped() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    client.send(b"\x1b[31mred\x07 caf\xe9\n");
    let what = "a client sent a terminal escape, a bell and invalid UTF-8, then a newline";
    client.expect_bytes(
        b"ok\n",
        &format!(
            "{what}: any bytes make a line and get `ok` \
             {}",
            book::LINES_NOT_READS_ARE_THE_MESSAGES
        ),
    );
    let line = server.expect_line(
        "red",
        &format!("{what}: the server should log the line {}", book::RUN_IT),
    );
    assert!(
        line.ends_with("] \\u{1b}[31mred\\u{7} caf\\xe9"),
        "{what}: bytes from the network must be logged escaped, with common::printable; it \
         logged {line:?} {}",
        book::RUN_IT
    );
}

// ---------------------------------------------------------------------------
// Several clients at once
// ---------------------------------------------------------------------------

#[test]
fn each_client_of_several_gets_its_own_replies_and_log_lines() {
    let transcripts = line_protocol::each_client_of_several_gets_its_own_replies(start_server);
    let mut shown = String::new();
    for (n, lines) in transcripts.iter().enumerate() {
        shown.push_str(&format!("client {n}:\n"));
        for line in lines {
            shown.push_str(&format!("  {line}\n"));
        }
    }
    let _guard = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("three_clients", shown);
}

// ---------------------------------------------------------------------------
// nc, and starting up
// ---------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not(has_nc),
    ignore = "needs OpenBSD nc (netcat-openbsd): install it, or run .ci/run"
)]
fn nc_with_half_close_gets_ok_per_line() {
    let Some(nc) = tool("nc") else { return };
    let mut server = start_server(&[]);
    let port = server.addr().port().to_string();
    // -N: shut down the sending side when the input ends, so the server
    // reads end-of-input, replies to the last line and closes; nc then exits.
    let what = "printf 'hello\\nfrom nc\\n' | nc -N 127.0.0.1 PORT";
    let done = run(&nc, &["-N", "127.0.0.1", &port], "hello\nfrom nc\n");
    done.assert_success(&format!(
        "{what}: nc half-closes at the end of its input, and the server should close in \
         return {}",
        book::RUN_IT
    ));
    assert_eq!(
        done.stdout,
        "ok\nok\n",
        "{what}: nc should print one `ok` per line {}; {done}",
        book::RUN_IT
    );
    server.expect_line(
        "] from nc",
        &format!(
            "{what}: the server should log the second line {}",
            book::RUN_IT
        ),
    );
    server.expect_line(
        "] finished",
        &format!(
            "{what}: the server should log `[ADDR] finished` \
             {}",
            book::ONE_CLIENTS_CONVERSATION
        ),
    );
}

#[test]
#[cfg_attr(
    not(has_nc),
    ignore = "needs OpenBSD nc (netcat-openbsd): install it, or run .ci/run"
)]
fn nc_without_half_close_is_ended_by_the_idle_timeout() {
    let Some(nc) = tool("nc") else { return };
    // Without -N, nc never tells the server its input has ended: it keeps
    // the connection open and waits for the server. The line still gets its
    // `ok` at once (the newline ends it); the server ends the connection
    // when the client has been silent for --idle-timeout, and nc exits.
    let mut server = start_server(&["--idle-timeout", "1"]);
    let port = server.addr().port().to_string();
    let what = "printf 'hello\\n' | nc 127.0.0.1 PORT, with --idle-timeout 1";
    let done = run(&nc, &["127.0.0.1", &port], "hello\n");
    done.assert_success(&format!(
        "{what}: nc keeps the connection open, and the server should end it after 1 s of \
         silence {}",
        book::RUN_IT
    ));
    assert_eq!(
        done.stdout,
        "ok\n",
        "{what}: nc should print the `ok` for its line {}; {done}",
        book::RUN_IT
    );
    server.expect_line(
        "] hello",
        &format!("{what}: the server should log the line {}", book::RUN_IT),
    );
    server.expect_line(
        "] idle for 1 s, closing",
        &format!(
            "{what}: the server should log `[ADDR] idle for 1 s, closing` \
             {}",
            book::CLIENTS_THAT_MISBEHAVE
        ),
    );
}

#[test]
fn a_port_in_use_is_one_line_on_stderr() {
    let first = start_server(&[]);
    testkit::assert_port_in_use_is_one_line(server_bin(), &[], first.addr());
}

#[test]
fn a_bad_address_is_one_error_line() {
    Command::cargo_bin("03-multi-client")
        .unwrap()
        .args(["--listen", "127.0.0.1:port"])
        .timeout(WAIT)
        .assert()
        .failure()
        .stdout("")
        .stderr(
            "error: bad address \"127.0.0.1:port\": expected HOST:PORT, for example \
             127.0.0.1:7890 or [::1]:7890\n",
        );
}

#[test]
fn help_describes_the_server_and_its_options() {
    Command::cargo_bin("03-multi-client")
        .unwrap()
        .arg("--help")
        .timeout(WAIT)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("--listen <ADDR>")
                .and(predicate::str::contains("--one-at-a-time"))
                .and(predicate::str::contains("--max-clients <N>"))
                .and(predicate::str::contains("--idle-timeout <SECS>")),
        );
}

// ---------------------------------------------------------------------------
// Out of file descriptors: accept fails, and the server must live on
// ---------------------------------------------------------------------------

/// The CPU time process `pid` has used so far (user and system), from
/// /proc/PID/stat, in clock ticks (usually 100 a second).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(end) = stat.rfind(')') else { return 0 };
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat[end + 2..].split(' ').collect();
    let field = |n: usize| {
        fields
            .get(n)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// How long the reference pauses after a failed accept (lesson 3's two
/// loops; the test allows no faster retries than this).
const PAUSE_AFTER_FAILED_ACCEPT: Duration = Duration::from_millis(100);

/// The lowest file descriptor number process `pid` does not use: with its
/// soft limit of open files set to this, its next `accept()` fails with
/// EMFILE (`too many open files`).
fn lowest_free_fd(pid: u32) -> u64 {
    let used: Vec<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    (0..).find(|fd| !used.contains(fd)).unwrap()
}

/// Sets the soft limit of open files of the running process `pid`.
fn set_open_files(prlimit: &Path, pid: u32, soft: u64) {
    let done = std::process::Command::new(prlimit)
        .args([format!("--pid={pid}"), format!("--nofile={soft}:")])
        .output()
        .unwrap();
    assert!(
        done.status.success(),
        "prlimit --pid {pid} --nofile={soft}: failed: {}",
        String::from_utf8_lossy(&done.stderr)
    );
}

/// What each test below sets up: the server's limit of open files lowered
/// (with prlimit) so that no descriptor is free, and 20 clients connected,
/// which wait in the backlog while every `accept()` fails with EMFILE
/// (`too many open files`). Checks that the server pauses between attempts
/// and logs them; then gives the descriptors back and checks that the first
/// waiting client is served. `lowered` is when the limit was lowered (no
/// accept can have failed before); `what` describes the case; `book` is the
/// section, for the messages.
fn out_of_descriptors(
    prlimit: &Path,
    server: &mut Process,
    waiting: &mut [Connection],
    lowered: Instant,
    what: &str,
    book: &str,
) {
    let pid = server.pid();
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(pid) - before;
    let log = server.stdout_now();
    let elapsed = lowered.elapsed();
    let failures = log
        .lines()
        .filter(|line| line.starts_with("could not accept a connection: "))
        .count();
    // First whether it logs them at all: a loop that skips accept errors
    // silently (incoming().flatten()) shows neither lines nor, under load,
    // much CPU.
    assert!(
        failures > 0,
        "{what}: the server should log each failed accept as `could not accept a connection: \
         too many open files`, pause, and go on (a loop that skips accept errors silently, as \
         incoming().flatten() does, also retries at once and spins a core); in {:.1} s it \
         logged none {book}; its last lines:\n{}",
        elapsed.as_secs_f64(),
        last_lines(&log)
    );
    // A pause of 100 ms after each failure allows at most one attempt per
    // 100 ms since the limit was lowered, however loaded the machine is:
    // load only slows a server down. A loop without the pause logs
    // thousands of lines in the same time, even with a small share of a
    // core. The CPU figure below is the second sign, but on a busy machine
    // a spinning server may get too little CPU to show it.
    let allowed = elapsed.as_millis() / PAUSE_AFTER_FAILED_ACCEPT.as_millis() + 2;
    assert!(
        failures as u128 <= allowed,
        "{what}: after a failed accept the server should pause (sleep 100 ms) before trying \
         again, or a lasting error spins a core and floods the log: in {:.1} s it logged {failures} \
         `could not accept` lines, where pausing 100 ms after each allows at most {allowed} {book}",
        elapsed.as_secs_f64()
    );
    assert!(
        used < 30,
        "{what}: after a failed accept the server should pause (the reference sleeps 100 ms) \
         before trying again, or a lasting error spins a core; in one second it used {used} \
         ticks of CPU (of 100) and logged {failures} `could not accept` lines {book}"
    );
    // Give the descriptors back: the waiting clients must be served.
    set_open_files(prlimit, pid, 1024);
    let first = &mut waiting[0];
    let expected = format!(
        "{what}; then the limit was raised again and the first of them sent a line: a failed \
         accept must not end the server (or its loop), so once a descriptor is free it should \
         accept the waiting client and reply `ok` {book}"
    );
    let mut socket = first.stream();
    if let Err(err) = socket.write_all(b"I waited in the backlog\n") {
        panic!(
            "{expected}; but sending failed: {err} (the server has closed its listening socket)"
        );
    }
    first.expect_bytes(b"ok\n", &expected);
}

/// The last few lines of a log, for a failure message.
fn last_lines(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// Twenty clients that connect while the server is out of descriptors.
/// The kernel completes their handshakes by itself, whether the server can
/// accept them or not; a refused connect means the server has closed its
/// listening socket, which a failed accept must never make it do.
fn twenty_clients(server: &Process, book: &str) -> Vec<Connection> {
    (0..20)
        .map(
            |n| match std::net::TcpStream::connect_timeout(&server.addr(), WAIT) {
                Ok(stream) => Connection::from_stream(stream),
                Err(err) => panic!(
                    "with the server out of file descriptors (its limit of open files lowered with \
                 prlimit), {n} clients connected and the next was refused ({err}): the server \
                 has closed its listening socket. A failed accept must not end the server (or \
                 its loop): report it, pause, and accept again {book}"
                ),
            },
        )
        .collect()
}

#[test]
fn one_at_a_time_pauses_after_a_failed_accept_and_lives_on() {
    let Some(prlimit) = tool("prlimit") else {
        return;
    };
    let mut server = start_server(&["--one-at-a-time"]);
    // The descriptor the next accepted client gets.
    let next = lowest_free_fd(server.pid());
    let mut first = Connection::open(server.addr());
    round_trip(&mut first, "I take the last descriptor");
    // While it is served nobody accepts; its descriptor is the last allowed.
    let lowered = Instant::now();
    set_open_files(&prlimit, server.pid(), next);
    let mut waiting = twenty_clients(&server, book::THE_ORIGINAL_LOOP_ONE_CLIENT_AT_A_TIME);
    leave(&mut first);
    let what = format!(
        "with --one-at-a-time and the server out of file descriptors (its limit of open files \
         lowered with prlimit to {next}), 20 clients connected and the one being served left: \
         the others wait in the backlog, and every accept() fails with EMFILE (`too many open \
         files`)"
    );
    out_of_descriptors(
        &prlimit,
        &mut server,
        &mut waiting,
        lowered,
        &what,
        book::THE_ORIGINAL_LOOP_ONE_CLIENT_AT_A_TIME,
    );
}

#[test]
fn thread_per_client_pauses_after_a_failed_accept_and_lives_on() {
    let Some(prlimit) = tool("prlimit") else {
        return;
    };
    let mut server = start_server(&[]);
    let next = lowest_free_fd(server.pid());
    let mut first = Connection::open(server.addr());
    round_trip(&mut first, "I take the last descriptor");
    let lowered = Instant::now();
    set_open_files(&prlimit, server.pid(), next);
    let mut waiting = twenty_clients(&server, book::WHY_THE_CAP);
    let what = format!(
        "with a thread per client, one client connected and the server out of file descriptors \
         (its limit of open files lowered with prlimit to {next}), 20 more clients connected: \
         they wait in the backlog, and every accept() fails with EMFILE (`too many open files`)"
    );
    out_of_descriptors(
        &prlimit,
        &mut server,
        &mut waiting,
        lowered,
        &what,
        book::WHY_THE_CAP,
    );
    round_trip(&mut first, "and I am still served");
}

// ---------------------------------------------------------------------------
// No idle limit, and a line far over the limit
// ---------------------------------------------------------------------------

#[test]
fn a_client_silent_for_a_moment_is_still_served() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    let what = "a client connected and was silent for 0.3 s before each line (the idle timeout \
                is 60 s)";
    let wait = &format!(
        "the server's read should wait for it: a blocking read with a read timeout of \
                --idle-timeout, not a non-blocking socket, whose read fails at once with \
                WouldBlock {}",
        book::ONE_CLIENTS_CONVERSATION
    );
    client.expect_nothing(&format!("{what}: {wait}"));
    round_trip(&mut client, "I took my time");
    client.expect_nothing(&format!("{what}: {wait}"));
    round_trip(&mut client, "and again");
    leave(&mut client);
    expect_finished(&mut server);
}

#[test]
fn with_idle_timeout_0_a_client_is_served_and_kept() {
    let server = start_server(&["--idle-timeout", "0"]);
    let mut client = Connection::open(server.addr());
    client.send_line("no limit");
    let what = "with --idle-timeout 0 (no limit: idle_timeout is None), a client sent `no limit`";
    client.expect_bytes(
        b"ok\n",
        &format!(
            "{what}: it should get `ok`; set_read_timeout(None) means reads wait as long as it \
             takes (a zero Duration is an error) {}",
            book::ONE_CLIENTS_CONVERSATION
        ),
    );
    client.expect_nothing(&format!(
        "{what} and got `ok`: with no limit, the server should keep the silent connection open \
         {}",
        book::ONE_CLIENTS_CONVERSATION
    ));
    leave(&mut client);
}

#[test]
fn a_client_that_sends_a_mebibyte_without_newline_reads_the_error_line() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    let addr = client.local_addr();
    // Another handle on the same socket sends while this one reads: the
    // server stops reading after LINE_LIMIT, so the sending may have to wait
    // for it to read (drain) the rest.
    let mut sender = client.stream().try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        let _ = sender.write_all(&vec![b'x'; 1024 * 1024]);
        let _ = sender.shutdown(std::net::Shutdown::Write);
    });
    let what = "a client sent 1 MiB (16 times LINE_LIMIT) without a newline, then half-closed";
    let gently = &format!(
        "after the error line the server should close that connection gently \
                  (common::close_gently: half-close, then read what is left), so that the client \
                  reads the error line and then a clean end of stream, not a reset: the rest of \
                  the line is unread, and closing a socket with unread input resets the \
                  connection, which destroys the error line on its way \
                  {}",
        book::LINES_NOT_READS_ARE_THE_MESSAGES
    );
    let refusal = client.read_line(&format!("{what}: it should get one error line; {gently}"));
    assert_eq!(
        refusal,
        "error: line longer than 65536 bytes, closing the connection",
        "{what}: the error line should be exactly this \
         {}",
        book::LINES_NOT_READS_ARE_THE_MESSAGES
    );
    client.expect_orderly_close(&format!("{what}: {gently}"));
    let _ = sending.join();
    server.expect_line(
        &format!("[{addr}] line longer than 65536 bytes, closing"),
        &format!(
            "{what}: the server should log `[ADDR] line longer than 65536 bytes, closing` \
             {}",
            book::CLIENTS_THAT_MISBEHAVE
        ),
    );
}

#[test]
fn one_client_logs_at_most_the_bound_of_lines_and_a_summary() {
    let mut server = start_server(&[]);
    testkit::client_log::assert_one_client_cannot_flood_the_log(
        &mut server,
        book::A_LOG_NOBODY_READS,
    );
}
