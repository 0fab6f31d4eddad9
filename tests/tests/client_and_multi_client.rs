//! Lesson 1's client against lesson 3's server, with a message on the
//! command line and with lines typed on standard input.

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
    client.assert_success("01-client hello, against 03-multi-client");
    assert!(
        client
            .stdout
            .ends_with("sent 5 bytes: hello\nreply: ok\nserver closed the connection\n"),
        "lesson 1 should get `ok` and then see the server close after its half-close; {client}"
    );
    server.wait_for("] hello");
    server.wait_for("] finished");
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
        client.wait_for("reply: ok");
    }
    let done = client.finish();
    done.assert_success("01-client typing lines to 03-multi-client, then end of input");
    let _guard = snapshot_settings_with_ports(&[
        (server.addr().port(), "listen port"),
        (reported_local_port(&done.stdout), "client's port"),
    ])
    .bind_to_scope();
    insta::assert_snapshot!("client_typing_to_multi_client", done.stdout);
    server.wait_for("] second line");
    server.wait_for("] finished");
}
