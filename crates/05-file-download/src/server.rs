//! The server: a thread per client, a deadline for the request, the bytes
//! moved by the kernel, and the digest computed while they go.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{self, File, Metadata};
use std::io::{self, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use common::{Deadline, ReadLine, describe, printable, read_line, say};
use sha2::{Digest, Sha256};

use crate::{
    BUFFER_SIZE, Code, DEFAULT_PORT, EntryKind, GONE_CHECK_EVERY, LINE_LIMIT, LINGER,
    LIST_KEPT_FOR, MIN_RATE, PROGRESS_EVERY, Refusal, Request, SEND_TIMEOUT, check_opened,
    check_path, is_timeout, list_folder, open_inside, parse_request,
};

/// What `serve` needs to know; the command line fills it in.
pub struct ServeOptions {
    pub folder: PathBuf,
    pub listen: String,
    pub max_clients: usize,
    pub hidden: bool,
    pub request_timeout: Duration,
    /// Over each such window a client must take MIN_RATE bytes/s.
    pub rate_window: Duration,
}

/// What every client's thread shares.
struct Server {
    /// The served folder, open: every file served and every folder listed
    /// is opened from this handle, one name at a time (see `open_inside`).
    folder: File,
    hidden: bool,
    request_timeout: Duration,
    rate_window: Duration,
    digests: Digests,
    listings: Listings,
}

// ANCHOR: serve
/// Serves the files of `options.folder` until the process is stopped.
pub fn serve(options: ServeOptions) -> anyhow::Result<()> {
    // The folder as the kernel sees it, every link resolved: for the log.
    let root = fs::canonicalize(&options.folder).map_err(|err| {
        anyhow!(
            "cannot serve {}: {}",
            options.folder.display(),
            describe(&err)
        )
    })?;
    // Opened once; what it is, is asked of the handle, not of the name
    // again (which could be swapped in between).
    let folder = File::open(&root)
        .map_err(|err| anyhow!("cannot serve {}: {}", root.display(), describe(&err)))?;
    if !folder.metadata().is_ok_and(|meta| meta.is_dir()) {
        bail!("cannot serve {}: it is not a folder", root.display());
    }
    let listener = common::listen(&options.listen, DEFAULT_PORT)?;
    say!("serving {}", root.display());

    let busy = Refusal::new(
        Code::Busy,
        format!(
            "all {} client slots are taken; try again later",
            options.max_clients
        ),
    );
    let server = Arc::new(Server {
        folder,
        hidden: options.hidden,
        request_timeout: options.request_timeout,
        rate_window: options.rate_window,
        digests: Digests::default(),
        listings: Listings::default(),
    });
    // A thread per client, at most max_clients at once (lesson 3).
    common::serve_threads(
        listener,
        options.max_clients,
        busy.line().as_bytes(),
        move |stream, client| server.serve_client(stream, client),
    );
    Ok(())
}
// ANCHOR_END: serve

/// Why a request got no file: refused with an `ERR` line, or the
/// connection failed (in words, for the log).
enum Failure {
    Refused(Refusal),
    Lost(String),
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Failure {
        Failure::Refused(refusal)
    }
}

impl Server {
    // ANCHOR: serve_client
    /// One client's whole conversation: a request, an answer, one log line.
    fn serve_client(&self, stream: TcpStream, client: SocketAddr) {
        let outcome = self.answer(&stream);
        say!("[{client}] {outcome}");
        // Lesson 2's careful close: FIN after the reply, then drop what the
        // client still sends, so a reset cannot destroy the reply's end.
        common::close_gently(stream, LINGER);
    }

    /// Reads the request and answers it; returns what to log.
    fn answer(&self, stream: &TcpStream) -> String {
        let line = match read_request(stream, self.request_timeout) {
            Ok(Some(line)) => line,
            Ok(None) => return "closed the connection without a request".to_string(),
            Err(Failure::Refused(refusal)) => return refuse(stream, "(no request)", &refusal),
            Err(Failure::Lost(why)) => return format!("(no request): {why}"),
        };
        // The request as the log shows it: escaped, never raw.
        let shown = printable(&line);
        let result = match parse_request(&line) {
            Ok(Request::List) => self.send_list(stream),
            Ok(Request::Get { path }) => self.send_file(stream, &path, 0),
            Ok(Request::Resume { offset, path }) => self.send_file(stream, &path, offset),
            Err(refusal) => Err(Failure::Refused(refusal)),
        };
        match result {
            Ok(done) => format!("{shown}: {done}"),
            Err(Failure::Refused(refusal)) => refuse(stream, &shown, &refusal),
            Err(Failure::Lost(why)) => format!("{shown}: {why}"),
        }
    }
    // ANCHOR_END: serve_client
}

// ANCHOR: read_request
/// Reads the request line, within `timeout` in all.
fn read_request(stream: &TcpStream, timeout: Duration) -> Result<Option<Vec<u8>>, Failure> {
    // A deadline for the whole line, not a timeout for each read (see
    // `common::Deadline`).
    let mut reader = BufReader::new(Deadline {
        stream,
        until: Some(Instant::now() + timeout),
    });
    match read_line(&mut reader, LINE_LIMIT) {
        Ok(ReadLine::Line(line)) => Ok(Some(line)),
        Ok(ReadLine::Closed) => Ok(None),
        Ok(ReadLine::TooLong) => Err(Failure::Refused(Refusal::new(
            Code::LineTooLong,
            format!("a request line is at most {LINE_LIMIT} bytes"),
        ))),
        Err(err) if is_timeout(&err) => Err(Failure::Refused(Refusal::new(
            Code::BadRequest,
            format!(
                "no complete request line within {} s",
                timeout.as_secs_f64()
            ),
        ))),
        Err(err) => Err(Failure::Lost(describe(&err))),
    }
}

// ANCHOR_END: read_request

impl Server {
    // ANCHOR: send_file
    /// Answers `GET path` (offset 0) or `RESUME offset path`.
    fn send_file(&self, stream: &TcpStream, path: &str, offset: u64) -> Result<String, Failure> {
        let relative = check_path(path, self.hidden)?;
        let (file, meta) = check_opened(open_inside(&self.folder, &relative, self.hidden)?)?;
        let size = meta.len();
        if offset > size {
            return Err(Failure::Refused(Refusal::new(
                Code::BadOffset,
                format!(
                    "the offset is past the end of the file, which has {}",
                    common::count(size, "byte")
                ),
            )));
        }
        let lost = |err: io::Error| Failure::Lost(format!("could not reply: {}", describe(&err)));
        let started = Instant::now();
        // Before the header, so that a client that has its header already
        // counts among those waiting for the digest.
        let wanted = match self.digests.want(&file, &meta) {
            Ok(wanted) => wanted,
            Err(err) => {
                return Err(Failure::Lost(format!(
                    "could not start hashing: {}",
                    describe(&err)
                )));
            }
        };
        let digest = match &wanted {
            Wanted::Known(_) => "sha256 known",
            Wanted::Hashing { started: true, .. } => "sha256 computed",
            Wanted::Hashing { started: false, .. } => "sha256 shared",
        };
        stream.set_write_timeout(Some(SEND_TIMEOUT)).map_err(lost)?;
        (&*stream)
            .write_all(format!("OK {size}\n").as_bytes())
            .map_err(lost)?;
        // Until the digest is known, a thread of its own computes it while
        // this one sends: both read the same file, each at its own position
        // (sendfile is told where to read; the hasher reads at its own
        // offsets).
        let mut position = offset;
        let sent = send_range(&file, stream, &mut position, size, self.rate_window);
        let count = position - offset;
        let sent = match sent {
            Ok(()) if position == size => Ok(()),
            // sendfile found the end of the file early: someone truncated it.
            Ok(()) => Err(format!(
                "stopped after {count} of {}: the file got shorter while it was sent",
                common::count(size - offset, "byte")
            )),
            Err(err) if is_timeout(&err) => Err(format!(
                "dropped after {count} of {}: the client took less than {MIN_RATE} \
                 bytes/s over {} s",
                common::count(size - offset, "byte"),
                self.rate_window.as_secs_f64()
            )),
            Err(err) => Err(format!(
                "the client went away after {count} of {} ({})",
                common::count(size - offset, "byte"),
                describe(&err)
            )),
        };
        if let Err(why) = sent {
            // Nobody here will read the digest: one fewer waits for it.
            drop(wanted);
            return Err(Failure::Lost(why));
        }
        let sha256 = match wanted {
            Wanted::Known(sha256) => sha256,
            Wanted::Hashing { hash, .. } => match wait_for_digest(stream, &hash, size) {
                Ok(sha256) => sha256,
                // The client is gone: if it was the last to want this
                // digest, the hashing stops (within one buffer) before its
                // slot is free.
                Err(why) => return Err(Failure::Lost(format!("{why}; {}", hash.leave()))),
            },
        };
        (&*stream)
            .write_all(format!("SHA256 {sha256}\n").as_bytes())
            .map_err(lost)?;
        Ok(format!(
            "sent {} in {:.2} s, {digest}",
            range(offset, count, size),
            started.elapsed().as_secs_f64()
        ))
    }
    // ANCHOR_END: send_file
}

// ANCHOR: wait_for_digest
/// Waits for the digest once every byte is sent. The hashing can still be
/// going on (a disk slower than the network, a resumed download whose
/// beginning is hashed too, another request's hash joined halfway): every
/// PROGRESS_EVERY the client is told `HASHING <done> <size>`, so that it
/// knows the server is working and does not give up. Every GONE_CHECK_EVERY
/// it looks whether the client has hung up: a write to a closed connection
/// would only fail at the second write after it, seconds later.
fn wait_for_digest(stream: &TcpStream, hash: &Waiting, size: u64) -> Result<String, String> {
    let mut next_progress = Instant::now() + PROGRESS_EVERY;
    loop {
        match hash.outcome(GONE_CHECK_EVERY) {
            Some(Ok(sha256)) => return Ok(sha256),
            Some(Err(why)) => return Err(format!("could not read the file: {why}")),
            None => {
                if hung_up(stream) {
                    return Err(format!(
                        "the client went away while the digest was computed ({} of {} hashed)",
                        hash.hashed(),
                        common::count(size, "byte")
                    ));
                }
                if Instant::now() >= next_progress {
                    next_progress += PROGRESS_EVERY;
                    let done = hash.hashed();
                    (&*stream)
                        .write_all(format!("HASHING {done} {size}\n").as_bytes())
                        .map_err(|err| format!("could not reply: {}", describe(&err)))?;
                }
            }
        }
    }
}

/// Whether the client has closed its side (or reset): after its request
/// it sends nothing, so anything to read now is the end of the stream. A
/// peek that does not wait: data stays where it is, and nothing blocks.
#[cfg(unix)]
fn hung_up(stream: &TcpStream) -> bool {
    use rustix::net::{RecvFlags, recv};
    let mut byte = [0u8; 1];
    match recv(stream, &mut byte, RecvFlags::PEEK | RecvFlags::DONTWAIT) {
        Ok((0, _)) => true,
        Ok(_) => false,
        Err(err) => err != rustix::io::Errno::AGAIN && err != rustix::io::Errno::INTR,
    }
}

/// Elsewhere nothing is served (see `open_inside`).
#[cfg(not(unix))]
fn hung_up(_stream: &TcpStream) -> bool {
    false
}
// ANCHOR_END: wait_for_digest

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
fn send_range(
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

/// Elsewhere: the portable way, through a buffer in this program, with only
/// SEND_TIMEOUT for a client that stops reading (no rate is checked).
#[cfg(not(target_os = "linux"))]
fn send_range(
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
// ANCHOR_END: send_range

// ANCHOR: digests
/// The SHA-256 of everything `reader` gives, as 64 hex digits, and how many
/// bytes that was. Reads [`BUFFER_SIZE`] bytes at a time.
pub fn sha256_of(reader: impl Read) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    // Sha256 is a Write: io::copy feeds it the file a buffer at a time.
    let count = io::copy(
        &mut BufReader::with_capacity(BUFFER_SIZE, reader),
        &mut hasher,
    )?;
    Ok((format!("{:x}", hasher.finalize()), count))
}

/// What identifies one version of one file: its device and inode number
/// (the same whatever names lead to it; the walk that opened it gives no
/// path to key on), and what changes when its content is replaced.
///
/// Size and modification time alone are not enough: `cp -p`, `rsync -a`
/// and `tar` give a new content the old time, and a file of the same size
/// then looked unchanged. The change time (ctime) cannot be set by any
/// program: the kernel moves it on every write and every change of the
/// other times. A replacement by rename is a new inode.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Version {
    device: u64,
    inode: u64,
    size: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

#[cfg(unix)]
fn version(meta: &Metadata) -> Version {
    use std::os::unix::fs::MetadataExt;
    Version {
        device: meta.dev(),
        inode: meta.ino(),
        size: meta.len(),
        modified: (meta.mtime(), meta.mtime_nsec()),
        changed: (meta.ctime(), meta.ctime_nsec()),
    }
}

/// Elsewhere nothing is served (see `open_inside`).
#[cfg(not(unix))]
fn version(meta: &Metadata) -> Version {
    Version {
        device: 0,
        inode: 0,
        size: meta.len(),
        modified: (0, 0),
        changed: (0, 0),
    }
}

/// The digests computed so far, one per file (the newest), and the hashes
/// running now, shared by every client's thread. The lock is held to look
/// up, to join a hash, to leave it and to store a digest, never while
/// hashing, so a client hashing a big file does not hold up the others.
#[derive(Default, Clone)]
struct Digests(Arc<Mutex<HashMap<(u64, u64), Entry>>>);

enum Entry {
    /// The digest of this version of the file.
    Known(Version, String),
    /// A hash of this version is running, on a thread of its own.
    Hashing(Arc<Hash>),
}

/// One hash of one version of a file, shared by every request waiting for
/// its digest.
struct Hash {
    version: Version,
    /// Bytes hashed so far: every waiter's `HASHING` progress.
    hashed: AtomicU64,
    /// How many requests wait for the digest. Changed only under the
    /// `Digests` lock, so that no one joins a hash the last waiter has just
    /// left.
    wanted_by: AtomicUsize,
    /// Set when the last waiter leaves: the hashing stops within a buffer.
    stop: AtomicBool,
    /// The digest, or why there is none (in words), once the hash ended.
    outcome: Mutex<Option<Result<String, String>>>,
    ended: Condvar,
    /// The hashing thread, for the last waiter to wait for when it leaves.
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// What a request gets from [`Digests::want`].
enum Wanted {
    Known(String),
    /// A hash to wait for; `started` when this request started it.
    Hashing {
        hash: Waiting,
        started: bool,
    },
}

impl Digests {
    /// The digest of `file` (open, with metadata `meta`) if it is known for
    /// this very version of the file; else a place among those waiting for
    /// its hash, which is started if none is running. At most one hash runs
    /// per file version.
    fn want(&self, file: &File, meta: &Metadata) -> io::Result<Wanted> {
        let now = version(meta);
        let key = (now.device, now.inode);
        let mut entries = locked(&self.0);
        match entries.get(&key) {
            Some(Entry::Known(version, sha256)) if *version == now => {
                return Ok(Wanted::Known(sha256.clone()));
            }
            Some(Entry::Hashing(hash)) if hash.version == now => {
                hash.wanted_by.fetch_add(1, Ordering::Relaxed);
                let hash = Arc::clone(hash);
                return Ok(Wanted::Hashing {
                    hash: Waiting::new(self, key, hash),
                    started: false,
                });
            }
            _ => {}
        }
        let hash = Arc::new(Hash {
            version: now,
            hashed: AtomicU64::new(0),
            wanted_by: AtomicUsize::new(1),
            stop: AtomicBool::new(false),
            outcome: Mutex::new(None),
            ended: Condvar::new(),
            thread: Mutex::new(None),
        });
        // A handle of its own (the same open file), for a thread that may
        // outlive this request: it runs as long as anyone waits.
        let file = file.try_clone()?;
        let (digests, running) = (self.clone(), Arc::clone(&hash));
        let thread = thread::Builder::new()
            .name("sha256".to_string())
            .spawn(move || digests.compute(&file, &running, key))?;
        *locked(&hash.thread) = Some(thread);
        entries.insert(key, Entry::Hashing(Arc::clone(&hash)));
        Ok(Wanted::Hashing {
            hash: Waiting::new(self, key, hash),
            started: true,
        })
    }

    /// Computes the digest of `file`, its first `hash.version.size` bytes,
    /// counting them in `hash.hashed`, until `hash.stop`; keeps it for the
    /// next request, and hands it to every waiter.
    fn compute(&self, file: &File, hash: &Hash, key: (u64, u64)) {
        let size = hash.version.size;
        let reader = At {
            file,
            position: 0,
            end: size,
            hashed: &hash.hashed,
            stop: &hash.stop,
        };
        let outcome = match sha256_of(reader) {
            Ok((sha256, count)) if count == size => Ok(sha256),
            Ok(_) => Err("the file got shorter while it was read".to_string()),
            Err(err) => Err(describe(&err)),
        };
        if hash.stop.load(Ordering::Relaxed) {
            // Everyone left, and took the entry out on the way.
            return;
        }
        // Kept only if the file did not change while it was read: a digest
        // of half old, half new bytes must not outlive this request, or a
        // retry would get it again.
        let unchanged = file
            .metadata()
            .is_ok_and(|after| version(&after) == hash.version);
        {
            let mut entries = locked(&self.0);
            let ours = matches!(entries.get(&key),
                Some(Entry::Hashing(running)) if std::ptr::eq(Arc::as_ptr(running), hash));
            if ours {
                match &outcome {
                    Ok(sha256) if unchanged => {
                        let known = Entry::Known(hash.version.clone(), sha256.clone());
                        entries.insert(key, known);
                    }
                    // The next request hashes again.
                    _ => {
                        entries.remove(&key);
                    }
                }
            }
        }
        *locked(&hash.outcome) = Some(outcome);
        hash.ended.notify_all();
    }
}

/// Locks `mutex`. A thread that panicked holding it left nothing half
/// done that matters here: every value is replaced whole.
fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One request's place among those waiting for a hash. Leaving (dropped,
/// or [`Waiting::leave`]) as the last one stops the hashing, and waits for
/// its thread to stop.
struct Waiting {
    digests: Digests,
    key: (u64, u64),
    hash: Arc<Hash>,
    left: bool,
}

impl Waiting {
    fn new(digests: &Digests, key: (u64, u64), hash: Arc<Hash>) -> Waiting {
        Waiting {
            digests: digests.clone(),
            key,
            hash,
            left: false,
        }
    }

    /// How many bytes are hashed so far.
    fn hashed(&self) -> u64 {
        self.hash.hashed.load(Ordering::Relaxed)
    }

    /// The digest (or why there is none) once the hash has ended, waiting
    /// for it at most `wait`.
    fn outcome(&self, wait: Duration) -> Option<Result<String, String>> {
        let outcome = locked(&self.hash.outcome);
        let (outcome, _) = self
            .hash
            .ended
            .wait_timeout_while(outcome, wait, |outcome| outcome.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        outcome.clone()
    }

    /// Gives up waiting; says what became of the hashing, for the log.
    fn leave(mut self) -> &'static str {
        let ended = locked(&self.hash.outcome).is_some();
        match self.quit() {
            _ if ended => "the hashing had ended",
            true => "hashing stopped",
            false => "the hashing goes on for the others waiting",
        }
    }

    /// Whether this was the last waiter: then the hashing has stopped.
    fn quit(&mut self) -> bool {
        self.left = true;
        let last = {
            let mut entries = locked(&self.digests.0);
            let last = self.hash.wanted_by.fetch_sub(1, Ordering::Relaxed) == 1;
            if last {
                self.hash.stop.store(true, Ordering::Relaxed);
                let ours = matches!(entries.get(&self.key),
                    Some(Entry::Hashing(running)) if Arc::ptr_eq(running, &self.hash));
                if ours {
                    entries.remove(&self.key);
                }
            }
            last
        };
        if last {
            // Outside the lock: the hashing thread takes it when it ends.
            let thread = locked(&self.hash.thread).take();
            if let Some(thread) = thread {
                let _ = thread.join();
            }
        }
        last
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.left {
            self.quit();
        }
    }
}

/// Reads `file` from `position` to `end` at its own offsets (pread), never
/// moving the file's shared position, counting in `hashed`, until `stop`.
struct At<'a> {
    file: &'a File,
    position: u64,
    end: u64,
    hashed: &'a AtomicU64,
    stop: &'a AtomicBool,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(io::Error::other("the transfer stopped"));
        }
        let left = usize::try_from(self.end - self.position).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        #[cfg(unix)]
        let count =
            std::os::unix::fs::FileExt::read_at(self.file, &mut buf[..want], self.position)?;
        #[cfg(windows)]
        let count =
            std::os::windows::fs::FileExt::seek_read(self.file, &mut buf[..want], self.position)?;
        self.position += count as u64;
        self.hashed.store(self.position, Ordering::Relaxed);
        Ok(count)
    }
}
// ANCHOR_END: digests

