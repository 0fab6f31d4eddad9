//! Lesson 4 as people use it: real `04-relay join` clients, typed to
//! through their standard input, talking through a real `04-relay serve`.
//!
//! Each step waits for the line that shows it happened before the next
//! one, so every transcript has one order and can be a snapshot.

mod support;

use std::time::{Duration, Instant};
use support::{
    bin, book, book_section, expect_exact_line, explains, join, register, start_server,
    with_section,
};
use testkit::hostile::resident_kib;

use relay::MAX_DIRECT_PEERS;
use testkit::{
    Connection, FakeServer, Process, WAIT, closed_port, reported_local_port, run,
    snapshot_settings, snapshot_settings_with_ports,
};

/// The address in `line` after `prefix` (e.g. `listening for direct messages on `).
fn addr_after(line: &str, prefix: &str) -> std::net::SocketAddr {
    line.split_once(prefix)
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|addr| addr.trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("expected an address after {prefix:?} in {line:?}"))
}

/// Snapshot settings that show each port as its role: the server's
/// `[listen port]` and, for each `join` client given as (name, its output),
/// `[NAME's port]`, its connection to the server (from its own line
/// `connected to ... (local ADDR)`), and `[NAME's direct port]`, where it
/// listens for direct messages (from `listening for direct messages on
/// ADDR`). The two differ, and telling them apart is this lesson's point: a
/// program that prints one where the other belongs fails the snapshot.
fn settings_naming_ports(server: &Process, clients: &[(&str, &str)]) -> insta::Settings {
    let mut ports = vec![(server.addr().port(), "listen port".to_string())];
    for (name, output) in clients {
        for line in output.lines() {
            if line.starts_with("connected to ") {
                ports.push((reported_local_port(line), format!("{name}'s port")));
            } else if line.starts_with("listening for direct messages on ") {
                let port = addr_after(line, "listening for direct messages on ").port();
                ports.push((port, format!("{name}'s direct port")));
            }
        }
    }
    snapshot_settings_with_ports(&ports)
}

#[test]
fn two_clients_talk_through_the_server() {
    explains(book::RUN_IT);
    let mut server = start_server(&[]);
    let mut alice = join(&server, "alice", &[]);
    let mut bob = join(&server, "bob", &[]);
    alice.expect_line(
        "-- bob joined",
        &with_section("alice should hear that bob joined"),
    );

    alice.send("/to bob hi bob");
    bob.expect_line(
        "[alice] hi bob",
        &with_section("alice typed `/to bob hi bob`: bob should print `[alice] hi bob`"),
    );
    alice.expect_line(
        "-- sent to bob",
        &with_section("alice typed `/to bob hi bob`: she should print the server's SENT"),
    );

    bob.send("/list");
    bob.expect_line(
        "-- here: alice bob",
        &with_section("bob typed `/list`: he should print who is here"),
    );

    bob.send("hello, whoever is here");
    alice.expect_line(
        "[bob] hello, whoever is here",
        &with_section("bob typed a plain line: it goes to everyone, alice included"),
    );
    bob.expect_line(
        "-- sent to everyone",
        &with_section("bob typed a plain line: he should print the server's `SENT *`"),
    );

    alice.send("/all and hello to you");
    bob.expect_line(
        "[alice] and hello to you",
        &with_section("alice typed `/all and hello to you`: bob should print it"),
    );
    alice.expect_line(
        "-- sent to everyone",
        &with_section("alice typed `/all ...`: she should print the server's `SENT *`"),
    );

    alice.send("/quit");
    alice.expect_line(
        "-- bye",
        &with_section("alice typed `/quit`: she should say BYE and print the server's BYE"),
    );
    let alice_done = alice.finish();
    alice_done.assert_success(&format!("alice after /quit {}", book_section()));
    bob.expect_line(
        "-- alice left",
        &with_section("when alice has quit, bob should hear that she left"),
    );
    server.expect_line(
        "alice left",
        &with_section("when alice has quit, the server should log `alice left`"),
    );

    let bob_output = bob.stdout_now();
    let _guard = settings_naming_ports(
        &server,
        &[("alice", &alice_done.stdout), ("bob", &bob_output)],
    )
    .bind_to_scope();
    insta::assert_snapshot!("two_clients_alice", alice_done.stdout);
    insta::assert_snapshot!("two_clients_bob", bob_output);
    insta::assert_snapshot!("two_clients_server", server.stdout_now());
}

