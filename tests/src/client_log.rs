//! One client's share of a server's log (lessons 3 and 6 log every line a
//! client sends): a test that floods the log with lines and counts how many
//! of the server's log lines are about that client.

use crate::{Connection, Process};

/// The server's bound, `common::LOG_LINES_PER_CLIENT` (the kit does not
/// depend on the lessons' code; a change there fails this test, which then
/// names the new value).
pub const LOG_LINES_PER_CLIENT: usize = 1000;

/// One client sends three times [`LOG_LINES_PER_CLIENT`] short lines and
/// reads every `ok`, then closes. Asserts that the server's log holds at
/// most LOG_LINES_PER_CLIENT + 2 lines about its lines (the lines logged,
/// one note that the rest are not, one summary at its end), besides its
/// `connected` and `finished`, and that the summary counts every line.
/// `book` is the reference to the chapter section that states the bound,
/// as `(book: FILE § HEADING)`.
#[track_caller]
pub fn assert_one_client_cannot_flood_the_log(server: &mut Process, book: &str) {
    let sent = 3 * LOG_LINES_PER_CLIENT;
    let mut client = Connection::open(server.addr());
    let me = client.local_addr();
    let lines: String = (0..sent).map(|n| format!("line {n}\n")).collect();
    let bytes: usize = lines.len() - sent; // without the newlines
    client.send(lines.as_bytes());
    client.expect_bytes(
        &b"ok\n".repeat(sent),
        &format!(
            "a client sent {sent} lines in one go: every line gets its `ok`, logged or not \
             {book}"
        ),
    );
    client.half_close();
    client.expect_orderly_close(&format!(
        "a client sent {sent} lines, read their `ok`s and closed its side {book}"
    ));
    server.expect_line(
        &format!("[{me}] finished"),
        &format!(
            "a client sent {sent} lines and closed: the server logs `[{me}] finished` \
             {book}"
        ),
    );
    let log = server.stdout_now();
    let tag = format!("[{me}] ");
    let about_its_lines: Vec<&str> = log
        .lines()
        .filter(|line| line.starts_with(&tag))
        .filter(|line| !line.ends_with("] connected") && !line.ends_with("] finished"))
        .collect();
    let most = LOG_LINES_PER_CLIENT + 2;
    if about_its_lines.len() > most {
        server.fail(&format!(
            "a client sent {sent} short lines and the server logged {} lines about them; at most \
             {most} should be: the first {LOG_LINES_PER_CLIENT} lines, one line saying the rest of \
             this client's lines are not logged, and one summary at its end. Without a bound, one \
             client grows a log file many times faster than it sends {book}",
            about_its_lines.len()
        ));
    }
    let summary = format!("{sent} lines received ({bytes} bytes)");
    if !about_its_lines.iter().any(|line| line.contains(&summary)) {
        server.fail(&format!(
            "a client sent {sent} lines ({bytes} bytes) and closed: the server should log one \
             summary line at its end, with `{summary}` {book}"
        ));
    }
}
