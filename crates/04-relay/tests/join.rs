//! Lesson 4 as people use it: real `04-relay join` clients, typed to
//! through their standard input, talking through a real `04-relay serve`.
//!
//! Each step waits for the line that shows it happened before the next
//! one, so every transcript has one order and can be a snapshot.

mod support;

use support::{bin, join, register, settings, start_server};
use testkit::{Process, closed_port, run};

/// The address in `line` after `prefix` (e.g. `listening for direct messages on `).
fn addr_after(line: &str, prefix: &str) -> std::net::SocketAddr {
    line.split_once(prefix)
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|addr| addr.trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("expected an address after {prefix:?} in {line:?}"))
}

#[test]
fn two_clients_talk_through_the_server() {
    let mut server = start_server(&[]);
    let mut alice = join(&server, "alice", &[]);
    let mut bob = join(&server, "bob", &[]);
    alice.wait_for("-- bob joined");

    alice.send("/to bob hi bob");
    bob.wait_for("[alice] hi bob");
    alice.wait_for("-- sent to bob");

    bob.send("/list");
    bob.wait_for("-- here: alice bob");

    bob.send("hello, whoever is here");
    alice.wait_for("[bob] hello, whoever is here");
    bob.wait_for("-- sent to everyone");

    alice.send("/all and hello to you");
    bob.wait_for("[alice] and hello to you");
    alice.wait_for("-- sent to everyone");

    alice.send("/quit");
    alice.wait_for("-- bye");
    let alice_done = alice.finish();
    alice_done.assert_success("alice after /quit");
    bob.wait_for("-- alice left");
    server.wait_for("alice left");

    let _guard = settings().bind_to_scope();
    insta::assert_snapshot!("two_clients_alice", alice_done.stdout);
    insta::assert_snapshot!("two_clients_bob", bob.stdout_now());
    insta::assert_snapshot!("two_clients_server", server.stdout_now());
}

#[test]
fn a_broadcast_reaches_everyone_but_its_sender() {
    let server = start_server(&[]);
    let mut alice = join(&server, "alice", &[]);
    let mut bob = join(&server, "bob", &[]);
    let mut carol = join(&server, "carol", &[]);
    alice.wait_for("-- carol joined");
    bob.wait_for("-- carol joined");

    carol.send("anyone there?");
    alice.wait_for("[carol] anyone there?");
    bob.wait_for("[carol] anyone there?");
    carol.wait_for("-- sent to everyone");
    carol.expect_no_line("the sender of a broadcast should not get its own line back");
}

#[test]
fn leaving_is_announced_even_when_a_client_is_killed() {
    let mut server = start_server(&[]);
    let mut alice = join(&server, "alice", &[]);
    let mut bob = join(&server, "bob", &[]);
    alice.wait_for("-- bob joined");
    // As Ctrl-C would: the kernel closes bob's sockets, the server reads the
    // end of bob's connection and tells the others.
    bob.kill();
    alice.wait_for("-- bob left");
    server.wait_for("bob left");
    // And the name is free again.
    let mut bob_again = join(&server, "bob", &[]);
    alice.wait_for("-- bob joined");
    bob_again.send("/list");
    bob_again.wait_for("-- here: alice bob");
}

#[test]
fn end_of_input_says_bye_and_exits_cleanly() {
    let server = start_server(&[]);
    let mut alice = join(&server, "alice", &[]);
    let done = alice.finish(); // closes alice's standard input
    done.assert_success("a client whose input ends");
    assert!(
        done.stdout.ends_with("-- bye\n"),
        "at the end of its input the client should say BYE and print the server's answer; {done}"
    );
}

#[test]
fn text_from_the_network_is_printed_escaped() {
    let server = start_server(&[]);
    let mut bob = join(&server, "bob", &[]);
    let mut raw = register(server.addr(), "mallory");
    raw.send(b"SEND bob \x1b[2J\x07 caf\xc3\xa9\n");
    let line = bob.wait_for("[mallory]");
    assert_eq!(
        line, "[mallory] \\u{1b}[2J\\u{7} café",
        "the client must escape control characters from the network, never print them raw"
    );
}

// ---------------------------------------------------------------------------
// The introduction, and a direct message
// ---------------------------------------------------------------------------

