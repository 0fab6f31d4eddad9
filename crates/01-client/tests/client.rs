//! Checks for lesson 1, the client. Write the client yourself, then run
//! `cargo test -p client`: each test names what the client should do.
//!
//! Most tests stand in for the server with a `FakeServer`: a listening
//! socket inside the test, which checks the exact bytes the client sends and
//! answers by hand. A client given a message runs to completion, so it runs
//! through `assert_cmd` while the fake server plays its part on a thread;
//! a client typing lines runs as a `Process` the test talks to.

// Helpers fail the test by panicking, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod book;

use std::io::{BufReader, Read};
use std::panic;
use std::path::Path;
use std::process::{Command as StdCommand, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use assert_cmd::assert::Assert;
use predicates::prelude::*;
use testkit::{
    Connection, FakeServer, Process, WAIT, closed_port, snapshot_settings,
    snapshot_settings_with_ports,
};

fn client_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_01-client"))
}

/// The client run to completion with `args`, within [`WAIT`].
fn client(args: &[&str]) -> Assert {
    Command::cargo_bin("01-client")
        .unwrap_or_else(|err| panic!("could not find the binary `01-client`: {err}"))
        .args(args)
        .timeout(WAIT)
        .assert()
}

/// Runs the client with `--server` set to `server` and then `args`, to
/// completion, while `play` acts the server's part on the connection it
/// accepted. Returns the client's run and what `play` returned (a
/// connection `play` keeps open stays open until the client has exited).
/// A failure in `play` shows the client's output too.
fn against<R: Send + 'static>(
    server: FakeServer,
    args: &[&str],
    play: impl FnOnce(Connection) -> R + Send + 'static,
) -> (Assert, R) {
    let addr = server.addr().to_string();
    against_at(server, &addr, args, play)
}

/// [`against`], with `--server` given as `addr` (a name, say).
fn against_at<R: Send + 'static>(
    server: FakeServer,
    addr: &str,
    args: &[&str],
    play: impl FnOnce(Connection) -> R + Send + 'static,
) -> (Assert, R) {
    let playing = thread::spawn(move || {
        play(server.accept(&format!(
            "the client should connect to the address given with --server \
             {}",
            book::STEP_1_CONNECT
        )))
    });
    let mut all = vec!["--server", addr];
    all.extend(args);
    let run = client(&all);
    match playing.join() {
        Ok(played) => (run, played),
        Err(failure) => {
            eprintln!("--- the client's run ---\n{run}");
            panic::resume_unwind(failure)
        }
    }
}

/// Starts the client with `args` against `server`, in the background, to
/// type lines on its standard input.
fn start_client(server: &FakeServer, args: &[&str]) -> Process {
    let addr = server.addr().to_string();
    let mut all = vec!["--server", addr.as_str()];
    all.extend(args);
    Process::start(client_bin(), &all)
}

fn stdout(run: &Assert) -> String {
    String::from_utf8_lossy(&run.get_output().stdout).into_owned()
}

fn stderr(run: &Assert) -> String {
    String::from_utf8_lossy(&run.get_output().stderr).into_owned()
}

#[test]
fn sends_the_message_and_a_newline_then_half_closes_then_prints_the_reply() {
    let server = FakeServer::start();
    let server_port = server.addr().port();
    let (run, client_port) = against(server, &["--timeout", "2", "hello", "world"], |mut conn| {
        // read_to_end only returns when the client half-closes: if it did
        // not shut down its writing side, this read would wait and fail.
        let sent = conn.read_to_end(&format!(
            "the client was run with `hello world`: it should send its message and then \
             half-close (shutdown Write), so the server reads end-of-input \
             {}",
            book::STEP_3_HALF_CLOSE
        ));
        assert_eq!(
            testkit::show(&sent),
            testkit::show(b"hello world\n"),
            "the client was run with the words `hello` and `world`: it should send them joined \
             by a space, then one newline, in one write_all {}",
            book::STEP_2_SEND
        );
        let client_port = conn.stream().peer_addr().unwrap().port();
        conn.send(b"OK\n");
        client_port
    });
    let out = stdout(&run);
    assert!(
        out.contains("reply: OK\n") && out.ends_with("server closed the connection\n"),
        "the client sent `hello world`, and the server replied `OK\\n` after reading the \
         client's end of input, then closed: the client should print `reply: OK`, then \
         `server closed the connection`. shutdown(Shutdown::Write) closes only the sending \
         side, and the reply comes on the reading side, which stays open \
         {}. The client printed:\n{out}{}",
        book::STEP_3_HALF_CLOSE,
        stderr(&run)
    );
    let run = run.success();
    // Where it connected, and from where: the two ports must not be swapped.
    let _guard = snapshot_settings_with_ports(&[
        (server_port, "listen port"),
        (client_port, "client's port"),
    ])
    .bind_to_scope();
    insta::assert_snapshot!("hello_world", stdout(&run));
}

