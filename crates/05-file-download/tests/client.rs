//! Checks for lesson 5's client (`get` and `list`). Write the client
//! yourself, then run `cargo test -p file-download`: each test names what
//! the client should do.
//!
//! The client runs in a temporary folder of its own (where `get` saves),
//! against the real server or against a `FakeServer` the test drives by
//! hand: one that stops in the middle of a file, or lies about its digest.

// Helpers outside #[test] functions fail the way tests do: by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use file_download::BUFFER_SIZE;
use support::{TempDir, bin, book, bytes, client, get, settings, sha256_hex, start_server};
use testkit::{FakeServer, Finished, Process, closed_port};

/// Every file name in `folder`, sorted: to check what a run left behind.
fn names_in(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Starts `get PATH` against a fake server, in `cwd`.
fn start_get(fake: &FakeServer, cwd: &Path, path: &str) -> Process {
    let addr = fake.addr().to_string();
    Process::start_command(
        Command::new(bin())
            .current_dir(cwd)
            .args(["get", path, "--server", &addr]),
    )
}

/// Plays a server that sends the header for `whole` and then only `sent`
/// bytes of it, and closes: a server killed in the middle of the file.
fn cut_transfer(cwd: &Path, path: &str, whole: &[u8], sent: usize) -> Finished {
    let fake = FakeServer::start();
    let mut client = start_get(&fake, cwd, path);
    let mut conn = fake.accept("the client should connect to the server it was given");
    assert_eq!(
        conn.read_line("the client should send its request line"),
        format!("GET {path}"),
        "with no .part file yet, the client should ask for the whole file"
    );
    conn.send(format!("OK {} {}\n", whole.len(), sha256_hex(whole)).as_bytes());
    conn.send(&whole[..sent]);
    drop(conn);
    client.finish()
}

fn assert_saved(done: &Finished, cwd: &Path, name: &str, content: &[u8]) {
    done.assert_success(&format!("get {name}"));
    let saved = fs::read(cwd.join(name))
        .unwrap_or_else(|err| panic!("get should have saved {name:?}: {err}; {done}"));
    assert!(
        saved == content,
        "{name:?} should arrive byte for byte ({} bytes); got {} bytes that differ",
        content.len(),
        saved.len()
    );
    assert!(
        !cwd.join(format!("{name}.part")).exists(),
        "after a complete download, {name}.part should be gone (renamed to {name})"
    );
    assert!(
        done.stdout.starts_with(&format!("saved {name}: "))
            && done.stdout.ends_with(", sha256 ok\n"),
        "get should print one summary line `saved {name}: ..., sha256 ok`; {done}"
    );
    assert_eq!(
        done.stderr, "",
        "with stderr not a terminal, get should print no progress bar; {done}"
    );
}

// ---------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------

#[test]
fn files_of_every_size_arrive_byte_for_byte() {
    let served = TempDir::new();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty.bin", Vec::new()),
        ("one.bin", vec![0x2a]),
        ("one-buffer.bin", bytes(BUFFER_SIZE, 1)),
        ("one-buffer-and-a-byte.bin", bytes(BUFFER_SIZE + 1, 2)),
        ("several-mib.bin", bytes(5 * 1024 * 1024 + 3, 3)),
    ];
    for (name, content) in &cases {
        served.write(name, content);
    }
    let server = start_server(served.path(), &[]);
    let cwd = TempDir::new();
    for (name, content) in &cases {
        let done = get(server.addr(), cwd.path(), name, &[]);
        assert_saved(&done, cwd.path(), name, content);
    }
}

#[test]
fn names_with_spaces_and_any_language_arrive_under_their_own_name() {
    let served = TempDir::new();
    let content = "naïve café, 你好, привет\n".as_bytes();
    served.write("données/naïve café 你好.txt", content);
    let server = start_server(served.path(), &[]);
    let cwd = TempDir::new();
    let done = get(
        server.addr(),
        cwd.path(),
        "données/naïve café 你好.txt",
        &[],
    );
    assert_saved(&done, cwd.path(), "naïve café 你好.txt", content);
}