#[test]
fn an_introduction_then_a_direct_message_that_skips_the_server() {
    let mut server = start_server(&[]);
    let mut alice = join(&server, "alice", &[]);
    let mut bob = Process::start(
        bin(),
        &["join", "bob", "--server", &server.addr().to_string()],
    );
    let connected = bob.wait_for("connected to");
    let bob_connection = addr_after(&connected, "(local ");
    let listening = bob.wait_for("listening for direct messages on");
    let bob_listens = addr_after(&listening, "listening for direct messages on ");
    bob.wait_for("joined as bob");
    alice.wait_for("-- bob joined");

    // The trap: the port the server sees bob at is the port of bob's own
    // connection, picked by bob's kernel. Nobody listens there. WHERE must
    // answer with the port bob announced.
    assert_ne!(bob_connection.port(), bob_listens.port());
    alice.send("/where bob");
    alice.wait_for(&format!(
        "-- bob listens for direct messages at {bob_listens}"
    ));

    // Freeze the server: it runs no code at all now. A message that still
    // arrives cannot have passed through it.
    server.freeze();
    alice.send("/direct bob psst, only for you");
    bob.wait_for("[direct from alice] psst, only for you");
    alice.wait_for(&format!(
        "[direct to bob at {bob_listens}] psst, only for you"
    ));
    server.thaw();

    // The server is alive again, and never saw the text.
    alice.send("/to bob back through the server");
    bob.wait_for("[alice] back through the server");
    alice.wait_for("-- sent to bob");
    server.wait_for("alice -> bob: back through the server");
    let log = server.stdout_now();
    assert!(
        !log.contains("psst"),
        "a direct message must not pass through the server; its log:\n{log}"
    );

    let _guard = settings().bind_to_scope();
    insta::assert_snapshot!("direct_alice", alice.stdout_now());
    insta::assert_snapshot!("direct_bob", bob.stdout_now());
}

#[test]
fn direct_asks_the_server_first_when_it_does_not_know_the_address() {
    let mut server = start_server(&[]);
    let mut alice = join(&server, "alice", &[]);
    let mut bob = join(&server, "bob", &[]);
    alice.wait_for("-- bob joined");
    alice.send("/direct bob hello directly");
    alice.wait_for("-- bob listens for direct messages at");
    bob.wait_for("[direct from alice] hello directly");
    server.wait_for("alice asked where bob is");
}

#[test]
fn a_client_that_does_not_listen_cannot_be_reached_directly() {
    let server = start_server(&[]);
    let mut alice = join(&server, "alice", &[]);
    let mut carol = join(&server, "carol", &["--no-listen"]);
    alice.wait_for("-- carol joined");
    alice.send("/direct carol hi");
    alice.wait_for("-- error: not-listening carol");
    alice.wait_for("-- not sent directly to carol: hi");
    carol.send("/list");
    carol.wait_for("-- here: alice carol");
    let out = carol.stdout_now();
    assert!(
        !out.contains("listening for direct messages"),
        "with --no-listen the client should not listen; its output:\n{out}"
    );
}

// ---------------------------------------------------------------------------
// Errors: one line on standard error, exit status non-zero
// ---------------------------------------------------------------------------

#[test]
fn a_taken_name_is_one_error_line() {
    let server = start_server(&[]);
    let _alice = join(&server, "alice", &[]);
    let addr = server.addr().to_string();
    let second = run(bin(), &["join", "alice", "--server", &addr], "");
    second.assert_failure("a second client called alice");
    let _guard = settings().bind_to_scope();
    insta::assert_snapshot!("name_taken", second.stderr);
}

#[test]
fn a_server_that_is_not_running_is_one_error_line_with_the_fix() {
    let addr = closed_port().to_string();
    let done = run(bin(), &["join", "alice", "--server", &addr], "");
    done.assert_failure("a client when no server is running");
    let _guard = settings().bind_to_scope();
    insta::assert_snapshot!("not_running", done.stderr);
}

#[test]
fn a_bad_name_is_refused_before_connecting() {
    let addr = closed_port().to_string();
    let done = run(bin(), &["join", "al ice", "--server", &addr], "");
    done.assert_failure("a client with a bad name");
    assert_eq!(
        done.stderr, "error: bad name \"al ice\": a name is 1 to 32 letters, digits, `_` or `-`\n",
        "a bad name should be refused before connecting; {done}"
    );
}

#[test]
fn the_server_going_away_ends_the_client_with_an_error() {
    let mut server = start_server(&[]);
    let mut alice = join(&server, "alice", &[]);
    server.kill();
    // Its standard input stays open: the end of input would be a /quit.
    let done = alice.wait_exit();
    done.assert_failure("a client whose server went away");
    assert_eq!(
        done.stderr.lines().count(),
        1,
        "the client should say what happened in one line; {done}"
    );
    assert!(
        done.stderr.starts_with("error: the server at 127.0.0.1:")
            && done.stderr.ends_with(" closed the connection\n"),
        "the client should name the server that went away; {done}"
    );
}

#[test]
fn a_port_in_use_is_one_line_on_stderr() {
    let first = start_server(&[]);
    testkit::assert_port_in_use_is_one_line(bin(), &["serve"], first.addr());
}