impl Server {
    // ANCHOR: send_list
    /// Answers `LIST`.
    fn send_list(&self, stream: &TcpStream) -> Result<String, Failure> {
        let (listing, how) = self.listing();
        let lost = |err: io::Error| Failure::Lost(format!("could not reply: {}", describe(&err)));
        stream.set_write_timeout(Some(SEND_TIMEOUT)).map_err(lost)?;
        // Straight from the listing every LIST shares: no copy per client.
        (&*stream).write_all(&listing.reply).map_err(lost)?;
        Ok(format!(
            "listed {}, {how}",
            common::count(listing.count as u64, "file")
        ))
    }

    /// The listing to send: the one kept, while no folder it walked has
    /// changed and it is younger than LIST_KEPT_FOR; else a new walk.
    ///
    /// The lock is held while the folders are checked or walked: one walk
    /// runs at a time, and the LISTs that come meanwhile wait for it
    /// instead of walking too. A check that began after a request came saw
    /// the folder as it was after the request came: its listing will do.
    fn listing(&self) -> (Arc<Listing>, &'static str) {
        let listings = &self.listings;
        let came = listings.begun.load(Ordering::SeqCst);
        let mut kept = locked(&listings.kept);
        if let (last, Some(listing)) = &*kept
            && *last > came
        {
            return (Arc::clone(listing), "listing shared");
        }
        let check = listings.begun.fetch_add(1, Ordering::SeqCst) + 1;
        if let (_, Some(listing)) = &*kept
            && listing.walked.elapsed() < LIST_KEPT_FOR
            && listing
                .folders
                .iter()
                .all(|(path, then)| self.folder_version(path) == *then)
        {
            let listing = Arc::clone(listing);
            kept.0 = check;
            return (listing, "listing kept");
        }
        let listing = Arc::new(self.walk());
        *kept = (check, Some(Arc::clone(&listing)));
        (listing, "folders walked")
    }

