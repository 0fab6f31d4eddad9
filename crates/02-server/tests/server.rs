//! Checks for lesson 2, the one-shot server. Write the server yourself, then
//! run `cargo test -p server`: each test names what the server should do.
//!
//! Every test starts the real `02-server` with `--listen 127.0.0.1:0`, learns
//! its port from its first line, and talks to it over a loopback socket.

use std::net::TcpListener;
use std::path::Path;

use testkit::{Connection, Process, run, snapshot_settings, tool};

fn server_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_02-server"))
}

fn start_server(args: &[&str]) -> Process {
    let mut server = Process::server(server_bin(), args);
    server.wait_for("waiting for a client");
    server
}

#[test]
fn replies_ok_to_a_line_then_closes_and_exits() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    client.send(b"hello\n");
    client.half_close();
    client.expect_bytes(b"OK\n", "the server should reply `OK` and a newline");
    client.expect_orderly_close("after `OK` the server should close the connection");

    let done = server.finish();
    done.assert_success("a one-shot server that served its client");
    let _guard = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("one_client", done.stdout);
}

#[test]
fn a_message_without_newline_ends_when_the_client_half_closes() {
    // What the original lesson's Python client does: send bytes, no newline.
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    client.send(b"no newline here");
    client.half_close();
    client.expect_bytes(
        b"OK\n",
        "without a newline, the end of input (a read returning 0) ends the message",
    );
    server.wait_for("received: no newline here");
    server
        .finish()
        .assert_success("after a message ended by half-close");
}

#[test]
fn the_reply_comes_before_the_client_closes_its_side() {
    // A client that keeps its side open (like `nc` without -N) must still
    // get its reply: the newline ends the message, not the end of input.
    let server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    client.send(b"hello\n");
    client.expect_bytes(
        b"OK\n",
        "the newline ends the message: reply without waiting for the client to close",
    );
}

#[test]
fn a_client_that_closes_without_reading_does_not_break_the_server() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    client.send(b"fire and forget");
    drop(client);
    server.wait_for("received: fire and forget");
    server
        .finish()
        .assert_success("after a client that closed without reading the reply");
}

#[test]
fn only_the_first_1024_bytes_are_read() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    let long = vec![b'a'; 3000];
    client.send(&long);
    client.half_close();
    client.expect_bytes(
        b"OK\n",
        "a message over 1024 bytes is cut, and still answered",
    );
    let received = server.wait_for("received: ");
    assert_eq!(
        received,
        format!("received: {}", "a".repeat(1024)),
        "the server should keep exactly the first 1024 bytes, like recv(1024)"
    );
    server.wait_for("the rest was not read");
    client.expect_orderly_close("after `OK` the server should close the connection");
    server
        .finish()
        .assert_success("after a message over the limit");
}

#[test]
fn a_message_split_over_several_writes_is_one_message() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    // No Nagle delay: each write leaves as its own segment, as soon as it can.
    client.stream().set_nodelay(true).unwrap();
    client.send(b"hel");
    // While the line is incomplete the server must not answer; waiting for
    // that also makes sure the first piece arrives on its own.
    client.expect_nothing("one read is not one message: `hel` has no newline yet, so no reply");
    client.send(b"lo wo");
    client.send(b"rld\n");
    client.expect_bytes(b"OK\n", "once the newline arrives, the server should reply");
    assert_eq!(
        server.wait_for("received"),
        "received: hello world",
        "one read is not one message: the server should keep reading until the newline"
    );
}

#[test]
fn invalid_utf8_and_control_characters_are_printed_escaped() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    client.send(b"caf\xe9 \x1b[31mred\x07 \xe4\xbd\xa0\xe5\xa5\xbd\n");
    client.expect_bytes(b"OK\n", "any bytes are a message, even invalid UTF-8");
    let line = server.wait_for("received");
    assert_eq!(
        line, "received: caf\\xe9 \\u{1b}[31mred\\u{7} 你好",
        "bytes from the network must never reach the terminal raw"
    );
}

#[test]
fn a_client_that_sends_nothing_gives_one_line_and_a_clean_exit() {
    let mut server = start_server(&[]);
    drop(Connection::open(server.addr()));
    server.wait_for("client connected");
    let done = server.finish();
    done.assert_success("a client that connected and closed is not the server's failure");
    let _guard = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("client_sent_nothing", done.stdout);
}

#[test]
fn a_reset_connection_gives_one_line_and_a_clean_exit() {
    let mut server = start_server(&[]);
    let client = Connection::open(server.addr());
    client.reset();
    let done = server.finish();
    done.assert_success("a client that reset the connection is not the server's failure");
    assert!(
        done.stdout.contains("connection error: reset by peer")
            || done
                .stdout
                .contains("client closed the connection without sending anything"),
        "the server should report the reset in one line; {done}"
    );
}

#[test]
fn a_silent_client_is_given_up_after_the_timeout() {
    let mut server = start_server(&["--timeout", "1"]);
    let mut client = Connection::open(server.addr());
    server.wait_for("no message from");
    client.expect_orderly_close("after giving up, the server should close the connection");
    server
        .finish()
        .assert_success("giving up on a silent client");
}

#[test]
fn a_port_in_use_is_one_error_line() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let done = run(server_bin(), &["--listen", &addr], "");
    done.assert_failure("listening on a port that is already taken");
    assert_eq!(
        done.stdout, "",
        "nothing should be printed on stdout: {done}"
    );
    let _guard = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("port_in_use", done.stderr);
}

#[test]
fn a_bad_address_is_one_error_line() {
    let done = run(server_bin(), &["--listen", "127.0.0.1:port"], "");
    done.assert_failure("a listen address that is not HOST:PORT");
    let _guard = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("bad_address", done.stderr);
}

#[test]
fn works_with_nc_with_and_without_half_close() {
    let Some(nc) = tool("nc") else { return };
    for flags in [&["-N"][..], &[]] {
        let server = start_server(&[]);
        let port = server.addr().port().to_string();
        let mut args = flags.to_vec();
        args.extend(["127.0.0.1", &port]);
        let done = run(&nc, &args, "hello from nc\n");
        done.assert_success(&format!("nc {}", args.join(" ")));
        assert_eq!(
            done.stdout,
            "OK\n",
            "`nc {}` should print the server's reply; {done}",
            args.join(" ")
        );
    }
}