#[test]
fn a_broadcast_reaches_everyone_but_its_sender() {
    explains(book::THE_CLIENT);
    let server = start_server(&[]);
    let mut alice = join(&server, "alice", &[]);
    let mut bob = join(&server, "bob", &[]);
    let mut carol = join(&server, "carol", &[]);
    alice.expect_line(
        "-- carol joined",
        &with_section("alice should hear that carol joined"),
    );
    bob.expect_line(
        "-- carol joined",
        &with_section("bob should hear that carol joined"),
    );

    carol.send("anyone there?");
    alice.expect_line(
        "[carol] anyone there?",
        &with_section("carol typed a plain line: it goes to everyone, alice included"),
    );
    bob.expect_line(
        "[carol] anyone there?",
        &with_section("carol typed a plain line: it goes to everyone, bob included"),
    );
    carol.expect_line(
        "-- sent to everyone",
        &with_section("carol typed a plain line: she should print the server's `SENT *`"),
    );
    carol.expect_no_line(&format!(
        "carol typed a plain line: the sender of a broadcast should not get its own line back {}",
        book_section()
    ));
}

/// `seq 300 | 04-relay join paster`, or 300 lines pasted at once: the
/// server relays them as fast as the receiver reads, and a receiver that
/// reads is never dropped for having a full queue.
#[test]
fn three_hundred_pasted_lines_all_reach_a_reader() {
    explains(book::A_FULL_QUEUE_SLOWS_THE_SENDER);
    let mut server = start_server(&[]);
    let mut reader = join(&server, "reader", &[]);
    let mut paster = join(&server, "paster", &[]);
    reader.expect_line(
        "-- paster joined",
        &with_section("reader should hear that paster joined"),
    );
    // In one write, as `seq 300 |` or a paste gives them.
    let paste: String = (1..=300).map(|n| format!("{n}\n")).collect();
    paster.send_bytes(paste.as_bytes());
    for n in 1..=300 {
        let line = reader.next_line(&format!(
            "paster's input was 300 lines in one go (`seq 300`), each relayed to everyone: reader, a normal `join` client, should print `[paster] {n}` {}",
            book_section()
        ));
        assert_eq!(
            line,
            format!("[paster] {n}"),
            "paster's input was 300 lines in one go: reader should print each, in order, and never be dropped (a full queue slows the sender, it does not drop the receiver) {}",
            book_section()
        );
    }
    for n in 1..=300 {
        paster.expect_line(
            "-- sent to everyone",
            &with_section(&format!(
                "paster's line {n} of 300 should be answered `SENT *`"
            )),
        );
    }
    paster.send("/list");
    paster.expect_line(
        "-- here: paster reader",
        &with_section("after 300 pasted lines, reader should still be here"),
    );
    let log = server.stdout_now();
    assert!(
        !log.contains("reader left"),
        "reader read every line and must not be dropped; the server's log:\n{log}\n{}",
        book_section()
    );
}

