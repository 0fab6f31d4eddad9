//! Checks for lesson 5's server, over raw sockets. Write the server
//! yourself, then run `cargo test -p file-download`: each test names what
//! the server should do.
//!
//! Every test starts the real `05-file-download serve` on a temporary
//! folder with `--listen 127.0.0.1:0`, and talks to it byte for byte.

// Helpers outside #[test] functions fail the way tests do: by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::symlink;
use std::process::Command;
use std::time::{Duration, SystemTime};

use file_download::LINE_LIMIT;
use support::{
    TempDir, ask, bin, book, bytes_read, file_bytes, peak_resident_kib, settings,
    settings_naming_ports, sha256_hex, skipped_off_linux, sparse, start_server, trailer,
    whole_reply,
};
use testkit::{Connection, run, tool};

const HELLO: &[u8] = b"hello world\n";
const SECRET: &[u8] = b"the password is swordfish\n";

/// A served folder with every kind of thing a request can reach, inside a
/// temporary folder that also holds a secret outside the served one:
///
/// ```text
/// secret.txt                       outside: must never be served
/// served2/x.txt                    outside too (its name starts like "served")
/// served/hello.txt                 "hello world\n"
/// served/sub/notes.txt
/// served/sub/.hidden
/// served/.env  served/.git/config  dotfiles
/// served/inside-link -> hello.txt  a link that stays inside
/// served/dot-link -> .env          a link to a dotfile
/// served/escape -> ../secret.txt   a link out, to a file that exists
/// served/dangling -> ../nothing    a link out, to nothing
/// served/escape-dir -> ..          a link to the folder above
/// served/sibling -> ../served2/x.txt
/// served/fifo                      a named pipe
/// ```
struct Fixture {
    temp: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let temp = TempDir::new();
        temp.write("secret.txt", SECRET);
        temp.write("served2/x.txt", SECRET);
        temp.write("served/hello.txt", HELLO);
        temp.write("served/sub/notes.txt", b"notes\n");
        temp.write("served/sub/.hidden", b"hidden\n");
        temp.write("served/.env", b"TOKEN=secret\n");
        temp.write("served/.git/config", b"[core]\n");
        let served = temp.path().join("served");
        symlink("hello.txt", served.join("inside-link")).unwrap();
        symlink(".env", served.join("dot-link")).unwrap();
        symlink("../secret.txt", served.join("escape")).unwrap();
        symlink("../nothing", served.join("dangling")).unwrap();
        symlink("..", served.join("escape-dir")).unwrap();
        symlink("../served2/x.txt", served.join("sibling")).unwrap();
        let made = Command::new("mkfifo")
            .arg(served.join("fifo"))
            .status()
            .unwrap();
        assert!(made.success(), "mkfifo should make a named pipe");
        Fixture { temp }
    }

    fn served(&self) -> std::path::PathBuf {
        self.temp.path().join("served")
    }
}

/// Asserts `GET hello.txt` still gets the whole file; `section` is where
/// the chapter explains why it should.
fn still_serves(addr: std::net::SocketAddr, after: &str, section: &str) {
    assert_eq!(
        testkit::show(&ask(addr, b"GET hello.txt\n")),
        testkit::show(&whole_reply(HELLO)),
        "after {after}, the server should still answer `GET hello.txt` with `OK 12`, the \
         file and `SHA256 <hex>` {section}"
    );
}

/// Asserts `reply`, to `request`, is exactly one line `ERR <code> <message>\n`
/// because `why`; `section` is where the chapter explains it.
fn assert_refused(reply: &[u8], code: &str, request: &str, why: &str, section: &str) {
    let text = String::from_utf8_lossy(reply);
    assert!(
        text.starts_with(&format!("ERR {code} "))
            && text.ends_with('\n')
            && text.lines().count() == 1,
        "{request} should be refused with one line `ERR {code} <message>` and then a close \
         ({why}); got {} {section}",
        testkit::show(reply)
    );
}

// ---------------------------------------------------------------------------
// The protocol
// ---------------------------------------------------------------------------

#[test]
fn get_replies_ok_size_then_exactly_the_bytes_then_their_sha256_then_closes() {
    let fixture = Fixture::new();
    let server = start_server(&fixture.served(), &[]);
    let mut conn = Connection::open(server.addr());
    conn.send(b"GET hello.txt\n");
    conn.expect_bytes(
        b"OK 12\n",
        &format!(
            "GET hello.txt (12 bytes): the header should be `OK <size>` {}",
            book::PROTOCOL
        ),
    );
    conn.expect_bytes(
        HELLO,
        &format!(
            "GET hello.txt: the file's 12 bytes should follow the header {}",
            book::PROTOCOL
        ),
    );
    conn.expect_bytes(
        format!("SHA256 {}\n", sha256_hex(HELLO)).as_bytes(),
        &format!(
            "GET hello.txt: after the bytes, the line `SHA256 <the whole file's sha256 in \
             lowercase hex>` {}",
            book::PROTOCOL
        ),
    );
    conn.expect_orderly_close(&format!(
        "GET hello.txt: after exactly <size> bytes the server should close gently, \
         with a FIN {}",
        book::LIST_AND_CLOSE
    ));
}

#[test]
fn resume_sends_the_rest_with_the_whole_files_size_and_digest() {
    let fixture = Fixture::new();
    let server = start_server(&fixture.served(), &[]);
    let digest = trailer(HELLO);
    assert_eq!(
        testkit::show(&ask(server.addr(), b"RESUME 6 hello.txt\n")),
        testkit::show(format!("OK 12\nworld\n{digest}").as_bytes()),
        "RESUME 6 hello.txt should be answered with the whole file's size, `OK 12`, then \
         bytes 6 to 12, then the whole file's digest, `SHA256 <hex>` {}",
        book::PROTOCOL
    );
    assert_eq!(
        testkit::show(&ask(server.addr(), b"RESUME 12 hello.txt\n")),
        testkit::show(format!("OK 12\n{digest}").as_bytes()),
        "RESUME 12 hello.txt, at the very end (offset = size), is allowed: the header, no \
         bytes, and the digest {}",
        book::PROTOCOL
    );
    assert_eq!(
        testkit::show(&ask(server.addr(), b"RESUME 0 hello.txt\n")),
        testkit::show(&whole_reply(HELLO)),
        "RESUME 0 hello.txt should send the whole file, as GET does {}",
        book::PROTOCOL
    );
    let reply = ask(server.addr(), b"RESUME 13 hello.txt\n");
    assert_refused(
        &reply,
        "bad-offset",
        "RESUME 13 hello.txt",
        "the file has 12 bytes: 0 <= offset <= size",
        book::PROTOCOL,
    );
}