/// Runs the client with the message `hi` and answers it with `reply`,
/// written in the pieces given, then closes.
fn reply_to_hi(reply: &'static [&'static [u8]]) -> Assert {
    let (run, ()) = against(FakeServer::start(), &["hi"], move |mut conn| {
        conn.expect_bytes(
            b"hi\n",
            &format!(
                "the client was run with `hi`: it should send `hi` and a newline \
             {}",
                book::STEP_2_SEND
            ),
        );
        for piece in reply {
            conn.send(piece);
        }
    });
    run
}

#[test]
fn prints_every_reply_line_until_the_server_closes() {
    // A reply in pieces, with a last line that has no newline.
    let run = reply_to_hi(&[b"first\nsec", b"ond\nno newline at the end"]);
    let (out, err) = (stdout(&run), stderr(&run));
    let lines = "reply: first\nreply: second\nreply: no newline at the end\n";
    assert!(
        out.contains(lines),
        "the server replied to `hi` in two pieces, `first\\nsec` and then `ond\\nno newline \
         at the end`, and closed: the client should read until the server closes, a line at a \
         time with read_line (one read is not one line), and print each line as `reply: LINE`, \
         the last one too though no newline ends it:\n{lines} \
         {}. It printed:\n{out}and on stderr: {err}",
        book::STEP_4_READ_THE_REPLY
    );
    assert!(
        out.ends_with(&format!("{lines}server closed the connection\n"))
            && run.get_output().status.success(),
        "the server replied to `hi` and closed the connection (a read returned 0 bytes): after \
         the last reply line, the client should print `server closed the connection` and exit \
         with status 0 {}. It printed:\n{out}and \
         on stderr: {err}",
        book::STEP_4_READ_THE_REPLY
    );
}

#[test]
fn reply_bytes_are_printed_escaped_never_raw() {
    let run = reply_to_hi(&[b"\x1b[2Jcleared? caf\xe9 \xe4\xbd\xa0\xe5\xa5\xbd\n"]);
    let out = stdout(&run);
    let escaped = "reply: \\u{1b}[2Jcleared? caf\\xe9 你好\n";
    // The server replied with a terminal escape (ESC [2J) and invalid UTF-8.
    assert!(
        out.contains(escaped),
        "the server replied `\\x1b[2Jcleared? caf\\xe9 你好` (a terminal escape that clears \
         the screen, and a byte that is not UTF-8): reply bytes must be printed escaped, with \
         print_reply, never raw, so the client should print `{}` \
         {}. It printed:\n{}",
        escaped.trim_end(),
        book::STEP_4_READ_THE_REPLY,
        out.escape_debug()
    );
}

