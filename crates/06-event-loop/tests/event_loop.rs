//! What lesson 6 adds to lesson 3's protocol: thousands of clients at once,
//! a bound on what a client that never reads can cost, and a graceful
//! shutdown, on both engines. (The protocol itself is in `protocol.rs`.)

// Helpers outside #[test] functions fail the way tests do: by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::predicate;
use testkit::hostile::resident_kib;
use testkit::line_protocol::round_trip;
use testkit::{Connection, Process, WAIT, run, tool};

fn server_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_06-event-loop"))
}

fn start(engine: &str, args: &[&str]) -> Process {
    let mut all = vec!["--engine", engine];
    all.extend_from_slice(args);
    Process::server(server_bin(), &all)
}

const ENGINES: [&str; 2] = ["mio", "tokio"];

/// Sends SIGINT, as Ctrl-C in the server's terminal does.
fn interrupt(server: &Process) {
    let pid = rustix::process::Pid::from_raw(server.pid() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
}

/// Lets this test process open `wanted` files (each connection is one),
/// raising the soft limit up to the hard one; says so if it cannot.
fn allow_open_files(wanted: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|current| current < wanted) {
        let raised = Rlimit {
            current: Some(wanted.min(limit.maximum.unwrap_or(u64::MAX))),
            maximum: limit.maximum,
        };
        setrlimit(Resource::Nofile, raised).unwrap();
    }
    let now = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    assert!(
        now >= wanted,
        "this test needs {wanted} open files and the hard limit allows only {now} (ulimit -Hn)"
    );
}

// ---------------------------------------------------------------------------
// Many clients on one thread
// ---------------------------------------------------------------------------

/// How many clients the test holds at once: twice the usual soft limit of
/// open files (1024), which the test and the server both raise.
const MANY: usize = 2_000;

fn many_clients_at_once_all_get_their_replies(engine: &str) {
    // Both engines' tests may run at once, in this one process.
    allow_open_files(2 * MANY as u64 + 1024);
    let server = start(engine, &[]);
    let mut clients = Vec::with_capacity(MANY);
    for n in 0..MANY {
        let stream = TcpStream::connect_timeout(&server.addr(), WAIT).unwrap_or_else(|err| {
            panic!(
                "client {n} of {MANY} could not connect: {err}. One thread should hold thousands of \
                 connections (book: 06-event-loop.md § Readiness against blocking)"
            )
        });
        clients.push(Connection::from_stream(stream));
    }
    // Every client speaks while all the others are connected...
    for (n, client) in clients.iter_mut().enumerate() {
        client.send_line(&format!("client {n} of {MANY}"));
    }
    // ...and each gets exactly its own reply.
    for (n, client) in clients.iter_mut().enumerate() {
        client.expect_bytes(
            b"ok\n",
            &format!(
                "with {MANY} clients connected at once, each sent one line; client {n} should get \
                 its `ok` (book: 06-event-loop.md § One turn of the event loop)"
            ),
        );
    }
    for client in &mut clients {
        client.half_close();
    }
    for (n, client) in clients.iter_mut().enumerate() {
        client.expect_orderly_close(&format!(
            "client {n} of {MANY} half-closed: the server should close its side with a FIN \
             (book: 06-event-loop.md § Writing what fits)"
        ));
    }
}

#[test]
fn mio_two_thousand_clients_at_once_all_get_their_replies() {
    many_clients_at_once_all_get_their_replies("mio");
}

#[test]
fn tokio_two_thousand_clients_at_once_all_get_their_replies() {
    many_clients_at_once_all_get_their_replies("tokio");
}

#[test]
fn the_mio_engine_serves_everyone_from_one_thread() {
    let server = start("mio", &[]);
    let mut clients: Vec<Connection> = (0..20).map(|_| Connection::open(server.addr())).collect();
    for client in &mut clients {
        round_trip(client, "hello");
    }
    // The log writer is the only other thread (common::log).
    let threads = std::fs::read_dir(format!("/proc/{}/task", server.pid()))
        .map(|tasks| tasks.count())
        .unwrap_or(2);
    assert!(
        threads <= 2,
        "with 20 clients connected, the mio engine should run on one thread (and the log \
         writer's); /proc says {threads} threads (book: 06-event-loop.md § Readiness against blocking)"
    );
}

// ---------------------------------------------------------------------------
// A client that never reads
// ---------------------------------------------------------------------------

