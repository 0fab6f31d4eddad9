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
use support::{
    TempDir, bin, book, client, file_bytes, get, peak_resident_kib, settings, skipped_off_linux,
    sparse, start_server, trailer,
};
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

/// Starts `get f.txt --timeout SECS` against a fake server, in `cwd`, and
/// reads its request: the client, and the fake's end of the connection.
fn get_f_txt(fake: &FakeServer, cwd: &Path, timeout: &str) -> (Process, testkit::Connection) {
    let addr = fake.addr().to_string();
    let mut client = Process::start_command(Command::new(bin()).current_dir(cwd).args([
        "get",
        "f.txt",
        "--server",
        &addr,
        "--timeout",
        timeout,
    ]));
    let mut conn = accept_get(fake, &mut client, "f.txt");
    conn.read_line(&format!(
        "get f.txt should send `GET f.txt` {}",
        book::CLIENT
    ));
    (client, conn)
}

/// Accepts the connection of `get PATH --server ADDR` at the fake server.
fn accept_get(fake: &FakeServer, client: &mut Process, path: &str) -> testkit::Connection {
    fake.accept_from(
        client,
        &format!(
            "get {path} --server ADDR should connect to ADDR {}",
            book::CLIENT
        ),
    )
}

/// Plays a server that sends the header for `whole` and then only `sent`
/// bytes of it, and closes: a server killed in the middle of the file.
fn cut_transfer(cwd: &Path, path: &str, whole: &[u8], sent: usize) -> Finished {
    let fake = FakeServer::start();
    let mut client = start_get(&fake, cwd, path);
    let mut conn = accept_get(&fake, &mut client, path);
    let asked = format!(
        "with no {path}.part yet, get {path} should ask for the whole file: `GET {path}` {}",
        book::CLIENT
    );
    assert_eq!(conn.read_line(&asked), format!("GET {path}"), "{asked}");
    conn.send(format!("OK {}\n", whole.len()).as_bytes());
    conn.send(&whole[..sent]);
    drop(conn);
    client.finish()
}

/// Asserts `get` saved `name` in `cwd`, holding exactly `content`.
fn assert_saved(done: &Finished, cwd: &Path, name: &str, content: &[u8]) {
    let len = content.len();
    assert!(
        !done.stderr.contains("SHA-256 does not match"),
        "the server sent every byte of {name:?} ({len} bytes) and the true SHA-256 of the whole \
         file, yet get said the SHA-256 does not match: the digest must cover the whole file, \
         every byte kept exactly once and in the order it came (first the bytes an earlier \
         attempt left in the .part, hashed before asking RESUME, then exactly the `count` bytes \
         of each buffer received), compared in lowercase hex as parse_reply gives the server's \
         {}; {done}",
        book::CLIENT
    );
    done.assert_success(&format!(
        "get of {name:?} ({len} bytes) should save it and exit with status 0 {}",
        book::CLIENT
    ));
    let saved = fs::read(cwd.join(name)).unwrap_or_else(|err| {
        panic!(
            "get of {name:?} ({len} bytes) should have saved it as {name:?}: {err} {}; {done}",
            book::CLIENT
        )
    });
    assert!(
        saved == content,
        "{name:?} should arrive byte for byte ({len} bytes); got {} bytes that differ {}",
        saved.len(),
        book::CLIENT
    );
    assert!(
        !cwd.join(format!("{name}.part")).exists(),
        "after a complete download of {name:?}, {name}.part should be gone (renamed to {name}) {}",
        book::CLIENT
    );
    assert!(
        done.stdout.starts_with(&format!("saved {name}: "))
            && done.stdout.ends_with(", sha256 ok\n"),
        "get of {name:?} should print one summary line `saved {name}: ..., sha256 ok` {}; {done}",
        book::RUN_IT
    );
    assert_eq!(
        done.stderr,
        "",
        "with stderr not a terminal, get of {name:?} should print no progress bar, and no \
         error {}; {done}",
        book::RUN_IT
    );
}

/// The message for a `get` that did not refuse what failed its digest, or
/// None if it did: exit non-zero, say the SHA-256 does not match, and
/// leave nothing in `cwd`. `case` says what the server did.
fn digest_not_refused(done: &Finished, left: &[String], case: &str) -> Option<String> {
    let refused =
        !done.status.success() && done.stderr.contains("SHA-256 does not match") && left.is_empty();
    (!refused).then(|| {
        format!(
            "{case}: the bytes that arrived do not have the SHA-256 the server announced, so get \
             should fail: exit with a non-zero status, print `error: \"PATH\" arrived whole but its \
             SHA-256 does not match the server's ...`, and leave nothing unverified, neither the \
             file nor its .part (left: {left:?}) {}; {done}",
            book::CLIENT
        )
    })
}

