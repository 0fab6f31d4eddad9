//! Checks for lesson 2, the one-shot server. Write the server yourself, then
//! run `cargo test -p server`: each test names what the server should do.
//!
//! Every test starts the real `02-server` with `--listen 127.0.0.1:0`, learns
//! its port from its first line, and talks to it over a loopback socket.

mod support;

mod book;

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;
use testkit::{Connection, Process, run, snapshot_settings, snapshot_settings_with_ports, tool};

fn server_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_02-server"))
}

fn start_server(args: &[&str]) -> Process {
    let mut server = Process::server(server_bin(), args);
    server.expect_line(
        "waiting for a client",
        &format!(
            "after `listening on ADDR` the server should print `waiting for a client...` before it \
         waits in accept {}",
            book::STEP_4_ACCEPT
        ),
    );
    server
}

#[test]
fn replies_ok_to_a_line_then_closes_and_exits() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    let client_port = client.local_addr().port();
    client.send(b"hello\n");
    client.half_close();
    client.expect_bytes(
        b"OK\n",
        &format!(
            "a client sent `hello\\n` and half-closed: the server should reply `OK` and a newline \
         {}",
            book::STEP_6_REPLY
        ),
    );
    client.expect_orderly_close(&format!(
        "after `OK` the server should close the connection with a clean end of stream \
         {}",
        book::STEP_7_CLOSE_WITHOUT_LOSING_THE_REPLY
    ));

    let done = server.finish();
    done.assert_success(&format!(
        "a one-shot server that served its client should exit with status 0 \
         {}",
        book::THE_SEVEN_STEPS
    ));
    // The log names the client by the address its connection came from:
    // the client's own port, never the one the server listens on.
    let client_addr = format!("127.0.0.1:{client_port}");
    assert!(
        done.stdout
            .lines()
            .any(|line| line == format!("client connected: {client_addr}")),
        "a client connected from {client_addr} to the server on {}: the line `client connected: \
         ADDR` should name the client's address, the one accept() returns with the new socket, \
         not the server's own {}; {done}",
        server.addr(),
        book::STEP_4_ACCEPT
    );
    let _guard = snapshot_settings_with_ports(&[
        (server.addr().port(), "listen port"),
        (client_port, "client's port"),
    ])
    .bind_to_scope();
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
        &format!(
            "a client sent `no newline here` and half-closed: without a newline, the end of input \
         (a read returning 0) ends the message, and it gets `OK` \
         {}",
            book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE
        ),
    );
    server.expect_line(
        "received: no newline here",
        &format!(
            "the message ended by the half-close should be printed whole \
         {}",
            book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE
        ),
    );
    server.finish().assert_success(&format!(
        "after a message ended by half-close, the server should exit with status 0 \
         {}",
        book::THE_SEVEN_STEPS
    ));
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
        &format!(
            "a client sent `hello\\n` and kept its side open (like `nc` without -N): the newline \
         ends the message, so the server should reply without waiting for the client to close \
         {}",
            book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE
        ),
    );
}

#[test]
fn a_client_that_closes_without_reading_does_not_break_the_server() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    client.send(b"fire and forget");
    drop(client);
    server.expect_line(
        "received: fire and forget",
        &format!(
            "a client sent `fire and forget` (no newline) and closed at once: the message is \
         still received {}",
            book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE
        ),
    );
    server.finish().assert_success(&format!(
        "a client that closed without reading the reply is not the server's failure: \
         it should exit with status 0 {}",
        book::STEP_6_REPLY
    ));
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
        &format!(
            "a client sent 3000 bytes of `a`, no newline, and half-closed: a message over 1024 \
         bytes is cut, and still answered {}",
            book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE
        ),
    );
    let received = server.expect_line(
        "received: ",
        &format!(
            "a client sent 3000 bytes: the server should print the first 1024 it received \
         {}",
            book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE
        ),
    );
    assert_eq!(
        received,
        format!("received: {}", "a".repeat(1024)),
        "a client sent 3000 bytes of `a`: the server should keep exactly the first 1024 bytes, \
         like recv(1024) {}",
        book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE
    );
    server.expect_line(
        "(the message filled all 1024 bytes; the rest was not read)",
        &format!(
            "a client sent 3000 bytes: after cutting the message at 1024 bytes the server should \
         say so {}",
            book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE
        ),
    );
    client.expect_orderly_close(&format!(
        "the server read 1024 of the 3000 bytes the client sent: after `OK` it should still \
         close with a clean end of stream, not a reset \
         {}",
        book::STEP_7_CLOSE_WITHOUT_LOSING_THE_REPLY
    ));
    server.finish().assert_success(&format!(
        "after a message over the limit, the server should exit with status 0 \
         {}",
        book::THE_SEVEN_STEPS
    ));
}