#[test]
fn list_offers_exactly_what_get_would_serve_sorted_by_path() {
    let fixture = Fixture::new();
    // Names GET cannot ask for are not listed: not UTF-8, or with a newline.
    use std::os::unix::ffi::OsStrExt;
    let served = fixture.served();
    fs::write(
        served.join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt")),
        b"x",
    )
    .unwrap();
    fs::write(served.join("two\nlines.txt"), b"x").unwrap();
    fs::write(served.join("my notes.txt"), b"spaces are fine\n").unwrap();

    let server = start_server(&served, &[]);
    let reply = ask(server.addr(), b"LIST\n");
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "OK 3\n12 hello.txt\n16 my notes.txt\n6 sub/notes.txt\n",
        "LIST should reply `OK <count>` and one `<size> <path>` line per file GET would serve, \
         sorted by path, each file once under its real name (inside-link is a second name \
         of hello.txt): no dotfiles, no links out of the folder, no fifo, no folders, \
         no names GET cannot spell {}",
        book::LIST_AND_CLOSE
    );
    for path in ["hello.txt", "my notes.txt", "sub/notes.txt"] {
        let reply = ask(server.addr(), format!("GET {path}\n").as_bytes());
        assert!(
            reply.starts_with(b"OK "),
            "GET {path} should serve what LIST offers; got {} {}",
            testkit::show(&reply),
            book::LIST_AND_CLOSE
        );
    }

    let hidden = start_server(&served, &["--hidden"]);
    let reply = ask(hidden.addr(), b"LIST\n");
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "OK 6\n13 .env\n7 .git/config\n12 hello.txt\n16 my notes.txt\n7 sub/.hidden\n6 sub/notes.txt\n",
        "with --hidden, LIST should offer the dotfiles too, and still nothing outside the folder {}",
        book::LIST_AND_CLOSE
    );
}

#[test]
fn list_shows_each_file_once_under_its_real_name() {
    let served = TempDir::new();
    served.write("a.txt", b"one file\n");
    std::os::unix::fs::symlink("a.txt", served.join("b.txt")).unwrap();
    fs::create_dir(served.join("sub")).unwrap();
    std::os::unix::fs::symlink("../a.txt", served.join("sub/c.txt")).unwrap();
    fs::hard_link(served.join("a.txt"), served.join("d.txt")).unwrap();
    // A link is listed when its file has no real name LIST can show: a
    // name that is not UTF-8 cannot be asked for.
    use std::os::unix::ffi::OsStrExt;
    let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
    fs::write(served.path().join(latin1), b"coffee\n").unwrap();
    std::os::unix::fs::symlink(latin1, served.join("cafe.txt")).unwrap();
    let server = start_server(served.path(), &[]);
    let reply = ask(server.addr(), b"LIST\n");
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "OK 2\n9 a.txt\n7 cafe.txt\n",
        "a.txt, b.txt -> a.txt, sub/c.txt -> ../a.txt, d.txt a hard link to a.txt, and \
         cafe.txt -> caf\\xe9.txt (a name that is not UTF-8): LIST should list each file once, \
         under its real name where LIST can show one (names that are not links first, then \
         the first in path order) {}",
        book::LIST_AND_CLOSE
    );
}

#[test]
fn list_follows_the_served_folder_when_it_is_renamed() {
    let parent = TempDir::new();
    let before = parent.path().join("before");
    fs::create_dir(&before).unwrap();
    fs::write(before.join("a.txt"), b"still here\n").unwrap();
    let server = start_server(&before, &[]);
    fs::rename(&before, parent.path().join("after")).unwrap();
    let reply = ask(server.addr(), b"LIST\n");
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "OK 1\n11 a.txt\n",
        "the served folder was renamed after the server started: LIST should list the folder \
         the server opened, from the same handle GET opens files from, as GET a.txt still \
         serves it {}",
        book::LIST_AND_CLOSE
    );
}

/// How many LISTs come at once below: every client slot of the default.
const LISTS_AT_ONCE: usize = 32;
/// The folders, and the files in each, of the big tree below: 2,000 empty
/// files, each path 746 bytes long (three folders of about 245 bytes), a
/// listing of 1.5 MB: long paths, so that few files make a big listing.
const FOLDERS: usize = 20;
const FILES_PER_FOLDER: usize = 100;
/// The most memory the server may hold while it sends LISTS_AT_ONCE
/// listings of that tree: one listing shared by all of them, and the one
/// walk that made it (10 MiB in all, measured), not a listing per client
/// (32 × 1.5 MB more; 180 MiB was measured for twice the files).
const LIST_MEMORY_BOUND_KIB: u64 = 24 * 1024;

#[test]
fn lists_at_once_share_one_walk_and_one_listing_in_memory() {
    if skipped_off_linux("the server's peak memory is read from /proc/PID/status (VmHWM)") {
        return;
    }
    let served = TempDir::new();
    let long = "x".repeat(240);
    for folder in 0..FOLDERS {
        let folder = served
            .path()
            .join(format!("{long}-{folder:04}"))
            .join(format!("{long}-two"))
            .join(format!("{long}-three"));
        fs::create_dir_all(&folder).unwrap();
        for file in 0..FILES_PER_FOLDER {
            fs::File::create(folder.join(format!("{file:04}.txt"))).unwrap();
        }
    }
    let files = FOLDERS * FILES_PER_FOLDER;
    // Every slot, from one address: this test is about the LISTs.
    let mut server = start_server(served.path(), &["--max-per-address", "32"]);
    let what = format!(
        "{LISTS_AT_ONCE} clients sent `LIST` at once for a folder of {files} files with paths \
         of 746 bytes (a listing of 1.5 MB each), and read the header and nothing more for now"
    );
    let mut clients: Vec<Connection> = (0..LISTS_AT_ONCE)
        .map(|_| {
            let mut client = Connection::open(server.addr());
            client.send(b"LIST\n");
            client
        })
        .collect();
    for client in &mut clients {
        // A server that walks the folder once per LIST takes long.
        let patient = Some(Duration::from_secs(120));
        client.stream().set_read_timeout(patient).unwrap();
        let header = client.read_line(&format!("{what}: each should get `OK {files}`"));
        assert_eq!(
            header,
            format!("OK {files}"),
            "{what} {}",
            book::LIST_AND_CLOSE
        );
    }
    // Every reply is now being written, and none fits in the sockets'
    // buffers: whatever a LIST holds, each holds it now.
    let peak = peak_resident_kib(server.pid());
    assert!(
        peak <= LIST_MEMORY_BOUND_KIB,
        "{what}: the server's memory should stay under {} MiB, one listing shared by every \
         LIST; it reached {} MiB. A listing built for each request costs its size once per \
         client {}",
        LIST_MEMORY_BOUND_KIB >> 10,
        peak >> 10,
        book::LIST_AND_CLOSE
    );
    for client in &mut clients {
        let rest = client.read_to_end(&what);
        assert_eq!(
            rest.iter().filter(|&&byte| byte == b'\n').count(),
            files,
            "{what}: after the header, each should get a line per file {}",
            book::LIST_AND_CLOSE
        );
    }
    let logged: Vec<String> = (0..LISTS_AT_ONCE)
        .map(|_| server.expect_line("LIST: listed", &what))
        .collect();
    let walks = logged
        .iter()
        .filter(|line| line.ends_with(", folders walked"))
        .count();
    assert_eq!(
        walks,
        1,
        "{what}: the folder should be walked once, the LISTs that came during the walk waiting \
         for it and the ones after it given the listing kept; the log says {logged:#?} {}",
        book::LIST_AND_CLOSE
    );
}

#[test]
fn a_listing_is_kept_until_a_folder_changes() {
    let served = TempDir::new();
    served.write("a.txt", b"a\n");
    served.write("sub/b.txt", b"bb\n");
    let mut server = start_server(served.path(), &[]);
    let mut list = |expected: &str, how: &str, after: &str| {
        let reply = ask(server.addr(), b"LIST\n");
        assert_eq!(
            String::from_utf8_lossy(&reply),
            expected,
            "{after}, LIST should list every file {}",
            book::LIST_AND_CLOSE
        );
        let logged = server.wait_for("LIST: listed");
        assert!(
            logged.ends_with(how),
            "{after}, the server should log a LIST ending `{how}`; got {logged:?} {}",
            book::LIST_AND_CLOSE
        );
    };
    list(
        "OK 2\n2 a.txt\n3 sub/b.txt\n",
        ", folders walked",
        "at the first LIST",
    );
    list(
        "OK 2\n2 a.txt\n3 sub/b.txt\n",
        ", listing kept",
        "at a second LIST, with no folder changed (and well within LIST_KEPT_FOR, 10 s)",
    );
    served.write("sub/c.txt", b"ccc\n");
    list(
        "OK 3\n2 a.txt\n3 sub/b.txt\n4 sub/c.txt\n",
        ", folders walked",
        "after sub/c.txt was added",
    );
    fs::rename(served.join("sub/b.txt"), served.join("b.txt")).unwrap();
    list(
        "OK 3\n2 a.txt\n3 b.txt\n4 sub/c.txt\n",
        ", folders walked",
        "after sub/b.txt was moved to b.txt",
    );
}