/// A server that replies one line and then resets the connection (a crash,
/// or a close with bytes of ours unread): the reply is printed, and the
/// reset is an error, `lost the connection`, never taken for the server
/// closing.
#[test]
fn a_reset_after_the_reply_is_an_error_not_a_close() {
    let (run, ()) = against(FakeServer::start(), &["hi"], |mut conn| {
        conn.expect_bytes(
            b"hi\n",
            &format!(
                "the client was run with `hi`: it should send `hi` and a newline \
             {}",
                book::STEP_2_SEND
            ),
        );
        conn.send(b"first\n");
        conn.reset();
    });
    let (out, err) = (stdout(&run), stderr(&run));
    assert!(
        out.contains("reply: first\n"),
        "the server replied `first\\n` and then reset the connection: the reply came before \
         the reset, and the client should print it, `reply: first` \
         {}. It printed:\n{out}and on stderr: {err}",
        book::STEP_4_READ_THE_REPLY
    );
    assert!(
        !run.get_output().status.success()
            && !out.contains("server closed the connection")
            && err.contains("lost the connection to"),
        "the server replied `first\\n` and then reset the connection (RST: a read fails with \
         `ConnectionReset`): a reset is not a close. The client should not print `server \
         closed the connection`; it should fail with one line, `lost the connection to ADDR: \
         reset by peer` {}. It printed:\n{out}and \
         on stderr: {err}",
        book::STEP_4_READ_THE_REPLY
    );
}

#[test]
fn lines_from_standard_input_are_sent_as_typed_and_replies_shown_as_they_come() {
    let server = FakeServer::start();
    // --timeout 2: a client that does not half-close fails in 2 s, not 5.
    let mut client = start_client(&server, &["--timeout", "2"]);
    let mut conn = server.accept(&format!(
        "the client should connect to the address given with --server \
         {}",
        book::STEP_1_CONNECT
    ));

    client.send("one");
    conn.expect_bytes(
        b"one\n",
        &format!(
            "`one` was typed: a typed line should be sent at once, with its newline \
         {}",
            book::TYPING_LINES
        ),
    );
    conn.send(b"ok\n");
    client.expect_line(
        "reply: ok",
        &format!(
            "the server replied `ok\\n` to the typed line: the client should print it at once \
         {}",
            book::TYPING_LINES
        ),
    );

    client.send("two");
    conn.expect_bytes(
        b"two\n",
        &format!(
            "`two` was typed: the second typed line should be sent at once \
         {}",
            book::TYPING_LINES
        ),
    );
    conn.send(b"ok\n");
    client.expect_line(
        "reply: ok",
        &format!(
            "the server replied `ok\\n` to the second line: the client should print it at once \
         {}",
            book::TYPING_LINES
        ),
    );

    client.close_stdin();
    let rest = conn.read_to_end(&format!(
        "standard input ended: the client should half-close {}",
        book::TYPING_LINES
    ));
    assert_eq!(
        testkit::show(&rest),
        "nothing",
        "nothing more should be sent after the typed lines {}",
        book::TYPING_LINES
    );
    let client_port = conn.stream().peer_addr().unwrap().port();
    drop(conn);
    let done = client.finish();
    done.assert_success(&format!(
        "standard input ended and the server closed: the client should exit with status 0 \
         {}",
        book::TYPING_LINES
    ));
    let _guard = snapshot_settings_with_ports(&[
        (server.addr().port(), "listen port"),
        (client_port, "client's port"),
    ])
    .bind_to_scope();
    insta::assert_snapshot!("typed_lines", done.stdout);
}

#[test]
fn typed_bytes_that_are_not_utf8_are_sent_as_they_are() {
    let server = FakeServer::start();
    let mut client = start_client(&server, &[]);
    let mut conn = server.accept(&format!(
        "the client should connect to the address given with --server \
         {}",
        book::STEP_1_CONNECT
    ));
    client.send_bytes(b"caf\xe9 \x1b[1m\n");
    conn.expect_bytes(
        b"caf\xe9 \x1b[1m\n",
        &format!(
            "a line that is not UTF-8 was typed: it should be sent byte for byte \
         {}",
            book::TYPING_LINES
        ),
    );
    client.expect_line(
        "sent 9 bytes: caf\\xe9 \\u{1b}[1m",
        &format!(
            "after sending a typed line that is not UTF-8, the client should say so, escaped \
         {}",
            book::STEP_4_READ_THE_REPLY
        ),
    );
    client.close_stdin();
    drop(conn);
    client.finish().assert_success(&format!(
        "standard input ended and the server closed: the client should exit with status 0 \
         {}",
        book::TYPING_LINES
    ));
}