fn assert_digest_refused(done: &Finished, cwd: &Path, case: &str) {
    if let Some(message) = digest_not_refused(done, &names_in(cwd), case) {
        panic!("{message}");
    }
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
        ("one-buffer.bin", file_bytes(BUFFER_SIZE, 1)),
        ("one-buffer-and-a-byte.bin", file_bytes(BUFFER_SIZE + 1, 2)),
        ("several-mib.bin", file_bytes(5 * 1024 * 1024 + 3, 3)),
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
    let case = format!(
        "get sub/notes.txt -o keep/mine.txt should save the file as keep/mine.txt, and write \
         nothing else {}",
        book::CLIENT
    );
    done.assert_success(&case);
    assert_eq!(
        fs::read(cwd.path().join("keep/mine.txt")).ok(),
        Some(b"notes\n".to_vec()),
        "{case}"
    );
    assert_eq!(names_in(&cwd.path().join("keep")), ["mine.txt"], "{case}");
    assert_eq!(names_in(cwd.path()), ["keep"], "{case}");
}

#[test]
fn the_summary_line_says_what_was_saved() {
    let served = TempDir::new();
    served.write("hello.txt", b"hello world\n");
    let server = start_server(served.path(), &[]);
    let cwd = TempDir::new();
    let done = get(server.addr(), cwd.path(), "hello.txt", &[]);
    done.assert_success(&format!(
        "get hello.txt should save it and exit with status 0 {}",
        book::RUN_IT
    ));
    let _guard = settings(&cwd).bind_to_scope();
    insta::assert_snapshot!("get_summary", done.stdout);
}

// ---------------------------------------------------------------------------
// Never a half file under the final name
// ---------------------------------------------------------------------------

#[test]
fn a_cut_transfer_leaves_a_part_file_and_running_again_resumes_it() {
    let served = TempDir::new();
    let content = file_bytes(3 * BUFFER_SIZE + 1000, 4);
    served.write("big.bin", &content);
    let cwd = TempDir::new();
    let half = content.len() / 2;

    // A server that dies halfway through the file.
    let done = cut_transfer(cwd.path(), "big.bin", &content, half);
    let case = format!(
        "a server that sends the header of big.bin ({} bytes) and then only {half} of them, \
         and closes",
        content.len()
    );
    done.assert_failure(&format!(
        "{case}: get should fail, since the file is not whole {}",
        book::GOES_WRONG
    ));
    assert_eq!(
        names_in(cwd.path()),
        ["big.bin.part"],
        "{case}: get must leave only big.bin.part, never big.bin {}; {done}",
        book::CLIENT
    );
    assert!(
        fs::read(cwd.path().join("big.bin.part")).ok().as_deref() == Some(&content[..half]),
        "{case}: big.bin.part should hold exactly the {half} bytes that arrived {}",
        book::CLIENT
    );
    {
        let _guard = settings(&cwd).bind_to_scope();
        insta::assert_snapshot!("cut_short", done.stderr);
    }

    // The same command against a (restarted) real server: RESUME from there.
    let mut server = start_server(served.path(), &[]);
    let done = get(server.addr(), cwd.path(), "big.bin", &[]);
    assert_saved(&done, cwd.path(), "big.bin", &content);
    // The server's log line for the request: it is the next line it prints.
    let resumed = format!("RESUME {half} big.bin: sent");
    let asked = format!(
        "big.bin.part holds the {half} bytes that arrived, so get big.bin should ask the server \
         for the rest only, `RESUME {half} big.bin`, and the server log `{resumed} ...`"
    );
    let logged = server.next_line(&format!("{asked} {}", book::CLIENT));
    assert!(
        logged.contains(&resumed),
        "{asked}; it logged {logged:?}: the bytes an earlier attempt left in the .part are \
         kept and resumed, not asked for again {}",
        book::CLIENT
    );
    let _guard = settings(&cwd).bind_to_scope();
    insta::assert_snapshot!("resumed", done.stdout);
}