#[test]
fn a_client_that_hangs_up_while_the_digest_is_computed_frees_its_slot_at_once() {
    let served = TempDir::new();
    // 4 GiB that take no disk (a sparse file): hashing them takes seconds.
    sparse(&served.join("big.iso"), 4 << 30);
    served.write("small.txt", b"small\n");
    let mut server = start_server(served.path(), &["--max-clients", "1"]);
    let mut greedy = Connection::open(server.addr());
    greedy.send(b"RESUME 4294967296 big.iso\n");
    let what = "with --max-clients 1, a client sent `RESUME 4294967296 big.iso` (the whole size \
                of a 4 GiB file: no bytes to send, only the digest to compute) and hung up \
                right after `OK 4294967296`";
    greedy.expect_bytes(
        b"OK 4294967296\n",
        &format!("{what}: the header comes first"),
    );
    drop(greedy);
    server.expect_line(
        "went away",
        &format!(
            "{what}: the server should notice within GONE_CHECK_EVERY (0.1 s) that nobody will \
             read the digest, stop hashing, and free the client's thread and slot, logging \
             `the client went away while the digest was computed` {}",
            book::DIGEST_ONCE
        ),
    );
    // The server's log thread writes the line, and the slot is freed when
    // the client's thread ends, just after it logged: a request sent in
    // between still finds the slot taken. It must be free within LINGER
    // (the most the careful close waits for a client), far sooner than
    // 4 GiB could be hashed.
    let deadline = std::time::Instant::now() + file_download::LINGER;
    let reply = loop {
        let reply = ask(server.addr(), b"GET small.txt\n");
        if !reply.starts_with(b"ERR busy ") || std::time::Instant::now() >= deadline {
            break reply;
        }
    };
    assert!(
        reply.starts_with(b"OK 6\nsmall\n"),
        "{what}, and the server logged that it went away: the one slot is free again (within \
         LINGER, 2 s), so `GET small.txt` should be served; got {} {}",
        testkit::show(&reply),
        book::DIGEST_ONCE
    );
}

/// `count` clients, each of which sent `RESUME <size> big.iso` (the whole
/// file's size: only its digest to wait for) and got `OK <size>`.
fn resume_whole(server: &testkit::Process, count: usize, size: u64, what: &str) -> Vec<Connection> {
    (0..count)
        .map(|_| {
            let mut client = Connection::open(server.addr());
            client.send(format!("RESUME {size} big.iso\n").as_bytes());
            client.expect_bytes(format!("OK {size}\n").as_bytes(), what);
            client
        })
        .collect()
}

/// The SHA-256 of a GiB of zeros: what the sparse file below holds.
const GIB_OF_ZEROS_SHA256: &str =
    "49bc20df15e412a64472421e13fe86ff1c5165e18b2afccf160d4dc19fe68a14";

#[test]
fn requests_for_one_new_file_share_one_hash_that_outlives_the_client_that_started_it() {
    if skipped_off_linux("the bytes the server reads are counted in /proc/PID/io") {
        return;
    }
    let served = TempDir::new();
    // A GiB that takes no disk (a sparse file); reading it gives zeros.
    let size: u64 = 1 << 30;
    sparse(&served.join("big.iso"), size);
    let mut server = start_server(served.path(), &[]);
    let before = bytes_read(server.pid());
    let what = format!(
        "three clients sent `RESUME {size} big.iso` (a new file of 1 GiB: no bytes to send, \
         only the digest to compute) one after the other"
    );
    let mut clients = resume_whole(&server, 3, size, &what);
    // The first one started the hash; it goes, the others still wait.
    drop(clients.remove(0));
    let gone = server.expect_line(
        "went away",
        &format!("{what}, and the first hung up: the server should log that it went away"),
    );
    assert!(
        gone.contains("the hashing goes on for the others waiting"),
        "{what}, and the first hung up: two others still wait for the digest, so the server \
         should go on hashing for them and say so; it logged {gone:?} {}",
        book::DIGEST_ONCE
    );
    for mut client in clients {
        let reply = String::from_utf8(client.read_to_end(&what)).unwrap();
        let lines: Vec<&str> = reply.lines().collect();
        assert!(
            reply.ends_with(&format!("SHA256 {GIB_OF_ZEROS_SHA256}\n"))
                && lines[..lines.len() - 1]
                    .iter()
                    .all(|line| line.starts_with("HASHING ")),
            "{what}, and the first hung up: the others should get `HASHING <done> <size>` lines \
             and then the file's digest, `SHA256 {GIB_OF_ZEROS_SHA256}`; got {reply:?} {}",
            book::DIGEST_ONCE
        );
    }
    let read = bytes_read(server.pid()) - before;
    assert!(
        read < size + size / 2,
        "{what}, and the first hung up: the server should hash the file once, all of them \
         waiting for that one hash (and it going on when the client that started it left); it \
         read {read} bytes, {:.1} times the file {}",
        read as f64 / size as f64,
        book::DIGEST_ONCE
    );
}

#[test]
fn hashing_stops_when_every_client_waiting_for_it_has_gone() {
    if skipped_off_linux("the bytes the server reads are counted in /proc/PID/io") {
        return;
    }
    let served = TempDir::new();
    // 16 GiB that take no disk: hashing them takes far longer than the test.
    let size: u64 = 16 << 30;
    sparse(&served.join("big.iso"), size);
    served.write("small.txt", b"small\n");
    let mut server = start_server(served.path(), &[]);
    let what = format!(
        "two clients sent `RESUME {size} big.iso` (a new file of 16 GiB: only the digest to \
         compute), got `OK {size}`, and both hung up"
    );
    drop(resume_whole(&server, 2, size, &what));
    let logged = [
        server.expect_line("went away", &what),
        server.expect_line("went away", &what),
    ];
    assert!(
        logged
            .iter()
            .any(|line| line.ends_with("; hashing stopped")),
        "{what}: the last to leave should stop the hashing, and its log line end \
         `; hashing stopped`; the server logged {logged:?} {}",
        book::DIGEST_ONCE
    );
    let stopped = bytes_read(server.pid());
    let reply = ask(server.addr(), b"GET small.txt\n");
    assert!(
        reply.starts_with(b"OK 6\nsmall\n"),
        "{what}: GET small.txt should still be served"
    );
    let read = bytes_read(server.pid()) - stopped;
    assert!(
        read < 64 * 1024,
        "{what}: once the server has logged that both went away, nobody wants the digest and \
         the hashing should have stopped; yet it read {read} more bytes while it served \
         `GET small.txt` {}",
        book::DIGEST_ONCE
    );
}

