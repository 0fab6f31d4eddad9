//! The `nc` commands of the book's appendix, run as they are printed there:
//! each is a script in tests/interop/nc/, which the book includes and this
//! test runs with `PORT` set to the port of a server it started.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use testkit::{Finished, Process, TempDir, binary, tool};

/// Runs tests/interop/nc/NAME with `PORT` set, and waits for it.
fn run_script(name: &str, port: u16) -> Finished {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("interop/nc")
        .join(name);
    Process::start_command(
        Command::new("sh")
            .arg(&script)
            .env("PORT", port.to_string()),
    )
    .finish()
}

#[test]
#[cfg_attr(
    not(has_nc),
    ignore = "needs OpenBSD nc (netcat-openbsd): install it, or run .ci/run"
)]
fn lesson_2_with_and_without_half_close() {
    if tool("nc").is_none() {
        return;
    }
    for script in ["02-server.sh", "02-server-no-half-close.sh"] {
        let mut server = Process::server(&binary("server", "02-server"), &[]);
        let done = run_script(script, server.addr().port());
        done.assert_success(script);
        assert_eq!(
            done.stdout, "OK\n",
            "{script}: nc should print the server's reply; {done}"
        );
        server.wait_for("received: hello from nc");
    }
}

#[test]
#[cfg_attr(
    not(has_nc),
    ignore = "needs OpenBSD nc (netcat-openbsd): install it, or run .ci/run"
)]
fn lesson_3_two_lines() {
    if tool("nc").is_none() {
        return;
    }
    let server = Process::server(&binary("multi-client", "03-multi-client"), &[]);
    let done = run_script("03-multi-client.sh", server.addr().port());
    done.assert_success("03-multi-client.sh");
    assert_eq!(
        done.stdout, "ok\nok\n",
        "nc should print one `ok` per line; {done}"
    );
}

#[test]
#[cfg_attr(
    not(has_nc),
    ignore = "needs OpenBSD nc (netcat-openbsd): install it, or run .ci/run"
)]
fn lesson_3_without_half_close_ends_at_the_idle_timeout() {
    if tool("nc").is_none() {
        return;
    }
    // Without -N, nc never says its input has ended: the server answers
    // each line, then closes the silent connection after --idle-timeout.
    let mut server = Process::server(
        &binary("multi-client", "03-multi-client"),
        &["--idle-timeout", "1"],
    );
    let done = run_script("03-multi-client-no-half-close.sh", server.addr().port());
    done.assert_success("03-multi-client-no-half-close.sh, with --idle-timeout 1");
    assert_eq!(
        done.stdout, "ok\nok\n",
        "nc should print one `ok` per line, then exit when the server closes; {done}"
    );
    server.wait_for("] idle for 1 s, closing");
}

#[test]
#[cfg_attr(
    not(has_nc),
    ignore = "needs OpenBSD nc (netcat-openbsd): install it, or run .ci/run"
)]
fn lesson_4_registering_relaying_and_introducing_by_hand() {
    if tool("nc").is_none() {
        return;
    }
    let relay = binary("relay", "04-relay");
    let server = Process::server(&relay, &["serve"]);
    let port = server.addr().port();
    let addr = server.addr().to_string();
    let mut alice = Process::start(&relay, &["join", "alice", "--server", &addr]);
    // Where alice listens for direct connections: the address `AT` must name.
    let line = alice.wait_for("listening for direct messages on ");
    let direct: SocketAddr = line
        .strip_prefix("listening for direct messages on ")
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| {
            alice.fail(&format!(
                "expected `listening for direct messages on IP:PORT`; got {line:?}"
            ))
        });
    alice.wait_for("joined as alice");

    // nc writes all four lines at once, before the server has answered
    // HELLO: the server reads them in order, so that is fine.
    let done = run_script("04-relay.sh", port);
    done.assert_success("04-relay.sh");
    let (welcome, rest) = done.stdout.split_once('\n').unwrap_or_default();
    assert!(
        is_welcome(welcome, "nc"),
        "the first line should be `WELCOME nc 127.0.0.1:<port>` (the port nc's kernel picked); {done}"
    );
    assert_eq!(
        rest, "PEERS alice nc\nSENT alice\nBYE\n",
        "then the answers to LIST, SEND and BYE, one line each; {done}"
    );
    expect_line(
        &mut alice,
        "[nc] hi from nc",
        "alice should print nc's line",
    );
    // Once alice hears it, the server has let go of the name `nc`, and the
    // next script can register it again.
    expect_line(&mut alice, "-- nc left", "alice should hear that nc left");

    let done = run_script("04-relay-where.sh", port);
    done.assert_success("04-relay-where.sh");
    let (welcome, rest) = done.stdout.split_once('\n').unwrap_or_default();
    assert!(
        is_welcome(welcome, "nc"),
        "the first line should be `WELCOME nc 127.0.0.1:<port>`; {done}"
    );
    assert_eq!(
        rest,
        format!("AT alice {direct}\nBYE\n"),
        "WHERE alice should answer with the address alice listens on, {direct}; {done}"
    );

    // Then straight to alice, at the address from AT, as `join` does for
    // `/direct`: the server has no part in this connection.
    let done = run_script("04-relay-direct.sh", direct.port());
    done.assert_success("04-relay-direct.sh");
    assert_eq!(
        done.stdout, "OK\n",
        "alice answers each line of a direct connection with OK; {done}"
    );
    expect_line(
        &mut alice,
        "[direct from nc] hello without the server",
        "alice should print the line nc sent her directly",
    );
}

/// Whether `line` is `WELCOME <name> 127.0.0.1:<port>`: the port is the one
/// nc's kernel picked for the connection, different on every run.
fn is_welcome(line: &str, name: &str) -> bool {
    line.strip_prefix(&format!("WELCOME {name} 127.0.0.1:"))
        .and_then(|port| port.parse::<u16>().ok())
        .is_some_and(|port| port != 0)
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

#[test]
#[cfg_attr(
    not(has_nc),
    ignore = "needs OpenBSD nc (netcat-openbsd): install it, or run .ci/run"
)]
fn lesson_5_fetch_and_list() {
    if tool("nc").is_none() {
        return;
    }
    let folder = TempDir::new();
    folder.write("hello.txt", b"hello, file\n");
    let dir = folder.path().to_string_lossy().into_owned();
    let server = Process::server(
        &binary("file-download", "05-file-download"),
        &["serve", &dir],
    );
    let port = server.addr().port();

    let done = run_script("05-file-download.sh", port);
    done.assert_success("05-file-download.sh");
    assert_eq!(
        done.stdout,
        // The SHA-256 of "hello, file\n".
        "OK 12\nhello, file\nSHA256 b33f4304b9a6bd81704e55c473a4133a4922f034c1c489cb05428cc1140b042c\n",
        "the header line `OK <size>`, exactly the file's bytes, then `SHA256 <hex>`; {done}"
    );

    let done = run_script("05-file-download-list.sh", port);
    done.assert_success("05-file-download-list.sh");
    assert_eq!(
        done.stdout, "OK 1\n12 hello.txt\n",
        "LIST: the count, then size and path; {done}"
    );
}
