//! Lesson 1's client against lesson 2's server: the conversation a learner
//! sees with two terminals, `cargo run -p server` and
//! `cargo run -p client -- hello`.
//!
//! A failure here can be either lesson's: each message says what both
//! sides should have done, and the sections to read.

use testkit::{Process, binary, reported_local_port, run, snapshot_settings_with_ports};

#[test]
fn client_hello_to_the_one_shot_server() {
    let mut server = Process::server(&binary("server", "02-server"), &[]);
    let addr = server.addr().to_string();

    let client = run(
        &binary("client", "01-client"),
        &["--server", &addr, "hello"],
        "",
    );
    client.assert_success(
        "lesson 1's client was run with `hello` against lesson 2's one-shot server, which \
         reads one line, replies `OK` and closes: the client should send `hello` and its \
         newline in one write_all, half-close, print `reply: OK` and `server closed the \
         connection` (book: 01-client.md § The whole conversation)",
    );
    assert!(
        client.stdout.contains("reply: OK\n")
            && client.stdout.ends_with("server closed the connection\n"),
        "lesson 1's client sent `hello` to lesson 2's one-shot server: the server should reply \
         `OK` and close (book: 02-server.md § Steps 5 to 7: receive, reply, close), and the \
         client should print `reply: OK` and then `server closed the connection` \
         (book: 01-client.md § Step 4: read the reply); {client}"
    );
    let listen_port = server.addr().port();
    let server = server.finish();
    server.assert_success(
        "lesson 2's one-shot server served lesson 1's client `hello`: it should reply, close \
         the connection and exit with status 0 \
         (book: 02-server.md § Steps 5 to 7: receive, reply, close)",
    );

    // The client's port as it reports it: the server must log that one.
    let _guard = snapshot_settings_with_ports(&[
        (listen_port, "listen port"),
        (reported_local_port(&client.stdout), "client's port"),
    ])
    .bind_to_scope();
    insta::assert_snapshot!("client_says_hello", client.stdout);
    insta::assert_snapshot!("server_hears_hello", server.stdout);
}

#[test]
fn client_typing_lines_to_the_one_shot_server() {
    // The one-shot server answers the first line and closes: the client
    // reports that and exits 0, whatever else was typed.
    let mut server = Process::server(&binary("server", "02-server"), &[]);
    let addr = server.addr().to_string();
    let client = run(
        &binary("client", "01-client"),
        &["--server", &addr],
        "first line\n",
    );
    client.assert_success(
        "lesson 1's client typed `first line` to lesson 2's one-shot server, which answers one \
         line and closes: the client should print the reply, see the close, and exit with \
         status 0 (book: 01-client.md § Typing lines)",
    );
    assert!(
        client.stdout.contains("reply: OK\n")
            && client.stdout.ends_with("server closed the connection\n"),
        "lesson 1's client typed `first line` to lesson 2's one-shot server: the server should \
         reply `OK` and close (book: 02-server.md § Steps 5 to 7: receive, reply, close), and \
         the client should print `reply: OK` and then `server closed the connection` \
         (book: 01-client.md § Typing lines); {client}"
    );
    server.expect_line(
        "received: first line",
        "lesson 1's client typed `first line`: lesson 2's server should log it as \
         `received: first line` (book: 02-server.md § Steps 5 to 7: receive, reply, close)",
    );
}
