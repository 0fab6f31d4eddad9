//! The lessons against Python programs that behave like the original
//! lesson's (tests/interop/*.py, standard library only): the lessons must
//! work with peers nobody in this project wrote.
//!
//! These tests need `python3`; without it they show as ignored, with the
//! reason (in CI, where `.ci/run` installs it, the build fails instead).

use testkit::{Process, binary, interop_script, line_protocol, run, tool};

fn script(name: &str) -> String {
    interop_script(name).to_string_lossy().into_owned()
}

#[test]
#[cfg_attr(not(has_python3), ignore = "needs python3: install it, or run .ci/run")]
fn the_original_client_against_lesson_2() {
    let Some(python) = tool("python3") else {
        return;
    };
    let mut server = Process::server(&binary("server", "02-server"), &[]);
    let port = server.addr().port().to_string();

    // It sends `hello from python` with no newline and closes without
    // reading: the server must still print the message and end cleanly.
    let client = run(
        &python,
        &[
            &script("original_client.py"),
            "127.0.0.1",
            &port,
            "hello from python",
        ],
        "",
    );
    client.assert_success("the original-style Python client");
    server.wait_for("received: hello from python");
    server
        .finish()
        .assert_success("lesson 2 after the original-style client");
}

#[test]
#[cfg_attr(not(has_python3), ignore = "needs python3: install it, or run .ci/run")]
fn lesson_1_against_the_original_one_shot_server() {
    let Some(python) = tool("python3") else {
        return;
    };
    let mut server = Process::server(&python, &[&script("original_server.py")]);
    let addr = server.addr().to_string();

    let client = run(
        &binary("client", "01-client"),
        &["--server", &addr, "hello"],
        "",
    );
    client.assert_success("lesson 1 against the original-style one-shot server");
    // The original replies `OK` with no newline and closes: the end of the
    // stream ends that last line.
    assert!(
        client
            .stdout
            .ends_with("reply: OK\nserver closed the connection\n"),
        "lesson 1 should print the Python server's `OK` (sent without a newline); {client}"
    );
    server.wait_for("received b'hello\\n'");
}

#[test]
#[cfg_attr(not(has_python3), ignore = "needs python3: install it, or run .ci/run")]
fn lesson_1_against_the_original_multi_client_server() {
    let Some(python) = tool("python3") else {
        return;
    };
    let mut server = Process::server(&python, &[&script("original_multi_server.py")]);
    let addr = server.addr().to_string();
    let client_bin = binary("client", "01-client");

    // Two clients one after the other: the server serves each until it
    // half-closes, and then takes the next.
    for word in ["first", "second"] {
        let client = run(&client_bin, &["--server", &addr, word], "");
        client.assert_success("lesson 1 against the original-style multi-client server");
        assert!(
            client
                .stdout
                .ends_with("reply: ok\nserver closed the connection\n"),
            "lesson 1 was run with `{word}` against a server in the original lesson's style, \
             which answers `ok` to each read and closes when the client half-closes: the client \
             should print `reply: ok`, then `server closed the connection`. `ok` twice, or \
             `okok`, means the line reached the server in two pieces: the message and its \
             newline must leave in one write_all, exercise 1.2 \
             (book: 01-client.md § Step 2: send). No `server closed the connection` means the \
             client did not half-close, or did not read to the end, exercises 1.2 and 1.3 \
             (book: 01-client.md § Step 3: half-close). {client}"
        );
        server.wait_for(&format!("received b'{word}\\n'"));
    }
}

#[test]
#[cfg_attr(not(has_python3), ignore = "needs python3: install it, or run .ci/run")]
fn the_original_client_against_lesson_3_in_both_modes() {
    let Some(python) = tool("python3") else {
        return;
    };
    for mode in [&[][..], &["--one-at-a-time"]] {
        let mut server = Process::server(&binary("multi-client", "03-multi-client"), mode);
        let port = server.addr().port().to_string();
        // No newline, and it closes without reading the `ok`: the server
        // must print the line, and carry on serving the next client.
        for message in ["first from python", "second from python"] {
            let client = run(
                &python,
                &[&script("original_client.py"), "127.0.0.1", &port, message],
                "",
            );
            client.assert_success("the original-style Python client");
            server.wait_for(&format!("] {message}"));
        }
    }
}

#[test]
#[cfg_attr(not(has_python3), ignore = "needs python3: install it, or run .ci/run")]
fn the_python_stand_ins_the_benchmarks_measure_speak_lesson_3s_protocol() {
    let Some(python) = tool("python3") else {
        return;
    };
    // The benchmarks of lessons 3 and 6 compare the lessons with these
    // programs: a comparison is only fair if they do the same work.
    for name in ["threading_server.py", "asyncio_server.py"] {
        let start = |extra: &[&str]| {
            let script = script(name);
            let mut args = vec![script.as_str()];
            args.extend(extra);
            Process::server(&python, &args)
        };
        line_protocol::one_client_gets_ok_for_each_line(start);
        line_protocol::a_second_client_is_answered_while_the_first_is_connected(start);
        line_protocol::two_lines_in_one_write_get_two_replies(start);
        line_protocol::a_line_in_several_writes_gets_one_reply_when_it_is_whole(start);
        line_protocol::a_last_line_without_newline_still_gets_its_reply(start);
    }
}