#[test]
fn a_client_that_sent_more_than_was_read_gets_ok_then_a_clean_end_of_stream() {
    // A line, then a second one of 2000 bytes in the same write. The server
    // reads at most 1024 bytes, so about 1000 are still unread in its
    // receive buffer when it is done: closing the socket then sends a reset
    // instead of FIN.
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    let mut sent = b"hello\n".to_vec();
    sent.extend([b'x'; 2000]);
    sent.push(b'\n');
    client.send(&sent);
    client.expect_bytes(
        b"OK\n",
        &format!(
            "a client sent `hello\\n` and a second line of 2000 bytes in one write: the first line \
         is the message and gets `OK` {}",
            book::STEP_6_REPLY
        ),
    );
    client.expect_orderly_close(&format!(
        "a client sent `hello\\n` and a second line of 2000 bytes, and the server read at most \
         1024 of them: after `OK` the client must read a clean end of stream (FIN), which takes \
         a half-close and reading what is left, not just dropping the socket \
         {}",
        book::STEP_7_CLOSE_WITHOUT_LOSING_THE_REPLY
    ));
    drop(client);
    server.expect_line(
        "closed the connection",
        &format!(
            "after the client closed too, the server should print `closed the connection` \
         {}",
            book::STEP_7_CLOSE_WITHOUT_LOSING_THE_REPLY
        ),
    );
    server.finish().assert_success(&format!(
        "after a client that sent more than one line, the server should exit with status 0 \
         {}",
        book::THE_SEVEN_STEPS
    ));
}

#[test]
fn a_message_split_over_several_writes_is_one_message() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    // No Nagle delay: each write leaves as its own segment, as soon as it can.
    client.stream().set_nodelay(true).unwrap();
    client.send(b"hel");
    // The server reads `hel` on its own before the rest is sent: a server
    // that takes one read as the message has then taken `hel`.
    #[cfg(target_os = "linux")]
    support::wait_until_server_read_everything(
        &server,
        client.local_addr().port(),
        &format!(
            "a client sent `hel`, the first piece of a line {}",
            book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE
        ),
    );
    // While the line is incomplete the server must not answer.
    client.expect_nothing(&format!(
        "one read is not one message: a client sent `hel`, which has no newline yet, so no \
         reply {}",
        book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE
    ));
    client.send(b"lo wo");
    client.send(b"rld\n");
    // A server that lost a piece waits for more: seen at once, on Linux.
    #[cfg(target_os = "linux")]
    support::fail_now_if_no_reply_is_coming(
        &server,
        client.local_addr().port(),
        &format!(
            "a client sent `hel`, `lo wo` and `rld\\n` in three writes: once the newline arrives, \
         the server should reply; keep every byte of every read, appended after what came \
         before {}",
            book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE
        ),
    );
    client.expect_bytes(
        b"OK\n",
        &format!(
            "a client sent `hel`, `lo wo` and `rld\\n` in three writes: once the newline arrives, \
         the server should reply {}",
            book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE
        ),
    );
    assert_eq!(
        server.expect_line(
            "received",
            "the server should print the message it received"
        ),
        "received: hello world",
        "a client sent `hel`, `lo wo` and `rld\\n` in three writes: one read is not one \
         message, the server should keep reading until the newline \
         {}",
        book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE
    );
}