#[test]
fn output_goes_where_dash_o_says() {
    let served = TempDir::new();
    served.write("sub/notes.txt", b"notes\n");
    let server = start_server(served.path(), &[]);
    let cwd = TempDir::new();
    fs::create_dir(cwd.path().join("keep")).unwrap();
    let done = get(
        server.addr(),
        cwd.path(),
        "sub/notes.txt",
        &["-o", "keep/mine.txt"],
    );
    done.assert_success("get sub/notes.txt -o keep/mine.txt");
    assert_eq!(
        fs::read(cwd.path().join("keep/mine.txt")).unwrap(),
        b"notes\n"
    );
    assert_eq!(names_in(&cwd.path().join("keep")), ["mine.txt"]);
    assert_eq!(
        names_in(cwd.path()),
        ["keep"],
        "nothing else should be written"
    );
}

#[test]
fn the_summary_line_says_what_was_saved() {
    let served = TempDir::new();
    served.write("hello.txt", b"hello world\n");
    let server = start_server(served.path(), &[]);
    let cwd = TempDir::new();
    let done = get(server.addr(), cwd.path(), "hello.txt", &[]);
    done.assert_success("get hello.txt");
    let _guard = settings(&cwd).bind_to_scope();
    insta::assert_snapshot!("get_summary", done.stdout);
}

// ---------------------------------------------------------------------------
// Never a half file under the final name
// ---------------------------------------------------------------------------

#[test]
fn a_cut_transfer_leaves_a_part_file_and_running_again_resumes_it() {
    let served = TempDir::new();
    let content = bytes(3 * BUFFER_SIZE + 1000, 4);
    served.write("big.bin", &content);
    let cwd = TempDir::new();
    let half = content.len() / 2;

    // A server that dies halfway through the file.
    let done = cut_transfer(cwd.path(), "big.bin", &content, half);
    done.assert_failure("a transfer cut in the middle");
    assert_eq!(
        names_in(cwd.path()),
        ["big.bin.part"],
        "a cut transfer must leave only big.bin.part, never big.bin; {done}"
    );
    assert!(
        fs::read(cwd.path().join("big.bin.part")).unwrap() == content[..half],
        "big.bin.part should hold exactly the {half} bytes that arrived"
    );
    {
        let _guard = settings(&cwd).bind_to_scope();
        insta::assert_snapshot!("cut_short", done.stderr);
    }

    // The same command against a (restarted) real server: RESUME from there.
    let mut server = start_server(served.path(), &[]);
    let done = get(server.addr(), cwd.path(), "big.bin", &[]);
    assert_saved(&done, cwd.path(), "big.bin", &content);
    server.wait_for(&format!("RESUME {half} big.bin: sent"));
    let _guard = settings(&cwd).bind_to_scope();
    insta::assert_snapshot!("resumed", done.stdout);
}

#[test]
fn a_part_file_makes_the_client_ask_for_the_rest_only() {
    let cwd = TempDir::new();
    let content = b"0123456789abcdef";
    fs::write(cwd.path().join("f.txt.part"), &content[..10]).unwrap();
    let fake = FakeServer::start();
    let mut client = start_get(&fake, cwd.path(), "f.txt");
    let mut conn = fake.accept("the client should connect");
    assert_eq!(
        conn.read_line("the client should send its request line"),
        "RESUME 10 f.txt",
        "with 10 bytes in f.txt.part, the client should ask for the rest: RESUME 10 f.txt"
    );
    conn.send(format!("OK 16 {}\n", sha256_hex(content)).as_bytes());
    conn.send(&content[10..]);
    drop(conn);
    let done = client.finish();
    assert_saved(&done, cwd.path(), "f.txt", content);
}

