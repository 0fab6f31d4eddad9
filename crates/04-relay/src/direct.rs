//! Direct connections: a message sent straight to a peer, and the port a
//! client listens on for them. The server never sees these.

use std::io::{self, BufReader, ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::{Deadline, ReadLine, describe, is_timeout, printable, read_line, say};

use crate::limits::{BUSY_REPLY, LINE_LIMIT, MAX_DIRECT_PEERS};
use crate::protocol::valid_name;

// ANCHOR: direct
/// Sends `text` straight to the peer at `addr`, on a thread of its own so
/// that a slow connect does not hold up the rest: connect, `HI <me>`, the
/// line, half-close, and read the peer's answer. The server never sees it.
/// Only a line the peer answered `OK` is printed as sent: a connection that
/// connects and takes our bytes proves nothing (a peer at its cap of
/// direct connections still completes the handshake, in its kernel, and
/// then answers `ERR busy`).
pub(crate) fn send_direct(me: &str, to: &str, addr: SocketAddr, text: String, timeout: Duration) {
    let (me, to) = (me.to_string(), to.to_string());
    thread::spawn(move || {
        let shown = printable(text.as_bytes());
        let answer = match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => direct_answer(&stream, &me, &text, timeout),
            Err(err) => {
                let why = describe(&err);
                say!("-- not sent directly to {to} at {addr}: could not connect: {why}: {shown}");
                return;
            }
        };
        let why = match answer {
            Ok(ReadLine::Line(line)) if line == b"OK" => {
                return say!("[direct to {to} at {addr}] {shown}");
            }
            Ok(ReadLine::Line(line)) if line == b"ERR busy" => {
                return say!(
                    "-- not sent directly to {to}: {to} is busy (as many direct connections as it allows), try again later: {shown}"
                );
            }
            Ok(ReadLine::Line(line)) => {
                let answer = printable(String::from_utf8_lossy(&line).as_bytes());
                return say!("-- not sent directly to {to}: {to} answered \"{answer}\": {shown}");
            }
            Ok(ReadLine::Closed) => "it closed the connection without answering".to_string(),
            Ok(ReadLine::TooLong) => format!("an answer longer than {LINE_LIMIT} bytes"),
            Err(err) if is_timeout(&err) => format!("no answer within {} s", timeout.as_secs_f64()),
            Err(err) => describe(&err),
        };
        say!("-- not sent directly to {to} at {addr}: {why}: {shown}");
    });
}

// ANCHOR_END: direct

// ANCHOR: direct_answer
/// Sends `HI <me>` and `text` on `stream`, and reads the peer's answer
/// line, all within `timeout`.
fn direct_answer(
    stream: &TcpStream,
    me: &str,
    text: &str,
    timeout: Duration,
) -> io::Result<ReadLine> {
    let until = Instant::now() + timeout;
    let sent = stream
        .set_write_timeout(Some(timeout))
        .and_then(|()| (&*stream).write_all(format!("HI {me}\n{text}\n").as_bytes()));
    // The peer may have answered and closed already (`ERR busy`): then
    // the write or the half-close fails, and the answer is still there to
    // read. So read it whatever happened here.
    let _ = stream.shutdown(Shutdown::Write);
    let mut answer = BufReader::new(Deadline {
        stream,
        until: Some(until),
    });
    match (read_line(&mut answer, LINE_LIMIT), sent) {
        (Ok(ReadLine::Line(line)), _) => Ok(ReadLine::Line(line)),
        // No answer, and our bytes did not go out: that is why.
        (_, Err(err)) => Err(err),
        (read, Ok(())) => read,
    }
}
// ANCHOR_END: direct_answer

// ANCHOR: receive_direct
/// Accepts direct connections from peers, a thread each (at most
/// MAX_DIRECT_PEERS), and prints what they send.
pub(crate) fn receive_direct(listener: TcpListener, deadline: Duration) {
    common::serve_threads(
        listener,
        MAX_DIRECT_PEERS,
        BUSY_REPLY,
        move |stream, peer| {
            if let Err(err) = read_direct(&stream, deadline) {
                let why = match is_timeout(&err) {
                    true => format!("not finished within {} s, closed", deadline.as_secs()),
                    false => describe(&err),
                };
                say!("-- direct connection from {peer}: {why}");
            }
        },
    );
}

// ANCHOR_END: receive_direct

// ANCHOR: read_direct
/// One direct connection: `HI <name>`, then lines until the peer closes,
/// each answered `OK`, all within `deadline` (DIRECT_DEADLINE unless
/// `--direct-deadline` says otherwise) of the accept: a deadline, not a
/// read timeout (`common::Deadline` says why), so that a peer trickling a
/// byte now and then cannot hold one of the MAX_DIRECT_PEERS places.
fn read_direct(stream: &TcpStream, deadline: Duration) -> io::Result<()> {
    let mut lines = BufReader::new(Deadline {
        stream,
        until: Some(Instant::now() + deadline),
    });
    let mut next = || match read_line(&mut lines, LINE_LIMIT) {
        Ok(ReadLine::Line(line)) => Ok(Some(line)),
        Ok(ReadLine::Closed) => Ok(None),
        Ok(ReadLine::TooLong) => Err(refused(format!(
            "a line longer than {LINE_LIMIT} bytes, closed"
        ))),
        Err(err) => Err(err),
    };
    // The peer says who it is. Nothing proves it: anyone who can reach
    // this port can claim any name (the chapter says more).
    let first = next()?.unwrap_or_default();
    let from = match std::str::from_utf8(&first)
        .ok()
        .and_then(|l| l.strip_prefix("HI "))
    {
        Some(name) if valid_name(name) => name.to_string(),
        _ => {
            return Err(refused(format!(
                "expected HI <name>, got \"{}\"; closed",
                printable(&first)
            )));
        }
    };
    let _ = stream.set_write_timeout(Some(deadline));
    while let Some(line) = next()? {
        say!("[direct from {from}] {}", printable(&line));
        // The sender prints its message as sent only when this comes.
        (&*stream).write_all(b"OK\n")?;
    }
    Ok(())
}

/// A peer that broke the direct protocol, as an error `describe` words.
fn refused(why: String) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, why)
}
// ANCHOR_END: read_direct
