//! A fake server that stops waiting for a client once the client has
//! exited: a client that died before connecting (a panic, an error) fails
//! its test at once, with what it printed, not after [`WAIT`](crate::WAIT).

use std::io::ErrorKind;
use std::thread;
use std::time::{Duration, Instant};

use crate::{Connection, FakeServer, Process, WAIT};

impl Process {
    /// Whether the program has exited by now (it does not wait).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl FakeServer {
    /// Accepts the next connection, from `client`, within [`WAIT`]; fails
    /// as soon as `client` has exited without connecting, with `should`
    /// and everything it printed (its panic message, its error line).
    #[track_caller]
    pub fn accept_from(&self, client: &mut Process, should: &str) -> Connection {
        self.listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            let exited = client.has_exited();
            // After the exit check: a client that connected and then
            // exited is still accepted.
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    return Connection::from_stream(stream);
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => {}
                Err(err) => panic!("{should}; the fake server could not accept: {err}"),
            }
            if exited {
                // Its last words: the stderr reader ends at the pipe's end.
                let _ = client.stderr_done.recv_timeout(Duration::from_secs(1));
                client.fail(&format!(
                    "{should}; it exited without connecting to the server"
                ));
            }
            if Instant::now() >= deadline {
                client.fail(&format!(
                    "{should}; no connection came within {} s",
                    WAIT.as_secs()
                ));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}