#[test]
fn bad_requests_are_refused_with_bad_request() {
    let fixture = Fixture::new();
    let server = start_server(&fixture.served(), &[]);
    let cases: [&[u8]; 10] = [
        b"get hello.txt\n",
        b"GET\n",
        b"GET \n",
        b"LIST everything\n",
        b"RESUME hello.txt\n",
        b"RESUME +5 hello.txt\n",
        b"RESUME -1 hello.txt\n",
        b"RESUME 99999999999999999999999 hello.txt\n",
        b"GET caf\xe9.txt\n",
        b"\n",
    ];
    for request in cases {
        let reply = ask(server.addr(), request);
        assert_refused(
            &reply,
            "bad-request",
            &testkit::show(request),
            "a request is `GET <path>`, `RESUME <offset> <path>` or `LIST`, in UTF-8, \
             the offset in decimal digits",
            book::PROTOCOL,
        );
    }
    still_serves(server.addr(), "bad requests", book::PROTOCOL);
}

#[test]
fn a_request_ending_in_crlf_works_like_one_ending_in_lf() {
    let fixture = Fixture::new();
    let server = start_server(&fixture.served(), &[]);
    assert_eq!(
        testkit::show(&ask(server.addr(), b"GET hello.txt\r\n")),
        testkit::show(&whole_reply(HELLO)),
        "GET hello.txt\\r\\n: a `\\r` before the newline (nc -C, telnet) should be ignored {}",
        book::PROTOCOL
    );
}

// ---------------------------------------------------------------------------
// Path safety
// ---------------------------------------------------------------------------

#[test]
fn every_path_out_of_the_folder_is_refused_and_the_server_keeps_serving() {
    let fixture = Fixture::new();
    let served = fixture.served();
    let server = start_server(&served, &[]);
    let inside_absolute = format!("{}/hello.txt", served.display());
    const ABSOLUTE: &str = "a path must be relative to the served folder";
    const DOTS: &str = "`.` and `..` are refused anywhere in a path";
    const EMPTY: &str = "a path has no empty components";
    const CONTROL: &str = "a path has no control characters";
    const WINDOWS: &str = "no backslashes and no drive letters: they leave the folder on Windows";
    const DOTFILE: &str = "dotfiles are served only with --hidden";
    const LINK: &str =
        "where a link leads is checked, and every failure behind a link is forbidden";
    const NOT_A_FILE: &str = "only regular files are served, checked on the opened file";
    const NOT_FOUND: &str =
        "nothing is decoded: the name is taken as it is, and there is no such file";
    let (stage_1, stage_2, stage_3) = (book::STAGE_1, book::STAGE_2, book::STAGE_3);
    let cases: Vec<(&str, &str, &str, &str)> = vec![
        ("/etc/passwd", "forbidden", ABSOLUTE, stage_1),
        (&inside_absolute, "forbidden", ABSOLUTE, stage_1),
        ("../secret.txt", "forbidden", DOTS, stage_1),
        ("../nothing.txt", "forbidden", DOTS, stage_1),
        ("sub/../../secret.txt", "forbidden", DOTS, stage_1),
        ("sub/../hello.txt", "forbidden", DOTS, stage_1),
        ("./hello.txt", "forbidden", DOTS, stage_1),
        ("..", "forbidden", DOTS, stage_1),
        ("sub//notes.txt", "forbidden", EMPTY, stage_1),
        ("sub/", "forbidden", EMPTY, stage_1),
        ("/", "forbidden", ABSOLUTE, stage_1),
        ("hello.txt\0.png", "forbidden", CONTROL, stage_1),
        ("a\u{1b}[2Jb", "forbidden", CONTROL, stage_1),
        ("tab\there", "forbidden", CONTROL, stage_1),
        ("..\\secret.txt", "forbidden", WINDOWS, stage_1),
        ("sub\\notes.txt", "forbidden", WINDOWS, stage_1),
        ("C:secret.txt", "forbidden", WINDOWS, stage_1),
        ("C:/Windows/win.ini", "forbidden", WINDOWS, stage_1),
        ("c:\\boot.ini", "forbidden", WINDOWS, stage_1),
        (".env", "forbidden", DOTFILE, stage_1),
        (".git/config", "forbidden", DOTFILE, stage_1),
        ("sub/.hidden", "forbidden", DOTFILE, stage_1),
        // links: out of the folder, to nothing, to a dotfile
        ("escape", "forbidden", LINK, stage_2),
        ("dangling", "forbidden", LINK, stage_2),
        ("escape-dir/secret.txt", "forbidden", LINK, stage_2),
        ("escape-dir/nothing.txt", "forbidden", LINK, stage_2),
        ("sibling", "forbidden", LINK, stage_2),
        ("dot-link", "forbidden", DOTFILE, stage_2),
        // not regular files
        ("sub", "not-a-file", NOT_A_FILE, stage_3),
        ("fifo", "not-a-file", NOT_A_FILE, stage_3),
        // names taken as they are: nothing is decoded
        ("missing.txt", "not-found", NOT_FOUND, stage_1),
        ("%2e%2e/secret.txt", "not-found", NOT_FOUND, stage_1),
        ("sub/missing/deeper.txt", "not-found", NOT_FOUND, stage_2),
        ("hello.txt/x", "not-found", NOT_FOUND, stage_2),
    ];
    for (path, code, why, section) in cases {
        let mut request = b"GET ".to_vec();
        request.extend_from_slice(path.as_bytes());
        request.push(b'\n');
        let reply = ask(server.addr(), &request);
        let shown = testkit::show(&request);
        assert_refused(&reply, code, &shown, why, section);
        assert!(
            !reply.windows(SECRET.len()).any(|w| w == SECRET),
            "{shown}: a refusal must not contain the secret file's bytes {section}"
        );
        still_serves(server.addr(), &shown, book::SERVING);
    }
}

#[test]
fn a_refusal_never_tells_whether_something_outside_exists() {
    let fixture = Fixture::new();
    let server = start_server(&fixture.served(), &[]);
    for (exists, missing) in [
        ("escape", "dangling"),
        ("escape-dir/secret.txt", "escape-dir/nothing.txt"),
        ("../secret.txt", "../nothing.txt"),
        ("/etc/passwd", "/etc/no-such-file"),
    ] {
        let a = ask(server.addr(), format!("GET {exists}\n").as_bytes());
        let b = ask(server.addr(), format!("GET {missing}\n").as_bytes());
        assert_eq!(
            testkit::show(&a),
            testkit::show(&b),
            "GET {exists} (its target exists) and GET {missing} (its target does not) \
             should get the same refusal, byte for byte: a difference tells a client \
             what exists outside the folder {}",
            book::STAGE_2
        );
    }
}

#[test]
fn hidden_serves_dotfiles_but_nothing_outside() {
    let fixture = Fixture::new();
    let server = start_server(&fixture.served(), &["--hidden"]);
    assert_eq!(
        testkit::show(&ask(server.addr(), b"GET .env\n")),
        testkit::show(&whole_reply(b"TOKEN=secret\n")),
        "with --hidden, GET .env should serve the dotfile {}",
        book::STAGE_1
    );
    assert_eq!(
        testkit::show(&ask(server.addr(), b"GET dot-link\n")),
        testkit::show(&whole_reply(b"TOKEN=secret\n")),
        "with --hidden, GET dot-link (a link to .env, inside the folder) should serve it {}",
        book::STAGE_2
    );
    for (path, why, section) in [
        (
            "../secret.txt",
            "--hidden allows dotfiles, never `..`",
            book::STAGE_1,
        ),
        (
            "escape",
            "--hidden never allows a link out of the folder",
            book::STAGE_2,
        ),
        (
            "./.env",
            "--hidden allows dotfiles, never `.`",
            book::STAGE_1,
        ),
        (
            "sub/../.env",
            "--hidden allows dotfiles, never `..`",
            book::STAGE_1,
        ),
    ] {
        let reply = ask(server.addr(), format!("GET {path}\n").as_bytes());
        assert_refused(&reply, "forbidden", &format!("GET {path}"), why, section);
    }
}