/// The server's OUTPUT_LIMIT, and the most one read's lines can add to it
/// before the check: a 16 KiB read of empty lines gets 3 bytes back each.
const OUTPUT_LIMIT: usize = 64 * 1024;
const ONE_READ_OF_REPLIES: usize = 3 * 16 * 1024;

#[test]
fn a_client_that_never_reads_is_disconnected_when_its_replies_pass_the_bound() {
    let mut server = start("mio", &[]);
    // A small receive buffer on the client's side, so the kernel holds few
    // of the replies and the server's own buffer fills sooner.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect_timeout(&server.addr().into(), WAIT).unwrap();
    let mut rude: TcpStream = socket.into();
    rude.set_write_timeout(Some(WAIT)).unwrap();
    let me = rude.local_addr().unwrap();
    // Send lines, never read a reply, until the server gives up on us.
    let sender = thread::spawn(move || {
        let lines = "\n".repeat(64 * 1024);
        let mut sent = 0usize;
        while sent < 256 * 1024 * 1024 {
            match rude.write(lines.as_bytes()) {
                Ok(n) => sent += n,
                Err(err) => return (sent, Some(err.kind())),
            }
        }
        (sent, None)
    });
    let (sent, ended) = sender.join().unwrap();
    assert!(
        matches!(
            ended,
            Some(ErrorKind::ConnectionReset | ErrorKind::BrokenPipe)
        ),
        "a client that sends lines and never reads the replies should be disconnected once more \
         than {OUTPUT_LIMIT} bytes of replies wait for it; after sending {sent} bytes of empty \
         lines, its writes {} (book: 06-event-loop.md § The buffers a connection owns)",
        match ended {
            None => "still went through".to_string(),
            Some(kind) => format!("failed with {kind:?}, not with a reset"),
        }
    );
    // The server logs every one of those lines, and its log drops lines
    // rather than wait for its reader (common::log): the line saying why
    // the client was dropped may be lost in the flood, and then the log
    // says that lines were dropped.
    let deadline = Instant::now() + WAIT;
    let tag = format!("[{me}] not reading its replies (");
    let line = loop {
        let log = server.stdout_now();
        if let Some(line) = log.lines().find(|line| line.starts_with(&tag)) {
            break Some(line.to_string());
        }
        if log.contains("log lines dropped") {
            break None;
        }
        if Instant::now() > deadline {
            server.fail(&format!(
                "it should log `[ADDR] not reading its replies (N bytes waiting), disconnected` for \
                 the client that never read; no such line came within {} s \
                 (book: 06-event-loop.md § The buffers a connection owns)",
                WAIT.as_secs()
            ));
        }
        thread::sleep(Duration::from_millis(20));
    };
    match line {
        Some(line) => {
            let waiting: usize = line[tag.len()..]
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| {
                    panic!("the log line should say how many bytes waited; got {line:?}")
                });
            assert!(
                waiting > OUTPUT_LIMIT && waiting <= OUTPUT_LIMIT + ONE_READ_OF_REPLIES,
                "a client that never reads should be dropped as soon as more than {OUTPUT_LIMIT} \
                 bytes of replies wait for it (the kernel took what it could, in partial writes); \
                 {waiting} were waiting (book: 06-event-loop.md § The buffers a connection owns)"
            );
        }
        None => eprintln!("the server's line about the dropped client was lost in its log's flood"),
    }
    let rss = resident_kib(server.pid()).unwrap_or(0);
    assert!(
        rss < 64 * 1024,
        "the server's memory should stay small however much a client sends without reading; \
         it is {rss} KiB (book: 06-event-loop.md § The buffers a connection owns)"
    );
    let mut polite = Connection::open(server.addr());
    round_trip(&mut polite, "others are still served");
}

// ---------------------------------------------------------------------------
// Graceful shutdown
// ---------------------------------------------------------------------------

fn refused(addr: SocketAddr) -> bool {
    matches!(
        TcpStream::connect_timeout(&addr, WAIT),
        Err(err) if err.kind() == ErrorKind::ConnectionRefused
    )
}

