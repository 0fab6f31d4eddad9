//! A client that reaches another lesson's server says so, in one line.
//!
//! The lessons share ports (lessons 2, 3 and 6 listen on 7890), and a server
//! left running in another terminal answers in its own protocol. Each test
//! runs a lesson's real client against the real servers of other lessons.

use std::net::SocketAddr;
use std::path::PathBuf;

use testkit::{Finished, Process, TempDir, binary, run};

const FILE_SERVER: &str = "(book: 05-file-download.md § When things go wrong)";
const RELAY_CLIENT: &str = "(book: 04-relay.md § The client)";
const LESSON_1: &str = "(book: 01-client.md § When things go wrong)";

fn file_download() -> PathBuf {
    binary("file-download", "05-file-download")
}

/// A server of lesson `package`, started on a free port.
fn server(package: &str, bin: &str, args: &[&str]) -> Process {
    Process::server(&binary(package, bin), args)
}

/// What a client of lesson 5 or 4 must print on standard error, alone, and
/// exit with a failure.
fn assert_one_error_line(done: &Finished, expected: &str, case: &str) {
    assert!(
        !done.status.success() && done.stderr == format!("error: {expected}\n"),
        "{case}, the client should fail with the one line `error: {expected}`; {done}"
    );
}

fn wrong(addr: SocketAddr, line: &str, server: &str, expected: &str) -> String {
    format!(
        "the server at {addr} answered `{line}`: that is {server}, not {expected}; is it still running?"
    )
}

#[test]
fn lesson_5s_client_says_it_reached_lesson_4s_relay_not_a_file_server() {
    let relay = server("relay", "04-relay", &["serve"]);
    let addr = relay.addr();
    let expected = wrong(addr, "ERR hello-first", "lesson 4's relay", "a file server");

    let done = run(
        &file_download(),
        &["list", "--server", &addr.to_string()],
        "",
    );
    assert_one_error_line(
        &done,
        &expected,
        &format!(
            "against lesson 4's relay, which answers `LIST` with `ERR hello-first` \
             {FILE_SERVER}"
        ),
    );

    let cwd = TempDir::new();
    let out = cwd.join("hello.txt");
    let done = run(
        &file_download(),
        &[
            "get",
            "hello.txt",
            "--server",
            &addr.to_string(),
            "-o",
            out.to_str().unwrap(),
        ],
        "",
    );
    assert_one_error_line(
        &done,
        &expected,
        &format!(
            "against lesson 4's relay, which answers `GET hello.txt` with `ERR hello-first` \
             {FILE_SERVER}"
        ),
    );
    assert!(
        std::fs::read_dir(cwd.path()).unwrap().next().is_none(),
        "get against the relay should leave nothing behind, not even an empty .part {FILE_SERVER}"
    );
}

#[test]
fn lesson_5s_client_names_the_line_servers_of_lessons_2_3_and_6() {
    let cases = [
        ("server", "02-server", "OK", "lesson 2's one-shot server"),
        (
            "multi-client",
            "03-multi-client",
            "ok",
            "lesson 3's (or lesson 6's) line server",
        ),
        (
            "event-loop",
            "06-event-loop",
            "ok",
            "lesson 3's (or lesson 6's) line server",
        ),
    ];
    for (package, bin, line, name) in cases {
        let other = server(package, bin, &[]);
        let addr = other.addr();
        let done = run(
            &file_download(),
            &["list", "--server", &addr.to_string()],
            "",
        );
        assert_one_error_line(
            &done,
            &wrong(addr, line, name, "a file server"),
            &format!("`list` against {bin}, which answers `LIST` with `{line}` {FILE_SERVER}"),
        );
    }
}

#[test]
fn lesson_4s_join_says_which_lesson_answered_instead_of_the_relay() {
    let served = TempDir::new();
    let folder = served.path().to_str().unwrap().to_string();
    let cases = [
        (
            "file-download",
            "05-file-download",
            vec!["serve", folder.as_str()],
            "ERR bad-request expected GET <path>, RESUME <offset> <path> or LIST",
            "lesson 5's file server",
        ),
        (
            "server",
            "02-server",
            vec![],
            "OK",
            "lesson 2's one-shot server",
        ),
        (
            "multi-client",
            "03-multi-client",
            vec![],
            "ok",
            "lesson 3's (or lesson 6's) line server",
        ),
    ];
    for (package, bin, args, line, name) in cases {
        let other = server(package, bin, &args);
        let addr = other.addr();
        let done = run(
            &binary("relay", "04-relay"),
            &["join", "alice", "--server", &addr.to_string()],
            "",
        );
        assert_one_error_line(
            &done,
            &wrong(addr, line, name, "a relay server"),
            &format!(
                "`join alice` against {bin}, which answers `HELLO alice <port>` with `{line}` \
                 {RELAY_CLIENT}"
            ),
        );
    }
}

#[test]
fn lesson_1s_client_says_which_lesson_answered_when_it_is_the_relay_or_the_file_server() {
    let served = TempDir::new();
    let folder = served.path().to_str().unwrap().to_string();
    let cases = [
        (
            "relay",
            "04-relay",
            vec!["serve"],
            "ERR hello-first",
            "lesson 4's relay",
            "cargo run -p relay -- join NAME",
        ),
        (
            "file-download",
            "05-file-download",
            vec!["serve", folder.as_str()],
            "ERR bad-request expected GET <path>, RESUME <offset> <path> or LIST",
            "lesson 5's file server",
            "cargo run -p file-download -- list",
        ),
    ];
    for (package, bin, args, line, name, client) in cases {
        let other = server(package, bin, &args);
        let addr = other.addr();
        let done = run(
            &binary("client", "01-client"),
            &["--server", &addr.to_string(), "hello"],
            "",
        );
        let expected = format!(
            "reply: {line}\nnote: that is {name}, not a server of lessons 2, 3 or 6: its own \
             client is {client}\nserver closed the connection\n"
        );
        assert!(
            done.status.success() && done.stdout.ends_with(&expected),
            "`01-client hello` against {bin}, which answers `{line}`: the client prints any \
             reply and exits 0, and after this one a note that names the server, so its \
             output should end with {expected:?} {LESSON_1}; {done}"
        );
    }
}