/// Whether `line` is `WELCOME <name> 127.0.0.1:<port>`: the port is the
/// client's ephemeral one, different on every run.
fn is_welcome(line: &str, name: &str) -> bool {
    line.strip_prefix(&format!("WELCOME {name} 127.0.0.1:"))
        .and_then(|port| port.parse::<u16>().ok())
        .is_some_and(|port| port != 0)
}

#[test]
#[cfg_attr(not(has_python3), ignore = "needs python3: install it, or run .ci/run")]
fn a_python_client_chats_with_a_rust_client_through_lesson_4() {
    let Some(python) = tool("python3") else {
        return;
    };
    let mut server = Process::server(&binary("relay", "04-relay"), &["serve"]);
    let addr = server.addr().to_string();
    let port = server.addr().port().to_string();

    let mut alice = Process::start(
        &binary("relay", "04-relay"),
        &["join", "alice", "--server", &addr],
    );
    alice.wait_for("joined as alice");

    let mut py = Process::start(
        &python,
        &[&script("relay_client.py"), "127.0.0.1", &port, "py"],
    );
    let welcome = py.next_line("the Python client should print the server's WELCOME first");
    assert!(
        is_welcome(&welcome, "py"),
        "the relay should answer `HELLO py` with `WELCOME py 127.0.0.1:<port>`; got {welcome:?}"
    );
    expect_line(
        &mut alice,
        "-- py joined",
        "alice should hear that py joined",
    );

    // Python to Rust, through the server.
    py.send("SEND alice hello from python");
    expect_next(&mut py, "SENT alice", "the relay confirms `SEND alice ...`");
    expect_line(
        &mut alice,
        "[py] hello from python",
        "alice should print the Python client's line as `[py] ...`",
    );

    // Rust to Python, through the server.
    alice.send("/to py hi from rust");
    expect_next(
        &mut py,
        "FROM alice hi from rust",
        "alice's `/to py hi from rust` should reach the Python client",
    );
    expect_line(
        &mut alice,
        "-- sent to py",
        "alice should see her line confirmed",
    );

    py.send("LIST");
    expect_next(&mut py, "PEERS alice py", "`LIST` names everyone, sorted");

    // BYE: the server answers BYE and closes, and the client exits 0.
    py.send("BYE");
    expect_next(&mut py, "BYE", "the relay answers `BYE` before it closes");
    let done = py.finish();
    done.assert_success("the Python client after BYE");
    assert_eq!(
        done.stdout,
        format!("{welcome}\nSENT alice\nFROM alice hi from rust\nPEERS alice py\nBYE\n"),
        "the Python client should print exactly the lines the server sent; {done}"
    );
    expect_line(&mut alice, "-- py left", "alice should hear that py left");
    server.wait_for("py left");

    alice
        .finish()
        .assert_success("lesson 4's client after its input ends");
}

/// Waits for the line of `process` that contains `exact`, and asserts it is
/// that whole line and nothing more.
fn expect_line(process: &mut Process, exact: &str, what: &str) {
    let line = process.wait_for(exact);
    if line != exact {
        process.fail(&format!(
            "{what}: expected the line {exact:?}; got {line:?}"
        ));
    }
}

/// Asserts the very next line of `process` is `exact`.
fn expect_next(process: &mut Process, exact: &str, what: &str) {
    let line = process.next_line(&format!("{what}: expected the line {exact:?}"));
    if line != exact {
        process.fail(&format!(
            "{what}: expected the line {exact:?}; got {line:?}"
        ));
    }
}

#[test]
#[cfg_attr(not(has_python3), ignore = "needs python3: install it, or run .ci/run")]
fn a_python_client_downloads_from_lesson_5_and_checks_the_digest() {
    let Some(python) = tool("python3") else {
        return;
    };
    let folder = testkit::TempDir::new();
    let content: Vec<u8> = (0..200_000u32).flat_map(|n| n.to_le_bytes()).collect();
    folder.write("data/numbers.bin", &content);
    folder.write("秘密.txt", "不是秘密\n".as_bytes());
    let dir = folder.path().to_string_lossy().into_owned();
    let server = Process::server(
        &binary("file-download", "05-file-download"),
        &["serve", &dir],
    );
    let port = server.addr().port().to_string();

    let saves = testkit::TempDir::new();
    for (path, bytes) in [
        ("data/numbers.bin", &content[..]),
        ("秘密.txt", "不是秘密\n".as_bytes()),
    ] {
        let out = saves.path().join("out");
        let out_text = out.to_string_lossy().into_owned();
        let done = run(
            &python,
            &[&script("download.py"), "127.0.0.1", &port, path, &out_text],
            "",
        );
        done.assert_success(&format!(
            "a Python client downloading {path:?} from lesson 5"
        ));
        assert_eq!(
            std::fs::read(&out).unwrap(),
            bytes,
            "the Python client should receive {path:?} byte for byte"
        );
    }

    // A refusal is one line the Python client can print as it is.
    let out = saves.path().join("refused").to_string_lossy().into_owned();
    let done = run(
        &python,
        &[
            &script("download.py"),
            "127.0.0.1",
            &port,
            "../etc/passwd",
            &out,
        ],
        "",
    );
    done.assert_failure("a Python client asking for ../etc/passwd");
    assert!(
        done.stdout.starts_with("ERR forbidden "),
        "lesson 5 should refuse a path with `..` as `ERR forbidden ...`; {done}"
    );
}