#[test]
fn invalid_utf8_and_control_characters_are_printed_escaped() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    client.send(b"caf\xe9 \x1b[31mred\x07 \xe4\xbd\xa0\xe5\xa5\xbd\n");
    client.expect_bytes(
        b"OK\n",
        &format!(
            "a client sent invalid UTF-8 and control characters, then a newline: any bytes are a \
         message {}",
            book::A_CLIENT_THAT_MISBEHAVES
        ),
    );
    let line = server.expect_line(
        "received",
        &format!(
            "a client sent invalid UTF-8 and control characters: the server should print the \
         message it received {}",
            book::A_CLIENT_THAT_MISBEHAVES
        ),
    );
    assert_eq!(
        line,
        "received: caf\\xe9 \\u{1b}[31mred\\u{7} 你好",
        "a client sent invalid UTF-8 and control characters: bytes from the network must never \
         reach the terminal raw, print them with common::printable \
         {}",
        book::A_CLIENT_THAT_MISBEHAVES
    );
}

#[test]
fn a_client_that_sends_nothing_gives_one_line_and_a_clean_exit() {
    let mut server = start_server(&[]);
    let client = Connection::open(server.addr());
    let client_port = client.local_addr().port();
    drop(client);
    server.expect_line(
        "client connected",
        &format!(
            "a client connected: the server should accept it and print `client connected: ADDR` \
         {}",
            book::STEP_4_ACCEPT
        ),
    );
    let done = server.finish();
    done.assert_success(&format!(
        "a client connected and closed without sending a byte: that is not the server's \
         failure, it should exit with status 0 {}",
        book::A_CLIENT_THAT_MISBEHAVES
    ));
    let _guard = snapshot_settings_with_ports(&[
        (server.addr().port(), "listen port"),
        (client_port, "client's port"),
    ])
    .bind_to_scope();
    insta::assert_snapshot!("client_sent_nothing", done.stdout);
}

#[test]
fn a_reset_connection_is_reported_as_reset_by_peer() {
    let mut server = start_server(&[]);
    let client = Connection::open(server.addr());
    client.reset();
    let done = server.finish();
    done.assert_success(&format!(
        "a client that reset the connection is not the server's failure: it should exit with \
         status 0 {}",
        book::A_CLIENT_THAT_MISBEHAVES
    ));
    assert!(
        done.stdout.ends_with("\nconnection error: reset by peer\n"),
        "a client connected and reset the connection (RST, SO_LINGER 0) without sending a byte: \
         the read fails with ECONNRESET, and the server's last line should be \
         `connection error: reset by peer` (a reset is not a clean close: do not report it as \
         `client closed the connection without sending anything`) \
         {}; {done}",
        book::A_CLIENT_THAT_MISBEHAVES
    );
}

#[test]
fn a_silent_client_is_given_up_after_the_timeout() {
    let mut server = start_server(&["--timeout", "1"]);
    let mut client = Connection::open(server.addr());
    let connected = server.expect_line(
        "client connected: ",
        &format!(
            "a client connected: the server should accept it {}",
            book::STEP_4_ACCEPT
        ),
    );
    let addr = connected.trim_start_matches("client connected: ");
    let what = &format!(
        "a client connected and sent nothing, not a byte, keeping the connection open: \
                the server must give up after --timeout (1 s here) and close the connection, \
                not wait for ever {}",
        book::A_CLIENT_THAT_MISBEHAVES
    );
    let line = server.expect_line("no message from", what);
    assert_eq!(
        line,
        format!("no message from {addr} within 1 s, giving up"),
        "{what}"
    );
    client.expect_orderly_close(what);
    server.finish().assert_success(what);
}

