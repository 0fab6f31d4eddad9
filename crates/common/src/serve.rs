//! Serving many clients at once: a thread per client, with a cap.
//!
//! Lesson 3 builds this up from the one-client-at-a-time loop; lessons 4 and
//! 5 serve their clients the same way. A thread per client is the simplest
//! way to let a slow client wait without making the others wait. Its risk is
//! that every connection costs a thread (a stack, a scheduler entry, an open
//! file): without a cap, anyone who can open connections can make the server
//! start threads until the machine runs out. So each client needs a slot,
//! there are `max_clients` slots, and a client that finds none is told
//! `busy` and closed at once.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;

use crate::{describe, say};

// ANCHOR: limit
// The count of slots in use. The tests swap in a stand-in that pauses
// between reading the count and changing it, so that a slot taken in two
// steps (a load, then an add) is caught every time, not once in a million.
#[cfg(not(test))]
use std::sync::atomic::AtomicUsize as Counter;
#[cfg(test)]
use tests::SlowAtomic as Counter;

/// At most `max` clients served at once.
#[derive(Clone)]
pub struct ClientLimit {
    in_use: Arc<Counter>,
    max: usize,
}

/// One client's place under the [`ClientLimit`]. Dropping it (when the
/// client's thread ends, however it ends, even by a panic) frees the place.
pub struct Slot {
    in_use: Arc<Counter>,
}

impl ClientLimit {
    pub fn new(max: usize) -> ClientLimit {
        ClientLimit {
            in_use: Arc::new(Counter::new(0)),
            max,
        }
    }

    /// A slot for one more client, or `None` when all `max` are taken.
    pub fn try_take(&self) -> Option<Slot> {
        // exercise 3.5: begin
        // Add one only if the count is below max, in a single atomic step,
        // so two threads can never both take the last slot.
        self.in_use
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot {
                in_use: Arc::clone(&self.in_use),
            })
        // exercise 3.5: end
    }

    /// How many slots are taken now (by the time it returns, others may
    /// have been taken or freed: for a log line, not for a decision).
    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::SeqCst)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.in_use.fetch_sub(1, Ordering::SeqCst);
    }
}
// ANCHOR_END: limit