#[test]
fn an_empty_standard_input_is_an_empty_conversation() {
    let server = FakeServer::start();
    let mut client = start_client(&server, &["--timeout", "2"]);
    let mut conn = server.accept(&format!(
        "the client should connect to the address given with --server \
         {}",
        book::STEP_1_CONNECT
    ));
    client.close_stdin();
    assert_eq!(
        testkit::show(&conn.read_to_end(&format!(
            "standard input was empty: the client should half-close at once \
             {}",
            book::TYPING_LINES
        ))),
        "nothing",
        "standard input was empty: nothing should be sent {}",
        book::TYPING_LINES
    );
    drop(conn);
    client.finish().assert_success(&format!(
        "standard input was empty and the server closed: the client should exit with status 0 \
         {}",
        book::TYPING_LINES
    ));
}

#[test]
fn an_empty_message_is_an_empty_line() {
    // --timeout 2: a client that never half-closes waits 2 s for a reply
    // that cannot come (the server waits for its end of input), gives up and
    // fails; that is how this test sees it.
    let (run, ()) = against(FakeServer::start(), &["--timeout", "2", ""], |mut conn| {
        assert_eq!(
            testkit::show(&conn.read_to_end(&format!(
                "the client was run with an empty MESSAGE: it should send its line and \
                 half-close {}",
                book::STEP_3_HALF_CLOSE
            ))),
            testkit::show(b"\n"),
            "the client was run with an empty MESSAGE: it is sent as an empty line, just the \
             newline {}",
            book::STEP_2_SEND
        );
    });
    let (out, err) = (stdout(&run), stderr(&run));
    assert!(
        run.get_output().status.success(),
        "the client was run with an empty MESSAGE and `--timeout 2`, against a server that \
         reads until end of input and then closes: the client should send the empty line, \
         then half-close (shutdown(Shutdown::Write)) so that the server reads end of input, \
         and exit with status 0 when the server closes \
         {}. It printed:\n{out}and on stderr: {err}",
        book::STEP_3_HALF_CLOSE
    );
    assert!(
        out.contains("sent 0 bytes: \n"),
        "the client was run with an empty MESSAGE: it should say `sent 0 bytes: ` \
         {}. It printed:\n{out}",
        book::STEP_2_SEND
    );
}

#[test]
fn a_refused_connection_names_the_address_and_the_fix() {
    let addr = closed_port().to_string();
    // Nobody listens there: one line on stderr that names the address and
    // says how to start the server (book: 01-client.md § When things go wrong).
    let run = client(&["--server", &addr, "hello"])
        .failure()
        .stdout("")
        .stderr(predicate::str::contains(format!(
            "could not connect to {addr}: connection refused"
        )));
    let _guard = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("refused", stderr(&run));
}

#[test]
fn a_server_that_never_answers_ends_after_the_timeout() {
    // The fake server accepts, keeps the connection open and says nothing:
    // after --timeout the client gives up with one line
    // (book: 01-client.md § When things go wrong).
    let (run, _held) = against(
        FakeServer::start(),
        &["--timeout", "1", "anyone there?"],
        |conn| conn,
    );
    let (out, err) = (stdout(&run), stderr(&run));
    assert!(
        !run.get_output().status.success() && err.contains("within 1 s"),
        "the server accepted the connection and then said nothing, and kept it open: with \
         `--timeout 1`, the client should give up after 1 s with one line, `no reply from ADDR \
         within 1 s (...)`, and a non-zero exit status; a read timeout is WouldBlock or \
         TimedOut, neither a close nor a lost connection \
         {}. It printed:\n{out}and on stderr: {err}",
        book::WHEN_THINGS_GO_WRONG
    );
    let _guard = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("no_reply", stderr(&run));
}

#[test]
fn a_bad_address_is_one_error_line() {
    // `127.0.0.1:port` is not HOST:PORT: one line that shows the right form
    // (book: 01-client.md § When things go wrong).
    let run = client(&["--server", "127.0.0.1:port", "hello"])
        .failure()
        .stdout("")
        .stderr(predicate::str::starts_with("error: bad address"));
    let _guard = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("bad_address", stderr(&run));
}

