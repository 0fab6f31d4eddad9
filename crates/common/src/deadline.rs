//! A deadline for reading, where a read timeout is not enough.

use std::io::{self, ErrorKind, Read};
use std::net::TcpStream;
use std::time::Instant;

// ANCHOR: deadline
/// A reader with a deadline. A read timeout alone is not one: it starts
/// again at every read, so a client sending a byte every 9 seconds would
/// never hit a 10-second timeout and could hold its thread for good. Here
/// each read may only wait for what is left of the time.
///
/// With `until: None` there is no deadline, and reads wait as the socket's
/// own read timeout says.
pub struct Deadline<'a> {
    pub stream: &'a TcpStream,
    pub until: Option<Instant>,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(until) = self.until {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::from(ErrorKind::TimedOut));
            }
            self.stream.set_read_timeout(Some(left))?;
        }
        let mut stream = self.stream;
        stream.read(buf)
    }
}
// ANCHOR_END: deadline