#[test]
fn a_client_that_sends_a_byte_at_a_time_is_given_up_at_the_deadline() {
    let mut server = start_server(&["--timeout", "1"]);
    let client = Connection::open(server.addr());
    let connected = server.expect_line(
        "client connected: ",
        &format!(
            "a client connected: the server should accept it {}",
            book::STEP_4_ACCEPT
        ),
    );
    let addr = connected
        .trim_start_matches("client connected: ")
        .to_string();
    // One byte every 300 ms, never a newline, for longer than the test waits
    // for the server's line: a read timeout of 1 s would never expire.
    let stream = client.stream().try_clone().unwrap();
    let dribbler = std::thread::spawn(move || {
        let mut stream = stream;
        for _ in 0..30 {
            if std::io::Write::write_all(&mut stream, b"a").is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    });
    let what = &format!(
        "with --timeout 1, a client sent one byte every 300 ms and never a newline: \
                `--timeout` is a deadline for the whole message, counted from the accept, \
                so the server must give up after 1 s however the bytes trickle in; a read \
                timeout alone starts again at every read and never expires here \
                {}",
        book::A_CLIENT_THAT_MISBEHAVES
    );
    let line = server.expect_line("no message from", what);
    assert_eq!(
        line,
        format!("no message from {addr} within 1 s, giving up"),
        "{what}"
    );
    server.finish().assert_success(what);
    drop(client);
    let _ = dribbler.join();
}

#[test]
fn a_port_in_use_is_one_error_line() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = Command::cargo_bin("02-server")
        .unwrap()
        .args(["--listen", &addr])
        .timeout(testkit::WAIT)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success()
            && stdout.is_empty()
            && stderr.starts_with(&format!(
                "error: could not listen on {addr}: address already in use"
            ))
            && stderr.ends_with(
                "(is another server running there? stop it, or pick a free port with \
                 --listen 127.0.0.1:0)\n"
            )
            && stderr.lines().count() == 1,
        "another program listens on {addr}, and the server was started with `--listen {addr}`: \
         bind fails, and the server should stop with a non-zero exit status and one error line \
         that names the address and what to do, `error: could not listen on {addr}: address \
         already in use (is another server running there? ...)`: map bind's and listen's \
         errors with common::bind_error \
         {}; \
         it exited with {}\n--- standard output ---\n{stdout}--- standard error ---\n\
         {stderr}---",
        book::STEPS_1_TO_3_SOCKET_BIND_LISTEN,
        output.status
    );
    let port = taken.local_addr().unwrap().port();
    let _guard = snapshot_settings_with_ports(&[(port, "taken port")]).bind_to_scope();
    insta::assert_snapshot!("port_in_use", stderr);
}

#[test]
fn a_bad_address_is_one_error_line() {
    let assert = Command::cargo_bin("02-server")
        .unwrap()
        .args(["--listen", "127.0.0.1:port"])
        .timeout(testkit::WAIT)
        .assert()
        .failure()
        .stdout("")
        .stderr(predicate::str::starts_with("error: bad address"));
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    let _guard = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("bad_address", stderr);
}

#[test]
fn help_describes_the_server_and_its_options() {
    Command::cargo_bin("02-server")
        .unwrap()
        .arg("--help")
        .timeout(testkit::WAIT)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("backlog 128")
                .and(predicate::str::contains("--listen <ADDR>"))
                .and(predicate::str::contains("--timeout <SECS>")),
        );
}

#[test]
#[cfg_attr(
    not(has_nc),
    ignore = "needs OpenBSD nc (netcat-openbsd): install it, or run .ci/run"
)]
fn works_with_nc_with_and_without_half_close() {
    let Some(nc) = tool("nc") else { return };
    for flags in [&["-N"][..], &[]] {
        let server = start_server(&[]);
        let port = server.addr().port().to_string();
        let mut args = flags.to_vec();
        args.extend(["127.0.0.1", &port]);
        let command = format!("printf 'hello from nc\\n' | nc {}", args.join(" "));
        let done = run(&nc, &args, "hello from nc\n");
        done.assert_success(&format!(
            "{command}: nc should get its reply and end {}",
            book::RUN_IT
        ));
        assert_eq!(
            done.stdout,
            "OK\n",
            "`{command}` should print the server's reply: the newline ends the message, with or \
             without the half-close {}; {done}",
            book::RUN_IT
        );
    }
}

// ---------------------------------------------------------------------------
// Steps 1 to 3: socket, bind, listen
// ---------------------------------------------------------------------------