#[test]
fn a_second_download_of_the_same_file_at_once_refuses_and_the_first_saves_it_whole() {
    let cwd = TempDir::new();
    let content = file_bytes(4 * 1024 * 1024, 11);
    let half = content.len() / 2;
    let fake = FakeServer::start();
    let mut first = start_get(&fake, cwd.path(), "big.bin");
    let mut conn = accept_get(&fake, &mut first, "big.bin");
    let asked = format!("get big.bin should ask `GET big.bin` {}", book::CLIENT);
    assert_eq!(conn.read_line(&asked), "GET big.bin", "{asked}");
    conn.send(format!("OK {}\n", content.len()).as_bytes());
    conn.send(&content[..half]);
    // The first get is in the middle of the file now. A second one, in the
    // same folder, would append to the same big.bin.part.
    let second = get(fake.addr(), cwd.path(), "big.bin", &["--timeout", "2"]);
    assert!(
        !second.status.success()
            && second.stderr
                == "error: another download of big.bin is in progress (big.bin.part is locked)\n",
        "while one get big.bin is in the middle of the file, a second get big.bin in the same \
         folder should refuse at once with the one line `error: another download of big.bin is \
         in progress (big.bin.part is locked)`: two downloads appending to one .part save a \
         file holding both {}; the second {second}",
        book::CLIENT
    );
    conn.send(&content[half..]);
    conn.send(trailer(&content).as_bytes());
    drop(conn);
    let done = first.finish();
    assert_saved(&done, cwd.path(), "big.bin", &content);
}

#[test]
fn a_part_file_makes_the_client_ask_for_the_rest_only() {
    let cwd = TempDir::new();
    let content = b"0123456789abcdef";
    fs::write(cwd.path().join("f.txt.part"), &content[..10]).unwrap();
    let fake = FakeServer::start();
    let mut client = start_get(&fake, cwd.path(), "f.txt");
    let mut conn = accept_get(&fake, &mut client, "f.txt");
    let asked = "with 10 bytes in f.txt.part, get f.txt should ask for the rest: `RESUME 10 f.txt`";
    let line = conn.read_line(&format!("{asked} {}", book::CLIENT));
    if line != "RESUME 10 f.txt" {
        // Why it asked something else: what it made of the .part.
        let held = fs::metadata(cwd.path().join("f.txt.part")).map_or(0, |meta| meta.len());
        let others: Vec<String> = names_in(cwd.path())
            .into_iter()
            .filter(|name| name != "f.txt.part")
            .collect();
        let why = if !others.is_empty() {
            format!(
                "get made {others:?} beside it: OUT.part is OUT's whole name with `.part` added \
                 (f.txt.part, not f.part), so that the next run finds what this one left"
            )
        } else if held != 10 {
            format!(
                "f.txt.part holds {held} bytes now: the bytes an earlier attempt left are kept \
                 and resumed, never truncated or rewritten"
            )
        } else if line.starts_with("GET ") {
            "get asked for the whole file although f.txt.part holds 10 bytes: a .part with \
             bytes in it means `RESUME <its length> <path>`, GET only when it is empty"
                .to_string()
        } else {
            "the offset is the count of bytes the .part holds, which is also the index of the \
             first byte missing; then one space and the path, and the newline"
                .to_string()
        };
        panic!("{asked}; it asked {line:?}: {why} {}", book::CLIENT);
    }
    conn.send(b"OK 16\n");
    conn.send(&content[10..]);
    conn.send(trailer(content).as_bytes());
    drop(conn);
    let done = client.finish();
    assert_saved(&done, cwd.path(), "f.txt", content);
}

/// A .part left by an earlier attempt, far larger than the client's
/// memory may grow: sparse, it costs no disk.
const BIG_PART: u64 = 64 * 1024 * 1024;
/// The most memory the client may hold while it hashes BIG_PART: its
/// buffers and threads, not the file (the chapter measured 4.5 MiB).
const CLIENT_MEMORY_BOUND_KIB: u64 = 16 * 1024;

