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

// ANCHOR: rate
/// What a client takes, window by window. Only once the socket is full is
/// a byte handed to it a byte the client made room for: before, the kernel
/// takes megabytes at once. So the first window starts then.
#[cfg(target_os = "linux")]
struct Rate {
    window: Duration,
    /// MIN_RATE over a window: what the client must take in each.
    least: u64,
    /// The start of this window, and how far the transfer was then.
    start: Instant,
    from: u64,
    /// Whether the socket has been full yet.
    full: bool,
}

#[cfg(target_os = "linux")]
impl Rate {
    fn new(window: Duration, position: u64) -> Rate {
        let least = MIN_RATE.saturating_mul(window.as_secs());
        let (start, from, full) = (Instant::now(), position, false);
        Rate {
            window,
            least,
            start,
            from,
            full,
        }
    }

    /// How long to wait for room: until the window ends, and no longer
    /// than FULL_AFTER while the socket may not be full yet.
    fn wait_limit(&self) -> Duration {
        let left = self.window.saturating_sub(self.start.elapsed());
        if self.full {
            left
        } else {
            left.min(FULL_AFTER)
        }
    }

    /// A wait found no room: the first time, the socket is full, and the
    /// first window starts.
    fn no_room(&mut self, position: u64) {
        if !self.full {
            (self.full, self.start, self.from) = (true, Instant::now(), position);
        }
    }

    /// Whether the client has kept to MIN_RATE; at a window's end, judges
    /// it and starts the next.
    fn kept(&mut self, position: u64) -> bool {
        if self.start.elapsed() < self.window {
            return true;
        }
        let taken = position - self.from;
        (self.start, self.from) = (Instant::now(), position);
        taken >= self.least
    }
}
// ANCHOR_END: rate

// ANCHOR: send_range
/// Sends the bytes of `file` from `position` up to `end`, moving `position`
/// on as they go (so after an error it says how far the transfer got).
/// Fails with TimedOut when the client takes less than MIN_RATE bytes/s
/// over a `window`.
///
/// On Linux, sendfile(2) hands the pages of the file in the kernel's page
/// cache to the socket: the bytes never come up into this program. The
/// socket is non-blocking meanwhile, so that the rate can be judged while
/// the client dawdles: sendfile moves what fits, and poll(2) waits for
/// room, never past the end of the window. At most UNSENT_LIMIT bytes wait
/// unsent in the socket (TCP_NOTSENT_LOWAT): the bytes handed over follow
/// what the client takes.
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

    socket2::SockRef::from(stream).set_tcp_notsent_lowat(UNSENT_LIMIT)?;
    stream.set_nonblocking(true)?;
    let mut rate = Rate::new(window, *position);
    let mut result = Ok(());
    while *position < end && result.is_ok() {
        let count = usize::try_from(end - *position).unwrap_or(usize::MAX);
        result = match rustix::fs::sendfile(stream, file, Some(&mut *position), count) {
            // The end of the file came early: it was truncated meanwhile.
            Ok(0) => break,
            // sendfile moved `position` on by what it sent.
            Ok(_) | Err(Errno::INTR) => Ok(()),
            // The socket is full: wait for room.
            Err(Errno::AGAIN) => {
                let limit = Timespec::try_from(rate.wait_limit()).unwrap_or_default();
                let mut room = [PollFd::new(stream, PollFlags::OUT)];
                match poll(&mut room, Some(&limit)) {
                    Ok(0) => {
                        rate.no_room(*position);
                        Ok(())
                    }
                    Ok(_) | Err(Errno::INTR) => Ok(()),
                    Err(err) => Err(err.into()),
                }
            }
            Err(err) => Err(err.into()),
        };
        if result.is_ok() && !rate.kept(*position) {
            result = Err(io::Error::from(ErrorKind::TimedOut));
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