#[test]
fn help_describes_the_client_and_its_options() {
    client(&["--help"]).success().stdout(
        predicate::str::contains("closes its sending side")
            .and(predicate::str::contains("--server <ADDR>"))
            .and(predicate::str::contains("--timeout <SECS>")),
    );
}

#[test]
fn connects_over_ipv6() {
    let (run, ()) = against(FakeServer::on("[::1]:0"), &["over", "six"], |mut conn| {
        conn.expect_bytes(
            b"over six\n",
            &format!(
                "the client was given an [IPv6]:PORT address: it should connect and send its \
             message {}",
                book::STEP_1_CONNECT
            ),
        );
    });
    run.success()
        .stdout(predicate::str::starts_with("connected to [::1]:"));
}

#[test]
fn a_name_like_localhost_is_resolved_and_connected_to() {
    // `localhost` names 127.0.0.1, and on many machines ::1 as well; the
    // server listens on 127.0.0.1 only. Where ::1 comes first, a client that
    // gave up after it refused fails here. Where it does not, the unit test
    // `when_the_first_address_refuses_the_next_one_is_tried` in common
    // checks the fallback with addresses it controls.
    let server = FakeServer::start();
    let name = format!("localhost:{}", server.addr().port());
    let (run, ()) = against_at(server, &name, &["by", "name"], |mut conn| {
        conn.expect_bytes(
            b"by name\n",
            &format!(
                "the client was given `localhost:PORT`: it should resolve the name, connect to \
             the address that listens and send its message {}",
                book::STEP_1_CONNECT
            ),
        );
    });
    run.success();
}

/// How many TCP segments with data the connection `conn` has received, as
/// the kernel counts them (`data_segs_in` in `ss -ti`, Linux 4.6 and
/// later); `None` where `ss` cannot say (another system, no iproute2).
fn data_segments_in(conn: &Connection) -> Option<u64> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let local = conn.local_addr();
    let peer = conn.stream().peer_addr().unwrap();
    let out = StdCommand::new("ss")
        .args(["-tinH", "state", "all"])
        .arg(format!(
            "( sport = :{} and dport = :{} )",
            local.port(),
            peer.port()
        ))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let at = text.find("data_segs_in:")? + "data_segs_in:".len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The message and its newline must leave in one write. A server that
/// takes one read as the whole message (the original lesson's one-shot
/// server does one `recv`) then finds the whole line; written in two
/// pieces, the message goes out at once as its own TCP segment and the
/// newline follows, and the server gets `hello world` without its newline,
/// or the next message's bytes glued on.
///
/// Whether a read sees the two pieces apart depends on timing, so this
/// test does not rely on it alone. It reads once, as soon as the first
/// bytes arrive, like that server, and reports a half line if it gets one;
/// then, on Linux, it asks the kernel how many TCP segments carried data
/// on this connection (`ss -ti`, `data_segs_in`). The first write of a
/// connection always leaves at once as its own segment (nothing is waiting
/// for an acknowledgement, so Nagle's algorithm does not hold it), so two
/// writes of a short line are two segments, every time; one write is one
/// segment. On macOS `ss` does not exist and only the read is checked: the
/// test can then miss the mistake (it never fails a correct client).
#[test]
fn the_message_and_its_newline_leave_in_one_write() {
    let (run, (first_read, rest, segments)) = against(
        FakeServer::start(),
        &["--timeout", "2", "hello", "world"],
        |mut conn| {
            // One read, as the one-shot server does: whatever has arrived.
            let mut first = [0; 4096];
            let n = conn
                .stream()
                .try_clone()
                .unwrap()
                .read(&mut first)
                .unwrap_or(0);
            let first = first[..n].to_vec();
            let rest = conn.read_to_end(&format!(
                "the client was run with `hello world`: it should send its line and then \
                 half-close {}",
                book::STEP_3_HALF_CLOSE
            ));
            let segments = data_segments_in(&conn);
            conn.send(b"OK\n");
            (first, rest, segments)
        },
    );
    let mut whole = first_read.clone();
    whole.extend_from_slice(&rest);
    assert_eq!(
        testkit::show(&whole),
        testkit::show(b"hello world\n"),
        "the client was run with the words `hello` and `world`: it should send them joined \
         by a space, then one newline {}",
        book::STEP_2_SEND
    );
    let pieces = match segments {
        Some(n) if n > 1 => format!(
            "the kernel counted {n} TCP segments with data for this one short line, one per \
             write"
        ),
        _ => String::new(),
    };
    let half_line = first_read != b"hello world\n";
    assert!(
        !half_line && pieces.is_empty(),
        "the message and its newline must leave in one write_all (one buffer, such as \
         `format!(\"{{message}}\\n\")`): the client was run with `hello world` and {}. A server \
         that takes one read as the message, as the original lesson's one-shot server does, \
         {} {}",
        if pieces.is_empty() {
            format!(
                "one read got {} before the rest arrived",
                testkit::show(&first_read)
            )
        } else {
            pieces
        },
        if half_line {
            format!(
                "got only {} here, without its newline",
                testkit::show(&first_read)
            )
        } else {
            "gets the message without its newline whenever it reads between the two writes"
                .to_string()
        },
        book::STEP_2_SEND
    );
    run.success();
}

