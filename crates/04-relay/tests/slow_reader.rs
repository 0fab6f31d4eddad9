//! A client that reads slowly is not a client that stopped: the server
//! must keep the first however long its lines wait in the socket, and drop
//! the second within `--stuck-after`. Both read what a flood of 4 KB lines
//! sends them, at 32 KB/s, against the real `04-relay serve`.

// Helpers outside #[test] functions fail the way tests do: by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::{book, book_section, expect_exact_line, explains, register, start_server};
use testkit::paced::PacedReader;
use testkit::{Connection, Process, WAIT};

/// The `--stuck-after` of these tests: short, so that three of it pass in
/// a test that takes seconds, not the 30 s of STUCK_AFTER three times.
const STUCK_AFTER: Duration = Duration::from_secs(2);

/// The reader's pace: slow next to a flood, and far more than nothing.
const PACE: u64 = 32 * 1024;

/// A server with a short `--stuck-after`, a client `slow` read at PACE,
/// and a client `flood` that sends it 4 KB lines as fast as the server
/// takes them, until the returned flag is set. Slow's receive buffer is as
/// small as the kernel allows: when it stops reading, its kernel takes
/// nothing more at once, rather than some hundreds of kilobytes over the
/// next seconds (the server cannot tell those from a program's reads).
fn flooded_slow_reader() -> (Process, PacedReader, Arc<AtomicBool>) {
    let server = start_server(&["--stuck-after", &STUCK_AFTER.as_secs().to_string()]);
    let mut slow = open_with_tiny_receive_buffer(server.addr());
    slow.send_line("HELLO slow");
    let welcome = format!("WELCOME slow {}", slow.local_addr());
    expect_exact_line(&mut slow, &welcome, "slow registers");
    let flood = register(server.addr(), "flood");
    expect_exact_line(
        &mut slow,
        "JOINED flood",
        "slow should hear that flood joined",
    );
    let slow = PacedReader::start(slow.stream().try_clone().unwrap(), PACE);
    let done = Arc::new(AtomicBool::new(false));
    let mut writer = flood.stream().try_clone().unwrap();
    let flooding = Arc::clone(&done);
    thread::spawn(move || {
        let line = format!("SEND slow {}\n", "x".repeat(4000));
        while !flooding.load(Ordering::SeqCst) {
            if writer.write_all(line.as_bytes()).is_err() {
                break;
            }
        }
    });
    // The flooder reads its replies all along: one that did not would be
    // dropped itself.
    let replies = flood.stream().try_clone().unwrap();
    thread::spawn(move || BufReader::new(replies).lines().all(|line| line.is_ok()));
    (server, slow, done)
}

#[test]
fn a_reader_that_keeps_taking_bytes_is_never_dropped() {
    explains(book::SLOW_OR_STOPPED);
    let (mut server, slow, done) = flooded_slow_reader();
    let started = Instant::now();
    let watch = STUCK_AFTER * 3;
    while started.elapsed() < watch {
        let log = server.stdout_now();
        assert!(
            !log.contains("slow left"),
            "slow reads all along at {} KB/s, under a flood of 4 KB lines, and took {} bytes in {:.1} s: a client that keeps reading must not be taken for one that stopped: a line written to it must wait only for it to take some kilobytes (on Linux, UNSENT_LIMIT bytes at most wait unsent in its socket), not for a third of a send buffer of megabytes to be free, which takes longer than --stuck-after ({} s). It was dropped; the server's log:\n{log}\n{}",
            PACE / 1024,
            slow.taken(),
            started.elapsed().as_secs_f64(),
            STUCK_AFTER.as_secs(),
            book_section()
        );
        thread::sleep(Duration::from_millis(200));
    }
    done.store(true, Ordering::SeqCst);
    assert!(
        !slow.closed() && slow.taken() > 0,
        "slow read at {} KB/s for {} s: its connection should be open, and it should have taken lines ({} bytes) {}",
        PACE / 1024,
        watch.as_secs(),
        slow.taken(),
        book_section()
    );
}

#[test]
fn a_reader_that_stops_is_dropped_within_stuck_after() {
    explains(book::SLOW_OR_STOPPED);
    let (mut server, slow, done) = flooded_slow_reader();
    // Read at the pace until the flood reaches slow: from then on its
    // writer thread always has a line to write.
    assert!(
        slow.wait_until_taken(64 * 1024, Duration::from_secs(60)),
        "flood sends 4 KB lines to slow, which reads at {} KB/s: slow should take 64 KB of them; it took {} bytes {}",
        PACE / 1024,
        slow.taken(),
        book_section()
    );
    let _unread = slow.stop();
    let stopped = Instant::now();
    let limit = STUCK_AFTER + Duration::from_secs(2);
    server.expect_line_within(
        "slow left (dropped",
        &format!(
            "slow stopped reading: it should be dropped within --stuck-after ({} s) + 2 s {}",
            STUCK_AFTER.as_secs(),
            book_section()
        ),
        limit + Duration::from_secs(10),
    );
    let took = stopped.elapsed();
    done.store(true, Ordering::SeqCst);
    assert!(
        took <= limit,
        "slow stopped reading, and was dropped {:.1} s later: that should be within --stuck-after ({} s) + 2 s {}",
        took.as_secs_f64(),
        STUCK_AFTER.as_secs(),
        book_section()
    );
}

/// A connection whose receive buffer is as small as the kernel allows
/// (SO_RCVBUF set before connecting).
fn open_with_tiny_receive_buffer(addr: std::net::SocketAddr) -> Connection {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .unwrap_or_else(|err| panic!("could not make a socket: {err}"));
    socket
        .set_recv_buffer_size(1)
        .unwrap_or_else(|err| panic!("could not set SO_RCVBUF: {err}"));
    socket
        .connect_timeout(&addr.into(), WAIT)
        .unwrap_or_else(|err| panic!("could not connect to the server at {addr}: {err}"));
    Connection::from_stream(socket.into())
}
