//! Checks for lesson 1, the client. Write the client yourself, then run
//! `cargo test -p client`: each test names what the client should do.
//!
//! Most tests stand in for the server with a `FakeServer`: a listening
//! socket inside the test, which checks the exact bytes the client sends and
//! answers by hand.

use std::path::Path;

use testkit::{FakeServer, Process, closed_port, run, snapshot_settings};

fn client_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_01-client"))
}

/// Starts the client with `args` against `server`, in the background.
fn start_client(server: &FakeServer, args: &[&str]) -> Process {
    let addr = server.addr().to_string();
    let mut all = vec!["--server", addr.as_str()];
    all.extend(args);
    Process::start(client_bin(), &all)
}

#[test]
fn sends_the_message_and_a_newline_then_half_closes_then_prints_the_reply() {
    let server = FakeServer::start();
    let mut client = start_client(&server, &["hello", "world"]);
    let mut conn = server.accept("the client should connect to the server it was given");

    // read_to_end only returns when the client half-closes: if it did not
    // shut down its writing side, this read would wait and fail.
    let sent = conn.read_to_end(
        "the client should send its message and then half-close (shutdown Write), \
         so the server reads end-of-input",
    );
    assert_eq!(
        sent, b"hello world\n",
        "the client should send the words joined by spaces, then one newline"
    );
    conn.send(b"OK\n");
    drop(conn);

    let done = client.finish();
    done.assert_success("the client, after the server replied and closed");
    let _guard = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("hello_world", done.stdout);
}

#[test]
fn prints_every_reply_line_until_the_server_closes() {
    let server = FakeServer::start();
    let mut client = start_client(&server, &["hi"]);
    let mut conn = server.accept("the client should connect");
    conn.expect_bytes(b"hi\n", "the client should send `hi` and a newline");
    // A reply in pieces, with a last line that has no newline.
    conn.send(b"first\nsec");
    conn.send(b"ond\nno newline at the end");
    drop(conn);
    let done = client.finish();
    done.assert_success("the client, after several reply lines");
    assert!(
        done.stdout.ends_with(
            "reply: first\nreply: second\nreply: no newline at the end\nserver closed the connection\n"
        ),
        "the client should print each reply line as it is complete, however the bytes arrive; {done}"
    );
}

#[test]
fn reply_bytes_are_printed_escaped_never_raw() {
    let server = FakeServer::start();
    let mut client = start_client(&server, &["hi"]);
    let mut conn = server.accept("the client should connect");
    conn.expect_bytes(b"hi\n", "the client should send `hi` and a newline");
    conn.send(b"\x1b[2Jcleared? caf\xe9 \xe4\xbd\xa0\xe5\xa5\xbd\n");
    drop(conn);
    let done = client.finish();
    done.assert_success("the client, after an odd reply");
    assert!(
        done.stdout
            .contains("reply: \\u{1b}[2Jcleared? caf\\xe9 你好\n"),
        "control characters and invalid UTF-8 from the server must be escaped; {done}"
    );
}

#[test]
fn lines_from_standard_input_are_sent_as_typed_and_replies_shown_as_they_come() {
    let server = FakeServer::start();
    let mut client = start_client(&server, &[]);
    let mut conn = server.accept("the client should connect");

    client.send("one");
    conn.expect_bytes(
        b"one\n",
        "a typed line should be sent at once, with its newline",
    );
    conn.send(b"ok\n");
    client.wait_for("reply: ok");

    client.send("two");
    conn.expect_bytes(b"two\n", "the second typed line should be sent at once");
    conn.send(b"ok\n");
    client.wait_for("reply: ok");

    client.close_stdin();
    let rest = conn.read_to_end("at the end of standard input the client should half-close");
    assert_eq!(
        rest, b"",
        "nothing more should be sent after the typed lines"
    );
    drop(conn);
    let done = client.finish();
    done.assert_success("the client, after standard input ended and the server closed");
    let _guard = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("typed_lines", done.stdout);
}

