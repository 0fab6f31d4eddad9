//! Errors as one line a person can act on.
//!
//! `std::io::Error` prints as `Connection refused (os error 111)`, and an
//! unhandled one ends `main` with `Error: Os { code: 111, kind:
//! ConnectionRefused, ... }`. Neither tells a learner what to do. Every lesson
//! ends its `main` with [`report`], and words its errors with [`describe`].

use std::io::{self, ErrorKind, Write};
use std::process::ExitCode;

// ANCHOR: describe
/// The plain words for an I/O error, without the OS error number.
pub fn describe(err: &io::Error) -> String {
    let words = match err.kind() {
        ErrorKind::ConnectionRefused => "connection refused",
        ErrorKind::ConnectionReset => "reset by peer",
        ErrorKind::ConnectionAborted => "connection aborted",
        ErrorKind::BrokenPipe => "broken pipe (the peer closed the connection)",
        // A read or write timeout shows up as WouldBlock on Unix and as
        // TimedOut on Windows: both mean the deadline passed.
        ErrorKind::TimedOut | ErrorKind::WouldBlock => "timed out",
        ErrorKind::AddrInUse => "address already in use",
        ErrorKind::AddrNotAvailable => "address not available on this machine",
        ErrorKind::HostUnreachable => "host unreachable",
        ErrorKind::NetworkUnreachable => "network unreachable",
        ErrorKind::PermissionDenied => "permission denied",
        ErrorKind::NotFound => "not found",
        ErrorKind::UnexpectedEof => "the connection closed too early",
        ErrorKind::StorageFull => "no space left on device",
        ErrorKind::QuotaExceeded => "disk quota exceeded",
        _ => return without_os_code(&err.to_string()),
    };
    words.to_string()
}
// ANCHOR_END: describe

/// Whether `err` is a read or write timeout running out: it shows up as
/// WouldBlock on Unix and as TimedOut on Windows.
pub fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// `"Invalid argument (os error 22)"` becomes `"invalid argument"`.
fn without_os_code(message: &str) -> String {
    let message = match message.find(" (os error") {
        Some(at) => &message[..at],
        None => message,
    };
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

// ANCHOR: report
/// Ends `main`: nothing on success; on failure one line on standard error,
/// `error: ` and the message with its causes, and a non-zero exit code.
pub fn report(result: anyhow::Result<()>) -> ExitCode {
    // A server's last log lines may still be queued (see common::log).
    crate::flush_log();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the causes on the same line: "a: b: c".
            let _ = writeln!(io::stderr(), "error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
// ANCHOR_END: report

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_kinds_have_plain_words() {
        let refused = io::Error::from(ErrorKind::ConnectionRefused);
        assert_eq!(describe(&refused), "connection refused");
        let reset = io::Error::from_raw_os_error(104); // ECONNRESET on Linux
        if reset.kind() == ErrorKind::ConnectionReset {
            assert_eq!(describe(&reset), "reset by peer");
        }
    }

    #[test]
    fn a_full_disk_is_said_in_words() {
        let full = io::Error::from_raw_os_error(28); // ENOSPC on Linux
        if full.kind() == ErrorKind::StorageFull {
            assert_eq!(describe(&full), "no space left on device");
        }
        assert_eq!(
            describe(&io::Error::from(ErrorKind::StorageFull)),
            "no space left on device"
        );
    }

    #[test]
    fn other_errors_lose_the_os_code() {
        assert_eq!(
            without_os_code("Invalid argument (os error 22)"),
            "invalid argument"
        );
        assert_eq!(without_os_code(""), "");
    }
}
