//! Sending a file's bytes: sendfile(2) on Linux, a buffer elsewhere.

use std::fs::File;
use std::io::{self, ErrorKind};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::MIN_RATE;

// ANCHOR: send_range
/// Sends the bytes of `file` from `position` up to `end`, moving `position`
/// on as they go (so after an error it says how far the transfer got).
/// Fails with TimedOut when the client takes less than MIN_RATE bytes/s
/// over a `window`.
///
/// On Linux, sendfile(2): the kernel hands pages of the file, as they sit
/// in its page cache, to the socket. The bytes never come up into this
/// program: no buffer here, no copy in and out of it, one system call for
/// many megabytes. The catch that keeps `std::io::copy` from doing this
/// itself: the socket may still hold the pages after the call returns, so a
/// file changed at that moment can send its new bytes. Our client checks
/// the SHA-256 of everything it received, so it would notice.
///
/// The socket is non-blocking meanwhile: sendfile moves what fits and
/// returns, and poll(2) waits for room, never past the end of the window.
/// A blocking call would wait as long as the client takes a few bytes now
/// and then, and the rate could not be checked until it returned.
#[cfg(target_os = "linux")]
pub(crate) fn send_range(
    file: &File,
    stream: &TcpStream,
    position: &mut u64,
    end: u64,
    window: Duration,
) -> io::Result<()> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    use rustix::io::Errno;

    let least = MIN_RATE.saturating_mul(window.as_secs());
    stream.set_nonblocking(true)?;
    let mut window_start = Instant::now();
    let mut window_from = *position;
    let mut result = Ok(());
    while *position < end {
        let count = usize::try_from(end - *position).unwrap_or(usize::MAX);
        match rustix::fs::sendfile(stream, file, Some(&mut *position), count) {
            // The end of the file came early: it was truncated meanwhile.
            Ok(0) => break,
            // sendfile moved `position` on by what it sent.
            Ok(_) | Err(Errno::INTR) => {}
            // The socket buffer is full: wait for room, until the window ends.
            Err(Errno::AGAIN) => {
                let left = window.saturating_sub(window_start.elapsed());
                let left = Timespec::try_from(left).unwrap_or_default();
                let mut room = [PollFd::new(stream, PollFlags::OUT)];
                match poll(&mut room, Some(&left)) {
                    Ok(_) | Err(Errno::INTR) => {}
                    Err(err) => {
                        result = Err(err.into());
                        break;
                    }
                }
            }
            Err(err) => {
                result = Err(err.into());
                break;
            }
        }
        if window_start.elapsed() >= window {
            if *position - window_from < least {
                result = Err(io::Error::from(ErrorKind::TimedOut));
                break;
            }
            window_start = Instant::now();
            window_from = *position;
        }
    }
    // The header and the digest are written blocking, with SEND_TIMEOUT.
    stream.set_nonblocking(false)?;
    result
}
// ANCHOR_END: send_range

// ANCHOR: send_range_portable
/// Elsewhere: the portable way, through a buffer in this program, with only
/// SEND_TIMEOUT for a client that stops reading (no rate is checked).
#[cfg(not(target_os = "linux"))]
pub(crate) fn send_range(
    file: &File,
    stream: &TcpStream,
    position: &mut u64,
    end: u64,
    _window: Duration,
) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut file = file;
    file.seek(SeekFrom::Start(*position))?;
    let mut stream = stream;
    let sent = io::copy(&mut file.take(end - *position), &mut stream)?;
    *position += sent;
    Ok(())
}
// ANCHOR_END: send_range_portable
