//! Lesson 1's client against lesson 2's server: the conversation a learner
//! sees with two terminals, `cargo run -p server` and
//! `cargo run -p client -- hello`.

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
    client.assert_success("01-client hello, against 02-server");
    let listen_port = server.addr().port();
    let server = server.finish();
    server.assert_success("02-server after serving 01-client");

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
    client.assert_success("01-client reading lines from stdin, against 02-server");
    assert!(
        client.stdout.contains("reply: OK\n")
            && client.stdout.ends_with("server closed the connection\n"),
        "the client should print the server's `OK` and then that the server closed; {client}"
    );
    server.wait_for("received: first line");
}
