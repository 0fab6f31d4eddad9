//! The client's side of the server's lines: the header, the `HASHING`
//! progress and the digest, each read within a deadline.

use std::io::{self, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use common::{Deadline, ReadLine, describe, is_timeout, printable, read_line};

use crate::{LINE_LIMIT, Reply, parse_reply};

/// How the client reads from the server: through a buffer, with a
/// deadline for each header line (see `read_line_within`).
pub(crate) type Reader<'a> = BufReader<Deadline<'a>>;

// ANCHOR: header_lines
/// Reads one line from the server within `timeout` in all: a deadline for
/// the line, not a timeout for each read, so a server sending one byte
/// every few seconds cannot hold the client (see `common::Deadline`).
/// Afterwards reads wait `timeout` each again, as the file's bytes do.
pub(crate) fn read_line_within(reader: &mut Reader<'_>, timeout: Duration) -> io::Result<ReadLine> {
    reader.get_mut().until = Some(Instant::now() + timeout);
    let line = read_line(reader, LINE_LIMIT);
    reader.get_mut().until = None;
    reader.get_ref().stream.set_read_timeout(Some(timeout))?;
    line
}

/// Reads one header line from the server, with the errors a person can act on.
pub(crate) fn read_header(
    reader: &mut Reader<'_>,
    peer: SocketAddr,
    timeout: Duration,
) -> anyhow::Result<Vec<u8>> {
    header_line(read_line_within(reader, timeout), peer, timeout)
}

/// Reads the reply's first line. A line of another lesson's protocol (its
/// server, left running on this port, answered) is said to be so, in one
/// line, rather than read as a strange refusal.
pub(crate) fn read_reply(
    reader: &mut Reader<'_>,
    peer: SocketAddr,
    timeout: Duration,
) -> anyhow::Result<Vec<u8>> {
    let line = read_header(reader, peer, timeout)?;
    if let Some(wrong) = common::wrong_server(&[5], "a file server", peer, &line) {
        bail!("{wrong}");
    }
    Ok(line)
}

/// The line that `read_line_within` read, or the error a person can act on.
pub(crate) fn header_line(
    read: io::Result<ReadLine>,
    peer: SocketAddr,
    timeout: Duration,
) -> anyhow::Result<Vec<u8>> {
    match read {
        Ok(ReadLine::Line(line)) => Ok(line),
        Ok(ReadLine::Closed) => {
            bail!("the server at {peer} closed the connection without replying")
        }
        Ok(ReadLine::TooLong) => {
            bail!("the server at {peer} sent a line longer than {LINE_LIMIT} bytes")
        }
        Err(err) if is_timeout(&err) => {
            bail!("no reply from {peer} within {} s", timeout.as_secs_f64())
        }
        Err(err) => bail!("lost the connection to {peer}: {}", describe(&err)),
    }
}
// ANCHOR_END: header_lines

// ANCHOR: read_digest
/// After the bytes, the server's SHA-256 of the whole file: `SHA256
/// <hex>`, perhaps after `HASHING <done> <size>` lines while the server
/// finishes computing it.
///
/// A `HASHING` line restarts the wait only when its `done` has grown: the
/// server is making progress. One that says no more than the last counts
/// against the wait, so a server repeating `HASHING 0 5` cannot hold `get`
/// for ever.
pub(crate) fn read_digest(
    reader: &mut Reader<'_>,
    peer: SocketAddr,
    timeout: Duration,
    shown: &str,
    part: &Path,
) -> anyhow::Result<String> {
    let mut hashed: Option<u64> = None;
    let mut deadline = Instant::now() + timeout;
    // Whether a HASHING line without progress came since the wait began.
    let mut stalled = false;
    let no_progress = || {
        anyhow!(
            "the server at {peer} kept saying it was hashing \"{shown}\" but hashed nothing more for {} s; {} keeps the bytes: run the same command again to check them",
            timeout.as_secs_f64(),
            part.display()
        )
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(no_progress());
        }
        let line = match read_header(reader, peer, left) {
            Ok(line) => line,
            // The wait ran out between two lines that showed no progress.
            Err(_) if stalled && Instant::now() >= deadline => return Err(no_progress()),
            Err(err) => {
                return Err(err.context(format!(
                    "\"{shown}\" arrived whole, but not the server's SHA-256 of it; {} keeps it: run the same command again to check it",
                    part.display()
                )));
            }
        };
        match parse_reply(&line) {
            Some(Reply::Digest(sha256)) => return Ok(sha256),
            Some(Reply::Hashing { done, .. }) => {
                if hashed.is_none_or(|before| done > before) {
                    hashed = Some(done);
                    deadline = Instant::now() + timeout;
                    stalled = false;
                } else {
                    stalled = true;
                }
            }
            _ => return Err(not_understood(peer, &line)),
        }
    }
}
// ANCHOR_END: read_digest

// ANCHOR: not_understood
pub(crate) fn not_understood(peer: SocketAddr, line: &[u8]) -> anyhow::Error {
    anyhow!(
        "the server at {peer} sent a line this program does not understand: {}",
        printable(line)
    )
}
// ANCHOR_END: not_understood