#[test]
#[cfg(target_os = "linux")]
fn the_server_starts_again_at_once_on_the_port_it_just_closed_a_connection_on() {
    // The server closes first (close_gently's shutdown sends its FIN before
    // the client closes), so its side of the connection ends in TIME_WAIT,
    // on the listening port, for 60 s.
    let mut server = start_server(&[]);
    let addr = server.addr();
    let mut client = Connection::open(addr);
    client.send(b"hello\n");
    client.expect_bytes(
        b"OK\n",
        &format!(
            "a client sent `hello\\n`: the server should reply `OK` and a newline \
         {}",
            book::STEP_6_REPLY
        ),
    );
    client.expect_orderly_close(&format!(
        "after `OK` the server should close its side first, with a clean end of stream \
         {}",
        book::STEP_7_CLOSE_WITHOUT_LOSING_THE_REPLY
    ));
    drop(client);
    server.finish().assert_success(&format!(
        "a one-shot server that served its client should exit with status 0 \
         {}",
        book::THE_SEVEN_STEPS
    ));
    let mut again = Process::start(server_bin(), &["--listen", &addr.to_string()]);
    let what = format!(
        "the server served one client on {addr} and closed that connection first, so the \
         connection waits in TIME_WAIT on port {port}; a second run on {addr} right after must \
         still start: set SO_REUSEADDR on the socket before bind, or restarting the server \
         fails with `address already in use` for 60 s \
         {}",
        book::STEPS_1_TO_3_SOCKET_BIND_LISTEN,
        port = addr.port()
    );
    let first = again.next_line(&what);
    assert_eq!(first, format!("listening on {addr}"), "{what}");
}

#[test]
#[cfg(target_os = "linux")]
fn the_kernel_queues_backlog_plus_one_connections_while_the_server_is_busy() {
    let server = start_server(&[]);
    let addr = server.addr();
    // Frozen (SIGSTOP), the server accepts nobody: only the kernel answers,
    // and it completes handshakes until its queue for accept() is full.
    support::freeze(&server);
    // Linux queues one more than the backlog; the backlog is capped at
    // net.core.somaxconn.
    let queued = 128.min(support::somaxconn()) as usize + 1;
    let mut clients = Vec::new();
    for n in 0..queued {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(stream) => clients.push(stream),
            Err(err) => server.fail(&format!(
                "listen(BACKLOG) with BACKLOG = 128: while the server was frozen (SIGSTOP) and \
                 accepted nobody, the kernel should have completed the handshakes of \
                 {queued} clients (on Linux, one more than the backlog); client {} could not \
                 connect ({err}) after {n} did: the backlog given to listen() is too small \
                 {}",
                n + 1,
                book::STEPS_1_TO_3_SOCKET_BIND_LISTEN
            )),
        }
    }
    if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
        server.fail(&format!(
            "listen(BACKLOG) with BACKLOG = 128: while the server was frozen (SIGSTOP), the \
             kernel completed the handshakes of {queued} clients, and then of one more: the \
             backlog given to listen() is larger than 128 \
             {}",
            book::STEPS_1_TO_3_SOCKET_BIND_LISTEN
        ));
    }
    server.thaw();
    drop(clients);
}

#[test]
fn listens_on_an_ipv6_address_too() {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: this machine has no IPv6 loopback ([::1])");
        return;
    }
    let mut server = Process::start(server_bin(), &["--listen", "[::1]:0"]);
    let what = &format!(
        "with `--listen [::1]:0` the server should listen on IPv6 and print \
                `listening on [::1]:PORT`: the socket's domain must match the address \
                (Domain::for_address), an IPv4 socket cannot bind an IPv6 address \
                {}",
        book::STEPS_1_TO_3_SOCKET_BIND_LISTEN
    );
    let first = server.next_line(what);
    let addr: SocketAddr = first
        .strip_prefix("listening on ")
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| server.fail(&format!("{what}; got {first:?}")));
    assert!(addr.is_ipv6(), "{what}; got {first:?}");
    let mut client = Connection::open(addr);
    client.send(b"hello over IPv6\n");
    client.expect_bytes(
        b"OK\n",
        &format!(
            "a client sent `hello over IPv6\\n` to the server on [::1]: it should reply `OK` \
         {}",
            book::STEP_6_REPLY
        ),
    );
}

// ---------------------------------------------------------------------------
// Step 4: accept
// ---------------------------------------------------------------------------