/// `join bob | sleep 200`: nobody reads the client's output. Its memory
/// must stay bounded while lines keep coming: it stops reading the server,
/// and the server slows down whoever sends to it.
#[test]
fn a_client_whose_output_is_not_read_keeps_its_memory_bounded() {
    explains(book::THE_CLIENT);
    let server = start_server(&[]);
    let mut watcher = register(server.addr(), "watcher");
    let mut child = std::process::Command::new(bin())
        .args(["join", "bob", "--server", &server.addr().to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kept open and never read, as behind `| sleep 200`.
    let _output = child.stdout.take();
    let _input = child.stdin.take();
    let pid = child.id();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Kill(child);
    expect_exact_line(
        &mut watcher,
        "JOINED bob",
        "watcher should hear that bob (a `join` client whose output nobody reads) joined",
    );
    let Some(before) = resident_kib(pid) else {
        println!("skipped: no /proc/PID/status to read memory from");
        return;
    };
    // 40 lines of 4 KB every 50 ms, 16 MB in all, as fast as the server
    // takes them; the answers are read on a thread of their own.
    let flooder = register(server.addr(), "flooder");
    flooder
        .stream()
        .set_write_timeout(Some(std::time::Duration::from_secs(1)))
        .unwrap();
    let mut answers = flooder.stream().try_clone().unwrap();
    std::thread::spawn(move || {
        let mut sink = [0u8; 1 << 16];
        while let Ok(1..) = std::io::Read::read(&mut answers, &mut sink) {}
    });
    let line = format!("SEND bob {}\n", "x".repeat(4000)).repeat(40);
    let mut most = before;
    for _ in 0..100 {
        // The server waits when bob's queue is full: so does this write,
        // and once its timeout passes the flood is over.
        if std::io::Write::write_all(&mut flooder.stream(), line.as_bytes()).is_err() {
            break;
        }
        most = most.max(resident_kib(pid).unwrap_or(0));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    most = most.max(resident_kib(pid).unwrap_or(0));
    let grew = most.saturating_sub(before);
    println!("bob's client: {before} KiB before, {most} KiB at most");
    assert!(
        grew < 8 * 1024,
        "bob's output is not read while 16 MB of lines are sent to him: his client should stop reading the server once EVENT_LIMIT lines wait to be printed, and leave the rest to TCP and the server; it grew by {grew} KiB {}",
        book_section()
    );
}

#[test]
fn leaving_is_announced_even_when_a_client_is_killed() {
    explains(book::JOINING_AND_LEAVING);
    let mut server = start_server(&[]);
    let mut alice = join(&server, "alice", &[]);
    let mut bob = join(&server, "bob", &[]);
    alice.expect_line(
        "-- bob joined",
        &with_section("alice should hear that bob joined"),
    );
    // As Ctrl-C would: the kernel closes bob's sockets, the server reads the
    // end of bob's connection and tells the others.
    bob.kill();
    alice.expect_line(
        "-- bob left",
        &with_section(
            "bob's client was killed, without BYE: alice should still hear that bob left",
        ),
    );
    server.expect_line(
        "bob left",
        &with_section("bob's client was killed: the server should log `bob left`"),
    );
    // And the name is free again.
    let mut bob_again = join(&server, "bob", &[]);
    alice.expect_line(
        "-- bob joined",
        &with_section(
            "a new bob may register once the old one has left, and alice should hear of it",
        ),
    );
    bob_again.send("/list");
    bob_again.expect_line(
        "-- here: alice bob",
        &with_section("the new bob typed `/list`: only alice and he are here"),
    );
}

#[test]
fn end_of_input_says_bye_and_exits_cleanly() {
    explains(book::THE_CLIENT);
    let server = start_server(&[]);
    let mut alice = join(&server, "alice", &[]);
    let done = alice.finish(); // closes alice's standard input
    done.assert_success(&format!("a client whose input ends {}", book_section()));
    assert!(
        done.stdout.ends_with("-- bye\n"),
        "at the end of its input the client should say BYE and print the server's answer, `-- bye`; {done} {}",
        book_section()
    );
}

#[test]
fn text_from_the_network_is_printed_escaped() {
    explains(book::THE_CLIENT);
    // The relay refuses text that steers a terminal, but the client cannot
    // count on that: another server, or anyone who gets a line onto the
    // connection, can send it anything. A fake server sends it raw.
    let fake = FakeServer::start();
    let mut bob = Process::start(
        bin(),
        &[
            "join",
            "bob",
            "--server",
            &fake.addr().to_string(),
            "--no-listen",
        ],
    );
    let mut conn = fake.accept("`join bob` should connect to the server it is given");
    conn.read_line("`join bob --no-listen` should send `HELLO bob`");
    conn.send_line("WELCOME bob 127.0.0.1:50000");
    conn.send(b"FROM mallory \x1b[2J\x07 caf\xc3\xa9\n");
    let line = bob.expect_line(
        "[mallory]",
        &with_section("the server sent bob a line from mallory: bob should print it"),
    );
    assert_eq!(
        line,
        "[mallory] \\u{1b}[2J\\u{7} café",
        "a server sent bob `FROM mallory ESC [2J BEL café`: the client must escape control \
         characters from the network, never print them raw {}",
        book_section()
    );
}

// ---------------------------------------------------------------------------
// The introduction, and a direct message
// ---------------------------------------------------------------------------

#[test]
fn an_introduction_then_a_direct_message_that_skips_the_server() {
    explains(book::RELAY_OR_DIRECT);
    let mut server = start_server(&[]);
    let mut alice = join(&server, "alice", &[]);
    let mut bob = Process::start(
        bin(),
        &["join", "bob", "--server", &server.addr().to_string()],
    );
    let connected = bob.expect_line(
        "connected to",
        &with_section("`join bob` should say where it connected, and from which local address"),
    );
    let bob_connection = addr_after(&connected, "(local ");
    let listening = bob.expect_line(
        "listening for direct messages on",
        &with_section("`join bob` should say where it listens for direct messages"),
    );
    let bob_listens = addr_after(&listening, "listening for direct messages on ");
    bob.expect_line(
        "joined as bob",
        &with_section("`join bob` should register and say so once WELCOME comes"),
    );
    alice.expect_line(
        "-- bob joined",
        &with_section("alice should hear that bob joined"),
    );

    // The trap: the port the server sees bob at is the port of bob's own
    // connection, picked by bob's kernel. Nobody listens there. WHERE must
    // answer with the port bob announced.
    assert_ne!(
        bob_connection.port(),
        bob_listens.port(),
        "bob should listen for direct messages on a port of its own, not its connection's {}",
        book_section()
    );
    explains(book::WHERE_THE_INTRODUCTION);
    alice.send("/where bob");
    alice.expect_line(&format!("-- bob listens for direct messages at {bob_listens}"), &with_section(&format!(
            "alice typed `/where bob`: the server's AT answer should give the port bob announced in HELLO ({}), where he listens, not his connection's ephemeral port ({}); alice",
            bob_listens.port(),
            bob_connection.port()
        )));

    explains(book::RELAY_OR_DIRECT);
    // Freeze the server: it runs no code at all now. A message that still
    // arrives cannot have passed through it.
    server.freeze();
    alice.send("/direct bob psst, only for you");
    bob.expect_line("[direct from alice] psst, only for you", &with_section("alice typed `/direct bob psst, only for you` while the server was frozen: bob should get it straight from alice"));
    alice.expect_line(
        &format!("[direct to bob at {bob_listens}] psst, only for you"),
        &with_section("alice typed `/direct bob ...`: she should print what she sent, and where"),
    );
    server.thaw();

    // The server is alive again, and never saw the text.
    alice.send("/to bob back through the server");
    bob.expect_line("[alice] back through the server", &with_section("alice typed `/to bob ...` once the server ran again: bob should get it through the server"));
    alice.expect_line(
        "-- sent to bob",
        &with_section("alice typed `/to bob ...`: she should print the server's SENT"),
    );
    server.expect_line(
        &format!("alice -> bob: {} bytes", "back through the server".len()),
        &with_section("the server should log the line it relayed: who to whom, and how many bytes"),
    );
    let log = server.stdout_now();
    assert!(
        !log.contains("psst"),
        "a direct message must not pass through the server; its log:\n{log}\n{}",
        book_section()
    );

    let (alice_output, bob_output) = (alice.stdout_now(), bob.stdout_now());
    let _guard = settings_naming_ports(&server, &[("alice", &alice_output), ("bob", &bob_output)])
        .bind_to_scope();
    insta::assert_snapshot!("direct_alice", alice_output);
    insta::assert_snapshot!("direct_bob", bob_output);
}

#[test]
fn direct_asks_the_server_first_when_it_does_not_know_the_address() {
    explains(book::RELAY_OR_DIRECT);
    let mut server = start_server(&[]);
    let mut alice = join(&server, "alice", &[]);
    let mut bob = join(&server, "bob", &[]);
    alice.expect_line(
        "-- bob joined",
        &with_section("alice should hear that bob joined"),
    );
    alice.send("/direct bob hello directly");
    alice.expect_line("-- bob listens for direct messages at", &with_section("alice typed `/direct bob ...` without knowing where bob listens: she should ask the server `WHERE bob` and print its AT answer"));
    bob.expect_line("[direct from alice] hello directly", &with_section("alice typed `/direct bob hello directly`: bob should get it straight from alice, at the port he announced in HELLO"));
    server.expect_line(
        "alice asked where bob is",
        &with_section("the server should log the introduction"),
    );
}

#[test]
fn a_client_that_does_not_listen_cannot_be_reached_directly() {
    explains(book::RELAY_OR_DIRECT);
    let server = start_server(&[]);
    let mut alice = join(&server, "alice", &[]);
    let mut carol = join(&server, "carol", &["--no-listen"]);
    alice.expect_line(
        "-- carol joined",
        &with_section("alice should hear that carol joined"),
    );
    alice.send("/direct carol hi");
    alice.expect_line("-- error: not-listening carol", &with_section("carol joined with --no-listen and announced no port: `WHERE carol` should be answered `ERR not-listening carol`"));
    alice.expect_line(
        "-- not sent directly to carol: hi",
        &with_section("alice's direct message to carol cannot be sent: she should say so"),
    );
    carol.send("/list");
    carol.expect_line(
        "-- here: alice carol",
        &with_section("carol typed `/list`: she should print who is here"),
    );
    let out = carol.stdout_now();
    assert!(
        !out.contains("listening for direct messages"),
        "with --no-listen the client should not listen; its output:\n{out}\n{}",
        book_section()
    );
}

/// Where `client` (started by [`join`]) listens for direct messages, from
/// its `listening for direct messages on ADDR` line.
fn direct_port_of(client: &mut Process) -> std::net::SocketAddr {
    let out = client.stdout_now();
    let line = out
        .lines()
        .find(|line| line.starts_with("listening for direct messages on "))
        .unwrap_or_else(|| {
            panic!("`join` should say where it listens for direct messages; it printed:\n{out}")
        });
    addr_after(line, "listening for direct messages on ")
}

/// bob's direct port is at its cap: 16 silent connections hold every
/// place. The kernel still completes alice's handshake and takes her bytes,
/// so only bob's answer can tell her whether the message arrived.
#[test]
fn a_direct_message_is_printed_as_sent_only_when_the_peer_answers_ok() {
    explains(book::RELAY_OR_DIRECT);
    let server = start_server(&[]);
    let mut alice = join(&server, "alice", &[]);
    let mut bob = join(&server, "bob", &[]);
    alice.expect_line(
        "-- bob joined",
        &with_section("alice should hear that bob joined"),
    );
    let bob_listens = direct_port_of(&mut bob);
    let silent: Vec<Connection> = (0..MAX_DIRECT_PEERS)
        .map(|_| Connection::open(bob_listens))
        .collect();
    alice.send("/direct bob msg 1");
    let line = alice.expect_line("msg 1", &with_section(&format!(
            "alice typed `/direct bob msg 1` while {MAX_DIRECT_PEERS} silent connections held every place at bob's direct port: bob answers `ERR busy`, and alice should say the message was not sent"
        )));
    assert_eq!(
        line,
        "-- not sent directly to bob: bob is busy (as many direct connections as it allows), try again later: msg 1",
        "alice's direct message to bob got `ERR busy`: she must not print it as sent {}",
        book_section()
    );
    drop(silent);
    let out = bob.stdout_now();
    assert!(
        !out.contains("msg 1"),
        "bob was at his cap of direct connections: alice's message should not have reached him; he printed:\n{out}\n{}",
        book_section()
    );
}

/// A direct connection has `--direct-deadline` (DIRECT_DEADLINE unless told
/// otherwise) from the accept to finish, however the bytes trickle in: a
/// read timeout alone would start again with each. 2 s here, a byte every
/// half second: the same case as 10 s and a byte a second, with less
/// waiting.
#[test]
fn a_direct_connection_that_trickles_is_closed_at_its_deadline() {
    explains(book::RELAY_OR_DIRECT);
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let deadline = Duration::from_secs(2);
    let server = start_server(&[]);
    let mut bob = join(
        &server,
        "bob",
        &["--direct-deadline", &deadline.as_secs().to_string()],
    );
    let bob_listens = direct_port_of(&mut bob);
    let conn = Connection::open(bob_listens);
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writer = conn.stream().try_clone().unwrap();
    let stopped = Arc::clone(&stop);
    // `HI mallory`, then a byte every half second, never a whole line.
    let trickling = std::thread::spawn(move || {
        let mut bytes = b"HI mallory\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'x', 60));
        for byte in bytes {
            if stopped.load(Ordering::SeqCst)
                || std::io::Write::write_all(&mut writer, &[byte]).is_err()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    let limit = deadline + WAIT;
    conn.stream().set_read_timeout(Some(limit)).unwrap();
    let mut sink = Vec::new();
    let ended = std::io::Read::read_to_end(&mut conn.stream(), &mut sink);
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let closed = match ended {
        Ok(_) => true,
        Err(err) => err.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(
        closed && took < limit,
        "a peer sent `HI mallory` and then one byte every half second to bob's direct port: bob, started with --direct-deadline {}, should close the connection that long after accepting it; after {:.1} s it was {} {}",
        deadline.as_secs(),
        took.as_secs_f64(),
        if closed { "closed" } else { "still open" },
        book_section()
    );
    bob.expect_line(
        &format!("not finished within {} s, closed", deadline.as_secs()),
        &with_section("bob should say why he closed the direct connection"),
    );
    trickling.join().unwrap();
}

/// Only the answer to the client's own `WHERE` says where its direct
/// messages go. A server (or anyone who gets a line onto the connection)
/// that sends an `AT` unasked must not redirect them.
#[test]
fn an_at_the_client_did_not_ask_for_is_ignored() {
    explains(book::THE_CLIENT);
    let fake = FakeServer::start();
    // Where a hijacked direct message would go.
    let trap = FakeServer::start();
    let mut alice = Process::start(
        bin(),
        &[
            "join",
            "alice",
            "--server",
            &fake.addr().to_string(),
            "--no-listen",
        ],
    );
    let mut conn = fake.accept("`join alice` should connect to the server it is given");
    let hello = conn.read_line("`join alice --no-listen` should send `HELLO alice`");
    assert_eq!(hello, "HELLO alice", "{}", book_section());
    conn.send_line("WELCOME alice 127.0.0.1:50000");
    alice.expect_line(
        "joined as alice",
        &with_section("alice was welcomed: she should say so"),
    );
    let unasked = format!("AT bob {}", trap.addr());
    conn.send_line(&unasked);
    alice.expect_line(
        &trap.addr().to_string(),
        &with_section(&format!(
            "the server sent `{unasked}` although alice never asked: she should print it"
        )),
    );
    alice.send("/direct bob secret");
    let asked = conn.read_line(&format!(
        "the server sent `{unasked}` unasked, then alice typed `/direct bob secret`: she must ignore an AT she did not ask for, and ask the server `WHERE bob` {}",
        book_section()
    ));
    assert_eq!(
        asked,
        "WHERE bob",
        "alice typed `/direct bob secret` after an unasked AT: she should ask `WHERE bob` {}",
        book_section()
    );
    conn.send_line("ERR no-such-peer bob");
    alice.expect_line(
        "-- not sent directly to bob: secret",
        &with_section(
            "the answer to alice's WHERE was `ERR no-such-peer bob`: her message cannot be sent",
        ),
    );
}

// ---------------------------------------------------------------------------
// Errors: one line on standard error, exit status non-zero
// ---------------------------------------------------------------------------

#[test]
fn a_taken_name_is_one_error_line() {
    explains(book::THE_CLIENT);
    let server = start_server(&[]);
    let _alice = join(&server, "alice", &[]);
    let addr = server.addr().to_string();
    let second = run(bin(), &["join", "alice", "--server", &addr], "");
    second.assert_failure(&format!(
        "a second client called alice should be told the name is taken, in one line {}",
        book_section()
    ));
    let _guard = settings_naming_ports(&server, &[]).bind_to_scope();
    insta::assert_snapshot!("name_taken", second.stderr);
}

#[test]
fn a_server_that_is_not_running_is_one_error_line_with_the_fix() {
    explains(book::THE_CLIENT);
    let addr = closed_port().to_string();
    let done = run(bin(), &["join", "alice", "--server", &addr], "");
    done.assert_failure(&format!(
        "a client when no server is running should say so in one line, with the command that starts one {}",
        book_section()
    ));
    let _guard = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("not_running", done.stderr);
}

#[test]
fn a_bad_name_is_refused_before_connecting() {
    explains(book::THE_CLIENT);
    let addr = closed_port().to_string();
    let done = run(bin(), &["join", "al ice", "--server", &addr], "");
    done.assert_failure(&format!(
        "`join \"al ice\"`: a bad name should be refused before connecting {}",
        book_section()
    ));
    assert_eq!(
        done.stderr,
        "error: bad name \"al ice\": a name is 1 to 32 letters, digits, `_` or `-`\n",
        "`join \"al ice\"`: a bad name should be refused before connecting, in one line; {done} {}",
        book_section()
    );
}

#[test]
fn the_server_going_away_ends_the_client_with_an_error() {
    explains(book::THE_CLIENT);
    let mut server = start_server(&[]);
    let mut alice = join(&server, "alice", &[]);
    server.kill();
    // Its standard input stays open: the end of input would be a /quit.
    let done = alice.wait_exit();
    done.assert_failure(&format!(
        "the server was killed while alice was joined: her client should end with an error {}",
        book_section()
    ));
    assert_eq!(
        done.stderr.lines().count(),
        1,
        "the server was killed: the client should say what happened in one line; {done} {}",
        book_section()
    );
    assert!(
        done.stderr.starts_with("error: the server at 127.0.0.1:")
            && done.stderr.ends_with(" closed the connection\n"),
        "the server was killed: the client should say `error: the server at ADDRESS closed the connection`; {done} {}",
        book_section()
    );
}

#[test]
fn a_port_in_use_is_one_line_on_stderr() {
    explains(book::THE_SERVER);
    let first = start_server(&[]);
    testkit::assert_port_in_use_is_one_line(bin(), &["serve"], first.addr());
}