/// The client, run with `args` and its standard output a pipe that the
/// test reads only when `barrier` returns. A message longer than the pipe
/// holds (64 KiB) keeps the client waiting in its `sent N bytes` line, after
/// `write_all` and before `shutdown`, until then. Returns the client's
/// standard output, standard error, and whether it exited with status 0.
fn with_stdout_held(args: &[&str], barrier: impl FnOnce()) -> (String, String, bool) {
    let mut child = StdCommand::new(client_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let errors = thread::spawn(move || {
        let mut text = String::new();
        let _ = err_pipe.read_to_string(&mut text);
        text
    });
    let out_pipe = child.stdout.take().unwrap();
    let played = panic::catch_unwind(panic::AssertUnwindSafe(barrier));
    let output = thread::spawn(move || {
        let mut text = Vec::new();
        let _ = BufReader::new(out_pipe).read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    });
    let deadline = Instant::now() + testkit::WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    let out = output.join().unwrap();
    let err = errors.join().unwrap();
    if let Err(failure) = played {
        eprintln!("--- the client's output ---\n{out}\n--- its errors ---\n{err}");
        panic::resume_unwind(failure);
    }
    (out, err, status.is_some_and(|status| status.success()))
}

/// A server that reads the line, replies, and resets the connection (it
/// closed with SO_LINGER 0; a server that closes with some of the client's
/// bytes unread does the same) before the client half-closes: the client's
/// `shutdown(Write)` then fails with "not connected" (ENOTCONN on Linux).
/// That is no error: the reply came before the reset and waits in the
/// client's receive buffer. The order is certain: the message is longer
/// than a pipe holds, so the client stays in its `sent` line, between
/// `write_all` and `shutdown`, until the test reads its output, which it
/// does only after the reset.
#[test]
fn a_half_close_that_finds_the_connection_reset_is_no_error() {
    let server = FakeServer::start();
    let addr = server.addr().to_string();
    let message = "x".repeat(100_000);
    let (out, err, _) = with_stdout_held(&["--server", &addr, &message], || {
        let mut conn = server.accept(&format!(
            "the client should connect to the address given with --server \
             {}",
            book::STEP_1_CONNECT
        ));
        let line = conn.read_line(&format!(
            "the client was run with a message of 100,000 bytes: it should send it and a \
             newline {}",
            book::STEP_2_SEND
        ));
        assert_eq!(
            line.len(),
            100_000,
            "the client was run with a message of 100,000 bytes: it should send all of it \
             {}",
            book::STEP_2_SEND
        );
        conn.send(b"OK\n");
        conn.reset();
    });
    assert!(
        out.contains("reply: OK\n"),
        "the server read the 100,000-byte line, replied `OK\\n` and reset the connection \
         before the client half-closed, so shutdown(Write) failed with NotConnected: that is \
         no error here, the server may have closed already and its reply is waiting; the \
         client should go on and print `reply: OK` {}. \
         It printed:\n{}\nand on stderr: {err}",
        book::STEP_3_HALF_CLOSE,
        out.replace(&message, "x…x")
    );
}

/// A single `write` may take only part of the bytes and return how many it
/// took; code that ignores that count loses the rest without any error.
/// `write_all` loops until the kernel has taken every byte.
///
/// Deterministic, with no timer: the message (400,003 bytes) is far more
/// than the two sockets' buffers hold, so the client's write waits for
/// room while the fake server reads nothing. Once the first bytes have
/// arrived (the write is under way), the test freezes the client (SIGSTOP)
/// and waits until it has stopped, then lets it run again (SIGCONT): a
/// signal ends a write that is waiting for room, and it returns the count
/// taken so far, as a write timeout would. `write_all` writes the rest;
/// a lone `write` has sent only part. Then the server reads everything.
#[cfg(unix)]
#[test]
fn a_long_message_is_sent_whole_even_when_a_write_takes_only_part() {
    use rustix::process::{Pid, WaitOptions, waitpid};

    // Small buffers, so that 400,003 bytes cannot all be taken at once: a
    // small receive buffer on the server's side, and a small segment size
    // (MSS) announced to the client, from which its kernel sizes its send
    // buffer (Linux gives a loopback connection megabytes otherwise).
    let listener =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    listener.set_recv_buffer_size(4096).unwrap();
    listener.set_tcp_mss(1024).unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    listener.bind(&any.into()).unwrap();
    listener.listen(1).unwrap();
    let listener = std::net::TcpListener::from(listener);
    let addr = listener.local_addr().unwrap().to_string();
    let word = "y".repeat(100_000);
    let mut client = start_client_with(&addr, &["--timeout", "2", &word, &word, &word, &word]);
    let (stream, _) = listener.accept().unwrap();
    let mut conn = Connection::from_stream(stream);
    let mut first = [0; 1];
    conn.stream().peek(&mut first).unwrap_or_else(|err| {
        panic!(
            "the client was run with a message of 400,003 bytes: it should start sending it; \
             nothing came ({err}) {}",
            book::STEP_2_SEND
        )
    });
    client.freeze();
    let pid = Pid::from_raw(client.pid() as i32).unwrap();
    let stopped = waitpid(Some(pid), WaitOptions::UNTRACED).unwrap();
    assert!(
        stopped.is_some_and(|(_, status)| status.stopped()),
        "the client should have stopped after SIGSTOP; {stopped:?}"
    );
    client.thaw();
    let sent = conn.read_to_end(&format!(
        "the client was run with a message of 400,003 bytes: it should send all of it, then \
         half-close {}",
        book::STEP_3_HALF_CLOSE
    ));
    let expected = 4 * 100_000 + 3 + 1;
    assert!(
        sent.len() == expected,
        "the client was run with a message of 400,003 bytes (four words of 100,000), and the \
         server read only {} of the {expected} bytes of the line before the client \
         half-closed: a single write() may take only part of the bytes and return how many \
         it took (here a signal ended a write that was waiting for room; a write timeout or a \
         non-blocking socket does the same), and ignoring that count loses the rest; \
         write_all loops until the kernel has taken every byte \
         {}",
        sent.len(),
        book::STEP_2_SEND
    );
    assert!(
        sent.iter().filter(|&&b| b == b'\n').count() == 1 && sent.ends_with(b"\n"),
        "the client was run with a message of 400,003 bytes: it should send it and one \
         newline, at the end {}",
        book::STEP_2_SEND
    );
    conn.send(b"OK\n");
    drop(conn);
    client.finish().assert_success(&format!(
        "the client sent its long message whole and the server replied and closed: it \
         should exit with status 0 {}",
        book::STEP_4_READ_THE_REPLY
    ));
}

/// The client with `--server addr` and `args`, in the background.
#[cfg(unix)]
fn start_client_with(addr: &str, args: &[&str]) -> Process {
    let mut all = vec!["--server", addr];
    all.extend(args);
    Process::start(client_bin(), &all)
}