#[test]
#[cfg(target_os = "linux")]
fn an_accept_that_fails_is_one_error_line_and_a_failed_exit() {
    // The server may open exactly one more file than it inherits: its
    // listening socket. The socket accept() would make for the client needs
    // another, so accept() fails with "too many open files" (EMFILE), as
    // with a full descriptor table.
    let limit = support::lowest_free_fd_for_a_child() + 1;
    let mut command = std::process::Command::new("sh");
    command.args([
        "-c",
        &format!("ulimit -n {limit} && exec \"$0\" \"$@\""),
        &server_bin().to_string_lossy(),
        "--listen",
        "127.0.0.1:0",
    ]);
    let mut server = Process::start_command(&mut command);
    let first = server.next_line(&format!(
        "a server's first line should be `listening on ADDR` \
         {}",
        book::STEPS_1_TO_3_SOCKET_BIND_LISTEN
    ));
    assert!(
        first.starts_with("listening on "),
        "a server's first line should be `listening on ADDR`, before it accepts anyone; got \
         {first:?} {}",
        book::STEPS_1_TO_3_SOCKET_BIND_LISTEN
    );
    // Linux reserves the new socket's descriptor before accept() waits, so
    // it fails at once: no client needs to come.
    let what = format!(
        "the server called accept() with no file descriptor left (`ulimit -n {limit}`: its \
         listening socket took the last one): accept() fails with `too many open \
         files`; a one-shot server cannot do its job then, so it should stop with one error \
         line on standard error, `error: could not accept a connection on 127.0.0.1:0: ...`, \
         and a non-zero exit status, not retry, panic or hang \
         {}",
        book::STEP_4_ACCEPT
    );
    // A server that retries the accept never exits (and spins): fail with
    // the lesson's words, not the kit's, as soon as it has spun.
    support::wait_gone_unless_spinning(&server, &what);
    let done = server.finish();
    done.assert_failure(&what);
    assert!(
        done.stderr
            .starts_with("error: could not accept a connection on 127.0.0.1:0: ")
            && done.stderr.lines().count() == 1,
        "{what}; {done}"
    );
}

// ---------------------------------------------------------------------------
// Step 5: one read is not one message
// ---------------------------------------------------------------------------

#[test]
fn a_message_over_the_limit_is_answered_without_waiting_for_a_newline() {
    // The client keeps its side open: only the limit can end this message.
    let mut server = start_server(&["--timeout", "1"]);
    let mut client = Connection::open(server.addr());
    client.send(&[b'a'; 3000]);
    client.expect_bytes(
        b"OK\n",
        &format!("with --timeout 1, a client sent 3000 bytes of `a`, no newline, and kept its side open, \
         waiting for the reply: MESSAGE_LIMIT (1024) bytes are a whole message, so the server \
         should stop reading at 1024 bytes and reply at once, not wait for a newline or the end \
         of input that never come (check the limit inside the read loop, before each read) \
         {}", book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE),
    );
    server.expect_line(
        "(the message filled all 1024 bytes; the rest was not read)",
        &format!(
            "a client sent 3000 bytes without a newline: the server should cut the message at 1024 \
         bytes and say so {}",
            book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE
        ),
    );
}

#[test]
fn a_message_of_exactly_1024_bytes_fills_the_buffer_and_is_answered() {
    let mut server = start_server(&["--timeout", "1"]);
    let mut client = Connection::open(server.addr());
    client.send(&[b'b'; 1024]);
    client.expect_bytes(
        b"OK\n",
        &format!(
            "with --timeout 1, a client sent exactly 1024 bytes of `b`, no newline, and kept its \
         side open: 1024 bytes fill MESSAGE_LIMIT, so the message is complete and the server \
         should reply at once; a limit checked with `>` instead of `>=` (or `==` on the count) \
         waits for a 1025th byte that never comes \
         {}",
            book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE
        ),
    );
    let received = server.expect_line(
        "received: ",
        &format!(
            "a client sent exactly 1024 bytes: the server should print them \
         {}",
            book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE
        ),
    );
    assert_eq!(
        received,
        format!("received: {}", "b".repeat(1024)),
        "a client sent exactly 1024 bytes of `b`: the server should keep all 1024, no more, \
         no fewer {}",
        book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE
    );
}

