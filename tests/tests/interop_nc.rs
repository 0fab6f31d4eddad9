//! The `nc` commands of the book's appendix, run as they are printed there:
//! each is a script in tests/interop/nc/, which the book includes and this
//! test runs with `PORT` set to the port of a server it started.

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
    let (header, body) = done.stdout.split_once('\n').unwrap_or_default();
    assert_eq!(
        header,
        // The SHA-256 of "hello, file\n".
        "OK 12 b33f4304b9a6bd81704e55c473a4133a4922f034c1c489cb05428cc1140b042c",
        "the header line: OK, the size, the SHA-256; {done}"
    );
    assert_eq!(
        body, "hello, file\n",
        "then exactly the file's bytes; {done}"
    );

    let done = run_script("05-file-download-list.sh", port);
    done.assert_success("05-file-download-list.sh");
    assert_eq!(
        done.stdout, "OK 1\n12 hello.txt\n",
        "LIST: the count, then size and path; {done}"
    );
}