#[test]
fn a_part_file_is_hashed_in_chunks_whatever_its_size() {
    use sha2::{Digest, Sha256};
    if skipped_off_linux("the client's peak memory is read from /proc/PID/status (VmHWM)") {
        return;
    }
    let cwd = TempDir::new();
    sparse(&cwd.join("big.bin.part"), BIG_PART);
    let fake = FakeServer::start();
    let mut client = start_get(&fake, cwd.path(), "big.bin");
    let mut conn = accept_get(&fake, &mut client, "big.bin");
    let asked = format!(
        "with {BIG_PART} bytes in big.bin.part, get big.bin should hash them and ask for the \
         rest: `RESUME {BIG_PART} big.bin` {}",
        book::CLIENT
    );
    assert_eq!(
        conn.read_line(&asked),
        format!("RESUME {BIG_PART} big.bin"),
        "{asked}"
    );
    // The client has hashed the whole .part by now, and waits for the
    // header: its peak memory so far is what hashing the .part took.
    let peak = peak_resident_kib(client.pid());
    assert!(
        peak <= CLIENT_MEMORY_BOUND_KIB,
        "big.bin.part holds {} MiB from an earlier attempt: by the time get sent `RESUME`, its \
         peak memory (VmHWM) reached {} MiB, over the {} MiB bound. Hash the .part in chunks, a \
         buffer at a time (io::copy through a BufReader into the hasher), never the whole file \
         in memory (fs::read, read_to_end): memory must not grow with the file, and a .part \
         can be gigabytes {}",
        BIG_PART >> 20,
        peak >> 10,
        CLIENT_MEMORY_BOUND_KIB >> 10,
        book::CLIENT
    );
    // The rest, and the digest of the whole: the zeros of the .part, then it.
    let rest = b"the last bytes\n";
    let mut whole = Sha256::new();
    whole.update(vec![0; BIG_PART as usize]);
    whole.update(rest);
    let size = BIG_PART + rest.len() as u64;
    conn.send(format!("OK {size}\n").as_bytes());
    conn.send(rest);
    conn.send(format!("SHA256 {:x}\n", whole.finalize()).as_bytes());
    drop(conn);
    let done = client.finish();
    assert!(
        !done.stderr.contains("SHA-256 does not match"),
        "the server sent the last {} bytes of big.bin after a .part of {BIG_PART}, and the true \
         SHA-256 of the whole file, yet get said the SHA-256 does not match: the digest must \
         cover the whole file, the .part's bytes first {}; {done}",
        rest.len(),
        book::CLIENT
    );
    done.assert_success(&format!(
        "get big.bin, resumed after a .part of {BIG_PART} bytes, should save it {}",
        book::CLIENT
    ));
    assert_eq!(
        fs::metadata(cwd.path().join("big.bin"))
            .map(|meta| meta.len())
            .ok(),
        Some(size),
        "get big.bin, resumed after a .part of {BIG_PART} bytes, should save all {size} bytes \
         as big.bin {}",
        book::CLIENT
    );
}

#[test]
fn get_waits_for_the_digest_as_long_as_the_server_says_it_is_hashing() {
    let cwd = TempDir::new();
    let fake = FakeServer::start();
    let (mut client, mut conn) = get_f_txt(&fake, cwd.path(), "1");
    conn.send(b"OK 6\nhello\n");
    // Longer in all than the client's --timeout 1, a line every 0.4 s: a
    // server still hashing a big file, telling the client so.
    for done in [1, 2, 3, 4, 5] {
        std::thread::sleep(std::time::Duration::from_millis(400));
        conn.send(format!("HASHING {done} 6\n").as_bytes());
    }
    conn.send(trailer(b"hello\n").as_bytes());
    drop(conn);
    let done = client.finish();
    assert_saved(&done, cwd.path(), "f.txt", b"hello\n");
}

#[test]
fn get_stops_waiting_when_the_hashing_lines_show_no_progress() {
    let cwd = TempDir::new();
    let fake = FakeServer::start();
    let (mut client, mut conn) = get_f_txt(&fake, cwd.path(), "1");
    conn.send(b"OK 6\nhello\n");
    // A server that says it is hashing and never gets further: a line every
    // 0.2 s, always `HASHING 0 6`, until the client hangs up.
    let mut sender = conn.stream().try_clone().unwrap();
    let repeating = std::thread::spawn(move || {
        for _ in 0..50 {
            std::thread::sleep(std::time::Duration::from_millis(200));
            if std::io::Write::write_all(&mut sender, b"HASHING 0 6\n").is_err() {
                break;
            }
        }
    });
    let done = client.finish();
    let what = format!(
        "get f.txt --timeout 1, the server sent the 6 bytes and then `HASHING 0 6` every 0.2 s, \
         never hashing more: get should stop after --timeout (1 s) without progress, failing \
         with one line that says so and keeping f.txt.part; a HASHING line restarts the wait \
         only when its count has grown {}",
        book::CLIENT
    );
    assert!(
        !done.status.success()
            && done.stderr.contains("hashed nothing more")
            && cwd.path().join("f.txt.part").exists(),
        "{what}; {done}"
    );
    drop(conn);
    let _ = repeating.join();
}