#[test]
fn a_line_ending_in_cr_lf_is_received_without_the_cr() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    client.send(b"hello\r\n");
    client.expect_bytes(
        b"OK\n",
        &format!(
            "a client sent `hello\\r\\n`: the server should reply `OK` \
         {}",
            book::STEP_6_REPLY
        ),
    );
    let received = server.expect_line(
        "received: ",
        &format!(
            "a client sent `hello\\r\\n`: the server should print the message \
         {}",
            book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE
        ),
    );
    assert_eq!(
        received,
        "received: hello",
        "a client sent `hello\\r\\n`, as telnet and Windows programs end a line: the `\\r` \
         before the newline belongs to the line ending, not to the message, so the message is \
         `hello` (strip one `\\r` just before the newline) \
         {}",
        book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE
    );
}

#[test]
#[cfg(target_os = "linux")]
fn a_read_interrupted_by_a_stop_and_a_continue_is_retried() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    server.expect_line(
        "client connected: ",
        &format!(
            "a client connected: the server should accept it {}",
            book::STEP_4_ACCEPT
        ),
    );
    support::wait_blocked_in_read(&server, "a client connected and sent nothing yet");
    // Ctrl-Z, then `fg`: a read on a socket with a read timeout (the
    // deadline sets one) then fails with EINTR, ErrorKind::Interrupted.
    support::freeze(&server);
    server.thaw();
    client.send(b"hello\n");
    client.expect_bytes(
        b"OK\n",
        &format!("the server was stopped (SIGSTOP) and continued (SIGCONT), as Ctrl-Z and `fg` do, while \
         it waited for the message; then the client sent `hello\\n`: the interrupted read fails \
         with ErrorKind::Interrupted (EINTR), which is no error of the connection, so the server \
         should retry the read, and reply `OK` \
         {}", book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE),
    );
}

// ---------------------------------------------------------------------------
// Steps 6 and 7: reply, and close without losing the reply
// ---------------------------------------------------------------------------

#[test]
#[cfg(target_os = "linux")]
fn a_reply_to_a_client_that_has_reset_is_reported_as_could_not_reply() {
    let mut server = start_server(&[]);
    // Frozen, the server accepts nobody yet: the client's line and its reset
    // both reach the kernel before the server reads.
    support::freeze(&server);
    let mut client = Connection::open(server.addr());
    client.send(b"hello\n");
    client.reset();
    server.thaw();
    let what = &format!(
        "a client sent `hello\\n` and reset the connection (RST) before the server read \
                it: the line is still read, but writing `OK` then fails (the peer is gone), and \
                the server should say so in one line, `could not reply: ...`, and end; check \
                write_all's result, do not ignore it or unwrap it \
                {}",
        book::STEP_6_REPLY
    );
    server.expect_line("received: hello", what);
    let line = server.next_line(what);
    assert!(
        line.starts_with("could not reply: "),
        "{what}; got {line:?}"
    );
    server.finish().assert_success(what);
}

#[test]
#[cfg(target_os = "linux")]
fn the_server_half_closes_right_after_the_reply_without_waiting_for_the_client() {
    let server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    client.send(b"hello\n");
    client.expect_bytes(
        b"OK\n",
        &format!(
            "a client sent `hello\\n`: the server should reply `OK` and a newline \
         {}",
            book::STEP_6_REPLY
        ),
    );
    // Once the server waits in close_gently's read (or has closed), its FIN
    // must be on its way. Frozen there, it cannot send one later.
    if !support::wait_blocked_in_read_or_gone(&server, "after `OK`") {
        return;
    }
    support::freeze(&server);
    client
        .stream()
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut byte = [0u8; 1];
    let got = std::io::Read::read(&mut client.stream(), &mut byte);
    server.thaw();
    assert!(
        matches!(got, Ok(0)),
        "a client sent `hello\\n`, read `OK\\n` and kept its side open; the server then waited \
         in close_gently's read, frozen there (SIGSTOP): close_gently must half-close \
         (shutdown(Write)) before it drains, so the client reads the end of the reply (FIN) at \
         once, not after the client closes or the linger time ends; the client's read gave \
         {got:?} {}",
        book::STEP_7_CLOSE_WITHOUT_LOSING_THE_REPLY
    );
}