fn sigint_answers_the_line_in_flight_then_says_bye_and_exits(engine: &str) {
    let mut server = start(engine, &["--grace", "5"]);
    let mut client = Connection::open(server.addr());
    round_trip(&mut client, "before the signal");
    // Freeze the server, so that the next line is in its receive buffer,
    // unread, when the signal arrives.
    server.freeze();
    client.send_line("in flight");
    interrupt(&server);
    server.thaw();
    client.expect_bytes(
        b"ok\nbye: server shutting down\n",
        "a line that had arrived before SIGINT should still get its `ok`, then the client should be \
         told `bye: server shutting down` (book: 06-event-loop.md § Graceful shutdown)",
    );
    client.expect_orderly_close(
        "after `bye`, the server should close the connection gently, with a FIN \
         (book: 06-event-loop.md § Graceful shutdown)",
    );
    assert!(
        refused(server.addr()),
        "once shutting down, the server should close its listener: a new connection is refused \
         (book: 06-event-loop.md § Graceful shutdown)"
    );
    drop(client);
    let began = Instant::now();
    let done = server.wait_exit();
    done.assert_success("after SIGINT, and the only client gone");
    assert!(
        began.elapsed() < Duration::from_secs(4),
        "once every client has left, the server should exit at once, not wait out the grace period"
    );
    let summary = done.stdout.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("shut down: 1 client told, ")
            && summary.ends_with("answered during the grace period"),
        "the server's last line should be its one summary, e.g. `shut down: 1 client told, 1 line \
         answered during the grace period`; got {summary:?} (book: 06-event-loop.md § Graceful shutdown)"
    );
}

#[test]
fn mio_sigint_answers_the_line_in_flight_then_says_bye_and_exits() {
    sigint_answers_the_line_in_flight_then_says_bye_and_exits("mio");
}

#[test]
fn tokio_sigint_answers_the_line_in_flight_then_says_bye_and_exits() {
    sigint_answers_the_line_in_flight_then_says_bye_and_exits("tokio");
}

fn a_client_that_ignores_bye_is_closed_at_the_end_of_the_grace_period(engine: &str) {
    let mut server = start(engine, &["--grace", "1"]);
    let mut client = Connection::open(server.addr());
    round_trip(&mut client, "hello");
    interrupt(&server);
    let began = Instant::now();
    let bye = client.read_line("after SIGINT the client should be told bye");
    assert_eq!(
        bye, "bye: server shutting down",
        "(book: 06-event-loop.md § Graceful shutdown)"
    );
    // Ignore it: keep sending, until the server closes the connection.
    let mut stream = client.stream().try_clone().unwrap();
    let mut cut = false;
    while began.elapsed() < WAIT {
        if stream.write_all(b"I am not leaving\n").is_err() {
            cut = true;
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        cut,
        "a client that ignores `bye` and keeps sending should be disconnected at the end of the \
         grace period (--grace 1); it could still send after {} s (book: 06-event-loop.md § Graceful shutdown)",
        WAIT.as_secs()
    );
    assert!(
        began.elapsed() >= Duration::from_millis(800),
        "with --grace 1 the client should have about a second to leave; it was cut off after {:?}",
        began.elapsed()
    );
    let done = server.wait_exit();
    done.assert_success("after SIGINT, at the end of the grace period");
    let summary = done.stdout.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("shut down: 1 client told, ")
            && summary.ends_with(", 1 client still connected at its end"),
        "the summary should count the client still connected when the grace period ended; got \
         {summary:?} (book: 06-event-loop.md § Graceful shutdown)"
    );
}

#[test]
fn mio_a_client_that_ignores_bye_is_closed_at_the_end_of_the_grace_period() {
    a_client_that_ignores_bye_is_closed_at_the_end_of_the_grace_period("mio");
}

#[test]
fn tokio_a_client_that_ignores_bye_is_closed_at_the_end_of_the_grace_period() {
    a_client_that_ignores_bye_is_closed_at_the_end_of_the_grace_period("tokio");
}

fn a_second_sigint_stops_at_once(engine: &str) {
    let mut server = start(engine, &["--grace", "60"]);
    let mut client = Connection::open(server.addr());
    round_trip(&mut client, "I will not leave");
    interrupt(&server);
    server.wait_for("shutting down");
    let began = Instant::now();
    interrupt(&server);
    let done = server.wait_exit();
    done.assert_failure("a second SIGINT during the grace period");
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "a second SIGINT should stop the server at once, not after the grace period \
         (book: 06-event-loop.md § Graceful shutdown)"
    );
    assert_eq!(
        done.stderr, "error: a second signal: stopped at once, with 1 client still connected\n",
        "the server should say in one line why it stopped; {done}"
    );
    // The client's connection is gone with the process.
    let mut rest = Vec::new();
    let _ = client.stream().read_to_end(&mut rest);
}