#[test]
fn a_link_that_stays_inside_is_served() {
    let fixture = Fixture::new();
    let server = start_server(&fixture.served(), &[]);
    assert_eq!(
        testkit::show(&ask(server.addr(), b"GET inside-link\n")),
        testkit::show(&whole_reply(HELLO)),
        "GET inside-link (a link to hello.txt, inside the folder) should serve hello.txt {}",
        book::STAGE_2
    );
}

// ---------------------------------------------------------------------------
// Limits and deadlines
// ---------------------------------------------------------------------------

#[test]
fn a_request_line_over_the_limit_is_refused() {
    let fixture = Fixture::new();
    let server = start_server(&fixture.served(), &[]);
    // Exactly LINE_LIMIT bytes: allowed (the file does not exist).
    let name = "a".repeat(LINE_LIMIT - "GET ".len());
    let reply = ask(server.addr(), format!("GET {name}\n").as_bytes());
    assert_refused(
        &reply,
        "not-found",
        "`GET aaa...` of exactly LINE_LIMIT (4096) bytes",
        "a line of exactly the limit is allowed; no file has that name",
        book::LIMITS,
    );
    // One more: line-too-long.
    let reply = ask(server.addr(), format!("GET {name}a\n").as_bytes());
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "ERR line-too-long a request line is at most 4096 bytes\n",
        "`GET aaa...` of 4097 bytes, one over LINE_LIMIT, should be refused with the line \
         `ERR line-too-long a request line is at most 4096 bytes` {}",
        book::LIMITS
    );
    // Far over it, never ending: refused as soon as the limit is passed.
    let mut conn = Connection::open(server.addr());
    conn.send(&vec![b'x'; 64 * 1024]);
    let too_long = format!(
        "a client that sends 64 KiB without a newline should be refused as soon as it passes \
         LINE_LIMIT, without waiting for the newline {}",
        book::LIMITS
    );
    assert_eq!(
        conn.read_line(&too_long),
        "ERR line-too-long a request line is at most 4096 bytes",
        "{too_long}"
    );
    still_serves(server.addr(), "lines over the limit", book::LIMITS);
}

#[test]
fn a_silent_client_is_refused_after_the_request_timeout() {
    let fixture = Fixture::new();
    let mut server = start_server(&fixture.served(), &["--request-timeout", "1"]);
    let mut conn = Connection::open(server.addr());
    let silent = format!(
        "a client that connects and sends nothing should be told, after --request-timeout 1, \
         `ERR bad-request no complete request line within 1 s` {}",
        book::DEADLINE
    );
    assert_eq!(
        conn.read_line(&silent),
        "ERR bad-request no complete request line within 1 s",
        "{silent}"
    );
    conn.expect_orderly_close(&format!(
        "after refusing a silent client, the server should close gently, with a FIN {}",
        book::LIST_AND_CLOSE
    ));
    server.wait_for("(no request): bad-request (no complete request line within 1 s)");
}

#[test]
fn the_request_deadline_counts_for_the_whole_line_not_for_each_read() {
    let fixture = Fixture::new();
    let server = start_server(&fixture.served(), &["--request-timeout", "1"]);
    let conn = Connection::open(server.addr());
    let mut stream = conn.stream();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    // A byte every 250 ms: each read waits far less than 1 s, but the
    // whole line (never ended by a newline) takes over 5 s.
    let mut reply = Vec::new();
    for &byte in b"GET some/long/name.txt" {
        if !reply.is_empty() || stream.write_all(&[byte]).is_err() {
            break;
        }
        let mut buf = [0; 256];
        match stream.read(&mut buf) {
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(err) => panic!(
                "a client sending its request a byte every 250 ms could not read the reply: \
                 {err} {}",
                book::DEADLINE
            ),
        }
    }
    assert!(
        !reply.is_empty(),
        "a client that sends its request a byte every 250 ms must be cut off after \
         --request-timeout 1, while it is still sending: the deadline is for the whole line, \
         and a read timeout alone starts again at every byte {}",
        book::DEADLINE
    );
    stream.set_read_timeout(Some(testkit::WAIT)).unwrap();
    let _ = stream.read_to_end(&mut reply);
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "ERR bad-request no complete request line within 1 s\n",
        "after the deadline the server should say so in one line, \
         `ERR bad-request no complete request line within 1 s`, and close {}",
        book::DEADLINE
    );
}

#[test]
fn clients_over_the_cap_are_told_busy() {
    let fixture = Fixture::new();
    let mut server = start_server(&fixture.served(), &["--max-clients", "1"]);
    let holder = Connection::open(server.addr());
    let mut second = Connection::open(server.addr());
    second.expect_bytes(
        b"ERR busy all 1 client slots are taken; try again later\n",
        &format!(
            "with --max-clients 1 and one client connected, the next should be told busy {}",
            book::SERVING
        ),
    );
    second.expect_orderly_close(&format!(
        "after the busy line the server should close gently, with a FIN {}",
        book::SERVING
    ));
    server.wait_for("busy: already serving the most clients allowed (1), refused");
    drop(holder);
    // The slot is free once the server has seen the first client close;
    // until then a new client may still be told busy.
    let deadline = std::time::Instant::now() + testkit::WAIT;
    let mut reply = ask(server.addr(), b"GET hello.txt\n");
    while reply.starts_with(b"ERR busy") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        reply = ask(server.addr(), b"GET hello.txt\n");
    }
    assert_eq!(
        testkit::show(&reply),
        testkit::show(&whole_reply(HELLO)),
        "with --max-clients 1, once the first client has left, its slot should be free for \
         the next: GET hello.txt should get the file {}",
        book::SERVING
    );
}

// ---------------------------------------------------------------------------
// Concurrency, streaming, and clients that go away
// ---------------------------------------------------------------------------

/// Larger than the socket buffers of both ends together, so a client that
/// stops reading makes the server wait.
const BIG: usize = 32 * 1024 * 1024;

#[test]
fn a_client_that_stops_reading_does_not_hold_up_the_others() {
    let fixture = Fixture::new();
    fs::write(fixture.served().join("big.bin"), file_bytes(BIG, 1)).unwrap();
    let server = start_server(&fixture.served(), &[]);
    let mut slow = Connection::open(server.addr());
    slow.send(b"GET big.bin\n");
    slow.read_line(&format!(
        "GET big.bin should be answered `OK <size>` {}",
        book::PROTOCOL
    ));
    // `slow` reads nothing more: its thread is stuck sending. Another client
    // must still be served at once; a server that serves one client at a
    // time would make it wait.
    still_serves(
        server.addr(),
        "a client stopped reading in the middle of a 32 MiB file (a thread per client: \
         the stuck one must not hold up the others)",
        book::SERVING,
    );
}

/// A client that reads `piece` bytes every `every`, from a socket with a
/// small receive buffer (so the server's side fills at once, and the bytes
/// the server hands over follow what the client reads), until `stop` or
/// 20 s. Its thread ends when the server closes.
fn paced_reader(
    addr: std::net::SocketAddr,
    request: &[u8],
    piece: usize,
    every: Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    use std::sync::atomic::Ordering;
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let stream: std::net::TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    (&stream).write_all(request).unwrap();
    let started = std::time::Instant::now();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; piece];
        let mut got = 0;
        while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(20) {
            match (&stream).read(&mut buf) {
                Ok(n @ 1..) => got += n as u64,
                _ => break,
            }
            std::thread::sleep(every);
        }
        got
    })
}