#[test]
fn a_file_that_changed_between_two_runs_fails_its_digest_and_the_part_is_removed() {
    let served = TempDir::new();
    let before = bytes(2 * BUFFER_SIZE, 5);
    let cwd = TempDir::new();
    let half = before.len() / 2;
    cut_transfer(cwd.path(), "big.bin", &before, half).assert_failure("a cut transfer");

    // The file changes on the server (same size), then we resume.
    let after = bytes(2 * BUFFER_SIZE, 6);
    served.write("big.bin", &after);
    let server = start_server(served.path(), &[]);
    let done = get(server.addr(), cwd.path(), "big.bin", &[]);
    done.assert_failure("resuming a file that changed since the .part was started");
    assert!(
        names_in(cwd.path()).is_empty(),
        "a download whose SHA-256 does not match must leave nothing: no big.bin, no big.bin.part; {done}"
    );
    {
        let _guard = settings(&cwd).bind_to_scope();
        insta::assert_snapshot!("digest_mismatch", done.stderr);
    }

    // Running it again downloads the new file whole.
    let done = get(server.addr(), cwd.path(), "big.bin", &[]);
    assert_saved(&done, cwd.path(), "big.bin", &after);
}

#[test]
fn a_wrong_digest_leaves_nothing_behind() {
    let cwd = TempDir::new();
    let fake = FakeServer::start();
    let mut client = start_get(&fake, cwd.path(), "lie.txt");
    let mut conn = fake.accept("the client should connect");
    conn.read_line("the client should send its request line");
    conn.send(format!("OK 5 {}\nlies!", sha256_hex(b"truth")).as_bytes());
    drop(conn);
    let done = client.finish();
    done.assert_failure("a file whose bytes do not match the announced SHA-256");
    assert!(
        names_in(cwd.path()).is_empty(),
        "nothing unverified may be left, under any name; {done}"
    );
    assert!(
        done.stderr.contains("SHA-256 does not match"),
        "the error should say the digest did not match; {done}"
    );
}

#[test]
fn a_part_file_longer_than_the_servers_file_is_removed() {
    let served = TempDir::new();
    served.write("small.txt", b"small\n");
    let server = start_server(served.path(), &[]);
    let cwd = TempDir::new();
    fs::write(
        cwd.path().join("small.txt.part"),
        b"this was a bigger file once\n",
    )
    .unwrap();
    let done = get(server.addr(), cwd.path(), "small.txt", &[]);
    done.assert_failure("a .part longer than the file on the server");
    assert!(
        names_in(cwd.path()).is_empty(),
        "the .part of a file that has changed should be removed; {done}"
    );
    assert!(
        done.stderr.contains("the file has changed"),
        "the error should say the file changed; {done}"
    );
    let done = get(server.addr(), cwd.path(), "small.txt", &[]);
    assert_saved(&done, cwd.path(), "small.txt", b"small\n");
}

#[test]
fn an_existing_file_is_never_overwritten_without_force() {
    let served = TempDir::new();
    served.write("hello.txt", b"hello world\n");
    let server = start_server(served.path(), &[]);
    let cwd = TempDir::new();
    fs::write(cwd.path().join("hello.txt"), b"my own precious file\n").unwrap();

    let done = get(server.addr(), cwd.path(), "hello.txt", &[]);
    done.assert_failure("get over an existing file without --force");
    assert_eq!(
        fs::read(cwd.path().join("hello.txt")).unwrap(),
        b"my own precious file\n",
        "an existing file must stay as it was"
    );
    assert_eq!(
        names_in(cwd.path()),
        ["hello.txt"],
        "and no .part is made; {done}"
    );
    {
        let _guard = settings(&cwd).bind_to_scope();
        insta::assert_snapshot!("no_overwrite", done.stderr);
    }

    let done = get(server.addr(), cwd.path(), "hello.txt", &["--force"]);
    assert_saved(&done, cwd.path(), "hello.txt", b"hello world\n");
}

// ---------------------------------------------------------------------------
// Errors: one line, non-zero exit, nothing left behind
// ---------------------------------------------------------------------------