// ANCHOR: serve_threads
/// Accepts clients forever, running `handle(stream, client_address)` for
/// each on a thread of its own, with at most `max_clients` at once. A client
/// over the cap gets `busy_reply` and is closed; the others carry on.
pub fn serve_threads<F>(listener: TcpListener, max_clients: usize, busy_reply: &[u8], handle: F)
where
    F: Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
{
    // exercise 3.5: begin
    let handle = Arc::new(handle);
    let limit = ClientLimit::new(max_clients);
    loop {
        let (stream, client) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(err) => {
                // accept() can fail for reasons that pass (accept(2)): out
                // of file descriptors (EMFILE, ENFILE) or memory (ENOBUFS,
                // ENOMEM) for a moment, or, on Linux, a network error the
                // new connection already had (ENETDOWN, EHOSTUNREACH and
                // the others accept(2) lists). A client that reset while
                // queued is not one: Linux still returns its connection,
                // and the reset comes on the first read. Report it and go
                // on; the short pause keeps a lasting error from spinning
                // a core.
                say!("could not accept a connection: {}", describe(&err));
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let Some(slot) = limit.try_take() else {
            say!(
                "[{client}] busy: already serving the most clients allowed ({max_clients}), refused"
            );
            refuse(stream, busy_reply);
            continue;
        };
        let handle = Arc::clone(&handle);
        let started = thread::Builder::new()
            .name(format!("client {client}"))
            .spawn(move || {
                let _slot = slot; // held until this thread ends
                handle(stream, client);
            });
        if let Err(err) = started {
            say!("[{client}] could not start a thread: {}", describe(&err));
        }
    }
    // exercise 3.5: end
}
// ANCHOR_END: serve_threads

/// The most [`refuse`] reads from a refused client before it closes. A
/// client that keeps sending while it is refused must not keep the accept
/// loop (in lesson 6, the only thread) reading: without a bound, one refused
/// connection was drained of hundreds of MiB while everyone else waited.
/// Lines sent before the busy line came are a few hundred bytes; a client
/// that sent more than this gets a reset, and that is its own doing.
pub const REFUSE_DRAIN_LIMIT: usize = 64 * 1024;

/// Tells a client over the cap that we are busy, and closes, without
/// blocking the accept loop on it. Lesson 6 refuses the same way.
pub fn refuse(mut stream: TcpStream, busy_reply: &[u8]) {
    // The send buffer of a new connection is empty, so this short write
    // goes straight to the kernel; the timeout is only a safety net.
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = stream.write_all(busy_reply);
    let _ = stream.shutdown(Shutdown::Write);
    // Closing with unread bytes in the receive buffer sends a reset, which
    // can destroy the busy line before the client reads it. Take what has
    // already arrived, without waiting for more (a non-blocking read that
    // finds nothing fails with WouldBlock, which ends the loop), and at
    // most REFUSE_DRAIN_LIMIT of it.
    if stream.set_nonblocking(true).is_ok() {
        let mut discard = [0u8; 4096];
        let mut drained = 0;
        while drained < REFUSE_DRAIN_LIMIT {
            match stream.read(&mut discard) {
                Ok(n @ 1..) => drained += n,
                _ => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::{Barrier, Mutex};
    use std::thread;
    use std::time::Duration;

    use super::ClientLimit;

    /// An `AtomicUsize` for the tests: every operation is atomic, as the
    /// real one's are, but a `load` waits a little before it returns. Code
    /// that loads the count, compares, and then adds gives every other
    /// thread time to do the same between its two steps; code that changes
    /// the count in one step (`fetch_update`, `compare_exchange`,
    /// `fetch_add`) is not slowed where it matters.
    pub struct SlowAtomic(Mutex<usize>);

    #[allow(dead_code)]
    const GAP: Duration = Duration::from_millis(20);

    // Whichever of these a try_take calls; the reference calls only one.
    #[allow(dead_code)]
    impl SlowAtomic {
        pub fn new(value: usize) -> SlowAtomic {
            SlowAtomic(Mutex::new(value))
        }

        fn with<T>(&self, f: impl FnOnce(&mut usize) -> T) -> T {
            let mut value = self
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut value)
        }

        pub fn load(&self, _: Ordering) -> usize {
            let value = self.with(|value| *value);
            thread::sleep(GAP);
            value
        }

        pub fn store(&self, new: usize, _: Ordering) {
            self.with(|value| *value = new);
        }

        pub fn swap(&self, new: usize, _: Ordering) -> usize {
            self.with(|value| std::mem::replace(value, new))
        }

        pub fn fetch_add(&self, n: usize, _: Ordering) -> usize {
            self.with(|value| std::mem::replace(value, value.wrapping_add(n)))
        }

        pub fn fetch_sub(&self, n: usize, _: Ordering) -> usize {
            self.with(|value| std::mem::replace(value, value.wrapping_sub(n)))
        }

        pub fn compare_exchange(
            &self,
            current: usize,
            new: usize,
            _: Ordering,
            _: Ordering,
        ) -> Result<usize, usize> {
            self.with(|value| {
                if *value == current {
                    *value = new;
                    Ok(current)
                } else {
                    Err(*value)
                }
            })
        }

        pub fn compare_exchange_weak(
            &self,
            current: usize,
            new: usize,
            success: Ordering,
            failure: Ordering,
        ) -> Result<usize, usize> {
            self.compare_exchange(current, new, success, failure)
        }

        pub fn fetch_update(
            &self,
            _: Ordering,
            _: Ordering,
            mut f: impl FnMut(usize) -> Option<usize>,
        ) -> Result<usize, usize> {
            self.with(|value| match f(*value) {
                Some(new) => Ok(std::mem::replace(value, new)),
                None => Err(*value),
            })
        }
    }

    #[test]
    fn slots_are_limited_and_given_back() {
        let limit = ClientLimit::new(2);
        let a = limit.try_take();
        let b = limit.try_take();
        assert!(
            a.is_some() && b.is_some(),
            "with a limit of 2 and no slot taken, try_take() twice should give two slots \
             (book: 03-multi-client.md § The fix: a thread per client, with a cap)"
        );
        assert!(
            limit.try_take().is_none(),
            "with a limit of 2 and two slots held, try_take() should give None: a third client \
             must not get a slot (book: 03-multi-client.md § The fix: a thread per client, with a cap)"
        );
        drop(a);
        assert!(
            limit.try_take().is_some(),
            "with a limit of 2, two slots taken and one of them dropped, try_take() should give \
             a slot: dropping a Slot gives its place back \
             (book: 03-multi-client.md § The fix: a thread per client, with a cap)"
        );
    }

    #[test]
    fn two_threads_never_both_take_the_last_slot() {
        // Eight threads ask for the one slot at the same moment. In the
        // tests a load of the count waits 20 ms, so code that first loads
        // and then adds lets them all see 0 before any of them adds.
        let limit = ClientLimit::new(1);
        let start = Barrier::new(8);
        let taken = thread::scope(|scope| {
            let askers: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        limit.try_take()
                    })
                })
                .collect();
            let slots: Vec<_> = askers
                .into_iter()
                .filter_map(|asker| asker.join().ok())
                .collect();
            slots.iter().filter(|slot| slot.is_some()).count()
        });
        assert_eq!(
            taken, 1,
            "with a limit of 1, eight threads called try_take() at the same moment and {taken} \
             of them got a slot; exactly one should. Reading the count and then adding one are \
             two steps, and another thread can take the last slot between them: check and add \
             in one atomic step (fetch_update, or a compare_exchange loop) \
             (book: 03-multi-client.md § The fix: a thread per client, with a cap)"
        );
    }
}