#[test]
fn a_crawling_reader_is_dropped_and_the_only_slot_serves_the_next_client() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;
    let fixture = Fixture::new();
    fs::write(fixture.served().join("big.bin"), file_bytes(BIG, 4)).unwrap();
    let mut server = start_server(
        &fixture.served(),
        &["--max-clients", "1", "--rate-window", "1"],
    );
    // The crawler takes 512 bytes every 250 ms (2 KiB/s, under MIN_RATE).
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let crawling = paced_reader(
        server.addr(),
        b"GET big.bin\n",
        512,
        Duration::from_millis(250),
        std::sync::Arc::clone(&stop),
    );
    let line = server.wait_for("GET big.bin: ");
    let dropped_after = started.elapsed();
    assert!(
        line.contains(": dropped after ") && line.contains("bytes/s over 1 s"),
        "with --rate-window 1, a client that takes big.bin at 2 KiB/s (under MIN_RATE, 4096 \
         bytes/s) should be dropped and logged `GET big.bin: dropped after N of M bytes: the \
         client took less than 4096 bytes/s over 1 s`; got {line:?} {}",
        book::SENDING
    );
    // One window once the socket is full, and slack: not two or three
    // windows while the socket's buffers take the first megabytes.
    assert!(
        dropped_after < Duration::from_millis(2500),
        "with --rate-window 1, a client that takes big.bin at 2 KiB/s should be dropped one \
         window (1 s) after the socket is full; it was dropped {:.1} s after its request. The \
         rate must count what the client takes, not what the socket's buffers swallow: at \
         most UNSENT_LIMIT bytes unsent (TCP_NOTSENT_LOWAT), and the first window from the \
         moment the socket is full {}",
        dropped_after.as_secs_f64(),
        book::SENDING
    );
    // Its slot is free once the server's careful close (LINGER) is over:
    // the only slot must then serve another client. A retry every 100 ms,
    // for at most LINGER and 3 s of slack.
    let bound = file_download::LINGER + Duration::from_secs(3);
    let dropped = Instant::now();
    loop {
        let reply = ask(server.addr(), b"GET hello.txt\n");
        if reply == whole_reply(HELLO) {
            break;
        }
        assert!(
            reply.starts_with(b"ERR busy ") && dropped.elapsed() < bound,
            "with --max-clients 1, once the crawling client was dropped, GET hello.txt should \
             be served within {} s (LINGER and slack), {} s after the crawler started; got {} \
             {}",
            bound.as_secs(),
            started.elapsed().as_secs(),
            testkit::show(&reply),
            book::SENDING
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    crawling.join().unwrap();
}

#[test]
fn an_honest_reader_at_16_kib_a_second_is_never_dropped() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let fixture = Fixture::new();
    // 1 MiB outlasts the reader: it takes 40 KiB.
    fs::write(fixture.served().join("big.bin"), file_bytes(1 << 20, 5)).unwrap();
    let mut server = start_server(&fixture.served(), &["--rate-window", "1"]);
    // 4 KiB every 250 ms: 16 KiB/s, four times MIN_RATE, for 2.5 s (two
    // windows and a half).
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let reading = paced_reader(
        server.addr(),
        b"GET big.bin\n",
        4096,
        Duration::from_millis(250),
        std::sync::Arc::clone(&stop),
    );
    std::thread::sleep(Duration::from_millis(2500));
    // Before it goes: its leaving is logged, as it should be.
    server.expect_no_line(
        "a client that takes 16 KiB/s (four times MIN_RATE) must not be dropped or logged \
         while it reads",
    );
    stop.store(true, Ordering::Relaxed);
    let got = reading.join().unwrap();
    // 10 reads of up to 4 KiB (a read may return less). Dropped after the
    // first window, the reader would have had what its socket held then,
    // under 16 KiB.
    assert!(
        got > 24 * 1024,
        "with --rate-window 1, a client that took big.bin at 16 KiB/s (four times MIN_RATE) \
         read only {got} bytes in 2.5 s: the server stopped sending it. A client that takes \
         more than MIN_RATE must never be dropped {}",
        book::SENDING
    );
}

#[test]
fn one_address_holds_at_most_its_share_of_the_slots() {
    let fixture = Fixture::new();
    fs::write(fixture.served().join("big.bin"), file_bytes(BIG, 6)).unwrap();
    let server = start_server(
        &fixture.served(),
        &["--max-clients", "4", "--max-per-address", "2"],
    );
    let what = "with --max-clients 4 --max-per-address 2, two clients from 127.0.0.1 held \
                their slots (GET big.bin, the header read, the bytes left unread)";
    // Each has its header: the server is serving both.
    let held: Vec<Connection> = (0..2)
        .map(|_| {
            let mut conn = Connection::open(server.addr());
            conn.send(b"GET big.bin\n");
            conn.read_line(&format!(
                "{what}: each should get `OK <size>` {}",
                book::SERVING
            ));
            conn
        })
        .collect();
    let third = ask(server.addr(), b"GET hello.txt\n");
    assert!(
        third.starts_with(b"ERR busy ") && third.ends_with(b"\n"),
        "{what}: a third client from the same address should be told `ERR busy ...` at once, \
         though two slots are free: one machine may hold only its share; got {} {}",
        testkit::show(&third),
        book::SERVING
    );
    // Loopback answers the whole of 127/8: 127.0.0.2 is another machine.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(
            &"127.0.0.2:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.connect(&server.addr().into()).unwrap();
    let mut other = Connection::from_stream(socket.into());
    other.send(b"GET hello.txt\n");
    let reply = other.read_to_end(&format!("{what}: a client from 127.0.0.2"));
    assert_eq!(
        reply,
        whole_reply(HELLO),
        "{what}: a client from another address (127.0.0.2) should be served: the share is per \
         address, and two slots are free {}",
        book::SERVING
    );
    drop(held);
}

#[test]
fn a_client_that_vanishes_mid_file_is_logged_and_costs_nothing_else() {
    let fixture = Fixture::new();
    fs::write(fixture.served().join("big.bin"), file_bytes(BIG, 2)).unwrap();
    let mut server = start_server(&fixture.served(), &[]);
    let mut gone = Connection::open(server.addr());
    gone.send(b"GET big.bin\n");
    gone.read_line(&format!(
        "GET big.bin should be answered `OK <size>` {}",
        book::PROTOCOL
    ));
    gone.expect_bytes(
        &file_bytes(BIG, 2)[..1000],
        &format!(
            "GET big.bin: the first bytes of the file should follow the header {}",
            book::SENDING
        ),
    );
    gone.reset();
    let line = server.wait_for("GET big.bin: ");
    assert!(
        line.contains(": the client went away after "),
        "when a client resets the connection in the middle of a 32 MiB file, the server \
         should log `GET big.bin: the client went away after N of M bytes (...)`; got {line:?} {}",
        book::SENDING
    );
    still_serves(
        server.addr(),
        "a client reset the connection mid-file",
        book::SENDING,
    );
}

#[test]
fn a_big_file_arrives_whole_and_matches_its_digest() {
    let fixture = Fixture::new();
    let content = file_bytes(5 * 1024 * 1024 + 3, 3);
    fs::write(fixture.served().join("big.bin"), &content).unwrap();
    let server = start_server(&fixture.served(), &[]);
    assert!(
        ask(server.addr(), b"GET big.bin\n") == whole_reply(&content),
        "GET big.bin, a 5 MiB file, should send the header and every byte, unchanged {}",
        book::SENDING
    );
}