#[test]
fn a_refusal_is_one_line_naming_the_path_and_the_code() {
    let served = TempDir::new();
    served.write("served/hello.txt", b"hello world\n");
    let server = start_server(&served.path().join("served"), &[]);
    let cwd = TempDir::new();
    let done = get(server.addr(), cwd.path(), "secret/../x", &[]);
    done.assert_failure("get of a path the server refuses");
    assert_eq!(done.stdout, "", "nothing on stdout; {done}");
    assert!(
        names_in(cwd.path()).is_empty(),
        "nothing should be written; {done}"
    );
    let _guard = settings(&cwd).bind_to_scope();
    insta::assert_snapshot!("refused", done.stderr);
}

#[test]
fn a_missing_file_is_an_error_and_leaves_nothing() {
    let served = TempDir::new();
    let server = start_server(served.path(), &[]);
    let cwd = TempDir::new();
    let done = get(server.addr(), cwd.path(), "nothing.txt", &[]);
    done.assert_failure("get of a file that does not exist");
    assert_eq!(
        done.stderr,
        "error: the server refused \"nothing.txt\": not-found (no such file)\n"
    );
    assert!(
        names_in(cwd.path()).is_empty(),
        "nothing should be written; {done}"
    );
}

#[test]
fn a_server_that_is_not_running_is_one_line_with_the_fix() {
    let cwd = TempDir::new();
    let addr = closed_port().to_string();
    let done = client(cwd.path(), &["get", "x.txt", "--server", &addr]);
    done.assert_failure("get when no server listens");
    let _guard = settings(&cwd).bind_to_scope();
    insta::assert_snapshot!("not_running", done.stderr);
}

#[test]
fn a_server_that_closes_without_replying_is_one_line() {
    let cwd = TempDir::new();
    let fake = FakeServer::start();
    let mut client = start_get(&fake, cwd.path(), "x.txt");
    let mut conn = fake.accept("the client should connect");
    conn.read_line("the client should send its request line");
    drop(conn);
    let done = client.finish();
    done.assert_failure("a server that closes without a reply");
    assert!(
        done.stderr.starts_with("error: the server at 127.0.0.1:")
            && done
                .stderr
                .ends_with(" closed the connection without replying\n"),
        "{done}"
    );
    assert!(
        names_in(cwd.path()).is_empty(),
        "nothing should be written; {done}"
    );
}

#[test]
fn a_reply_the_client_does_not_understand_is_one_error_line() {
    // A digest of 3 hex digits, a size that is not a number, a lowercase
    // `ok`: none is a reply of the protocol.
    for header in ["OK 5 abc", "OK five 0123", "ok 5"] {
        let cwd = TempDir::new();
        let fake = FakeServer::start();
        let mut client = start_get(&fake, cwd.path(), "x.txt");
        let mut conn = fake.accept("the client should connect");
        conn.read_line("the client should send its request line");
        conn.send(format!("{header}\nhello").as_bytes());
        drop(conn);
        let done = client.finish();
        let expected = format!("sent a line this program does not understand: {header}");
        assert!(
            !done.status.success()
                && done.stderr.starts_with("error: the server at 127.0.0.1:")
                && done.stderr.ends_with(&format!(" {expected}\n"))
                && names_in(cwd.path()).is_empty(),
            "a server that answers `GET x.txt` with the header {header:?} has not said \
             `OK <size> <64 hex digits>`, so parse_reply should give None, and get should fail \
             with the one line `error: the server at ADDR {expected}` and write nothing {}; {done}",
            book::PROTOCOL
        );
    }
}

// ---------------------------------------------------------------------------
// list
// ---------------------------------------------------------------------------

#[test]
fn list_prints_a_table_of_the_servers_files() {
    let served = TempDir::new();
    served.write("hello.txt", b"hello world\n");
    served.write("big.bin", &bytes(3 * 1024 * 1024, 7));
    served.write("données/naïve café.txt", "déjà vu\n".as_bytes());
    served.write(".env", b"TOKEN=secret\n");
    let server = start_server(served.path(), &[]);
    let cwd = TempDir::new();
    let addr = server.addr().to_string();
    let done = client(cwd.path(), &["list", "--server", &addr]);
    done.assert_success("list");
    let _guard = settings(&cwd).bind_to_scope();
    insta::assert_snapshot!("list", done.stdout);
}
