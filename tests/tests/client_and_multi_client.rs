//! Lesson 1's client against lesson 3's server, with a message on the
//! command line and with lines typed on standard input.
//!
//! A failure here can be either lesson's: each message says what both
//! sides should have done, and the sections to read.

use testkit::{Process, binary, reported_local_port, snapshot_settings_with_ports};

fn start_server() -> Process {
    Process::server(&binary("multi-client", "03-multi-client"), &[])
}

#[test]
fn client_with_a_message() {
    let mut server = start_server();
    let addr = server.addr().to_string();
    let client = testkit::run(
        &binary("client", "01-client"),
        &["--server", &addr, "hello"],
        "",
    );
    client.assert_success(
        "lesson 1's client was run with `hello` against lesson 3's server, which answers `ok` \
         to every line and closes when the client has half-closed: the client should send \
         its line, half-close, print the reply and exit with status 0 \
         (book: 01-client.md § The whole conversation)",
    );
    assert!(
        client
            .stdout
            .ends_with("sent 5 bytes: hello\nreply: ok\nserver closed the connection\n"),
        "lesson 1's client sent `hello` and its newline in one write, then half-closed: lesson \
         3's server should answer the line with one `ok` \
         (book: 03-multi-client.md § Lines, not reads, are the messages) and close after the half-close, and the client should \
         print `reply: ok` and then `server closed the connection` \
         (book: 01-client.md § Step 4: read the reply). Two `ok`s, or `okok`, mean the line reached the server in \
         two pieces and the server answered each read (book: 01-client.md § Step 2: send); \
         {client}"
    );
    server.expect_line(
        "] hello",
        "lesson 1's client sent `hello`: lesson 3's server should log the line \
         (book: 03-multi-client.md § One client's conversation)",
    );
    server.expect_line(
        "] finished",
        "lesson 1's client half-closed after `hello`: lesson 3's server should log that the \
         client finished (book: 03-multi-client.md § One client's conversation)",
    );
}

#[test]
fn client_typing_lines() {
    let mut server = start_server();
    let addr = server.addr().to_string();
    let mut client = Process::start(&binary("client", "01-client"), &["--server", &addr]);
    // Each line is answered before the next is typed: the client sends as
    // it reads, and prints replies as they arrive.
    for line in ["first line", "second line"] {
        client.send(line);
        client.expect_line(
            "reply: ok",
            &format!(
                "`{line}` was typed into lesson 1's client, talking to lesson 3's server: the \
                 server should answer `ok` and the client print `reply: ok` at once \
                 (book: 01-client.md § Typing lines)"
            ),
        );
    }
    let done = client.finish();
    done.assert_success(
        "lesson 1's client typed two lines to lesson 3's server, then its input ended: it \
         should half-close, see the server close, and exit with status 0 \
         (book: 01-client.md § Typing lines)",
    );
    let _guard = snapshot_settings_with_ports(&[
        (server.addr().port(), "listen port"),
        (reported_local_port(&done.stdout), "client's port"),
    ])
    .bind_to_scope();
    insta::assert_snapshot!("client_typing_to_multi_client", done.stdout);
    server.expect_line(
        "] second line",
        "lesson 1's client typed `second line`: lesson 3's server should log it \
         (book: 03-multi-client.md § One client's conversation)",
    );
    server.expect_line(
        "] finished",
        "lesson 1's client's input ended and it half-closed: lesson 3's server should log that \
         the client finished (book: 03-multi-client.md § One client's conversation)",
    );
}