#[test]
fn a_file_that_changed_between_two_runs_fails_its_digest_and_the_part_is_removed() {
    let served = TempDir::new();
    let before = file_bytes(2 * BUFFER_SIZE, 5);
    let cwd = TempDir::new();
    let half = before.len() / 2;
    cut_transfer(cwd.path(), "big.bin", &before, half).assert_failure(&format!(
        "a server that sends half of big.bin and closes: get should fail {}",
        book::GOES_WRONG
    ));

    // The file changes on the server (same size), then we resume.
    let after = file_bytes(2 * BUFFER_SIZE, 6);
    served.write("big.bin", &after);
    let server = start_server(served.path(), &[]);
    let done = get(server.addr(), cwd.path(), "big.bin", &[]);
    assert_digest_refused(
        &done,
        cwd.path(),
        "big.bin.part holds the first half of an older big.bin, and the server now has \
         another big.bin of the same size: get resumes, and the two halves do not make the \
         new file's digest",
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
    let mut conn = accept_get(&fake, &mut client, "lie.txt");
    conn.read_line(&format!(
        "get lie.txt should send `GET lie.txt` {}",
        book::CLIENT
    ));
    conn.send(format!("OK 5\nlies!{}", trailer(b"truth")).as_bytes());
    drop(conn);
    let done = client.finish();
    assert_digest_refused(
        &done,
        cwd.path(),
        "a server that announces the SHA-256 of `truth` and sends `lies!`",
    );
}

/// When a get keeps what failed its digest, its failure says that the
/// digest is the reason, and where the chapter explains it: not only that
/// get should have exited with a non-zero status.
#[test]
fn a_digest_failure_message_names_the_digest_and_the_chapter() {
    use std::os::unix::process::ExitStatusExt;
    let kept_a_lie = Finished {
        status: std::process::ExitStatus::from_raw(0),
        stdout: "saved lie.txt: 5 B in 0.00 s (5 B/s), sha256 ok\n".to_string(),
        stderr: String::new(),
    };
    let message = digest_not_refused(
        &kept_a_lie,
        &["lie.txt".to_string()],
        "a server that announces the SHA-256 of `truth` and sends `lies!`",
    )
    .unwrap_or_default();
    for words in [
        "the bytes that arrived do not have the SHA-256 the server announced",
        "exit with a non-zero status",
        "SHA-256 does not match",
        "left: [\"lie.txt\"]",
        "(book: 05-file-download.md § The client: `.part`, the digest, and resuming)",
    ] {
        assert!(
            message.contains(words),
            "the failure for a get that kept a file whose digest did not match should contain \
             {words:?}; it is {message:?}"
        );
    }
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
    let case = format!(
        "small.txt.part holds 28 bytes and the server's small.txt has 6: get asks `RESUME 28 \
         small.txt`, the server answers `ERR bad-offset ...`, so the file has changed, and get \
         should fail, remove small.txt.part, and say `... so the file has changed; removed \
         small.txt.part ...` {}",
        book::GOES_WRONG
    );
    done.assert_failure(&case);
    assert!(
        names_in(cwd.path()).is_empty() && done.stderr.contains("the file has changed"),
        "{case}; {done}"
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
    let case = format!(
        "get hello.txt where hello.txt already exists, without --force, should fail before it \
         connects, leave hello.txt as it was, and make no .part {}",
        book::GOES_WRONG
    );
    done.assert_failure(&case);
    assert_eq!(
        fs::read(cwd.path().join("hello.txt")).ok(),
        Some(b"my own precious file\n".to_vec()),
        "{case}"
    );
    assert_eq!(names_in(cwd.path()), ["hello.txt"], "{case}; {done}");
    {
        let _guard = settings(&cwd).bind_to_scope();
        insta::assert_snapshot!("no_overwrite", done.stderr);
    }

    let done = get(server.addr(), cwd.path(), "hello.txt", &["--force"]);
    assert_saved(&done, cwd.path(), "hello.txt", b"hello world\n");
}

#[test]
fn a_link_planted_at_the_part_file_is_refused_and_its_target_untouched() {
    let served = TempDir::new();
    let report = file_bytes(100, 12);
    served.write("report.txt", &report);
    let server = start_server(served.path(), &[]);
    let victim = b"the victim's own 19\n";
    for kind in ["a symbolic link", "a hard link"] {
        let cwd = TempDir::new();
        fs::write(cwd.path().join("victim.txt"), victim).unwrap();
        let part = cwd.path().join("report.txt.part");
        if kind == "a hard link" {
            fs::hard_link(cwd.path().join("victim.txt"), &part).unwrap();
        } else {
            std::os::unix::fs::symlink("victim.txt", &part).unwrap();
        }
        let done = get(server.addr(), cwd.path(), "report.txt", &[]);
        let case = format!(
            "get report.txt, with report.txt.part {kind} to victim.txt: get must never write \
             through it (the download would be appended to victim.txt), and should fail with \
             one line naming report.txt.part {}",
            book::CLIENT
        );
        assert!(
            !done.status.success()
                && done.stderr.starts_with("error: report.txt.part ")
                && done.stderr.lines().count() == 1,
            "{case}; {done}"
        );
        assert!(
            fs::read(cwd.path().join("victim.txt")).unwrap() == victim,
            "{case}: victim.txt changed; {done}"
        );
        assert!(!cwd.path().join("report.txt").exists(), "{case}; {done}");
    }
}

#[test]
fn a_part_file_planted_by_someone_else_is_refused_and_left_alone() {
    use std::os::unix::fs::PermissionsExt;
    let served = TempDir::new();
    served.write("tool.sh", b"echo the real tool\n");
    let server = start_server(served.path(), &[]);
    // Another user, in a folder both can write to, creates an empty
    // tool.sh.part that they can still write: get would append to it,
    // check it and rename it, and they would rewrite it afterwards.
    let mut plants = vec!["writable by everyone (mode 0666)"];
    // Giving a file to another user takes root; this machine's CI runs as
    // root, so there the other owner is checked too.
    if rustix::process::geteuid().is_root() {
        plants.push("owned by another user (nobody, uid 65534, mode 0644)");
    }
    for kind in plants {
        let cwd = TempDir::new();
        let part = cwd.write("tool.sh.part", b"");
        if kind.starts_with("writable") {
            fs::set_permissions(&part, fs::Permissions::from_mode(0o666)).unwrap();
        } else {
            std::os::unix::fs::chown(&part, Some(65534), Some(65534)).unwrap();
        }
        let done = get(server.addr(), cwd.path(), "tool.sh", &[]);
        let case = format!(
            "get tool.sh, with an empty tool.sh.part {kind} already there: get must resume only \
             a .part of its own that no one else can write, and should fail with one line \
             naming tool.sh.part (a file whose owner can rewrite it after the check is not a \
             verified download) {}",
            book::CLIENT
        );
        assert!(
            !done.status.success()
                && done.stderr.starts_with("error: tool.sh.part ")
                && done.stderr.lines().count() == 1,
            "{case}; {done}"
        );
        assert_eq!(
            fs::read(&part).unwrap(),
            b"",
            "{case}: tool.sh.part was written to; {done}"
        );
        assert!(!cwd.path().join("tool.sh").exists(), "{case}; {done}");
    }
}

#[test]
fn a_file_replaced_with_the_same_size_and_time_costs_at_most_one_retry() {
    let served = TempDir::new();
    let path = served.write("data.bin", &file_bytes(64 * 1024, 13));
    let server = start_server(served.path(), &[]);
    let cwd = TempDir::new();
    let done = get(server.addr(), cwd.path(), "data.bin", &["-o", "first.bin"]);
    assert_saved(&done, cwd.path(), "first.bin", &file_bytes(64 * 1024, 13));

    // Replace the content in place, same size, and put the old
    // modification time back, as `cp -p`, `rsync -a` and `tar` leave it.
    let modified = fs::metadata(&path).unwrap().modified().unwrap();
    let new = file_bytes(64 * 1024, 14);
    fs::write(&path, &new).unwrap();
    let file = fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(modified).unwrap();
    drop(file);
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), modified);

    let mut done = get(server.addr(), cwd.path(), "data.bin", &["-o", "second.bin"]);
    if !done.status.success() {
        done = get(server.addr(), cwd.path(), "data.bin", &["-o", "second.bin"]);
    }
    assert!(
        done.status.success() && fs::read(cwd.path().join("second.bin")).unwrap() == new,
        "after data.bin was replaced by other bytes of the same size with the same \
         modification time, get data.bin should save the new content, after at most one \
         retry: the server must not keep announcing the old digest (key the digests it keeps \
         on what changes when a file is replaced: device and inode, change time, size and \
         modification time) {}; the second attempt {done}",
        book::DIGEST_ONCE
    );
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
    let case = format!(
        "get secret/../x, which the server refuses with `ERR forbidden ...`, should fail with \
         one line on stderr, print nothing on stdout, and write nothing {}",
        book::GOES_WRONG
    );
    done.assert_failure(&case);
    assert_eq!(done.stdout, "", "{case}; {done}");
    assert!(names_in(cwd.path()).is_empty(), "{case}; {done}");
    let _guard = settings(&cwd).bind_to_scope();
    insta::assert_snapshot!("refused", done.stderr);
}

