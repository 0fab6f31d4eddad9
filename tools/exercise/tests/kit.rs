//! A lesson test that fails in a test kit check must point at its own line:
//! that is where a learner looks, and the kit's insides mean nothing to
//! them. `cargo exercise check` shows the panic message with its place.
//!
//! Each case below is a tiny failing lesson test. This file's binary runs
//! itself again for each, with `KIT_CASE` naming it, and reads the place
//! that Rust's panic message gives: it must be this file, at the line that
//! calls the kit.

use std::path::Path;
use std::process::Command;

use testkit::{Connection, FakeServer, Process, closed_port, line_protocol};

const CASE: &str = "KIT_CASE";
const TEST: &str = "a_failing_kit_check_reports_the_tests_own_file_and_line";

/// The deliberate failures, and the kit helper each line calls. Each one
/// fails at once: a refused connection, a peer that closed, a program that
/// exited.
fn fail(case: &str) {
    let exe = std::env::current_exe().unwrap_or_default();
    match case {
        // A helper of `Connection`, failing in itself.
        "open" => drop(Connection::open(closed_port())),
        // Through `Process::fail`, which `expect_line_within` calls.
        "expect_line" => {
            let mut program = Process::start(&exe, &["--list"]);
            program.expect_line("a line no program prints", "the deliberate failure");
        }
        // Through a second kit helper: `round_trip` calls `expect_bytes`.
        "round_trip" => {
            let fake = FakeServer::start();
            let mut conn = Connection::open(fake.addr());
            drop(fake.accept("the test's own connection"));
            line_protocol::round_trip(&mut conn, "hello");
        }
        _ => {}
    }
}

/// The cases, and text that the line of each failure holds.
const CASES: [(&str, &str); 3] = [
    ("open", "Connection::open"),
    ("expect_line", "program.expect_line("),
    ("round_trip", "line_protocol::round_trip("),
];

#[test]
fn a_failing_kit_check_reports_the_tests_own_file_and_line() {
    if let Ok(case) = std::env::var(CASE) {
        fail(&case);
        return;
    }
    let source =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kit.rs"))
            .expect("this test's own source");
    let exe = std::env::current_exe().expect("this test's binary");
    for (case, call) in CASES {
        let mut command = Command::new(&exe);
        command
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(CASE, case)
            .env("RUST_BACKTRACE", "0");
        let finished = Process::start_command(&mut command).finish();
        finished.assert_failure(&format!("the deliberate failure `{case}`"));
        let place = finished
            .stderr
            .lines()
            .find_map(|line| line.split_once("panicked at ").map(|(_, place)| place))
            .unwrap_or_else(|| panic!("case `{case}`: no panic message; {finished}"));
        let prefix = format!("{}:", file!());
        let line_number: usize = place
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split(':').next())
            .and_then(|number| number.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "case `{case}`: a failing kit check should report the test's own file, {}; \
                     it reported {place} (is the helper, and every kit helper it calls, \
                     #[track_caller]? does it panic inside a closure?)",
                    file!()
                )
            });
        let line = source.lines().nth(line_number - 1).unwrap_or_default();
        assert!(
            line.contains(call),
            "case `{case}`: the failure should be reported at the line that calls {call}; it \
             was reported at line {line_number}: {line:?}"
        );
    }
}
