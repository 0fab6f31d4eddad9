//! Closing a connection without losing what we sent last.

use std::io::Read;
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

// ANCHOR: close_gently
/// Closes `stream` so that the peer reads everything we sent, then
/// end-of-input.
///
/// Dropping the socket would close it at once. But if the peer sent more
/// than we read (a second line, or more bytes than a limit allowed), those
/// bytes sit unread in our receive buffer, and closing a socket with unread
/// data makes the kernel send a reset (RST) instead of the orderly FIN. The
/// reset throws away whatever of our reply is still in our send queue (on
/// Linux a 3 MiB reply arrived as 128,000 bytes), and the peer's next read
/// fails with "connection reset" instead of reading end-of-input; on some
/// stacks the peer also loses what it had received but not yet read.
///
/// So: shutdown(Write) first, which sends FIN after the reply (the peer reads
/// the reply and then end-of-input); then read and discard whatever the peer
/// still sends until it closes too, for at most `linger`.
pub fn close_gently(mut stream: TcpStream, linger: Duration) {
    // exercise 2.4: begin
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + linger;
    let _ = stream.set_read_timeout(Some(linger));
    let mut discard = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut discard) {
            Ok(0) | Err(_) => break,
            Ok(_) => continue,
        }
    }
    // exercise 2.4: end
    // The socket is closed here, when `stream` goes out of scope.
}
// ANCHOR_END: close_gently