#[test]
fn a_missing_file_is_an_error_and_leaves_nothing() {
    let served = TempDir::new();
    let server = start_server(served.path(), &[]);
    let cwd = TempDir::new();
    let done = get(server.addr(), cwd.path(), "nothing.txt", &[]);
    let case = format!(
        "get nothing.txt, which the server answers with `ERR not-found no such file`, should \
         fail with the one line `error: the server refused \"nothing.txt\": not-found (no such \
         file)` and write nothing {}",
        book::GOES_WRONG
    );
    done.assert_failure(&case);
    assert_eq!(
        done.stderr, "error: the server refused \"nothing.txt\": not-found (no such file)\n",
        "{case}"
    );
    assert!(names_in(cwd.path()).is_empty(), "{case}; {done}");
}

#[test]
fn a_server_that_is_not_running_is_one_line_with_the_fix() {
    let cwd = TempDir::new();
    let addr = closed_port().to_string();
    let done = client(cwd.path(), &["get", "x.txt", "--server", &addr]);
    done.assert_failure(&format!(
        "get when no server listens should fail with one line that says how to start one {}",
        book::GOES_WRONG
    ));
    let _guard = settings(&cwd).bind_to_scope();
    insta::assert_snapshot!("not_running", done.stderr);
}

#[test]
fn a_server_that_closes_without_replying_is_one_line() {
    let cwd = TempDir::new();
    let fake = FakeServer::start();
    let mut client = start_get(&fake, cwd.path(), "x.txt");
    let mut conn = accept_get(&fake, &mut client, "x.txt");
    conn.read_line(&format!(
        "get x.txt should send `GET x.txt` {}",
        book::CLIENT
    ));
    drop(conn);
    let done = client.finish();
    let case = format!(
        "a server that reads `GET x.txt` and closes without a word: get should fail with the one \
         line `error: the server at ADDR closed the connection without replying`, and write \
         nothing {}",
        book::GOES_WRONG
    );
    done.assert_failure(&case);
    assert!(
        done.stderr.starts_with("error: the server at 127.0.0.1:")
            && done
                .stderr
                .ends_with(" closed the connection without replying\n"),
        "{case}; {done}"
    );
    assert!(names_in(cwd.path()).is_empty(), "{case}; {done}");
}