/// A file far larger than the memory the server may use to send it.
const HUGE: u64 = 256 * 1024 * 1024;
/// The most memory the server may ever hold while it hashes and sends
/// HUGE: a few buffers and its threads, not the file.
const MEMORY_BOUND_KIB: u64 = 64 * 1024;

#[test]
fn the_server_sends_a_file_far_larger_than_its_memory_bound() {
    if skipped_off_linux("the server's peak memory is read from /proc/PID/status (VmHWM)") {
        return;
    }
    let fixture = Fixture::new();
    // A sparse file: 256 MiB long, holding no blocks on disk; reading it
    // gives zeros.
    sparse(&fixture.served().join("huge.bin"), HUGE);
    let server = start_server(&fixture.served(), &[]);

    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    // In a debug build, hashing 256 MiB can lag the bytes by seconds;
    // the server says `HASHING` every PROGRESS_EVERY meanwhile.
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    stream.write_all(b"GET huge.bin\n").unwrap();
    let mut reader = std::io::BufReader::with_capacity(1024 * 1024, stream);
    let mut header = String::new();
    if let Err(err) = std::io::BufRead::read_line(&mut reader, &mut header) {
        panic!(
            "GET huge.bin (256 MiB) should be answered `OK {HUGE}` within 120 s; \
             got {header:?} and then: {err} {}",
            book::PROTOCOL
        );
    }
    assert_eq!(
        header,
        format!("OK {HUGE}\n"),
        "GET huge.bin (a file of {HUGE} bytes) should be answered `OK {HUGE}` {}",
        book::PROTOCOL
    );
    let received = std::io::copy(&mut (&mut reader).take(HUGE), &mut std::io::sink())
        .unwrap_or_else(|err| {
            panic!(
                "GET huge.bin: all {HUGE} bytes should follow the header; the connection \
                 failed: {err} {}",
                book::SENDING
            )
        });
    assert_eq!(
        received,
        HUGE,
        "GET huge.bin should send all {HUGE} bytes after the header {}",
        book::SENDING
    );
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    let last = rest.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("SHA256 ")
            && rest
                .lines()
                .rev()
                .skip(1)
                .all(|line| line.starts_with("HASHING ")),
        "GET huge.bin: after the bytes, the server should send `SHA256 <hex>`, after \
         `HASHING <done> <size>` lines if it is still hashing; got {rest:?} {}",
        book::PROTOCOL
    );
    let peak = peak_resident_kib(server.pid());
    assert!(
        peak <= MEMORY_BOUND_KIB,
        "while it hashed and sent a {} MiB file, the server's peak memory (VmHWM) should stay \
         under {} MiB; it reached {} MiB. A server that reads the whole file into memory needs \
         as much memory as the file: hash it and send it a buffer at a time, or let the kernel \
         send it (sendfile) {}",
        HUGE >> 20,
        MEMORY_BOUND_KIB >> 10,
        peak >> 10,
        book::SENDING
    );
}

/// A file that takes the server far longer to hash than a client waits
/// for a reply (seconds, even at gigabytes per second): sparse, it costs
/// no disk.
const SLOW_TO_HASH: u64 = 16 * 1024 * 1024 * 1024;

#[test]
fn the_first_bytes_of_a_big_file_go_out_before_its_digest_is_computed() {
    let fixture = Fixture::new();
    sparse(&fixture.served().join("huge.bin"), SLOW_TO_HASH);
    let mut server = start_server(&fixture.served(), &[]);
    let mut conn = Connection::open(server.addr());
    conn.send(b"GET huge.bin\n");
    let what = format!(
        "GET huge.bin, a file of {SLOW_TO_HASH} bytes asked for the first time: the header \
         `OK {SLOW_TO_HASH}` and the first bytes should come at once, within {} s, not after \
         the server has read the whole file to hash it (the digest comes after the bytes) {}",
        testkit::WAIT.as_secs(),
        book::DIGEST_ONCE
    );
    conn.expect_bytes(format!("OK {SLOW_TO_HASH}\n").as_bytes(), &what);
    conn.expect_bytes(&vec![0; 1024 * 1024], &what);
    conn.reset();
    let line = server.wait_for("GET huge.bin: ");
    assert!(
        line.contains(": the client went away after "),
        "a client that resets in the middle of a file should be logged as gone; got {line:?} {}",
        book::SENDING
    );
    still_serves(
        server.addr(),
        "a client went away while its file was being hashed",
        book::SENDING,
    );
}

#[test]
fn a_changed_file_gets_its_new_digest_and_an_unchanged_one_is_not_hashed_again() {
    let fixture = Fixture::new();
    let file = fixture.served().join("changing.txt");
    fs::write(&file, b"version one\n").unwrap();
    let mut server = start_server(&fixture.served(), &[]);
    let addr = server.addr();

    assert_eq!(
        testkit::show(&ask(addr, b"GET changing.txt\n")),
        testkit::show(&whole_reply(b"version one\n")),
        "GET changing.txt should get the file {}",
        book::PROTOCOL
    );
    server.wait_for("GET changing.txt: sent 12 bytes in");
    assert!(
        server.stdout_now().ends_with("sha256 computed\n"),
        "the first GET of a file computes its digest, and its log line should end \
         `sha256 computed` {}",
        book::DIGEST_ONCE
    );
    assert_eq!(
        testkit::show(&ask(addr, b"GET changing.txt\n")),
        testkit::show(&whole_reply(b"version one\n")),
        "a second GET changing.txt should get the same file {}",
        book::DIGEST_ONCE
    );
    let line = server.wait_for("GET changing.txt: sent");
    assert!(
        line.ends_with("sha256 known"),
        "a second GET of an unchanged file should use the digest kept in memory, and its log \
         line should end `sha256 known`; got {line:?} {}",
        book::DIGEST_ONCE
    );

    // Another size: another digest.
    fs::write(&file, b"version two, longer\n").unwrap();
    assert_eq!(
        testkit::show(&ask(addr, b"GET changing.txt\n")),
        testkit::show(&whole_reply(b"version two, longer\n")),
        "after changing.txt changed size, GET should announce its new digest: the digest \
         kept is trusted only while size and modification time stay the same {}",
        book::DIGEST_ONCE
    );
    // Same size, another modification time: another digest.
    fs::write(&file, b"version 3, as long\n\n").unwrap();
    let handle = fs::File::options().write(true).open(&file).unwrap();
    handle
        .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000))
        .unwrap();
    drop(handle);
    assert_eq!(
        testkit::show(&ask(addr, b"GET changing.txt\n")),
        testkit::show(&whole_reply(b"version 3, as long\n\n")),
        "after changing.txt changed (same size, new modification time), GET should announce \
         its new digest {}",
        book::DIGEST_ONCE
    );
}

// ---------------------------------------------------------------------------
// What a person sees
// ---------------------------------------------------------------------------

