//! Lesson 2 against clients that misbehave (the test kit's battery, case by
//! case). The server serves one client and exits, so for it "survives"
//! means: it reports what happened, ending in the one line that is right for
//! what the client did, prints nothing from the network raw, and exits
//! cleanly with status 0.

mod book;

use std::path::Path;

use testkit::Process;
use testkit::hostile::Case;

/// The request the cases send where they need one.
const LINE: &str = "hello from a hostile test";

/// The server's `--timeout` for a case, in seconds. The burst holds its
/// first connection open while the kernel's queue of 128 fills and later
/// connects stall: the server must give up on that silent first client, and
/// with 3 s it always does so before the burst's own connects are done.
fn timeout(case: Case) -> u64 {
    match case {
        Case::Burst => 3,
        _ => 1,
    }
}

/// What the server must print after `client connected: CLIENT`, line by
/// line: the one right report of what this client did.
fn expected_lines(case: Case, client: &str) -> Vec<String> {
    let served = |received: &str| {
        vec![
            format!("received: {received}"),
            "replied: OK".to_string(),
            "closed the connection".to_string(),
        ]
    };
    match case {
        Case::CloseAtOnce => vec!["client closed the connection without sending anything".into()],
        Case::SendNothing | Case::Burst => vec![format!(
            "no message from {client} within {} s, giving up",
            timeout(case)
        )],
        Case::ResetMidLine => vec!["connection error: reset by peer".into()],
        Case::FloodWithoutNewline => vec![
            format!("received: {}", "x".repeat(1024)),
            "(the message filled all 1024 bytes; the rest was not read)".into(),
            "replied: OK".into(),
            "closed the connection".into(),
        ],
        Case::Garbage => served("caf\\xe9 \\u{1b}[2J\\u{7}\\u{0} \\xff\\xfe"),
        Case::ManyLinesInOneWrite | Case::OneLineInManyWrites | Case::CloseWithoutReading => {
            served(LINE)
        }
    }
}

/// Why that ending is the right one, with the chapter section.
fn why(case: Case) -> String {
    match case {
        Case::CloseAtOnce => format!(
            "a read that returns 0 bytes before any byte came means the client closed without a message \
             {}",
            book::A_CLIENT_THAT_MISBEHAVES
        ),
        Case::SendNothing | Case::Burst => format!(
            "the client sent nothing: the server must give up after --timeout, not wait for ever \
             {}",
            book::A_CLIENT_THAT_MISBEHAVES
        ),
        Case::ResetMidLine => format!(
            "a reset makes the read fail with ECONNRESET, which is reported as `connection error: reset by peer`, \
             not as a clean close {}",
            book::A_CLIENT_THAT_MISBEHAVES
        ),
        Case::FloodWithoutNewline => format!(
            "the message is cut at 1024 bytes, like recv(1024), and still answered \
             {}",
            book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE
        ),
        Case::Garbage => format!(
            "any bytes up to the newline are a message, printed escaped and answered \
             {}",
            book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE
        ),
        Case::ManyLinesInOneWrite | Case::OneLineInManyWrites => format!(
            "the first newline ends the message, however the bytes were split between reads \
             {}",
            book::STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE
        ),
        Case::CloseWithoutReading => format!(
            "the line arrived whole before the client went away: it is answered, and the first write \
             to a closed peer succeeds {}",
            book::STEP_6_REPLY
        ),
    }
}

#[test]
fn every_misbehaving_client_gets_the_one_right_report_and_a_clean_exit() {
    for case in Case::ALL {
        let secs = timeout(case).to_string();
        let mut server = Process::server(
            Path::new(env!("CARGO_BIN_EXE_02-server")),
            &["--timeout", &secs],
        );
        server.expect_line(
            "waiting for a client",
            &format!("after `listening on ADDR` the server should print `waiting for a client...` before it \
         waits in accept {}", book::STEP_4_ACCEPT),
        );
        let what = format!("02-server --timeout {secs}, after {}", case.describe(LINE));
        let held = case.act(server.addr(), LINE);
        let connected = server.expect_line(
            "client connected: ",
            &format!(
                "{what}: the server should accept it {}",
                book::STEP_4_ACCEPT
            ),
        );
        let client = connected.trim_start_matches("client connected: ");
        let expected = expected_lines(case, client);
        let mut got = Vec::new();
        for line in &expected {
            got.push(server.expect_line(
                "",
                &format!(
                    "{what}: the server should print, after `{connected}`:\n  {}\n({})",
                    expected.join("\n  "),
                    why(case)
                ),
            ));
            if got.last() != Some(line) {
                break;
            }
        }
        assert_eq!(
            got,
            expected,
            "{what}: after `{connected}` the server should print exactly the lines on the right \
             ({}); it printed the lines on the left",
            why(case)
        );
        let done = server.finish();
        drop(held);

        done.assert_success(&format!(
            "{what}: a client that misbehaves is not the server's failure \
             {}",
            book::A_CLIENT_THAT_MISBEHAVES
        ));
        assert_eq!(
            done.stderr,
            "",
            "{what}: nothing should go to stderr: what a client does is reported on stdout, in one \
             line {}; {done}",
            book::A_CLIENT_THAT_MISBEHAVES
        );
        assert!(
            !done.stdout.contains(['\u{1b}', '\u{7}', '\u{0}']),
            "{what}: control characters from the network must be printed escaped, never raw \
             {}; {done}",
            book::A_CLIENT_THAT_MISBEHAVES
        );
    }
}
