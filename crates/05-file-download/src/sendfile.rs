//! Sending a file's bytes: sendfile(2) on Linux, a buffer elsewhere.

use std::fs::File;
use std::io::{self, ErrorKind};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::MIN_RATE;
#[cfg(target_os = "linux")]
use crate::UNSENT_LIMIT;

/// How long the socket must stay without room before it counts as full:
/// on loopback the bytes it holds move into the client's side within
/// microseconds, and make room for more, until that side is full too.
#[cfg(target_os = "linux")]
const FULL_AFTER: Duration = Duration::from_millis(100);

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
///
/// The rate is what the client *takes*. The bytes handed to the socket are
/// that only once its buffers are full: before, the kernel takes megabytes
/// at once (on loopback the send buffer grows to 4 MiB), and a crawler
/// would pass a window or two on the buffers' bytes. So the socket may hold
/// at most UNSENT_LIMIT bytes not yet sent (TCP_NOTSENT_LOWAT), and the
/// first window starts once the socket is full (no room for FULL_AFTER):
/// from then on, a byte handed over is a byte the client made room for.
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
    socket2::SockRef::from(stream).set_tcp_notsent_lowat(UNSENT_LIMIT)?;
    stream.set_nonblocking(true)?;
    let mut window_start = Instant::now();
    let mut window_from = *position;
    // Whether the socket has been full yet (see above).
    let mut full = false;
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
                let mut left = window.saturating_sub(window_start.elapsed());
                if !full {
                    left = left.min(FULL_AFTER);
                }
                let left = Timespec::try_from(left).unwrap_or_default();
                let mut room = [PollFd::new(stream, PollFlags::OUT)];
                match poll(&mut room, Some(&left)) {
                    // No room for FULL_AFTER: the bytes on their way have
                    // filled what the client's side would take.
                    Ok(0) if !full => {
                        full = true;
                        (window_start, window_from) = (Instant::now(), *position);
                    }
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