    /// The version of the folder `path` now, None if it cannot be opened.
    fn folder_version(&self, path: &str) -> Option<Version> {
        let meta = if path.is_empty() {
            self.folder.metadata()
        } else {
            let folder = open_inside(&self.folder, Path::new(path), self.hidden).ok()?;
            folder.metadata()
        };
        meta.ok().map(|meta| version(&meta))
    }

    /// Walks the served folder for every file `GET` would serve, and makes
    /// the reply: `OK <count>`, then `<size> <path>` per file, sorted by
    /// path, each file once.
    ///
    /// It asks the same questions `GET` asks, name by name, from the same
    /// folder handle, so the list cannot offer what `GET` refuses, and it
    /// follows the folder if it is renamed. Folders are walked; links to
    /// folders are not (a link can loop back to its own folder). A file
    /// with several names (links, hard links) is listed once, under its
    /// real name where it has one that can be listed: names that are not
    /// links come first, then the first in path order.
    fn walk(&self) -> Listing {
        let walked = Instant::now();
        // (is a link, path, size, which file: device and inode)
        let mut names = Vec::new();
        let mut folders = Vec::new();
        let mut to_walk = vec![String::new()];
        while let Some(folder) = to_walk.pop() {
            let Some((meta, entries)) = list_folder(&self.folder, &folder, self.hidden) else {
                folders.push((folder, None));
                continue;
            };
            for (name, kind) in entries {
                let path = if folder.is_empty() {
                    name
                } else {
                    format!("{folder}/{name}")
                };
                let Ok(relative) = check_path(&path, self.hidden) else {
                    continue;
                };
                if kind == EntryKind::Folder {
                    to_walk.push(path);
                    continue;
                }
                let opened = open_inside(&self.folder, &relative, self.hidden);
                if let Ok((_, meta)) = opened.and_then(check_opened) {
                    let version = version(&meta);
                    let file = (version.device, version.inode);
                    names.push((kind == EntryKind::Link, path, meta.len(), file));
                }
            }
            folders.push((folder, Some(version(&meta))));
        }
        names.sort();
        let mut listed = std::collections::HashSet::new();
        let mut files: Vec<(String, u64)> = names
            .into_iter()
            .filter(|(_, _, _, file)| listed.insert(*file))
            .map(|(_, path, size, _)| (path, size))
            .collect();
        files.sort_unstable();
        let mut reply = format!("OK {}\n", files.len());
        for (path, size) in &files {
            // Writing to a String cannot fail.
            let _ = writeln!(reply, "{size} {path}");
        }
        Listing {
            reply: reply.into_bytes(),
            count: files.len(),
            folders,
            walked,
        }
    }
    // ANCHOR_END: send_list
}

