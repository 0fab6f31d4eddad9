//! A client's writer thread: the only thread that writes to its socket,
//! and the one that decides the client has stopped reading.

use std::io::{self, ErrorKind, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{is_timeout, lock};

use crate::leaving::Leaving;
use crate::limits::LINGER;
use crate::registry::Room;

// ANCHOR: writer
/// Why a writer thread gave up on its client, for the reader thread to say.
pub(crate) type WhyWriterStopped = Arc<Mutex<Option<Leaving>>>;

/// A client's writer thread: takes lines from its queue and writes them to
/// its socket, until every sender of the queue is gone (the client has
/// left the registry and its reader thread has ended).
///
/// This is the only thread that writes to this socket, so lines never mix,
/// and the only one that waits for this client to read. Each line it takes
/// out makes room, and wakes any sender waiting for room. A line it cannot
/// write within `stuck_after` (STUCK_AFTER unless `--stuck-after` says
/// otherwise) means the client has stopped reading: it is dropped. On
/// Linux a client that keeps reading, even slowly, takes a line far sooner
/// (see UNSENT_LIMIT); elsewhere the chapter says when it may not.
pub(crate) fn write_lines(
    mut stream: TcpStream,
    queue: Receiver<Vec<u8>>,
    room: Arc<Room>,
    why_stopped: WhyWriterStopped,
    stuck_after: Duration,
) {
    for line in &queue {
        room.queued.fetch_sub(1, Ordering::SeqCst);
        room.wake();
        if let Err(err) = write_by(&mut stream, &line, Instant::now() + stuck_after) {
            *lock(&why_stopped) = Some(if is_timeout(&err) {
                Leaving::Stuck
            } else {
                Leaving::Lost
            });
            // Wake the reader thread (its read returns at once), so the
            // client leaves the registry; and let senders waiting for room
            // see that the queue is gone.
            let _ = stream.shutdown(Shutdown::Both);
            drop(queue);
            room.wake();
            return;
        }
    }
    // The last line (`BYE`, or `ERR line-too-long`) is written: close
    // without a reset destroying it (lesson 2).
    common::close_gently(stream, LINGER);
}
// ANCHOR_END: writer

// ANCHOR: write_by
/// Writes all of `bytes` by `until`. A write timeout alone is not a
/// deadline: it is a budget for one `write` call, `write_all` calls `write`
/// again after every short write, each with the whole timeout, and a client
/// whose buffers take a few bytes now and then would hold a write for ever.
/// So each write may only wait for what is left of the time.
fn write_by(stream: &mut TcpStream, mut bytes: &[u8], until: Instant) -> io::Result<()> {
    while !bytes.is_empty() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::from(ErrorKind::TimedOut));
        }
        stream.set_write_timeout(Some(left))?;
        match stream.write(bytes) {
            Ok(0) => return Err(io::Error::from(ErrorKind::WriteZero)),
            Ok(written) => bytes = &bytes[written..],
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
// ANCHOR_END: write_by
