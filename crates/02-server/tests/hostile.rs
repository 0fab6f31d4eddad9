//! Lesson 2 against clients that misbehave (the test kit's battery, case by
//! case). The server serves one client and exits, so for it "survives"
//! means: it reports what happened in one line, prints nothing from the
//! network raw, and exits cleanly with status 0.

use std::path::Path;

use testkit::Process;
use testkit::hostile::Case;

/// The last line the server may print, whatever the client did.
const LAST_LINES: [&str; 5] = [
    "closed the connection",
    "client closed the connection without sending anything",
    "no message from ",
    "connection error: ",
    "could not reply: ",
];

#[test]
fn every_misbehaving_client_gets_one_line_and_a_clean_exit() {
    for case in Case::ALL {
        let mut server = Process::server(
            Path::new(env!("CARGO_BIN_EXE_02-server")),
            &["--timeout", "1"],
        );
        server.wait_for("waiting for a client");
        let held = case.act(server.addr(), "hello from a hostile test");
        let done = server.finish();
        drop(held);

        let what = format!("02-server after a client that does {case:?}");
        done.assert_success(&what);
        assert_eq!(
            done.stderr, "",
            "{what}: nothing should go to stderr; {done}"
        );
        let last = done.stdout.lines().last().unwrap_or_default();
        assert!(
            LAST_LINES.iter().any(|start| last.starts_with(start)),
            "{what}: the last line should say how the conversation ended \
             (one of {LAST_LINES:?}); {done}"
        );
        assert!(
            !done.stdout.contains(['\u{1b}', '\u{7}', '\u{0}']),
            "{what}: control characters from the network must be printed escaped; {done}"
        );
    }
}
