//! What lesson 6 adds to lesson 3's protocol: thousands of clients at once,
//! a bound on what a client that never reads can cost, and a graceful
//! shutdown, on both engines. (The protocol itself is in `protocol.rs`.)

// Helpers outside #[test] functions fail the way tests do: by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod book;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::predicate;
use testkit::hostile::resident_kib;
use testkit::line_protocol::round_trip;
use testkit::{Connection, Process, Queues, WAIT, run, tool};

fn server_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_06-event-loop"))
}

/// Starts the server with `engine`, its name and how many loops (or Tokio
/// worker threads) it runs, e.g. `mio --loops 2`; then `args`.
fn start(engine: &str, args: &[&str]) -> Process {
    let mut all = vec!["--engine"];
    all.extend(engine.split_whitespace());
    all.extend_from_slice(args);
    Process::server(server_bin(), &all)
}

/// Each engine on one loop, the main thread, and on two (`--loops`). The
/// tests of what a whole server does (the cap, the shutdown, the budget)
/// run on all four; those of one connection's handling, which is the same
/// on every loop, on one loop. The heaviest (2,000 clients at once, and the
/// misbehaving clients in hostile.rs) run Tokio on one thread only: on two,
/// Tokio's scheduler runs the same code of ours.
const MIO: &str = "mio --loops 1";
const MIO_TWO_LOOPS: &str = "mio --loops 2";
const TOKIO: &str = "tokio --loops 1";
const TOKIO_TWO_LOOPS: &str = "tokio --loops 2";
const ENGINES: [&str; 4] = [MIO, MIO_TWO_LOOPS, TOKIO, TOKIO_TWO_LOOPS];

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
        // Connect as fast as the server accepts: past its listen backlog
        // (128), the kernel drops the handshake and the client tries again
        // a second later, which tests nothing but patience.
        let deadline = Instant::now() + WAIT;
        while n % 32 == 0 && accept_backlog(server.addr()) >= 64 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        let stream = TcpStream::connect_timeout(&server.addr(), WAIT).unwrap_or_else(|err| {
            panic!(
                "client {n} of {MANY} could not connect: {err}. One thread should hold thousands of \
                 connections {}", book::READINESS_AGAINST_BLOCKING
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
                 its `ok` {}",
                book::ONE_TURN_OF_THE_EVENT_LOOP
            ),
        );
    }
    for client in &mut clients {
        client.half_close();
    }
    for (n, client) in clients.iter_mut().enumerate() {
        client.expect_orderly_close(&format!(
            "client {n} of {MANY} half-closed: the server should close its side with a FIN \
             {}",
            book::WRITING_WHAT_FITS
        ));
    }
}

/// How many connections wait in the accept queue of the server listening
/// on `addr` (for a listening socket, /proc/net/tcp's rx_queue).
fn accept_backlog(addr: SocketAddr) -> u64 {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let local = format!(":{:04X}", addr.port());
    table
        .lines()
        .skip(1)
        .find_map(|row| {
            let fields: Vec<&str> = row.split_whitespace().collect();
            (fields.len() > 4 && fields[1].ends_with(&local) && fields[3] == "0A")
                .then(|| fields[4].split_once(':'))
                .flatten()
                .and_then(|(_, rx)| u64::from_str_radix(rx, 16).ok())
        })
        .unwrap_or(0)
}

#[test]
fn mio_two_thousand_clients_at_once_all_get_their_replies() {
    many_clients_at_once_all_get_their_replies(MIO);
}

#[test]
fn mio_two_loops_two_thousand_clients_at_once_all_get_their_replies() {
    many_clients_at_once_all_get_their_replies(MIO_TWO_LOOPS);
}

#[test]
fn tokio_two_thousand_clients_at_once_all_get_their_replies() {
    many_clients_at_once_all_get_their_replies(TOKIO);
}

