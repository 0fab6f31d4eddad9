//! The server: a thread per client, a deadline for the request, the bytes
//! moved by the kernel, and the digest computed while they go.

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::{self, BufReader, BufWriter, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use common::{Deadline, ReadLine, describe, printable, read_line, say};
use sha2::{Digest, Sha256};

use crate::{
    BUFFER_SIZE, Code, DEFAULT_PORT, EntryKind, GONE_CHECK_EVERY, LINE_LIMIT, LINGER, MIN_RATE,
    PROGRESS_EVERY, Refusal, Request, SEND_TIMEOUT, check_opened, check_path, is_timeout,
    list_folder, open_inside, parse_request,
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
        stream.set_write_timeout(Some(SEND_TIMEOUT)).map_err(lost)?;
        (&*stream)
            .write_all(format!("OK {size}\n").as_bytes())
            .map_err(lost)?;
        let known = self.digests.known(&meta);
        let digest = if known.is_some() {
            "sha256 known"
        } else {
            "sha256 computed"
        };
        // Until the digest is known, a second thread computes it while
        // this one sends: both read the same open file, each at its own
        // position (sendfile is told where to read; the hasher reads at
        // its own offsets).
        let stop = AtomicBool::new(false);
        let hashed = AtomicU64::new(0);
        thread::scope(|scope| {
            let (to_us, digest_done) = mpsc::channel();
            if known.is_none() {
                let (file, meta, stop, hashed) = (&file, &meta, &stop, &hashed);
                scope.spawn(move || {
                    let _ = to_us.send(self.digests.compute(file, meta, hashed, stop));
                });
            }
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
                // Nobody will read the digest: stop hashing.
                stop.store(true, Ordering::Relaxed);
                return Err(Failure::Lost(why));
            }
            let sha256 = match known {
                Some(sha256) => sha256,
                None => match wait_for_digest(stream, &digest_done, &hashed, size) {
                    Ok(sha256) => sha256,
                    Err(failure) => {
                        // The client is gone: stop hashing (within one
                        // buffer), so that its thread and slot are free.
                        stop.store(true, Ordering::Relaxed);
                        return Err(failure);
                    }
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
        })
    }
    // ANCHOR_END: send_file
}

// ANCHOR: wait_for_digest
/// Waits for the hashing thread's digest once every byte is sent. The
/// hashing can still be going on (a disk slower than the network, a
/// resumed download whose beginning is hashed too): every PROGRESS_EVERY
/// the client is told `HASHING <done> <size>`, so that it knows the server
/// is working and does not give up. Every GONE_CHECK_EVERY it looks whether
/// the client has hung up: a write to a closed connection would only fail
/// at the second write after it, seconds later.
fn wait_for_digest(
    stream: &TcpStream,
    digest_done: &mpsc::Receiver<io::Result<String>>,
    hashed: &AtomicU64,
    size: u64,
) -> Result<String, Failure> {
    let mut next_progress = Instant::now() + PROGRESS_EVERY;
    loop {
        match digest_done.recv_timeout(GONE_CHECK_EVERY) {
            Ok(Ok(sha256)) => return Ok(sha256),
            Ok(Err(err)) => {
                return Err(Failure::Lost(format!(
                    "could not read the file: {}",
                    describe(&err)
                )));
            }
            Err(RecvTimeoutError::Timeout) => {
                if hung_up(stream) {
                    return Err(Failure::Lost(format!(
                        "the client went away while the digest was computed ({} of {} hashed); \
                         hashing stopped",
                        hashed.load(Ordering::Relaxed),
                        common::count(size, "byte")
                    )));
                }
                if Instant::now() >= next_progress {
                    next_progress += PROGRESS_EVERY;
                    let done = hashed.load(Ordering::Relaxed);
                    (&*stream)
                        .write_all(format!("HASHING {done} {size}\n").as_bytes())
                        .map_err(|err| {
                            Failure::Lost(format!("could not reply: {}", describe(&err)))
                        })?;
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(Failure::Lost("the hashing thread stopped".to_string()));
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

/// The digests computed so far, one per file (the newest), shared by every
/// client's thread. The lock is held to look up and to store, never while
/// hashing, so a client hashing a big file does not hold up the others.
#[derive(Default)]
struct Digests(Mutex<HashMap<(u64, u64), (Version, String)>>);

impl Digests {
    /// The digest of the file with metadata `meta`, if it is known for
    /// this very version of the file.
    fn known(&self, meta: &Metadata) -> Option<String> {
        let now = version(meta);
        let known = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match known.get(&(now.device, now.inode)) {
            Some((version, sha256)) if *version == now => Some(sha256.clone()),
            _ => None,
        }
    }

    /// Computes the digest of `file` (open, with metadata `meta`), its
    /// first `meta.len()` bytes, counting them in `hashed`; gives up when
    /// `stop` is set. Keeps it for the next request.
    fn compute(
        &self,
        file: &File,
        meta: &Metadata,
        hashed: &AtomicU64,
        stop: &AtomicBool,
    ) -> io::Result<String> {
        let before = version(meta);
        let size = before.size;
        let reader = At {
            file,
            position: 0,
            end: size,
            hashed,
            stop,
        };
        let (sha256, count) = sha256_of(reader)?;
        if count != size {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "the file got shorter while it was read",
            ));
        }
        // Kept only if the file did not change while it was read: a digest
        // of half old, half new bytes must not outlive this request, or a
        // retry would get it again.
        if file.metadata().is_ok_and(|after| version(&after) == before) {
            let mut known = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            known.insert((before.device, before.inode), (before, sha256.clone()));
        }
        Ok(sha256)
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
        let files = self.offered_files();
        let lost = |err: io::Error| Failure::Lost(format!("could not reply: {}", describe(&err)));
        stream.set_write_timeout(Some(SEND_TIMEOUT)).map_err(lost)?;
        // Many short lines: a BufWriter gathers them into few writes.
        let mut out = BufWriter::new(stream);
        writeln!(out, "OK {}", files.len()).map_err(lost)?;
        for (size, path) in &files {
            writeln!(out, "{size} {path}").map_err(lost)?;
        }
        out.flush().map_err(lost)?;
        Ok(format!(
            "listed {}",
            common::count(files.len() as u64, "file")
        ))
    }

    /// Every file `GET` would serve, as (size, path), sorted by path, each
    /// file once.
    ///
    /// It asks the same questions `GET` asks, name by name, from the same
    /// folder handle, so the list cannot offer what `GET` refuses, and it
    /// follows the folder if it is renamed. Folders are walked; links to
    /// folders are not (a link can loop back to its own folder). A file
    /// with several names (links, hard links) is listed once, under its
    /// real name where it has one that can be listed: names that are not
    /// links come first, then the first in path order.
    fn offered_files(&self) -> Vec<(u64, String)> {
        // (is a link, path, size, which file: device and inode)
        let mut names = Vec::new();
        let mut folders = vec![String::new()];
        while let Some(folder) = folders.pop() {
            for (name, kind) in list_folder(&self.folder, &folder, self.hidden) {
                let path = if folder.is_empty() {
                    name
                } else {
                    format!("{folder}/{name}")
                };
                let Ok(relative) = check_path(&path, self.hidden) else {
                    continue;
                };
                if kind == EntryKind::Folder {
                    folders.push(path);
                    continue;
                }
                let opened = open_inside(&self.folder, &relative, self.hidden);
                if let Ok((_, meta)) = opened.and_then(check_opened) {
                    let version = version(&meta);
                    let file = (version.device, version.inode);
                    names.push((kind == EntryKind::Link, path, meta.len(), file));
                }
            }
        }
        names.sort();
        let mut listed = std::collections::HashSet::new();
        let mut files: Vec<(u64, String)> = names
            .into_iter()
            .filter(|(_, _, _, file)| listed.insert(*file))
            .map(|(_, path, size, _)| (size, path))
            .collect();
        files.sort_by(|a, b| a.1.cmp(&b.1));
        files
    }
    // ANCHOR_END: send_list
}

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