#[test]
fn mio_a_second_sigint_stops_at_once() {
    a_second_sigint_stops_at_once("mio");
}

#[test]
fn tokio_a_second_sigint_stops_at_once() {
    a_second_sigint_stops_at_once("tokio");
}

#[test]
fn sigterm_shuts_down_gracefully_too() {
    for engine in ENGINES {
        let mut server = start(engine, &[]);
        let mut client = Connection::open(server.addr());
        round_trip(&mut client, "hello");
        let pid = rustix::process::Pid::from_raw(server.pid() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let bye = client.read_line("after SIGTERM the client should be told bye");
        assert_eq!(
            bye, "bye: server shutting down",
            "--engine {engine}: SIGTERM (what `kill` and service managers send) should shut down \
             like SIGINT (book: 06-event-loop.md § Graceful shutdown)"
        );
        drop(client);
        server
            .wait_exit()
            .assert_success(&format!("--engine {engine} after SIGTERM"));
    }
}

// ---------------------------------------------------------------------------
// Others' clients, and the command line
// ---------------------------------------------------------------------------

fn interop_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/interop")
        .join(name)
}

#[test]
#[cfg_attr(not(has_python3), ignore = "needs python3: install it, or run .ci/run")]
fn the_original_python_client_is_served_by_both_engines() {
    let Some(python) = tool("python3") else {
        return;
    };
    let script = interop_script("original_client.py");
    for engine in ENGINES {
        let mut server = start(engine, &[]);
        let port = server.addr().port().to_string();
        // No newline, and it closes without reading the `ok`: the server
        // must log the line, and carry on serving the next client.
        for message in ["first from python", "second from python"] {
            let client = run(
                &python,
                &[&script.to_string_lossy(), "127.0.0.1", &port, message],
                "",
            );
            client.assert_success("the original-style Python client");
            server.wait_for(&format!("] {message}"));
        }
    }
}

#[test]
fn help_shows_examples_and_both_engines() {
    Command::cargo_bin("06-event-loop")
        .unwrap()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Examples:"))
        .stdout(predicate::str::contains("--engine tokio"))
        .stdout(predicate::str::contains("--grace"));
}

#[test]
fn a_port_in_use_is_one_line_on_stderr() {
    for engine in ENGINES {
        let first = start(engine, &[]);
        testkit::assert_port_in_use_is_one_line(server_bin(), &["--engine", engine], first.addr());
    }
}

// ---------------------------------------------------------------------------
// Out of file descriptors
// ---------------------------------------------------------------------------

/// The CPU time process `pid` has used so far (user and system), from
/// /proc/PID/stat, in clock ticks (usually 100 a second).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn out_of_descriptors_pauses_accepting_without_spinning(engine: &str) {
    let Some(prlimit) = tool("prlimit") else {
        return;
    };
    // At most 48 open files, soft and hard: the server cannot raise it,
    // and runs out after about 40 clients.
    let mut server = Process::server(
        &prlimit,
        &[
            "--nofile=48:48",
            "--",
            &server_bin().to_string_lossy(),
            "--engine",
            engine,
        ],
    );
    let addr = server.addr();
    // The kernel completes these handshakes by itself (they wait in the
    // listen backlog), whether the server can accept them or not.
    let mut clients: Vec<Connection> = (0..60).map(|_| Connection::open(addr)).collect();
    server.wait_for("could not accept a connection");
    let before = cpu_ticks(server.pid());
    thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(server.pid()) - before;
    assert!(
        used < 30,
        "--engine {engine}: out of file descriptors, with connections waiting in the backlog, the \
         server should pause accepting, not try again at once in a loop; it used {used} ticks of \
         CPU (of 100) in one second (book: 06-event-loop.md § Running out of file descriptors)"
    );
    // Clients that leave free their descriptors: the waiting ones are
    // served. About 40 were accepted (fewer for Tokio, which holds a few
    // more files of its own) and 20 wait; 30 leaving frees room for all.
    for mut client in clients.drain(..30) {
        client.half_close();
        client.expect_orderly_close("a client that leaves should be closed");
    }
    let last = clients.last_mut().unwrap();
    round_trip(last, "I waited in the backlog");
}

#[test]
fn mio_out_of_descriptors_pauses_accepting_without_spinning() {
    out_of_descriptors_pauses_accepting_without_spinning("mio");
}

#[test]
fn tokio_out_of_descriptors_pauses_accepting_without_spinning() {
    out_of_descriptors_pauses_accepting_without_spinning("tokio");
}