#[test]
fn the_server_log_has_a_line_per_request() {
    let temp = TempDir::new();
    temp.write("served/hello.txt", HELLO);
    temp.write("served/sub/notes.txt", b"notes\n");
    temp.write("secret.txt", SECRET);
    let mut server = start_server(&temp.path().join("served"), &[]);
    let addr = server.addr();
    let requests: [&[u8]; 8] = [
        b"GET hello.txt\n",
        b"GET hello.txt\n",
        b"RESUME 6 hello.txt\n",
        b"LIST\n",
        b"GET ../secret.txt\n",
        b"GET missing.txt\n",
        b"GET sub\n",
        b"HELLO \x1b[2J\n",
    ];
    // Each request on a connection of its own: the log names each client
    // by its own port, never the server's.
    let mut ports = vec![(addr.port(), "listen port".to_string())];
    for request in requests {
        let mut conn = Connection::open(addr);
        ports.push((
            conn.local_addr().port(),
            format!("client {}'s port", ports.len()),
        ));
        conn.send(request);
        conn.read_to_end(&format!(
            "the server should reply to {} and then close {}",
            testkit::show(request),
            book::PROTOCOL
        ));
        server.next_line(&format!(
            "after {}, the server should print one line: who asked, what, and what came of it {}",
            testkit::show(request),
            book::RUN_IT
        ));
    }
    let silent = Connection::open(addr);
    ports.push((
        silent.local_addr().port(),
        format!("client {}'s port", ports.len()),
    ));
    drop(silent);
    server.next_line(&format!(
        "a client that closes without a request should get a log line too, \
         `[ADDR] closed the connection without a request` {}",
        book::RUN_IT
    ));
    server.kill();
    let _guard = settings_naming_ports(&temp, &ports).bind_to_scope();
    insta::assert_snapshot!("server_log", server.stdout());
}

#[test]
fn a_folder_that_does_not_exist_is_one_error_line() {
    let temp = TempDir::new();
    let missing = temp.path().join("nothing-here");
    let done = run(bin(), &["serve", missing.to_str().unwrap()], "");
    done.assert_failure(&format!(
        "serve on a folder that does not exist should fail with one error line {}",
        book::RUN_IT
    ));
    assert_eq!(
        done.stdout,
        "",
        "serve on a folder that does not exist should print nothing on stdout {}: {done}",
        book::RUN_IT
    );
    let _guard = settings(&temp).bind_to_scope();
    insta::assert_snapshot!("missing_folder", done.stderr);
}

#[test]
#[cfg_attr(
    not(has_nc),
    ignore = "needs OpenBSD nc (netcat-openbsd): install it, or run .ci/run"
)]
fn nc_can_fetch_a_file_by_hand() {
    let Some(nc) = tool("nc") else { return };
    let fixture = Fixture::new();
    let server = start_server(&fixture.served(), &[]);
    let port = server.addr().port().to_string();
    // The chapter's command: printf 'GET hello.txt\n' | nc -N 127.0.0.1 PORT
    let done = run(&nc, &["-N", "127.0.0.1", &port], "GET hello.txt\n");
    done.assert_success(&format!("nc -N 127.0.0.1 PORT {}", book::BY_HAND));
    assert_eq!(
        done.stdout,
        format!("OK 12\nhello world\nSHA256 {}\n", sha256_hex(HELLO)),
        "`printf 'GET hello.txt\\n' | nc -N 127.0.0.1 PORT` should print the header, the \
         file and the digest line {}; {done}",
        book::BY_HAND
    );
}

#[test]
fn survives_every_misbehaving_client() {
    let fixture = Fixture::new();
    let mut server = start_server(&fixture.served(), &["--request-timeout", "2"]);
    testkit::hostile::run_battery("lesson 5", &mut server, "GET hello.txt", |addr| {
        still_serves(addr, "a misbehaving client", book::SERVING);
    });
}

/// The served folder's path never appears in a reply (not even in errors).
#[test]
fn replies_never_show_the_servers_own_paths() {
    let fixture = Fixture::new();
    let served = fixture.served();
    let server = start_server(&served, &[]);
    let folder = served.to_str().unwrap().as_bytes();
    for request in [
        &b"GET escape\n"[..],
        b"GET missing\n",
        b"GET sub\n",
        b"LIST\n",
    ] {
        let reply = ask(server.addr(), request);
        assert!(
            !reply.windows(folder.len()).any(|w| w == folder),
            "{}: a reply should not show where the folder is on the server, not even in an \
             error: its messages are the server's own words; got {} {}",
            testkit::show(request),
            testkit::show(&reply),
            book::PROTOCOL
        );
    }
}

// ---------------------------------------------------------------------------
// Races: names that change while the server resolves them
// ---------------------------------------------------------------------------

/// How many requests a race test sends at most, and for how long at most.
const RACE_REQUESTS: usize = 1000;
const RACE_TIME: Duration = Duration::from_secs(20);

/// Sends `GET request_path` up to RACE_REQUESTS times (at most RACE_TIME)
/// while a thread swaps the names `a` and `b` of folder `swapped` with one
/// atomic renameat2(RENAME_EXCHANGE) after another; returns how many
/// replies held a byte sequence of `secret`, and how many requests went out.
fn race(
    server: std::net::SocketAddr,
    swapped: &std::path::Path,
    (a, b): (&str, &str),
    request_path: &str,
    secret: &[u8],
) -> (usize, usize) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let folder = fs::File::open(swapped).unwrap();
    let swapper = {
        let stop = std::sync::Arc::clone(&stop);
        let (a, b) = (a.to_string(), b.to_string());
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                rustix::fs::renameat_with(
                    &folder,
                    a.as_str(),
                    &folder,
                    b.as_str(),
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .unwrap();
                swaps += 1;
            }
            swaps
        })
    };
    let started = std::time::Instant::now();
    let (mut leaks, mut sent) = (0, 0);
    let request = format!("GET {request_path}\n");
    while sent < RACE_REQUESTS && started.elapsed() < RACE_TIME {
        let reply = ask(server, request.as_bytes());
        sent += 1;
        if reply.windows(secret.len()).any(|w| w == secret) {
            leaks += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(
        swaps > 0,
        "the swapping thread should have swapped the names"
    );
    (leaks, sent)
}

#[test]
fn a_file_swapped_with_a_link_out_never_sends_the_secret() {
    let temp = TempDir::new();
    let secret = b"FILE-SECRET: the key to the vault is 4711\n";
    temp.write("secret.txt", secret);
    temp.write("served/a.txt", b"public\n");
    let served = temp.path().join("served");
    symlink(temp.path().join("secret.txt"), served.join("out")).unwrap();
    let server = start_server(&served, &[]);
    let (leaks, sent) = race(server.addr(), &served, ("a.txt", "out"), "a.txt", secret);
    assert_eq!(
        leaks,
        0,
        "while a thread swapped `a.txt` (a file) and `out` (a link to a secret outside the \
         folder) again and again, {leaks} of {sent} replies to GET a.txt held the secret: a path \
         must be resolved and opened in one step that no rename can redirect (walk from a \
         handle on the served folder, one name at a time, never following a link by name) {}",
        book::STAGE_2
    );
}

#[test]
fn a_folder_swapped_with_a_link_out_never_sends_the_secret() {
    let temp = TempDir::new();
    let secret = b"FOLDER-SECRET: the key to the vault is 4711\n";
    temp.write("outside/f.txt", secret);
    temp.write("served/d/f.txt", b"public\n");
    let served = temp.path().join("served");
    symlink(temp.path().join("outside"), served.join("out")).unwrap();
    let server = start_server(&served, &[]);
    let (leaks, sent) = race(server.addr(), &served, ("d", "out"), "d/f.txt", secret);
    assert_eq!(
        leaks,
        0,
        "while a thread swapped `d` (a folder) and `out` (a link to a folder outside) again \
         and again, {leaks} of {sent} replies to GET d/f.txt held the secret: every folder on \
         the way must be opened from the one before it, never through a link by name {}",
        book::STAGE_2
    );
}