// ANCHOR: listings
/// A reply to `LIST`, kept for the `LIST`s after it.
struct Listing {
    /// `OK <count>`, then `<size> <path>` per file.
    reply: Vec<u8>,
    count: usize,
    /// Every folder walked, and its version before its names were read
    /// (None: it could not be opened). Adding, removing or renaming a name
    /// in a folder gives it a new version.
    folders: Vec<(String, Option<Version>)>,
    walked: Instant,
}

/// The listing kept, shared by every `LIST`.
#[derive(Default)]
struct Listings {
    /// How many checks of the kept listing have begun.
    begun: AtomicU64,
    /// The number of the last check, and the listing it kept or walked.
    kept: Mutex<(u64, Option<Arc<Listing>>)>,
}
// ANCHOR_END: listings

// ANCHOR: refuse
/// Says no to a request: the `ERR` line, and what to log.
fn refuse(stream: &TcpStream, shown: &str, refusal: &Refusal) -> String {
    let mut stream = stream;
    let logged = format!("{shown}: {} ({})", refusal.code.as_str(), refusal.message);
    match stream.write_all(refusal.line().as_bytes()) {
        Ok(()) => logged,
        Err(err) => format!("{logged}, could not reply: {}", describe(&err)),
    }
}

// ANCHOR_END: refuse

/// `sent 12 bytes`, or for a resumed transfer `sent 6 bytes (6 to 12 of 12)`.
fn range(offset: u64, count: u64, size: u64) -> String {
    if offset == 0 {
        common::count(count, "byte")
    } else {
        format!(
            "{} ({offset} to {size} of {size})",
            common::count(count, "byte")
        )
    }
}
