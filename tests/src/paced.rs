//! A reader that takes what a server sends at a steady, slow rate: an
//! honest client on a slow link, or behind a slow screen. It reads on a
//! thread of its own, counts what it took, and can be told to stop reading
//! (the connection stays open), to play a client that stopped.

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A connection read at `bytes_per_second`, on a thread of its own.
pub struct PacedReader {
    taken: Arc<AtomicU64>,
    closed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<TcpStream>>,
}

/// How long the reading thread sleeps at most between two looks at the
/// pace and at `stop`.
const TICK: Duration = Duration::from_millis(20);

impl PacedReader {
    /// Starts reading `stream` at `bytes_per_second` (in reads of at most
    /// 4 KiB, never ahead of the pace).
    pub fn start(stream: TcpStream, bytes_per_second: u64) -> PacedReader {
        let taken = Arc::new(AtomicU64::new(0));
        let closed = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, c, s) = (Arc::clone(&taken), Arc::clone(&closed), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            read_at_pace(&stream, bytes_per_second, &t, &c, &s);
            stream
        });
        PacedReader {
            taken,
            closed,
            stop,
            thread: Some(thread),
        }
    }

    /// How many bytes it has read so far.
    pub fn taken(&self) -> u64 {
        self.taken.load(Ordering::SeqCst)
    }

    /// Waits until it has read at least `bytes`, `limit` at most. False if
    /// it has not by then.
    pub fn wait_until_taken(&self, bytes: u64, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.taken() < bytes {
            if Instant::now() >= deadline || self.closed() {
                return false;
            }
            thread::sleep(TICK);
        }
        true
    }

    /// Whether the server closed (or reset) the connection.
    pub fn closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Stops reading, and returns the connection, open and unread.
    #[track_caller]
    pub fn stop(mut self) -> TcpStream {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(stream)) => stream,
            _ => panic!("the paced reader's thread panicked"),
        }
    }
}

impl Drop for PacedReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn read_at_pace(
    stream: &TcpStream,
    bytes_per_second: u64,
    taken: &AtomicU64,
    closed: &AtomicBool,
    stop: &AtomicBool,
) {
    let started = Instant::now();
    let mut buffer = vec![0u8; 4096];
    // A read waits at most TICK, so `stop` is seen soon.
    if stream.set_read_timeout(Some(TICK)).is_err() {
        closed.store(true, Ordering::SeqCst);
        return;
    }
    while !stop.load(Ordering::SeqCst) {
        let allowed = (started.elapsed().as_secs_f64() * bytes_per_second as f64) as u64;
        let room = allowed.saturating_sub(taken.load(Ordering::SeqCst));
        if room == 0 {
            thread::sleep(TICK);
            continue;
        }
        let want = room.min(buffer.len() as u64) as usize;
        match (&*stream).read(&mut buffer[..want]) {
            Ok(0) => break,
            Ok(got) => {
                taken.fetch_add(got as u64, Ordering::SeqCst);
            }
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if !stop.load(Ordering::SeqCst) {
        closed.store(true, Ordering::SeqCst);
    }
}