#[test]
#[cfg(target_os = "linux")]
fn a_client_that_sends_more_after_the_reply_is_drained_not_reset() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    let mut sent = b"hello\n".to_vec();
    sent.extend([b'x'; 2000]);
    sent.push(b'\n');
    client.send(&sent);
    let what = &format!(
        "a client sent `hello\\n` and a second line of 2000 bytes in one write, read `OK\\n` \
                and the end of stream, then closed its side too: the server must read what the \
                client sent (drain), and discard it, until the client closes, and only then \
                close; a socket closed with input unread sends a reset (RST), which a \
                client may see instead of the reply (half-closing alone does not prevent it) \
                {}",
        book::STEP_7_CLOSE_WITHOUT_LOSING_THE_REPLY
    );
    client.expect_bytes(b"OK\n", what);
    let replied = std::time::Instant::now();
    client.expect_orderly_close(what);
    // Now the server either drains (it waits in a read for the client's end
    // of stream) or has closed: with input unread, that close sent a reset.
    if !support::wait_blocked_in_read_or_gone(&server, what) {
        if let Ok(Some(err)) = client.stream().take_error() {
            panic!(
                "{what}; the server closed without waiting for the client, and the connection \
                 was reset: {err}"
            );
        }
        // Gone before the linger time (2 s) and before the client closed:
        // bytes the client sends from now on would meet a closed socket.
        assert!(
            replied.elapsed() > Duration::from_millis(1500),
            "{what}; the server closed and exited right after its FIN, before the client \
             closed and long before the linger time ended, so whatever the client still sends \
             gets a reset"
        );
        return;
    }
    if let Err(err) = client.stream().shutdown(Shutdown::Write) {
        panic!("{what}; the client could not close its side, the connection was reset: {err}");
    }
    server.expect_line("closed the connection", what);
    server.finish().assert_success(what);
    if let Ok(Some(err)) = client.stream().take_error() {
        panic!("{what}; the connection was reset: {err}");
    }
}

#[test]
fn a_client_that_never_closes_is_let_go_after_the_linger_time() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    client.send(b"hello\n");
    client.expect_bytes(
        b"OK\n",
        &format!(
            "a client sent `hello\\n`: the server should reply `OK` \
         {}",
            book::STEP_6_REPLY
        ),
    );
    // The client neither sends nor closes.
    support::wait_gone(
        &server,
        &format!(
            "a client sent `hello\\n`, read `OK\\n` and then neither sent nor closed: close_gently \
         waits for the client's end of stream at most `linger` (LINGER, 2 s), with a read \
         timeout, and the one-shot server then exits \
         {}",
            book::STEP_7_CLOSE_WITHOUT_LOSING_THE_REPLY
        ),
    );
    server.finish();
    drop(client);
}

#[test]
fn a_client_that_keeps_sending_after_the_reply_is_let_go_after_the_linger_time() {
    let mut server = start_server(&[]);
    let mut client = Connection::open(server.addr());
    client.send(b"hello\n");
    client.expect_bytes(
        b"OK\n",
        &format!(
            "a client sent `hello\\n`: the server should reply `OK` \
         {}",
            book::STEP_6_REPLY
        ),
    );
    // One byte every 200 ms: each read returns long before a read timeout
    // of 2 s, so only a deadline ends the drain.
    let stream = client.stream().try_clone().unwrap();
    let dribbler = std::thread::spawn(move || {
        let mut stream = stream;
        for _ in 0..50 {
            if std::io::Write::write_all(&mut stream, b"x").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    support::wait_gone(
        &server,
        &format!(
            "a client sent `hello\\n`, read `OK\\n` and then kept sending a byte every 200 ms: \
         close_gently drains for at most `linger` (LINGER, 2 s) in all, a deadline counted \
         from the half-close, however the bytes keep coming; a read timeout alone starts \
         again at every read and never expires here \
         {}",
            book::STEP_7_CLOSE_WITHOUT_LOSING_THE_REPLY
        ),
    );
    server.finish();
    drop(client);
    let _ = dribbler.join();
}