#[test]
fn a_reply_the_client_does_not_understand_is_one_error_line() {
    // A digest of 3 hex digits, a size that is not a number, a lowercase
    // `ok`: none is a reply of the protocol.
    for header in ["OK 5 abc", "OK five 0123", "ok 5"] {
        let cwd = TempDir::new();
        let fake = FakeServer::start();
        let mut client = start_get(&fake, cwd.path(), "x.txt");
        let mut conn = accept_get(&fake, &mut client, "x.txt");
        conn.read_line(&format!(
            "get x.txt should send `GET x.txt` {}",
            book::CLIENT
        ));
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
             `OK <size>`, so parse_reply should give None, and get should fail \
             with the one line `error: the server at ADDR {expected}` and write nothing {}; {done}",
            book::PROTOCOL
        );
    }
}

#[test]
fn a_header_sent_a_byte_at_a_time_is_cut_off_at_the_timeout() {
    use std::time::{Duration, Instant};
    let cwd = TempDir::new();
    let fake = FakeServer::start();
    let started = Instant::now();
    let (mut client, conn) = get_f_txt(&fake, cwd.path(), "2");
    // A header that never ends, one byte every 250 ms (each read of the
    // client waits far less than its 2 s), for at most 8 s.
    let dribbling = std::thread::spawn(move || {
        let stream = conn.stream().try_clone().unwrap();
        let mut line = b"OK 1".iter().chain(std::iter::repeat(&b'1'));
        while started.elapsed() < Duration::from_secs(8) {
            let byte = [*line.next().unwrap()];
            if std::io::Write::write_all(&mut &stream, &byte).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    let done = client.finish();
    let took = started.elapsed();
    assert!(
        !done.status.success()
            && done.stderr.contains(" within 2 s")
            && took < Duration::from_secs(5),
        "a server that sends its header one byte every 250 ms, and never its newline, should \
         make get --timeout 2 fail within 2 s (a deadline for the whole line, not a timeout \
         for each read); it took {:.1} s {}; {done}",
        took.as_secs_f64(),
        book::CLIENT
    );
    dribbling.join().unwrap();
}

#[test]
fn list_says_when_the_server_sends_fewer_lines_than_it_announced() {
    let cwd = TempDir::new();
    let fake = FakeServer::start();
    let addr = fake.addr().to_string();
    let mut client = Process::start_command(
        Command::new(bin())
            .current_dir(cwd.path())
            .args(["list", "--server", &addr]),
    );
    let mut conn = fake.accept_from(
        &mut client,
        &format!("list should connect {}", book::CLIENT),
    );
    conn.read_line(&format!("list should send `LIST` {}", book::CLIENT));
    conn.send(b"OK 3\n1 a.txt\n2 b.txt\n");
    drop(conn);
    let done = client.finish();
    assert!(
        !done.status.success()
            && done.stderr.starts_with("error: the server at 127.0.0.1:")
            && done
                .stderr
                .ends_with(" announced 3 files and closed the connection after 2\n"),
        "a server that answers LIST with `OK 3` and then only 2 lines should make list fail \
         with one line saying exactly that: `error: the server at ADDR announced 3 files and \
         closed the connection after 2` {}; {done}",
        book::CLIENT
    );
}

// ---------------------------------------------------------------------------
// list
// ---------------------------------------------------------------------------

#[test]
fn list_prints_a_table_of_the_servers_files() {
    let served = TempDir::new();
    served.write("hello.txt", b"hello world\n");
    served.write("big.bin", &file_bytes(3 * 1024 * 1024, 7));
    served.write("données/naïve café.txt", "déjà vu\n".as_bytes());
    served.write(".env", b"TOKEN=secret\n");
    let server = start_server(served.path(), &[]);
    let cwd = TempDir::new();
    let addr = server.addr().to_string();
    let done = client(cwd.path(), &["list", "--server", &addr]);
    done.assert_success(&format!(
        "list should print the server's files as a table and exit with status 0 {}",
        book::RUN_IT
    ));
    let _guard = settings(&cwd).bind_to_scope();
    insta::assert_snapshot!("list", done.stdout);
}

#[test]
fn a_listing_of_one_file_says_1_file_in_the_table_and_the_log() {
    let served = TempDir::new();
    served.write("hello.txt", b"hello world\n");
    let mut server = start_server(served.path(), &[]);
    let cwd = TempDir::new();
    let addr = server.addr().to_string();
    let done = client(cwd.path(), &["list", "--server", &addr]);
    assert!(
        done.status.success() && done.stdout.ends_with("\n1 file, 12 B in all\n"),
        "list of a folder with one file of 12 bytes should end its table with `1 file, 12 B in \
         all`, a count that reads right for one {}; {done}",
        book::RUN_IT
    );
    let logged = server.wait_for("LIST: listed ");
    assert!(
        logged.contains("LIST: listed 1 file, "),
        "the server's log line for a LIST of one file should say `LIST: listed 1 file, ` and \
         then where the listing came from {}; got {logged:?}",
        book::RUN_IT
    );
}

// ---------------------------------------------------------------------------
// --help
// ---------------------------------------------------------------------------

#[test]
fn every_subcommand_has_examples_in_its_help() {
    for (args, example) in [
        (&["--help"][..], "cargo run -p file-download -- serve"),
        (&["serve", "--help"], "cargo run -p file-download -- serve"),
        (&["get", "--help"], "cargo run -p file-download -- get"),
        (&["list", "--help"], "cargo run -p file-download -- list"),
    ] {
        let out = Command::new(bin()).args(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("Examples:") && stdout.contains(example),
            "`05-file-download {}` should print help with an `Examples:` section showing `{example}` \
             {}; it printed:\n{stdout}",
            args.join(" "),
            book::RUN_IT
        );
    }
}