#[test]
fn typed_bytes_that_are_not_utf8_are_sent_as_they_are() {
    let server = FakeServer::start();
    let mut client = start_client(&server, &[]);
    let mut conn = server.accept("the client should connect");
    client.send_bytes(b"caf\xe9 \x1b[1m\n");
    conn.expect_bytes(
        b"caf\xe9 \x1b[1m\n",
        "a typed line should be sent byte for byte, even when it is not UTF-8",
    );
    client.wait_for("sent 9 bytes: caf\\xe9 \\u{1b}[1m");
    client.close_stdin();
    drop(conn);
    client
        .finish()
        .assert_success("the client after sending bytes that are not UTF-8");
}

#[test]
fn an_empty_standard_input_is_an_empty_conversation() {
    let server = FakeServer::start();
    let mut client = start_client(&server, &[]);
    let mut conn = server.accept("the client should connect");
    client.close_stdin();
    assert_eq!(
        conn.read_to_end("at the end of standard input the client should half-close"),
        b"",
        "with nothing typed, nothing should be sent"
    );
    drop(conn);
    client.finish().assert_success("an empty standard input");
}

#[test]
fn an_empty_message_is_an_empty_line() {
    let server = FakeServer::start();
    let mut client = start_client(&server, &[""]);
    let mut conn = server.accept("the client should connect");
    assert_eq!(
        conn.read_to_end("the client should send its (empty) line and half-close"),
        b"\n",
        "an empty MESSAGE is sent as an empty line: just the newline"
    );
    drop(conn);
    let done = client.finish();
    done.assert_success("an empty message");
    assert!(done.stdout.contains("sent 0 bytes: \n"), "{done}");
}

#[test]
fn a_refused_connection_names_the_address_and_the_fix() {
    let addr = closed_port().to_string();
    let done = run(client_bin(), &["--server", &addr, "hello"], "");
    done.assert_failure("connecting where nobody listens");
    assert_eq!(
        done.stdout, "",
        "nothing should be printed on stdout; {done}"
    );
    let _guard = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("refused", done.stderr);
}

#[test]
fn a_server_that_never_answers_ends_after_the_timeout() {
    let server = FakeServer::start();
    let mut client = start_client(&server, &["--timeout", "1", "anyone there?"]);
    let _conn = server.accept("the client should connect");
    // We keep the connection open and say nothing.
    let done = client.finish();
    done.assert_failure("a server that never answers");
    let _guard = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("no_reply", done.stderr);
}

#[test]
fn a_bad_address_is_one_error_line() {
    let done = run(client_bin(), &["--server", "127.0.0.1:port", "hello"], "");
    done.assert_failure("a server address that is not HOST:PORT");
    let _guard = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("bad_address", done.stderr);
}

#[test]
fn connects_over_ipv6() {
    let server = FakeServer::on("[::1]:0");
    let mut client = start_client(&server, &["over", "six"]);
    let mut conn = server.accept("the client should connect to an [IPv6]:PORT address");
    conn.expect_bytes(b"over six\n", "the client should send its message");
    drop(conn);
    let done = client.finish();
    done.assert_success("the client over IPv6");
    assert!(done.stdout.starts_with("connected to [::1]:"), "{done}");
}

#[test]
fn a_name_is_resolved_and_each_address_tried() {
    // `localhost` names 127.0.0.1, and on many machines ::1 as well; the
    // server listens on 127.0.0.1 only, so a client that gave up after a
    // first refused ::1 would fail here.
    let server = FakeServer::start();
    let addr = format!("localhost:{}", server.addr().port());
    let mut client = Process::start(client_bin(), &["--server", &addr, "by", "name"]);
    let mut conn = server.accept("the client should resolve `localhost` and connect");
    conn.expect_bytes(b"by name\n", "the client should send its message");
    drop(conn);
    client
        .finish()
        .assert_success("the client connecting to localhost by name");
}
