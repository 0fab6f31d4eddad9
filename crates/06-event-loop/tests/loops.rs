//! One event loop per core (`--loops`): the clients are spread over the
//! loops, and a signal shuts every loop down, each answering what it has
//! in flight, with one summary for all. (Every test of `event_loop.rs`
//! about the whole server runs with one loop and with two as well.)

// Helpers outside #[test] functions fail the way tests do: by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod book;

use std::path::Path;
use std::time::Duration;

use testkit::line_protocol::round_trip;
use testkit::{Connection, Process};

const SECTION: &str = book::ONE_LOOP_PER_CORE;

fn start(engine: &str, loops: usize, args: &[&str]) -> Process {
    let loops = loops.to_string();
    let mut all = vec!["--engine", engine, "--loops", &loops];
    all.extend_from_slice(args);
    Process::server(Path::new(env!("CARGO_BIN_EXE_06-event-loop")), &all)
}

/// The threads of process `pid`: their names (Linux's `comm`; the main
/// thread, whose id is the process's, is `main`) and how long each has
/// run, from /proc.
fn threads(pid: u32) -> Vec<(String, Duration)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .map(|task| {
            let task = task.unwrap().path();
            let name = if task.ends_with(pid.to_string()) {
                "main".to_string()
            } else {
                std::fs::read_to_string(task.join("comm")).unwrap_or_default()
            };
            let ran = std::fs::read_to_string(task.join("schedstat"))
                .ok()
                .and_then(|stat| stat.split_whitespace().next()?.parse().ok())
                .map_or(Duration::ZERO, Duration::from_nanos);
            (name.trim().to_string(), ran)
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "reads the threads from Linux's /proc"
)]
fn two_loops_are_two_threads_and_each_serves_clients() {
    let server = start("mio", 2, &[]);
    let mut clients: Vec<Connection> = (0..8).map(|_| Connection::open(server.addr())).collect();
    let before = threads(server.pid());
    for round in 0..500 {
        for client in &mut clients {
            round_trip(client, &format!("round {round}"));
        }
    }
    let after = threads(server.pid());
    let ran = |name: &str| {
        let of =
            |list: &[(String, Duration)]| list.iter().find(|(n, _)| n == name).map(|(_, ran)| *ran);
        // A thread started after the first look ran only since.
        of(&after).map(|a| a.saturating_sub(of(&before).unwrap_or_default()))
    };
    let loop_two = ran("loop 2").unwrap_or_else(|| {
        panic!(
            "with --loops 2 the server should run a second event loop on a thread of its own, \
             named `loop 2`; its threads are {after:?} {SECTION}"
        )
    });
    let loop_one = ran("loop 1").unwrap_or_default();
    assert!(
        loop_two * 4 > loop_one,
        "8 clients took turns sending 500 lines each to a server with --loops 2: the clients \
         should be handed to the loops in turn, so the second loop does about half the work; it \
         ran {} ms, the first {} ms {SECTION}",
        loop_two.as_millis(),
        loop_one.as_millis()
    );
}

/// Four clients, so two on each loop, each with a line in flight when
/// SIGINT arrives (the server is frozen meanwhile): every one gets its
/// `ok`, then `bye`, and the one summary counts them all.
fn every_loop_answers_its_lines_in_flight_then_says_bye(engine: &str) {
    let mut server = start(engine, 2, &["--grace", "5"]);
    let mut clients: Vec<Connection> = (0..4).map(|_| Connection::open(server.addr())).collect();
    for client in &mut clients {
        round_trip(client, "before the signal");
    }
    server.freeze();
    for client in &mut clients {
        client.send_line("in flight");
    }
    server.interrupt();
    server.thaw();
    for (n, client) in clients.iter_mut().enumerate() {
        client.expect_bytes(
            b"ok\nbye: server shutting down\n",
            &format!(
                "--engine {engine} --loops 2: client {n} of 4 (the clients are spread over the \
                 loops) sent a line just before SIGINT: every loop should answer the lines that \
                 have arrived, then tell its clients `bye: server shutting down` {SECTION}"
            ),
        );
    }
    drop(clients);
    let done = server.wait_exit();
    done.assert_success(&format!(
        "--engine {engine} --loops 2 after SIGINT, every client gone"
    ));
    let summary = done.stdout.lines().last().unwrap_or_default();
    // A line in flight may be answered in the turn before the signal's,
    // or after it: the count of answered lines is either.
    assert!(
        summary.starts_with("shut down: 4 clients told, ")
            && summary.ends_with(" answered during the grace period"),
        "--engine {engine} --loops 2: the last line should be one summary for the whole server, \
         adding up what every loop did (`shut down: 4 clients told, N lines answered during the \
         grace period`); got {summary:?}; {done} {SECTION}"
    );
}

#[test]
fn mio_every_loop_answers_its_lines_in_flight_then_says_bye() {
    every_loop_answers_its_lines_in_flight_then_says_bye("mio");
}

#[test]
fn tokio_every_loop_answers_its_lines_in_flight_then_says_bye() {
    every_loop_answers_its_lines_in_flight_then_says_bye("tokio");
}

/// How many times the test below races the end of the first loop against
/// the wake-up it sends the others: a lost wake-up showed in about half the
/// tries, so all of them passing by luck is about one chance in a thousand.
const TRIES: usize = 10;

/// No clients left: each loop has nothing to wait for, and the server
/// exits at once. The other loops still wait for the first to stop handing
/// clients out (a client accepted just before the signal must not vanish
/// with the channel), and the first wakes them when it does: a wake-up
/// lost on the way (one queued on a `Waker` that the first loop drops as
/// it ends) would keep them to the end of the 30 s grace period.
#[test]
fn two_loops_with_no_clients_exit_at_once_on_sigint() {
    for (engine, tries) in [("mio", TRIES), ("tokio", 1)] {
        for _ in 0..tries {
            exits_at_once_with_no_clients(engine);
        }
    }
}

fn exits_at_once_with_no_clients(engine: &str) {
    let mut server = start(engine, 2, &["--grace", "30"]);
    // One round trip, so that the loops surely run, then nobody.
    round_trip(&mut Connection::open(server.addr()), "hello");
    server.expect_line("finished", "the one client left");
    let began = std::time::Instant::now();
    // Frozen while the signal arrives: on thawing, every loop sees it at
    // once, and the first, with nothing to do, is done at once too.
    server.freeze();
    server.interrupt();
    server.thaw();
    let done = server.wait_exit();
    done.assert_success(&format!(
        "--engine {engine} --loops 2, SIGINT with no client"
    ));
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "--engine {engine} --loops 2 with no client connected: SIGINT should end the server \
         at once, not after the grace period (--grace 30); it took {:.1} s {SECTION}",
        began.elapsed().as_secs_f64()
    );
}