#[test]
fn the_mio_engine_serves_everyone_from_one_thread() {
    let server = start(MIO, &[]);
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
         writer's); /proc says {threads} threads {}",
        book::READINESS_AGAINST_BLOCKING
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
    let mut server = start(MIO, &[]);
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
         lines, its writes {} {}",
        match ended {
            None => "still went through".to_string(),
            Some(kind) => format!("failed with {kind:?}, not with a reset"),
        },
        book::THE_BUFFERS_A_CONNECTION_OWNS
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
                 {}",
                WAIT.as_secs(), book::THE_BUFFERS_A_CONNECTION_OWNS
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
                 {waiting} were waiting {}",
                book::THE_BUFFERS_A_CONNECTION_OWNS
            );
        }
        None => eprintln!("the server's line about the dropped client was lost in its log's flood"),
    }
    let rss = resident_kib(server.pid()).unwrap_or(0);
    assert!(
        rss < 64 * 1024,
        "the server's memory should stay small however much a client sends without reading; \
         it is {rss} KiB {}",
        book::THE_BUFFERS_A_CONNECTION_OWNS
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
    if engine.starts_with("mio") {
        fail_now_if_the_bye_is_not_written(&server, &client);
    }
    client.expect_bytes(
        b"ok\nbye: server shutting down\n",
        &format!("a line that had arrived before SIGINT should still get its `ok`, then the client should be \
         told `bye: server shutting down` {}", book::GRACEFUL_SHUTDOWN),
    );
    client.expect_orderly_close(&format!(
        "after `bye`, the server should close the connection gently, with a FIN \
         {}",
        book::GRACEFUL_SHUTDOWN
    ));
    assert!(
        refused(server.addr()),
        "once shutting down, the server should close its listener: a new connection is refused \
         {}",
        book::GRACEFUL_SHUTDOWN
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
         answered during the grace period`; got {summary:?} {}",
        book::GRACEFUL_SHUTDOWN
    );
}

/// Whether every event loop of the server sleeps in `epoll_wait` (Linux's
/// system call numbers; elsewhere, never): each has handled every event,
/// and waits for the next one or a timer. The loops are the threads named
/// `loop N` (`--loops 2`), or else the main thread.
fn sleeps_in_epoll_wait(pid: u32) -> bool {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    const EPOLL_WAITS: &[u64] = &[232, 281, 441];
    #[cfg(all(target_os = "linux", target_arch = "aarch64"))]
    const EPOLL_WAITS: &[u64] = &[22, 441];
    #[cfg(not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    const EPOLL_WAITS: &[u64] = &[];
    let sleeps = |task: &std::path::Path| {
        let sleeping = std::fs::read_to_string(task.join("stat"))
            .ok()
            .and_then(|stat| Some(stat.rsplit_once(") ")?.1.starts_with('S')))
            .unwrap_or(false);
        sleeping
            && std::fs::read_to_string(task.join("syscall"))
                .ok()
                .and_then(|text| text.split_whitespace().next()?.parse::<u64>().ok())
                .is_some_and(|number| EPOLL_WAITS.contains(&number))
    };
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let loops: Vec<_> = tasks
        .filter_map(|task| Some(task.ok()?.path()))
        .filter(|task| {
            std::fs::read_to_string(task.join("comm")).is_ok_and(|name| name.starts_with("loop "))
        })
        .collect();
    if loops.is_empty() {
        return sleeps(std::path::Path::new(&format!("/proc/{pid}")));
    }
    loops.iter().all(|task| sleeps(task))
}

/// The mio engine, thawed with the line in flight and SIGINT pending: the
/// signal interrupts its wait at once, and the next turn handles both the
/// line and the signal. Once the `ok` has left and the server sleeps in
/// `epoll_wait` again, everything it writes before the grace period ends
/// has been written: a `bye` that is not on its way by then is seen at
/// once, not after the grace period (5 s).
fn fail_now_if_the_bye_is_not_written(server: &Process, client: &Connection) {
    let expected = b"ok\nbye: server shutting down\n".len() as u64;
    let (me, addr) = (client.local_addr(), server.addr());
    // Bytes written to the client and not yet read by the test: in the
    // server's send queue until acknowledged, and in the client's receive
    // queue once they arrive, so some may count twice, never none.
    // (/proc/net/tcp
    // lists every socket of the machine: it is read only once the server
    // sleeps.)
    let written = || {
        let (server_side, client_side) = queued_both_ways(addr, me);
        server_side.map_or(0, |(tx, _)| tx) + client_side.map_or(0, |(_, rx)| rx)
    };
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if sleeps_in_epoll_wait(server.pid()) {
            let now = written();
            // Nothing at all, not even the `ok`: the test that follows says
            // what is missing.
            assert!(
                now >= expected || now < 3,
                "a line arrived before SIGINT and got its `ok`, and the server went back to \
                 waiting for events without writing `bye` after it: a connected \
                 client should be told `bye: server shutting down` at once. Putting it in the \
                 output is not enough; write it, as any output \
                 {}",
                book::GRACEFUL_SHUTDOWN
            );
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn mio_sigint_answers_the_line_in_flight_then_says_bye_and_exits() {
    sigint_answers_the_line_in_flight_then_says_bye_and_exits(MIO);
}

#[test]
fn mio_two_loops_sigint_answers_the_line_in_flight_then_says_bye_and_exits() {
    sigint_answers_the_line_in_flight_then_says_bye_and_exits(MIO_TWO_LOOPS);
}

#[test]
fn tokio_sigint_answers_the_line_in_flight_then_says_bye_and_exits() {
    sigint_answers_the_line_in_flight_then_says_bye_and_exits(TOKIO);
}

#[test]
fn tokio_two_loops_sigint_answers_the_line_in_flight_then_says_bye_and_exits() {
    sigint_answers_the_line_in_flight_then_says_bye_and_exits(TOKIO_TWO_LOOPS);
}

fn a_client_that_ignores_bye_is_closed_at_the_end_of_the_grace_period(engine: &str) {
    let mut server = start(engine, &["--grace", "1"]);
    let mut client = Connection::open(server.addr());
    round_trip(&mut client, "hello");
    interrupt(&server);
    let began = Instant::now();
    let bye = client.read_line(&format!(
        "after SIGINT with --grace 1, a connected client should be told `bye: server shutting \
         down` {}",
        book::GRACEFUL_SHUTDOWN
    ));
    assert_eq!(
        bye,
        "bye: server shutting down",
        "after SIGINT, a connected client should be told exactly `bye: server shutting down` \
         {}",
        book::GRACEFUL_SHUTDOWN
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
         grace period (--grace 1); it could still send after {} s {}",
        WAIT.as_secs(),
        book::GRACEFUL_SHUTDOWN
    );
    assert!(
        began.elapsed() >= Duration::from_millis(800),
        "after SIGINT with --grace 1, a client told `bye` should have about a second to leave: \
         the server sends `bye`, then closes the connection only after its output, with the end \
         of the grace period as its deadline (close_after_output(Ending::ToldBye, grace_end)); \
         this client was cut off after {:?} {}",
        began.elapsed(),
        book::GRACEFUL_SHUTDOWN
    );
    let done = server.wait_exit();
    done.assert_success(&format!(
        "after SIGINT, at the end of the grace period, the server should exit 0 \
         {}",
        book::GRACEFUL_SHUTDOWN
    ));
    let summary = done.stdout.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("shut down: 1 client told, ")
            && summary.ends_with(", 1 client still connected at its end"),
        "the summary should count the client still connected when the grace period ended; got \
         {summary:?} {}",
        book::GRACEFUL_SHUTDOWN
    );
}

#[test]
fn mio_a_client_that_ignores_bye_is_closed_at_the_end_of_the_grace_period() {
    a_client_that_ignores_bye_is_closed_at_the_end_of_the_grace_period(MIO);
}

#[test]
fn mio_two_loops_a_client_that_ignores_bye_is_closed_at_the_end_of_the_grace_period() {
    a_client_that_ignores_bye_is_closed_at_the_end_of_the_grace_period(MIO_TWO_LOOPS);
}

#[test]
fn tokio_a_client_that_ignores_bye_is_closed_at_the_end_of_the_grace_period() {
    a_client_that_ignores_bye_is_closed_at_the_end_of_the_grace_period(TOKIO);
}

#[test]
fn tokio_two_loops_a_client_that_ignores_bye_is_closed_at_the_end_of_the_grace_period() {
    a_client_that_ignores_bye_is_closed_at_the_end_of_the_grace_period(TOKIO_TWO_LOOPS);
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
    done.assert_failure(&format!(
        "a second SIGINT during the grace period should stop the server at once, with an error \
         {}",
        book::GRACEFUL_SHUTDOWN
    ));
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "a second SIGINT should stop the server at once, not after the grace period \
         {}",
        book::GRACEFUL_SHUTDOWN
    );
    assert_eq!(
        done.stderr,
        "error: a second signal: stopped at once, with 1 client still connected\n",
        "a second SIGINT: the server should say in one line why it stopped \
         {}; {done}",
        book::GRACEFUL_SHUTDOWN
    );
    // The client's connection is gone with the process.
    let mut rest = Vec::new();
    let _ = client.stream().read_to_end(&mut rest);
}

#[test]
fn mio_a_second_sigint_stops_at_once() {
    a_second_sigint_stops_at_once(MIO);
}

#[test]
fn mio_two_loops_a_second_sigint_stops_at_once() {
    a_second_sigint_stops_at_once(MIO_TWO_LOOPS);
}

#[test]
fn tokio_a_second_sigint_stops_at_once() {
    a_second_sigint_stops_at_once(TOKIO);
}

#[test]
fn tokio_two_loops_a_second_sigint_stops_at_once() {
    a_second_sigint_stops_at_once(TOKIO_TWO_LOOPS);
}

/// Whoever reads `listening on` may send SIGINT at once, before the
/// server watches for signals. The test holds the server right there: its
/// standard output is a pipe the test has filled, so the write of that
/// first line waits until the test reads. A signal sent then must still
/// mean a graceful shutdown (its summary, exit 0), not the end a process
/// with no handler gets.
#[cfg(target_os = "linux")]
fn a_sigint_before_the_server_watches_for_it_still_shuts_it_down_gracefully(engine: &str) {
    use std::process::{Command, Stdio};
    let (mut output, filler) = std::io::pipe().unwrap();
    let room = rustix::pipe::fcntl_getpipe_size(&filler).unwrap();
    (&filler).write_all(&vec![b'.'; room]).unwrap();
    let mut args = vec!["--listen", "127.0.0.1:0", "--engine"];
    args.extend(engine.split_whitespace());
    let mut server = Command::new(server_bin())
        .args(&args)
        .stdout(Stdio::from(filler))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The server is held in write(2) with `listening on`: its socket is
    // listening, and it has not got further.
    let writes: &[u64] = if cfg!(target_arch = "aarch64") {
        &[64, 66]
    } else {
        &[1, 20]
    };
    let deadline = Instant::now() + WAIT;
    while !std::fs::read_to_string(format!("/proc/{}/syscall", server.id()))
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .is_some_and(|number| writes.contains(&number))
    {
        assert!(
            Instant::now() < deadline,
            "--engine {engine}: the server never wrote its first line"
        );
        thread::sleep(Duration::from_millis(5));
    }
    let pid = rustix::process::Pid::from_raw(server.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    // Read everything: the filler, then what the server writes until it
    // exits (the pipe ends with the server's end).
    let mut all = Vec::new();
    let reader = thread::spawn(move || output.read_to_end(&mut all).map(|_| all));
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = server.kill();
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    let all = reader.join().unwrap().unwrap_or_default();
    let text = String::from_utf8_lossy(&all[room..]).into_owned();
    let summary = text.lines().last().unwrap_or_default().to_string();
    assert!(
        status.is_some_and(|status| status.success())
            && summary.starts_with("shut down: 0 clients told"),
        "--engine {engine}: a SIGINT sent as soon as the server had written `listening on` (it \
         was still writing it: the test held it there) should shut the server down gracefully, \
         like any SIGINT: the summary, then exit 0. A server that watches for signals only \
         later is killed by one that comes first. It {}, and wrote {text:?} {}",
        match status {
            Some(status) => format!("ended with {status}"),
            None => "was still running after 5 s".to_string(),
        },
        book::GRACEFUL_SHUTDOWN
    );
}

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "holds the server in write(2), seen in Linux's /proc"
)]
fn a_sigint_before_the_server_watches_for_it_still_shuts_it_down_gracefully_on_every_engine() {
    #[cfg(target_os = "linux")]
    for engine in ENGINES {
        a_sigint_before_the_server_watches_for_it_still_shuts_it_down_gracefully(engine);
    }
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
            bye,
            "bye: server shutting down",
            "--engine {engine}: SIGTERM (what `kill` and service managers send) should shut down \
             like SIGINT {}",
            book::GRACEFUL_SHUTDOWN
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
        let mut args = vec!["--engine"];
        args.extend(engine.split_whitespace());
        testkit::assert_port_in_use_is_one_line(server_bin(), &args, first.addr());
    }
}

// ---------------------------------------------------------------------------
// Out of file descriptors
// ---------------------------------------------------------------------------

/// How long the threads of process `pid` have been running or ready to run
/// (waiting for a core) so far, from /proc/PID/task/*/schedstat. Unlike CPU
/// time this does not depend on the machine's load: a process that spins is
/// runnable all the time, even when other processes leave it a small share
/// of a core, and one that sleeps in poll() is not.
fn runnable_time(pid: u32) -> Duration {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    let nanos: u64 = tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
        .map(|stat| {
            // Time on a core, then time waiting in the run queue, in ns.
            let mut fields = stat
                .split(' ')
                .map(|field| field.parse::<u64>().unwrap_or(0));
            fields.next().unwrap_or(0) + fields.next().unwrap_or(0)
        })
        .sum();
    Duration::from_nanos(nanos)
}

fn out_of_descriptors_pauses_accepting_without_spinning(engine: &str) {
    let Some(prlimit) = tool("prlimit") else {
        return;
    };
    // At most 48 open files, soft and hard: the server cannot raise it,
    // and runs out after about 40 clients.
    let bin = server_bin().to_string_lossy();
    let mut args = vec!["--nofile=48:48", "--", &bin, "--engine"];
    args.extend(engine.split_whitespace());
    let mut server = Process::server(&prlimit, &args);
    let addr = server.addr();
    // The kernel completes these handshakes by itself (they wait in the
    // listen backlog), whether the server can accept them or not.
    let mut clients: Vec<Connection> = (0..60).map(|_| Connection::open(addr)).collect();
    server.wait_for("could not accept a connection");
    // Runnable time, not CPU time: on a loaded machine a spinning server
    // gets little CPU, but it is runnable all the time.
    let (before, started) = (runnable_time(server.pid()), Instant::now());
    thread::sleep(Duration::from_millis(500));
    let (used, watched) = (runnable_time(server.pid()) - before, started.elapsed());
    assert!(
        used < watched / 4,
        "--engine {engine}: out of file descriptors, with connections waiting in the backlog, the \
         server should pause accepting, not try again at once in a loop; it was running or ready \
         to run for {} ms of {} ms {}",
        used.as_millis(),
        watched.as_millis(),
        book::RUNNING_OUT_OF_FILE_DESCRIPTORS
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
    out_of_descriptors_pauses_accepting_without_spinning(MIO);
}

#[test]
fn mio_two_loops_out_of_descriptors_pauses_accepting_without_spinning() {
    out_of_descriptors_pauses_accepting_without_spinning(MIO_TWO_LOOPS);
}

#[test]
fn tokio_out_of_descriptors_pauses_accepting_without_spinning() {
    out_of_descriptors_pauses_accepting_without_spinning(TOKIO);
}

#[test]
fn tokio_two_loops_out_of_descriptors_pauses_accepting_without_spinning() {
    out_of_descriptors_pauses_accepting_without_spinning(TOKIO_TWO_LOOPS);
}

// ---------------------------------------------------------------------------
// Edge-triggered readiness: a burst bigger than one turn's reads
// ---------------------------------------------------------------------------

/// The kernel's count of bytes queued on the TCP socket from `local` to
/// `remote` (both on 127.0.0.1), from /proc/net/tcp: `(tx_queue, rx_queue)`.
/// For the server's side, `rx_queue` is what it has received and not read.
fn queued(local: SocketAddr, remote: SocketAddr) -> Queues {
    queued_both_ways(local, remote).0
}

/// [`queued`] for both ends of one connection, `local` to `remote` and back,
/// from one reading of /proc/net/tcp.
fn queued_both_ways(local: SocketAddr, remote: SocketAddr) -> (Queues, Queues) {
    testkit::tcp_queues(local.port(), remote.port())
}

/// How long nothing may move (no reply, the same unread bytes), the server
/// asleep all along, before a test calls the server stuck. A server that
/// has bytes to read reads them within milliseconds.
const STUCK: Duration = Duration::from_millis(1000);

/// How much the server may run in [`STUCK`] and still count as asleep: a
/// wake-up for a timer takes microseconds. A server that only waits for a
/// core on a loaded machine is runnable all that time, and is not stuck.
const ASLEEP: Duration = Duration::from_millis(20);

/// Reads from `stream` until `expected` bytes have come. Fails with `what`
/// as soon as nothing has moved for [`STUCK`] while the server slept (it
/// will never be told about this client's bytes again), or after [`WAIT`]
/// without progress.
fn read_replies(
    stream: &mut TcpStream,
    server: &Process,
    expected: usize,
    what: &dyn Fn(usize, u64) -> String,
) -> Vec<u8> {
    let (pid, server) = (server.pid(), server.addr());
    let me = stream.local_addr().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut got = Vec::with_capacity(expected);
    let mut buf = vec![0u8; 64 * 1024];
    // Since when nothing moved: (unread bytes, when, the server's runnable
    // time then).
    let mut still = (0u64, Instant::now(), runnable_time(pid));
    let mut progress = Instant::now();
    while got.len() < expected {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                progress = Instant::now();
                still = (still.0, Instant::now(), runnable_time(pid));
            }
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                let unread = queued(server, me).map_or(0, |(_, rx)| rx);
                if unread != still.0 {
                    still = (unread, Instant::now(), runnable_time(pid));
                } else if still.1.elapsed() > STUCK && runnable_time(pid) - still.2 < ASLEEP {
                    panic!("{}", what(got.len(), unread));
                }
                if progress.elapsed() > WAIT {
                    panic!("{}", what(got.len(), unread));
                }
            }
            Err(_) => break,
        }
    }
    stream.set_read_timeout(Some(WAIT)).unwrap();
    got
}

#[test]
fn mio_a_burst_of_more_than_one_turn_of_reads_gets_every_reply() {
    let server = start(MIO, &[]);
    let mut client = Connection::open(server.addr());
    let me = client.local_addr();
    round_trip(&mut client, "hello");
    // Room in the server's socket for the whole burst at once (its
    // receive buffer, set on a duplicate of its socket): then every byte is
    // there before it reads any, and the socket is reported ready once.
    let theirs = servers_socket(&server, me);
    socket2::SockRef::from(&theirs)
        .set_recv_buffer_size(2 * 1024 * 1024)
        .unwrap();
    // The option stays on the socket; the duplicate must not keep it open.
    drop(theirs);
    // Three turns' worth of reads (READS_PER_TURN of READ_CHUNK: 16 of
    // 16 KiB), in lines of 1 KiB, sent in one write while the server is
    // frozen, and nothing after it.
    const LINES: usize = 768;
    let burst = format!("{}\n", "x".repeat(1023)).repeat(LINES);
    freeze_now(&server);
    client.send(burst.as_bytes());
    let deadline = Instant::now() + WAIT;
    while queued(me, server.addr()).is_none_or(|(tx, _)| tx > 0) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    server.thaw();
    let mut reader = client.stream().try_clone().unwrap();
    let got = read_replies(&mut reader, &server, 3 * LINES, &|got, unread| {
        format!(
            "a client sent {LINES} lines of 1 KiB (768 KiB, three turns of READS_PER_TURN reads) \
             in one write and then waited for its replies, sending nothing more; it got {} of its \
             {LINES} `ok`s, and {unread} bytes it sent sit unread in the server's socket. mio's \
             events are edge-triggered: the socket was reported once, when the bytes arrived, and \
             will not be reported again. A turn that stops after READS_PER_TURN reads must come \
             back to the connection (received.read_again, ready_again): stopped early is not nothing \
             left; only WouldBlock means drained {}",
            got / 3,
            book::READING_UNTIL_WOULDBLOCK
        )
    });
    assert!(
        got == b"ok\n".repeat(LINES),
        "a client sent {LINES} lines of 1 KiB in one write: it should get exactly {LINES} `ok`s; \
         it got {} bytes {}",
        got.len(),
        book::READING_UNTIL_WOULDBLOCK
    );
}

#[test]
fn mio_a_client_that_reads_its_replies_is_not_dropped_for_a_burst_of_lines() {
    let server = start(MIO, &[]);
    let client = Connection::open(server.addr());
    const LINES: usize = 48 * 1024;
    let mut writer = client.stream().try_clone().unwrap();
    // 48 Ki empty lines in one write: 144 KiB of replies, over
    // OUTPUT_LIMIT if the server kept them all, but this client reads them.
    let sender = thread::spawn(move || writer.write_all(&[b'\n'; LINES]));
    let mut reader = client.stream().try_clone().unwrap();
    let got = read_replies(&mut reader, &server, 3 * LINES, &|got, _| {
        format!(
            "a client sent {LINES} empty lines in one write and read its replies as they came; \
             it got {got} bytes of its {} and then nothing {}",
            3 * LINES,
            book::THE_BUFFERS_A_CONNECTION_OWNS
        )
    });
    let _ = sender.join();
    assert!(
        got.len() == 3 * LINES,
        "a client sent {LINES} empty lines in one write and read its replies as they came: it got \
         {} bytes of its {} `ok`s and then the connection closed. Only a client that is not \
         reading may be dropped: when the output passes OUTPUT_LIMIT, first give the kernel what \
         it takes (flush), and drop the client only if the output is still over the bound \
         {}",
        got.len(),
        3 * LINES,
        book::THE_BUFFERS_A_CONNECTION_OWNS
    );
}

#[test]
fn mio_a_megabyte_without_newline_gets_the_error_line_then_a_clean_close() {
    let mut server = start(MIO, &[]);
    let client = Connection::open(server.addr());
    let mut writer = client.stream().try_clone().unwrap();
    // It goes on sending after the limit, as a real client does: the server
    // must read and discard the rest while its error line goes out.
    let sender = thread::spawn(move || writer.write_all(&vec![b'x'; 1024 * 1024]));
    let what = &format!(
        "a client sent 1 MiB without a newline, and went on sending after the limit: it \
                should read exactly the error line, then a clean end of stream (FIN), not a \
                reset and not a second error line. After the error line, the event loop calls \
                `close_after_output(Ending::TooLong, now + LINGER)` and goes on reading only to \
                discard: closing a socket with unread input sends a reset, which can destroy the \
                error line {}",
        book::WRITING_WHAT_FITS
    );
    let expected = b"error: line longer than 65536 bytes, closing the connection\n";
    // Read until the end, or until more than the error line has come.
    let mut reader = client.stream().try_clone().unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let ended = loop {
        match reader.read(&mut buf) {
            Ok(0) => break Ok(0),
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if got.len() > expected.len() || !expected.starts_with(&got) {
                    break Ok(got.len());
                }
            }
            Err(err) => break Err(err),
        }
    };
    let _ = sender.join();
    match ended {
        Ok(_) if got == expected => {}
        Ok(0) => panic!(
            "{what}; it got {} and then the end of stream",
            testkit::show(&got)
        ),
        Ok(_) => panic!("{what}; it got {}", testkit::show(&got)),
        Err(err) => panic!(
            "{what}; it got {} and then {err} ({:?})",
            testkit::show(&got),
            err.kind()
        ),
    }
    server.wait_for("] line longer than 65536 bytes, closing");
}

#[test]
fn mio_a_slow_reader_with_a_tiny_buffer_gets_every_reply_in_order() {
    let mut server = start(MIO, &[]);
    // A receive buffer of 4 KiB and small segments (which keep the
    // server's send buffer small too): the kernel soon holds all the
    // replies it will take, and the server's writes take part of its
    // output, then say WouldBlock.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.set_tcp_mss(536).unwrap();
    socket.connect_timeout(&server.addr().into(), WAIT).unwrap();
    let stream: TcpStream = socket.into();
    let me = stream.local_addr().unwrap();
    let mut client = Connection::from_stream(stream.try_clone().unwrap());
    // Lines in batches, reading nothing, until the kernel's buffers are
    // full and the server holds two batches' replies itself (far under
    // OUTPUT_LIMIT): it has seen partial writes and WouldBlock by then.
    const BATCH: usize = 4000;
    let mut lines = 0;
    let addr = server.addr();
    let in_kernel = || {
        let (server_side, client_side) = queued_both_ways(addr, me);
        server_side.map_or(0, |(tx, _)| tx) + client_side.map_or(0, |(_, rx)| rx)
    };
    loop {
        // Empty lines (each gets its 3 bytes of `ok\n`), then a numbered one.
        let batch = format!("{}line {}\n", "\n".repeat(BATCH - 1), lines + BATCH - 1);
        lines += BATCH;
        let what = format!(
            "a client with a 4 KiB receive buffer sent {lines} lines, reading none of the replies \
             yet: the server should read and log every line while replies wait for room. A write \
             to a full socket takes part of the output and then says WouldBlock, which is no \
             error: keep what it did not take (drain only the n bytes written), ask for writable \
             events while output waits, and readable ones always \
             {}",
            book::WRITING_WHAT_FITS
        );
        if let Err(err) = client.stream().write_all(batch.as_bytes()) {
            panic!("{what}; but the connection failed: {err}");
        }
        // Until the server has read the whole batch: nothing of it left in
        // the kernel (the client's send queue, the server's receive queue).
        // A server that ends this connection instead says so in its log,
        // and fails at once. (The log cannot show progress: it holds only a
        // client's first lines, book: 03-multi-client.md § A log nobody
        // reads.)
        let read_by = Instant::now() + WAIT;
        loop {
            let (server_side, client_side) = queued_both_ways(addr, me);
            let unread = server_side.map_or(0, |(_, rx)| rx) + client_side.map_or(0, |(tx, _)| tx);
            if unread == 0 {
                break;
            }
            let log = server.stdout_now();
            if let Some(line) = log.lines().find(|line| {
                line.strip_prefix(&format!("[{me}] "))
                    .is_some_and(|ending| {
                        [
                            "finished",
                            "idle for ",
                            "line longer than ",
                            "connection error",
                            "not reading its replies",
                            "told bye",
                        ]
                        .iter()
                        .any(|word| ending.starts_with(word))
                    })
            }) {
                panic!("{what}; but the server ended the connection: `{line}`");
            }
            if Instant::now() > read_by {
                panic!(
                    "{what}; {unread} bytes of its lines were still unread after {} s",
                    WAIT.as_secs()
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
        // What the kernel holds, once it stops changing (the server writes
        // just after it reads).
        let mut held = in_kernel();
        let settled = Instant::now() + Duration::from_millis(500);
        loop {
            thread::sleep(Duration::from_millis(10));
            let now = in_kernel();
            if now == held || Instant::now() > settled {
                break;
            }
            held = now;
        }
        if 3 * lines >= held as usize + 2 * 3 * BATCH || lines >= 60 * BATCH {
            break;
        }
    }
    let mut reader = stream;
    let got = read_replies(&mut reader, &server, 3 * lines, &|got, _| {
        format!(
            "a client with a 4 KiB receive buffer sent {lines} lines and only then read: it got \
             {got} bytes of its {} and then nothing, replies lost or lines of its left unread. A \
             write to a full socket takes part of the output and then says WouldBlock: keep what \
             it did not take (drain only the n bytes written), ask for writable events while \
             output waits, and readable ones always {}",
            3 * lines,
            book::WRITING_WHAT_FITS
        )
    });
    assert!(
        got == b"ok\n".repeat(lines),
        "a client with a 4 KiB receive buffer sent {lines} lines and only then read: it should get \
         every byte of its replies, in order, each `ok\\n` once; it got {} bytes{}. A write to a \
         full socket takes part of the output: keep what it did not take (drain only the n bytes \
         written), and write the rest when mio says the socket is writable \
         {}",
        got.len(),
        match got.chunks(3).position(|reply| reply != b"ok\n") {
            Some(n) => format!(
                ", the reply at byte {} being {}",
                3 * n,
                testkit::show(&got[3 * n..(3 * n + 12).min(got.len())])
            ),
            None => String::new(),
        },
        book::WRITING_WHAT_FITS
    );
    // Its output drained: the connection must be readable again.
    round_trip(&mut client, "one more, once every reply is read");
    client.half_close();
    client.expect_orderly_close(&format!(
        "the client half-closed after reading every reply: it should get nothing more (each \
         `ok\\n` once) and a clean end of stream {}",
        book::WRITING_WHAT_FITS
    ));
}

#[test]
fn mio_an_idle_connection_costs_no_cpu() {
    let server = start(MIO, &[]);
    let mut clients: Vec<Connection> = (0..3).map(|_| Connection::open(server.addr())).collect();
    for client in &mut clients {
        round_trip(client, "hello, and then nothing");
    }
    let before = runnable_time(server.pid());
    thread::sleep(Duration::from_millis(500));
    let runnable = runnable_time(server.pid()) - before;
    // Measured as time runnable, not CPU time: on a loaded machine a
    // spinning loop gets only a share of a core, and its CPU time alone
    // could stay under any bound.
    assert!(
        runnable < Duration::from_millis(50),
        "with 3 clients connected and silent, their replies all sent, the mio engine should sleep \
         in poll(); it was running, or ready to run, for {} ms of half a second: it spins. A \
         socket with room in its send buffer is writable almost always: ask for writable events \
         only while output waits (Interest::READABLE otherwise), and reregister only when that \
         changes {}",
        runnable.as_millis(),
        book::WRITING_WHAT_FITS
    );
}

#[test]
fn mio_a_client_that_spoke_since_its_timer_was_set_keeps_its_connection() {
    let server = start(MIO, &["--idle-timeout", "1"]);
    // A loaded machine can hold this test's thread past a sleep: a client
    // that was in fact silent for the whole second proves nothing, so the
    // case is tried again on a new connection (at most three times).
    for attempt in 1..=3 {
        let mut client = Connection::open(server.addr());
        let opened = Instant::now();
        // Its first timer entry comes due 1 s after it connected; it speaks
        // before that, and again just after.
        thread::sleep(Duration::from_millis(600));
        round_trip(&mut client, "before the first deadline");
        let first = opened.elapsed();
        while opened.elapsed() < Duration::from_millis(1300) {
            thread::sleep(Duration::from_millis(20));
        }
        client.send_line("after the first deadline");
        let second = opened.elapsed();
        let mut reply = [0u8; 3];
        let got = client.stream().read(&mut reply);
        let silent_for = first.max(second - first);
        if silent_for > Duration::from_millis(900) && attempt < 3 {
            continue;
        }
        assert!(
            matches!(got, Ok(3)) && &reply == b"ok\n",
            "with --idle-timeout 1, a client spoke {:.1} s after connecting and again at {:.1} s: \
             it was never silent for 1 s, so it must keep its connection and get `ok`; it got \
             {got:?} {}. The timer entry made when it connected comes due at 1 s: look up the \
             connection's real deadline (conn.deadline: heard + idle) and put the entry back if \
             that is later; close only when the real deadline has passed \
             {}",
            first.as_secs_f64(),
            second.as_secs_f64(),
            testkit::show(&reply),
            book::TIMERS
        );
        return;
    }
}

#[test]
fn mio_a_client_that_spoke_once_and_went_quiet_is_closed_when_idle() {
    let mut server = start(MIO, &["--idle-timeout", "1"]);
    let mut client = Connection::open(server.addr());
    thread::sleep(Duration::from_millis(500));
    round_trip(&mut client, "one line, and then nothing");
    let spoke = Instant::now();
    // Its real deadline is 1 s after it spoke; allow some more for a loaded
    // machine, but not the 5 s of WAIT.
    client
        .stream()
        .set_read_timeout(Some(Duration::from_millis(2500)))
        .unwrap();
    client.expect_orderly_close(&format!(
        "with --idle-timeout 1, a client sent one line 0.5 s after connecting and then nothing: \
         the server should close it 1 s after it spoke, with a clean end of stream (waited {:.1} s). \
         When its first timer entry comes due (1 s after it connected) it has spoken since: put \
         the entry back at its real deadline, so that it comes due again and the connection is \
         closed then {}",
        spoke.elapsed().as_secs_f64(), book::TIMERS
    ));
    server.expect_line(
        "] idle for 1 s, closing",
        &format!(
            "a client silent for the idle timeout should be logged `[ADDR] idle for 1 s, closing` \
         {}",
            book::TIMERS
        ),
    );
}

#[test]
fn mio_a_refused_client_that_floods_is_drained_only_so_far() {
    testkit::line_protocol::a_refused_client_that_floods_is_drained_only_so_far(
        |args| start(MIO, args),
        book::THE_SAME_SERVER_WITH_TOKIO,
    );
}

#[test]
fn mio_two_loops_a_refused_client_that_floods_is_drained_only_so_far() {
    testkit::line_protocol::a_refused_client_that_floods_is_drained_only_so_far(
        |args| start(MIO_TWO_LOOPS, args),
        book::THE_SAME_SERVER_WITH_TOKIO,
    );
}

#[test]
fn tokio_a_refused_client_that_floods_is_drained_only_so_far() {
    testkit::line_protocol::a_refused_client_that_floods_is_drained_only_so_far(
        |args| start(TOKIO, args),
        book::THE_SAME_SERVER_WITH_TOKIO,
    );
}

#[test]
fn tokio_two_loops_a_refused_client_that_floods_is_drained_only_so_far() {
    testkit::line_protocol::a_refused_client_that_floods_is_drained_only_so_far(
        |args| start(TOKIO_TWO_LOOPS, args),
        book::THE_SAME_SERVER_WITH_TOKIO,
    );
}

#[test]
fn tokio_a_client_over_the_cap_that_sent_lines_reads_the_busy_line_not_a_reset() {
    testkit::line_protocol::a_client_over_the_cap_that_sent_lines_reads_the_busy_line_not_a_reset(
        |args| start(TOKIO, args),
        book::THE_SAME_SERVER_WITH_TOKIO,
    );
}

#[test]
fn tokio_two_loops_a_client_over_the_cap_that_sent_lines_reads_the_busy_line_not_a_reset() {
    testkit::line_protocol::a_client_over_the_cap_that_sent_lines_reads_the_busy_line_not_a_reset(
        |args| start(TOKIO_TWO_LOOPS, args),
        book::THE_SAME_SERVER_WITH_TOKIO,
    );
}

#[test]
fn mio_a_client_that_stays_after_the_error_line_is_closed_after_the_linger() {
    let mut server = start(MIO, &[]);
    let mut client = Connection::open(server.addr());
    let me = client.local_addr();
    client.send(&vec![b'x'; 64 * 1024 + 1]);
    let refusal = client
        .read_line("a client sent 65537 bytes without a newline: it should get the error line");
    assert!(
        refusal.starts_with("error: line longer than"),
        "got {refusal:?}"
    );
    // It neither closes nor sends: the connection is closing, and its
    // deadline is LINGER (2 s) after the error line.
    let line = server.expect_line(
        &format!("[{me}] "),
        "a client that stays after the error line should be closed LINGER (2 s) later",
    );
    let line = if line.contains("connected") {
        server.expect_line(
            &format!("[{me}] "),
            "a client that stays after the error line should be closed LINGER (2 s) later",
        )
    } else {
        line
    };
    assert_eq!(
        line,
        format!("[{me}] line longer than 65536 bytes, closing"),
        "a client sent a line over the limit, got the error line and stayed, neither closing nor \
         sending: when its closing deadline (LINGER) comes due, the server should close it with \
         the closing's own ending (conn.closing.take()), logged `[ADDR] line longer than 65536 \
         bytes, closing` {}",
        book::TIMERS
    );
}

/// Freezes the server (SIGSTOP) and waits until it really is stopped: the
/// signal is asynchronous, and bytes sent before it stops could be read.
fn freeze_now(server: &Process) {
    server.freeze();
    let deadline = Instant::now() + WAIT;
    loop {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", server.pid())).unwrap_or_default();
        let state = stat
            .rfind(')')
            .and_then(|end| stat[end + 1..].split_whitespace().next());
        if state == Some("T") || Instant::now() > deadline {
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// The server's own socket for the connection from `client` (both on
/// 127.0.0.1), duplicated into this test process with pidfd_getfd: a test
/// may then set options on it, as the server could have.
fn servers_socket(server: &Process, client: SocketAddr) -> std::os::fd::OwnedFd {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let hex = |addr: SocketAddr| format!(":{:04X}", addr.port());
    let inode = table
        .lines()
        .skip(1)
        .find_map(|row| {
            let fields: Vec<&str> = row.split_whitespace().collect();
            (fields.len() > 9
                && fields[1].ends_with(&hex(server.addr()))
                && fields[2].ends_with(&hex(client)))
            .then(|| fields[9].to_string())
        })
        .unwrap();
    let target = format!("socket:[{inode}]");
    let fd = std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .unwrap()
        .flatten()
        .find(|entry| {
            std::fs::read_link(entry.path()).is_ok_and(|link| link.to_string_lossy() == target)
        })
        .and_then(|entry| entry.file_name().to_string_lossy().parse::<i32>().ok())
        .unwrap();
    let pid = rustix::process::Pid::from_raw(server.pid() as i32).unwrap();
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).unwrap();
    rustix::process::pidfd_getfd(&pidfd, fd, rustix::process::PidfdGetfdFlags::empty()).unwrap()
}

/// The check above depends on which thread runs the signal's handler: on
/// the log writer's, in its pause between batches, the byte that wakes the
/// loop came late, and the loop had read the whole burst before it saw the
/// signal (so a shutdown that does not read what is waiting passed it, once
/// in a gate run). The writer blocks SIGINT and SIGTERM, so the handler runs
/// on the loop's own thread, before its next turn.
#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "reads the threads' signal masks from Linux's /proc"
)]
fn the_log_writer_never_runs_a_stop_signal_handler() {
    let mut server = start(MIO, &[]);
    // A line the writer has written: it has surely started, and set its
    // mask first.
    let _client = Connection::open(server.addr());
    server.wait_for("connected");
    let tasks = std::fs::read_dir(format!("/proc/{}/task", server.pid())).unwrap();
    let writer = tasks
        .map(|task| task.unwrap().path())
        .find(|task| {
            std::fs::read_to_string(task.join("comm")).is_ok_and(|n| n.trim() == "log writer")
        })
        .expect("the server should have a thread named `log writer`");
    let status = std::fs::read_to_string(writer.join("status")).unwrap();
    let blocked = status
        .lines()
        .find_map(|line| line.strip_prefix("SigBlk:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .unwrap_or(0);
    // Signal N is bit N - 1: SIGINT is 2, SIGTERM 15.
    let (sigint, sigterm) = (1 << 1, 1 << 14);
    assert!(
        blocked & sigint != 0 && blocked & sigterm != 0,
        "the log writer's thread should block SIGINT and SIGTERM (its signal mask is \
         {blocked:#x}): the kernel runs a signal's handler on any thread that does not block \
         it, and on the writer's it wakes the event loop late, after a turn that should have \
         seen the signal {}",
        book::GRACEFUL_SHUTDOWN
    );
}

#[test]
fn mio_lines_that_arrived_with_the_signal_are_answered_before_bye() {
    let mut server = start(MIO, &["--grace", "5"]);
    let mut client = Connection::open(server.addr());
    let me = client.local_addr();
    round_trip(&mut client, "before the signal");
    // Room in the server's socket for all the lines at once, as in the
    // burst check above.
    let theirs = servers_socket(&server, me);
    socket2::SockRef::from(&theirs)
        .set_recv_buffer_size(2 * 1024 * 1024)
        .unwrap();
    // The option stays on the socket; the duplicate must not keep it open.
    drop(theirs);
    // More lines than one turn reads (READS_PER_TURN of 16 KiB: 256 KiB),
    // all arrived while the server is frozen with SIGINT pending: its next
    // turn reads one budget's worth, then starts the shutdown, which must
    // answer the rest before `bye`.
    const LINES: usize = 300;
    let lines = format!("{}\n", "x".repeat(1023)).repeat(LINES);
    freeze_now(&server);
    client.send(lines.as_bytes());
    let deadline = Instant::now() + WAIT;
    while queued(me, server.addr()).is_none_or(|(tx, _)| tx > 0) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    interrupt(&server);
    server.thaw();
    let mut got = Vec::new();
    let ended = client.stream().read_to_end(&mut got);
    let oks = got.windows(3).filter(|w| w == b"ok\n").count();
    assert!(
        ended.is_ok()
            && got
                == [
                    b"ok\n".repeat(LINES),
                    b"bye: server shutting down\n".to_vec()
                ]
                .concat(),
        "a client sent {LINES} lines of 1 KiB in one write, all of them arrived while SIGINT was \
         pending: every line that had arrived before the signal should still get its `ok` (the \
         shutdown reads what is waiting, conn.receive, before it says bye), then \
         `bye: server shutting down` and a clean close; it got {oks} `ok`s{} and then {} \
         {}",
        if got.ends_with(b"bye: server shutting down\n") {
            " and the bye"
        } else {
            ""
        },
        match ended {
            Ok(_) => "the end of stream".to_string(),
            Err(err) => err.to_string(),
        },
        book::GRACEFUL_SHUTDOWN
    );
    drop(client);
    server
        .wait_exit()
        .assert_success("after SIGINT, and the only client gone");
}

fn one_client_logs_at_most_the_bound_of_lines_and_a_summary(engine: &str) {
    let mut server = start(engine, &[]);
    testkit::client_log::assert_one_client_cannot_flood_the_log(
        &mut server,
        book::THE_BUFFERS_A_CONNECTION_OWNS,
    );
}

#[test]
fn mio_one_client_logs_at_most_the_bound_of_lines_and_a_summary() {
    one_client_logs_at_most_the_bound_of_lines_and_a_summary(MIO);
}

#[test]
fn mio_two_loops_one_client_logs_at_most_the_bound_of_lines_and_a_summary() {
    one_client_logs_at_most_the_bound_of_lines_and_a_summary(MIO_TWO_LOOPS);
}

#[test]
fn tokio_one_client_logs_at_most_the_bound_of_lines_and_a_summary() {
    one_client_logs_at_most_the_bound_of_lines_and_a_summary(TOKIO);
}

#[test]
fn tokio_two_loops_one_client_logs_at_most_the_bound_of_lines_and_a_summary() {
    one_client_logs_at_most_the_bound_of_lines_and_a_summary(TOKIO_TWO_LOOPS);
}

/// Waits until the server has read every byte `client` sent: nothing left
/// in the kernel, neither in the client's send queue nor in the server's
/// receive queue. Both engines take a connection's bytes from their budget
/// in the same step as the read, so the server holds them by then.
#[track_caller]
fn wait_until_read(server: &Process, client: &Connection, what: &str) {
    let read_by = Instant::now() + WAIT;
    loop {
        let (server_side, client_side) = queued_both_ways(server.addr(), client.local_addr());
        let unread = server_side.map_or(0, |(_, rx)| rx) + client_side.map_or(0, |(tx, _)| tx);
        if unread == 0 {
            return;
        }
        assert!(
            Instant::now() < read_by,
            "{what}: {unread} bytes of it were still unread after {} s; the server should read \
             what arrives {}",
            WAIT.as_secs(),
            book::READING_UNTIL_WOULDBLOCK
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// With a budget of 50,000 bytes for all partial lines, two clients hold
/// 20,000 bytes each without a newline; a third that sends 20,000 more
/// does not fit, and is refused; the first two still get their `ok`.
fn a_partial_line_over_the_budget_is_refused_and_the_others_still_work(engine: &str) {
    let why = format!(
        "the server holds at most --partial-lines-budget bytes of unfinished lines \
         for all clients together; a client whose partial line would need more than is left is \
         told `error: the server holds too many unfinished lines, closing the connection` and \
         closed, and the clients that hold their share are served as before \
         {}",
        book::THE_BUFFERS_A_CONNECTION_OWNS
    );
    let mut server = start(engine, &["--partial-lines-budget", "50000"]);
    let half = vec![b'x'; 20_000];
    let mut holders: Vec<Connection> = (0..2).map(|_| Connection::open(server.addr())).collect();
    for (n, holder) in holders.iter_mut().enumerate() {
        holder.send(&half);
        wait_until_read(
            &server,
            holder,
            &format!("client {} sent 20,000 bytes without a newline", n + 1),
        );
    }
    let mut third = Connection::open(server.addr());
    let third_addr = third.local_addr();
    third.send(&half);
    let refusal = third.read_line(&format!(
        "with a budget of 50,000 bytes and 40,000 held by two clients' partial lines, a third \
         sent 20,000 bytes without a newline: it should get the error line; {why}"
    ));
    assert_eq!(
        refusal, "error: the server holds too many unfinished lines, closing the connection",
        "with a budget of 50,000 bytes and 40,000 held, a third client's 20,000 bytes without a \
         newline: {why}"
    );
    third.expect_orderly_close(&format!(
        "the third client read the error line for its partial line over the budget: then a clean \
         end of stream; {why}"
    ));
    // Its close lets the server close at once, not after LINGER.
    drop(third);
    // The bytes it needed depend on how the reads fell: one read's worth,
    // or all that had arrived.
    server.wait_for(&format!("[{third_addr}] a partial line of "));
    for (n, holder) in holders.iter_mut().enumerate() {
        holder.send(b"\n");
        holder.expect_bytes(
            b"ok\n",
            &format!(
                "client {} held 20,000 bytes of a line within the budget, then its newline: it \
                 should get `ok` after a third client was refused; {why}",
                n + 1
            ),
        );
    }
    // Their lines answered, their bytes are back in the budget.
    let mut fourth = Connection::open(server.addr());
    fourth.send(&half);
    wait_until_read(
        &server,
        &fourth,
        "a fourth client sent 20,000 bytes without a newline",
    );
    fourth.send(b"\n");
    fourth.expect_bytes(
        b"ok\n",
        &format!(
            "once two clients' lines were answered, a fourth client's 20,000-byte line fits the \
             budget again and should get `ok`; {why}"
        ),
    );
}

#[test]
fn mio_a_partial_line_over_the_budget_is_refused_and_the_others_still_work() {
    a_partial_line_over_the_budget_is_refused_and_the_others_still_work(MIO);
}

#[test]
fn mio_two_loops_a_partial_line_over_the_budget_is_refused_and_the_others_still_work() {
    a_partial_line_over_the_budget_is_refused_and_the_others_still_work(MIO_TWO_LOOPS);
}

#[test]
fn tokio_a_partial_line_over_the_budget_is_refused_and_the_others_still_work() {
    a_partial_line_over_the_budget_is_refused_and_the_others_still_work(TOKIO);
}

#[test]
fn tokio_two_loops_a_partial_line_over_the_budget_is_refused_and_the_others_still_work() {
    a_partial_line_over_the_budget_is_refused_and_the_others_still_work(TOKIO_TWO_LOOPS);
}
