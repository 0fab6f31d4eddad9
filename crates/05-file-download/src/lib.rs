//! Lesson 5: a file downloader you can trust.
//!
//! The original lesson's downloader: the client sends the name of a file,
//! the server checks it, finds the file, reads it and sends its content, and
//! the client saves what it receives. It goes wrong in three ways:
//!
//! 1. the client receives once, at most 1024 bytes: a bigger file arrives
//!    cut short, and nothing tells anyone;
//! 2. the server opens whatever name it is sent, so `../../etc/passwd` or
//!    `/home/me/.ssh/id_ed25519` is handed out like any other file;
//! 3. the client writes into the final file as bytes arrive, so a transfer
//!    that stops halfway leaves half a file that looks like a whole one.
//!
//! This file keeps the idea and fixes each, in the order the chapter goes:
//!
//! - the protocol: a request line, and a reply that says how many bytes
//!   follow and what their SHA-256 is ([`parse_request`], [`Refusal`]);
//! - the path checks, from the text of the path to the file it opens
//!   ([`check_path`], [`resolve_inside`], [`open_file`]);
//! - the server: a thread per client, a deadline for the request, the
//!   digest computed once, and the bytes moved by the kernel ([`serve`]);
//! - the client: `.part` file, digest checked while receiving, resume
//!   ([`get`], [`list`]).

use std::collections::HashMap;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, ErrorKind, IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, anyhow, bail};
use common::{Deadline, ReadLine, describe, printable, read_line, say};
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

// ANCHOR: limits
/// Where the server listens, and the client connects, unless told
/// otherwise: loopback, on the original lesson's port.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7788";
/// The port used when `--listen` or `--server` names only a host.
pub const DEFAULT_PORT: u16 = 7788;
/// The longest header line either side accepts (a request, a reply, a line
/// of a listing), without its newline. A longer one is `line-too-long`.
pub const LINE_LIMIT: usize = 4096;
/// How long a client has to send its whole request line, unless
/// `--request-timeout` says otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How many clients are served at once unless `--max-clients` says otherwise.
pub const DEFAULT_MAX_CLIENTS: usize = 32;
/// How long the server waits for a client that has stopped taking bytes.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// After its reply, how long the server waits for the client to close.
pub const LINGER: Duration = Duration::from_secs(2);
/// How many bytes the client receives at a time, and both sides hash at a
/// time. This, not the file's size, is what a transfer holds in memory.
pub const BUFFER_SIZE: usize = 256 * 1024;
/// How many buffers the client's hashing thread may lag behind its
/// receiving thread (see `receive`).
pub const HASH_AHEAD: usize = 4;
/// How long the client waits to connect, and then for each piece of the
/// reply, unless `--timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// What to run when nobody is listening.
const START_SERVER: &str = "cargo run -p file-download -- serve";
// ANCHOR_END: limits

// ---------------------------------------------------------------------------
// The protocol
// ---------------------------------------------------------------------------

// ANCHOR: request
/// What a client asks for. One request line per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `GET <path>`: the whole file.
    Get { path: String },
    /// `RESUME <offset> <path>`: the file from byte `offset` on.
    Resume { offset: u64, path: String },
    /// `LIST`: the files offered.
    List,
}

/// Reads a request line (without its newline). It does no I/O, so a test
/// can throw any bytes at it.
///
/// The path is the rest of the line, spaces and all: a name like
/// `my notes.txt` needs no quoting. Nothing is decoded (no `%2e`, no
/// escapes): the bytes that pass [`check_path`] are the name that is opened.
pub fn parse_request(line: &[u8]) -> Result<Request, Refusal> {
    let Ok(line) = std::str::from_utf8(line) else {
        return Err(Refusal::new(Code::BadRequest, "a request must be UTF-8"));
    };
    if line == "LIST" {
        return Ok(Request::List);
    }
    if let Some(path) = line.strip_prefix("GET ") {
        return Ok(Request::Get {
            path: path.to_string(),
        });
    }
    if let Some(rest) = line.strip_prefix("RESUME ") {
        let (offset, path) = rest.split_once(' ').unwrap_or((rest, ""));
        let Some(offset) = parse_number(offset) else {
            return Err(Refusal::new(
                Code::BadRequest,
                "expected RESUME <offset> <path>, the offset in decimal digits",
            ));
        };
        return Ok(Request::Resume {
            offset,
            path: path.to_string(),
        });
    }
    Err(Refusal::new(
        Code::BadRequest,
        "expected GET <path>, RESUME <offset> <path> or LIST",
    ))
}

/// A number in decimal digits and nothing else: `str::parse` would also
/// take `+5`, which no client of ours sends.
fn parse_number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}
// ANCHOR_END: request

// ANCHOR: refusal
/// Why a request is refused: the code of an `ERR` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    NotFound,
    Forbidden,
    NotAFile,
    BadRequest,
    BadOffset,
    LineTooLong,
    Busy,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::NotFound => "not-found",
            Code::Forbidden => "forbidden",
            Code::NotAFile => "not-a-file",
            Code::BadRequest => "bad-request",
            Code::BadOffset => "bad-offset",
            Code::LineTooLong => "line-too-long",
            Code::Busy => "busy",
        }
    }
}

/// A refused request: `ERR <code> <message>` on the wire.
///
/// The message is always our own text, never a piece of the request: a
/// path sent back could carry control characters to the client's terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: Code,
    pub message: String,
}

impl Refusal {
    pub fn new(code: Code, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }

    /// The reply line, newline included.
    pub fn line(&self) -> String {
        format!("ERR {} {}\n", self.code.as_str(), self.message)
    }
}
// ANCHOR_END: refusal

// ANCHOR: reply
/// What the server answered, as the client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `OK <size> <sha256-hex>`: the file's whole size and digest; the bytes
    /// (from the requested offset on) follow.
    File { size: u64, sha256: String },
    /// `OK <count>`: that many lines `<size> <path>` follow.
    Count(u64),
    /// `ERR <code> <message>`.
    Refused { code: String, message: String },
}

/// Reads a reply header line (without its newline); `None` if it is not
/// one of the three shapes. Pure, like [`parse_request`].
pub fn parse_reply(line: &[u8]) -> Option<Reply> {
    let line = std::str::from_utf8(line).ok()?;
    if let Some(rest) = line.strip_prefix("ERR ") {
        let (code, message) = rest.split_once(' ').unwrap_or((rest, ""));
        return Some(Reply::Refused {
            code: code.to_string(),
            message: message.to_string(),
        });
    }
    let rest = line.strip_prefix("OK ")?;
    match rest.split_once(' ') {
        None => Some(Reply::Count(parse_number(rest)?)),
        Some((size, sha256))
            if sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Some(Reply::File {
                size: parse_number(size)?,
                sha256: sha256.to_ascii_lowercase(),
            })
        }
        Some(_) => None,
    }
}
// ANCHOR_END: reply

// ---------------------------------------------------------------------------
// Paths: from the text of a request to an open file
// ---------------------------------------------------------------------------

// ANCHOR: check_path
/// Checks a requested path by its text alone, before the file system is
/// asked anything, and turns it into a relative path. Pure.
///
/// Each rule closes a way out of the served folder that real file servers
/// have been caught by; the chapter tells the stories.
pub fn check_path(path: &str, hidden: bool) -> Result<PathBuf, Refusal> {
    let forbidden = |message: &str| Err(Refusal::new(Code::Forbidden, message));
    if path.is_empty() {
        return Err(Refusal::new(Code::BadRequest, "the path is empty"));
    }
    // NUL ends a string for the C functions beneath us (`a.txt\0.png` is
    // `a.txt` to them); the other control characters are never part of an
    // honest name and make logs lie.
    if path.chars().any(char::is_control) {
        return forbidden("a path may not contain control characters");
    }
    // On Windows `\` separates folders, so `..\secret` climbs out there.
    if path.contains('\\') {
        return forbidden("a path may not contain backslashes; use / between folders");
    }
    // `/etc/passwd` would replace the folder: Path::join keeps only the
    // absolute part.
    if path.starts_with('/') {
        return forbidden("a path must be relative to the served folder");
    }
    // `C:` and `C:\...` name a drive on Windows: another absolute path.
    if matches!(path.as_bytes(), [letter, b':', ..] if letter.is_ascii_alphabetic()) {
        return forbidden("a path may not start with a drive such as C:");
    }
    let mut relative = PathBuf::new();
    for component in path.split('/') {
        match component {
            // `a//b`, `a/` or `/`: harmless here, but a path has one
            // spelling, so that checks and logs see the same name.
            "" => return forbidden("a path may not have empty components, as in a//b or a/"),
            // `..` climbs out of the folder; `.` is refused with it, so
            // there is no second way to write a name.
            "." | ".." => return forbidden("a path may not have . or .. components"),
            // Dotfiles hold secrets by custom: .env, .git/config, .ssh/.
            name if name.starts_with('.') && !hidden => {
                return forbidden("dotfiles such as .env are not served");
            }
            name => relative.push(name),
        }
    }
    Ok(relative)
}
// ANCHOR_END: check_path

// ANCHOR: resolve_inside
/// The message for every path that leaves the folder through a link. It is
/// the same whether or not the target exists, so that it tells nothing
/// about the machine outside the folder.
const OUTSIDE: &str = "the path leads outside the served folder, or through a broken link";

/// Finds the real file behind a checked `relative` path, following links,
/// and refuses it unless it lies inside `root` (an absolute, canonical path).
pub fn resolve_inside(root: &Path, relative: &Path, hidden: bool) -> Result<PathBuf, Refusal> {
    // canonicalize asks the kernel for the real path: every link followed,
    // every `..` applied. Text checks cannot see where a link leads.
    let real = match fs::canonicalize(root.join(relative)) {
        Ok(real) => real,
        // A link to /etc/nothing fails here and a link to /etc/passwd does
        // not: answering `not-found` for one and `forbidden` for the other
        // would let a client probe what exists outside. Behind a link, every
        // failure is `forbidden`.
        Err(_) if passes_through_link(root, relative) => {
            return Err(Refusal::new(Code::Forbidden, OUTSIDE));
        }
        Err(_) => return Err(Refusal::new(Code::NotFound, "no such file")),
    };
    // strip_prefix compares whole components: /srv/files2/x is not inside
    // /srv/files, as a comparison of strings would say it is.
    let Ok(inside) = real.strip_prefix(root) else {
        return Err(Refusal::new(Code::Forbidden, OUTSIDE));
    };
    // The real path must pass the dotfile rule too: a link `notes` that
    // points at `.git/config` inside the folder is still refused.
    let hidden_part = inside
        .components()
        .any(|part| part.as_os_str().as_encoded_bytes().starts_with(b"."));
    if hidden_part && !hidden {
        return Err(Refusal::new(
            Code::Forbidden,
            "dotfiles such as .env are not served",
        ));
    }
    Ok(real)
}

/// Whether a step of `relative` under `root` is a symbolic link (looking
/// at the steps that exist, up to the first that does not).
fn passes_through_link(root: &Path, relative: &Path) -> bool {
    let mut here = root.to_path_buf();
    for step in relative.components() {
        here.push(step);
        match fs::symlink_metadata(&here) {
            Ok(meta) if meta.file_type().is_symlink() => return true,
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
    false
}
// ANCHOR_END: resolve_inside

// ANCHOR: open_file
/// Opens the file at `real` (from [`resolve_inside`]) and checks, on the
/// open handle, that it is a regular file.
///
/// The check comes after the open, not before: what a name points to can
/// change between a check by name and an open by name, while the handle
/// stays the file we opened. Everything after this uses the handle: the
/// size, the digest, the bytes sent.
pub fn open_file(real: &Path) -> Result<(File, Metadata), Refusal> {
    let mut options = OpenOptions::new();
    options.read(true);
    // Opening a fifo waits until something opens its other end, maybe
    // forever. O_NONBLOCK makes open return at once; it changes nothing
    // for regular files.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        rustix::fs::OFlags::NONBLOCK.bits() as i32,
    );
    let file = match options.open(real) {
        Ok(file) => file,
        Err(err) if err.kind() == ErrorKind::NotFound => {
            return Err(Refusal::new(Code::NotFound, "no such file"));
        }
        Err(err) if err.kind() == ErrorKind::PermissionDenied => {
            return Err(Refusal::new(
                Code::Forbidden,
                "the server may not read this file",
            ));
        }
        // A Unix socket, for example, cannot be opened at all.
        Err(_) => {
            return Err(Refusal::new(
                Code::NotAFile,
                "only regular files are served",
            ));
        }
    };
    // fstat (statx on Linux): the metadata of what we opened.
    match file.metadata() {
        Ok(meta) if meta.is_file() => Ok((file, meta)),
        Ok(meta) if meta.is_dir() => Err(Refusal::new(
            Code::NotAFile,
            "that is a folder; LIST shows the files",
        )),
        _ => Err(Refusal::new(
            Code::NotAFile,
            "only regular files are served",
        )),
    }
}
// ANCHOR_END: open_file

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/// What `serve` needs to know; the command line fills it in.
pub struct ServeOptions {
    pub folder: PathBuf,
    pub listen: String,
    pub max_clients: usize,
    pub hidden: bool,
    pub request_timeout: Duration,
}

/// What every client's thread shares.
struct Server {
    /// The served folder, absolute and canonical.
    root: PathBuf,
    hidden: bool,
    request_timeout: Duration,
    digests: Digests,
}

// ANCHOR: serve
/// Serves the files of `options.folder` until the process is stopped.
pub fn serve(options: ServeOptions) -> anyhow::Result<()> {
    // The folder as the kernel sees it, every link resolved: the
    // reference every requested file is compared with.
    let root = fs::canonicalize(&options.folder).map_err(|err| {
        anyhow!(
            "cannot serve {}: {}",
            options.folder.display(),
            describe(&err)
        )
    })?;
    if !root.is_dir() {
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
        root,
        hidden: options.hidden,
        request_timeout: options.request_timeout,
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
        let real = resolve_inside(&self.root, &relative, self.hidden)?;
        let (file, meta) = open_file(&real)?;
        let size = meta.len();
        if offset > size {
            return Err(Failure::Refused(Refusal::new(
                Code::BadOffset,
                format!("the offset is past the end of the file, which has {size} bytes"),
            )));
        }
        let (sha256, known) = self
            .digests
            .of(&real, &file, &meta)
            .map_err(|err| Failure::Lost(format!("could not read the file: {}", describe(&err))))?;

        let started = Instant::now();
        stream
            .set_write_timeout(Some(SEND_TIMEOUT))
            .and_then(|()| (&*stream).write_all(format!("OK {size} {sha256}\n").as_bytes()))
            .map_err(|err| Failure::Lost(format!("could not reply: {}", describe(&err))))?;
        let mut position = offset;
        let sent = send_range(&file, stream, &mut position, size);
        let count = position - offset;
        let digest = if known {
            "sha256 known"
        } else {
            "sha256 computed"
        };
        match sent {
            Ok(()) if position == size => Ok(format!(
                "sent {} in {:.2} s, {digest}",
                range(offset, count, size),
                started.elapsed().as_secs_f64()
            )),
            // sendfile found the end of the file early: someone truncated it.
            Ok(()) => Err(Failure::Lost(format!(
                "stopped after {count} of {} bytes: the file got shorter while it was sent",
                size - offset
            ))),
            Err(err) if is_timeout(&err) => Err(Failure::Lost(format!(
                "gave up after {count} of {} bytes: the client took nothing for {} s",
                size - offset,
                SEND_TIMEOUT.as_secs()
            ))),
            Err(err) => Err(Failure::Lost(format!(
                "the client went away after {count} of {} bytes ({})",
                size - offset,
                describe(&err)
            ))),
        }
    }
    // ANCHOR_END: send_file
}

// ANCHOR: send_range
/// Sends the bytes of `file` from `position` up to `end`, moving `position`
/// on as they go (so after an error it says how far the transfer got).
///
/// On Linux, sendfile(2): the kernel hands pages of the file, as they sit
/// in its page cache, to the socket. The bytes never come up into this
/// program: no buffer here, no copy in and out of it, one system call for
/// many megabytes. The catch that keeps `std::io::copy` from doing this
/// itself: the socket may still hold the pages after the call returns, so a
/// file changed at that moment can send its new bytes. Our client checks
/// the SHA-256 of everything it received, so it would notice.
#[cfg(target_os = "linux")]
fn send_range(file: &File, stream: &TcpStream, position: &mut u64, end: u64) -> io::Result<()> {
    while *position < end {
        let count = usize::try_from(end - *position).unwrap_or(usize::MAX);
        match rustix::fs::sendfile(stream, file, Some(&mut *position), count) {
            // The end of the file came early: it was truncated meanwhile.
            Ok(0) => return Ok(()),
            // sendfile moved `position` on by what it sent.
            Ok(_) => continue,
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// Elsewhere: the portable way, through a buffer in this program.
#[cfg(not(target_os = "linux"))]
fn send_range(file: &File, stream: &TcpStream, position: &mut u64, end: u64) -> io::Result<()> {
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

/// A digest computed earlier. It is the file's digest as long as the file
/// keeps this size and modification time.
struct Known {
    size: u64,
    modified: Option<SystemTime>,
    sha256: String,
}

/// The digests computed so far, one per file (the newest), shared by every
/// client's thread. The lock is held to look up and to store, never while
/// hashing, so a client hashing a big file does not hold up the others.
#[derive(Default)]
struct Digests(Mutex<HashMap<PathBuf, Known>>);

impl Digests {
    /// The digest of `file` (open, found at `real`, with metadata `meta`),
    /// and whether it was known already.
    fn of(&self, real: &Path, file: &File, meta: &Metadata) -> io::Result<(String, bool)> {
        let size = meta.len();
        let modified = meta.modified().ok();
        {
            let known = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(known) = known.get(real)
                && known.size == size
                && known.modified == modified
                && modified.is_some()
            {
                return Ok((known.sha256.clone(), true));
            }
        }
        // Read from the start of the file we opened (not from its name),
        // exactly `size` bytes: the bytes announced.
        let (sha256, count) = sha256_of(file.take(size))?;
        if count != size {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "the file got shorter while it was read",
            ));
        }
        let mut known = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        known.insert(
            real.to_path_buf(),
            Known {
                size,
                modified,
                sha256: sha256.clone(),
            },
        );
        Ok((sha256, false))
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
        Ok(format!("listed {} files", files.len()))
    }

    /// Every file `GET` would serve, as (size, path), sorted by path.
    ///
    /// It asks the same questions `GET` asks, name by name, so the list
    /// cannot offer what `GET` refuses. Folders are walked; links to
    /// folders are not (a link can loop back to its own folder), so a file
    /// is listed under its real name.
    fn offered_files(&self) -> Vec<(u64, String)> {
        let mut files = Vec::new();
        let mut folders = vec![String::new()];
        while let Some(folder) = folders.pop() {
            let Ok(entries) = fs::read_dir(self.root.join(&folder)) else {
                continue;
            };
            for entry in entries.flatten() {
                // A name that is not UTF-8 cannot be asked for: skip it.
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                let path = if folder.is_empty() {
                    name
                } else {
                    format!("{folder}/{name}")
                };
                let Ok(relative) = check_path(&path, self.hidden) else {
                    continue;
                };
                // file_type() does not follow links: a link is not a folder.
                if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                    folders.push(path);
                    continue;
                }
                let Ok(real) = resolve_inside(&self.root, &relative, self.hidden) else {
                    continue;
                };
                if let Ok((_, meta)) = open_file(&real) {
                    files.push((meta.len(), path));
                }
            }
        }
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
        format!("{count} bytes")
    } else {
        format!("{count} bytes ({offset} to {size} of {size})")
    }
}

/// A read or write timeout shows up as WouldBlock on Unix, TimedOut elsewhere.
fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

/// What `get` needs to know; the command line fills it in.
pub struct GetOptions {
    pub server: String,
    pub path: String,
    pub output: Option<PathBuf>,
    pub force: bool,
    pub timeout: Duration,
}

// ANCHOR: get
/// Downloads `options.path` into a `.part` file, checks its size and
/// SHA-256, and only then gives it its name. Resumes a `.part` left by an
/// earlier attempt.
pub fn get(options: &GetOptions) -> anyhow::Result<()> {
    let path = &options.path;
    let shown = printable(path.as_bytes());
    if path.contains(['\n', '\r']) {
        bail!("a path cannot contain a line break: {shown}");
    }
    let out = match &options.output {
        Some(out) => out.clone(),
        None => default_name(path)?,
    };
    refuse_to_overwrite(&out, options.force)?;
    let part = part_name(&out);

    // Step 1: what an earlier attempt left. Its bytes are hashed now, so
    // the digest at the end covers the whole file.
    let mut hasher = Sha256::new();
    let mut have = match File::open(&part) {
        Ok(file) => io::copy(
            &mut BufReader::with_capacity(BUFFER_SIZE, file),
            &mut hasher,
        )
        .with_context(|| format!("could not read {}", part.display()))?,
        Err(err) if err.kind() == ErrorKind::NotFound => 0,
        Err(err) => bail!("could not open {}: {}", part.display(), describe(&err)),
    };

    // Step 2: ask for the whole file, or for the rest of it.
    let started = Instant::now();
    let stream = common::connect(&options.server, DEFAULT_PORT, options.timeout, START_SERVER)?;
    let peer = stream
        .peer_addr()
        .context("could not read the server's address")?;
    stream.set_read_timeout(Some(options.timeout))?;
    stream.set_write_timeout(Some(options.timeout))?;
    let request = if have == 0 {
        format!("GET {path}\n")
    } else {
        format!("RESUME {have} {path}\n")
    };
    (&stream)
        .write_all(request.as_bytes())
        .map_err(|err| anyhow!("could not send the request to {peer}: {}", describe(&err)))?;

    // Step 3: the header. The same BufReader then gives the file's bytes:
    // whatever it read past the header's newline is the file's beginning.
    let mut reader = BufReader::new(stream);
    let line = read_header(&mut reader, peer, options.timeout)?;
    let (size, sha256) = match parse_reply(&line) {
        Some(Reply::File { size, sha256 }) if size >= have => (size, sha256),
        Some(Reply::Refused { code, .. }) if code == "bad-offset" => {
            // Our .part is longer than the file: the file has changed.
            remove(&part)?;
            bail!(
                "{} holds more bytes than the server's {shown} has now, so the file has changed; removed {}: run the same command again to download it afresh",
                part.display(),
                part.display()
            );
        }
        Some(Reply::Refused { code, message }) => bail!(
            "the server refused \"{shown}\": {} ({})",
            printable(code.as_bytes()),
            printable(message.as_bytes())
        ),
        _ => return Err(not_understood(peer, &line)),
    };

    // Step 4: receive the rest into the .part file.
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&part)
        .map_err(|err| anyhow!("could not create {}: {}", part.display(), describe(&err)))?;
    let resumed_at = have;
    let bar = progress_bar(size, have);
    let cut = receive(&mut reader, &mut file, &mut hasher, &mut have, size, &bar)
        .with_context(|| format!("could not write {}", part.display()))?;
    bar.finish_and_clear();
    if let Some(why) = cut {
        bail!(
            "the transfer of \"{shown}\" from {peer} stopped after {} of {} ({why}); {} keeps what arrived: run the same command again to resume",
            HumanBytes(have),
            HumanBytes(size),
            part.display()
        );
    }
    let seconds = started.elapsed().as_secs_f64();

    // Step 5: on disk, checked, and only then under its name.
    file.sync_all()
        .with_context(|| format!("could not flush {} to disk", part.display()))?;
    drop(file);
    if format!("{:x}", hasher.finalize()) != sha256 {
        remove(&part)?;
        bail!(
            "\"{shown}\" arrived whole but its SHA-256 does not match the server's (the file changed on the server during the download, or since {} was started); removed {}: run the same command again to download it afresh",
            part.display(),
            part.display()
        );
    }
    refuse_to_overwrite(&out, options.force)?;
    fs::rename(&part, &out).map_err(|err| {
        anyhow!(
            "could not rename {} to {}: {}",
            part.display(),
            out.display(),
            describe(&err)
        )
    })?;
    sync_folder(&out);

    let received = size - resumed_at;
    let resumed = if resumed_at > 0 {
        format!(", resumed after {}", HumanBytes(resumed_at))
    } else {
        String::new()
    };
    say!(
        "saved {}: {} in {seconds:.2} s ({}/s){resumed}, sha256 ok",
        out.display(),
        HumanBytes(size),
        HumanBytes((received as f64 / seconds.max(1e-6)) as u64)
    );
    Ok(())
}
// ANCHOR_END: get

// ANCHOR: receive
/// Receives the bytes of the file up to `size` into `file`, hashing them
/// on the way; `have` counts the bytes of the file we hold. Returns `None`
/// when all arrived, or why they stopped. An error is a failure to write
/// the file (a full disk).
///
/// SHA-256 costs about as much processor time as receiving and writing
/// together, so it runs on a second thread, on another core: this thread
/// fills a buffer from the socket and writes it to the file while the
/// other hashes the buffer before. The buffers go round in a circle
/// (`empty` -> filled here -> hashed there -> `empty`), so there are never
/// more than HASH_AHEAD of them, whatever the file's size. One channel
/// carries them in order, so the bytes are hashed in the order they came.
fn receive(
    reader: &mut impl Read,
    file: &mut File,
    hasher: &mut Sha256,
    have: &mut u64,
    size: u64,
    bar: &ProgressBar,
) -> io::Result<Option<String>> {
    thread::scope(|scope| {
        let (to_hash, filled) = mpsc::sync_channel::<(Vec<u8>, usize)>(HASH_AHEAD);
        let (to_fill, empty) = mpsc::sync_channel::<Vec<u8>>(HASH_AHEAD);
        for _ in 0..HASH_AHEAD {
            let _ = to_fill.send(vec![0; BUFFER_SIZE]);
        }
        // Ends when `to_hash` is dropped, as this closure returns; the
        // scope waits for it, so `hasher` has seen every byte after it.
        scope.spawn(move || {
            for (buffer, count) in filled {
                hasher.update(&buffer[..count]);
                let _ = to_fill.send(buffer);
            }
        });
        while *have < size {
            let mut buffer = empty
                .recv()
                .map_err(|_| io::Error::other("the hashing thread stopped"))?;
            // Never read past the announced size.
            let want =
                usize::try_from(size - *have).map_or(BUFFER_SIZE, |left| left.min(BUFFER_SIZE));
            let count = match reader.read(&mut buffer[..want]) {
                Ok(0) => return Ok(Some("the connection closed early".to_string())),
                Ok(count) => count,
                Err(err) if err.kind() == ErrorKind::Interrupted => {
                    let _ = to_hash.send((buffer, 0));
                    continue;
                }
                Err(err) if is_timeout(&err) => {
                    return Ok(Some("the server sent nothing more".to_string()));
                }
                Err(err) => return Ok(Some(describe(&err))),
            };
            file.write_all(&buffer[..count])?;
            *have += count as u64;
            bar.inc(count as u64);
            let _ = to_hash.send((buffer, count));
        }
        Ok(None)
    })
}
// ANCHOR_END: receive

// ANCHOR: client_helpers
/// Reads one header line from the server, with the errors a person can act on.
fn read_header(
    reader: &mut impl BufRead,
    peer: SocketAddr,
    timeout: Duration,
) -> anyhow::Result<Vec<u8>> {
    match read_line(reader, LINE_LIMIT) {
        Ok(ReadLine::Line(line)) => Ok(line),
        Ok(ReadLine::Closed) => {
            bail!("the server at {peer} closed the connection without replying")
        }
        Ok(ReadLine::TooLong) => {
            bail!("the server at {peer} sent a line longer than {LINE_LIMIT} bytes")
        }
        Err(err) if is_timeout(&err) => {
            bail!("no reply from {peer} within {} s", timeout.as_secs_f64())
        }
        Err(err) => bail!("lost the connection to {peer}: {}", describe(&err)),
    }
}

fn not_understood(peer: SocketAddr, line: &[u8]) -> anyhow::Error {
    anyhow!(
        "the server at {peer} sent a line this program does not understand: {}",
        printable(line)
    )
}

/// The name to save `path` under when `-o` is not given: its last part.
fn default_name(path: &str) -> anyhow::Result<PathBuf> {
    let name = path.rsplit('/').next().unwrap_or_default();
    if name.is_empty() || name == "." || name == ".." || name.contains('\\') {
        bail!(
            "cannot name the saved file after \"{}\"; choose a name with -o NAME",
            printable(path.as_bytes())
        );
    }
    Ok(PathBuf::from(name))
}

/// `notes.txt` becomes `notes.txt.part`.
fn part_name(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

fn refuse_to_overwrite(out: &Path, force: bool) -> anyhow::Result<()> {
    // symlink_metadata: a link there counts too, even a broken one.
    if !force && fs::symlink_metadata(out).is_ok() {
        bail!(
            "{} already exists; add --force to replace it, or save elsewhere with -o",
            out.display()
        );
    }
    Ok(())
}

fn remove(part: &Path) -> anyhow::Result<()> {
    fs::remove_file(part)
        .map_err(|err| anyhow!("could not remove {}: {}", part.display(), describe(&err)))
}

/// Writes the folder's new entry to disk too. A rename changes the
/// folder, not the file; after a crash the file could otherwise come back
/// under its old name. Best effort: not every system can open a folder.
fn sync_folder(file: &Path) {
    let folder = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if let Ok(folder) = File::open(folder) {
        let _ = folder.sync_all();
    }
}

/// A progress bar on standard error when that is a terminal; when it is a
/// file or a pipe, nothing (the summary line says it all).
fn progress_bar(size: u64, have: u64) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(size).with_position(have);
    if let Ok(style) =
        ProgressStyle::with_template("{wide_bar} {bytes}/{total_bytes} {bytes_per_sec}, {eta} left")
    {
        bar.set_style(style);
    }
    bar
}
// ANCHOR_END: client_helpers

// ANCHOR: list
/// Asks the server for its files and prints them as a table.
pub fn list(server: &str, timeout: Duration) -> anyhow::Result<()> {
    let stream = common::connect(server, DEFAULT_PORT, timeout, START_SERVER)?;
    let peer = stream
        .peer_addr()
        .context("could not read the server's address")?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    (&stream)
        .write_all(b"LIST\n")
        .map_err(|err| anyhow!("could not send the request to {peer}: {}", describe(&err)))?;
    let mut reader = BufReader::new(stream);
    let line = read_header(&mut reader, peer, timeout)?;
    let count = match parse_reply(&line) {
        Some(Reply::Count(count)) => count,
        Some(Reply::Refused { code, message }) => bail!(
            "the server refused to list its files: {} ({})",
            printable(code.as_bytes()),
            printable(message.as_bytes())
        ),
        _ => return Err(not_understood(peer, &line)),
    };
    say!("{:>12}  {:>10}  path", "bytes", "size");
    let mut total = 0u64;
    for _ in 0..count {
        let line = read_header(&mut reader, peer, timeout)?;
        let entry = std::str::from_utf8(&line)
            .ok()
            .and_then(|line| line.split_once(' '))
            .and_then(|(size, path)| Some((parse_number(size)?, path)));
        let Some((size, path)) = entry else {
            return Err(not_understood(peer, &line));
        };
        say!(
            "{size:>12}  {:>10}  {}",
            HumanBytes(size).to_string(),
            printable(path.as_bytes())
        );
        total = total.saturating_add(size);
    }
    say!("{count} files, {} in all", HumanBytes(total));
    Ok(())
}
// ANCHOR_END: list

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Request {
        Request::Get {
            path: path.to_string(),
        }
    }

    #[test]
    fn requests_have_three_shapes() {
        assert_eq!(parse_request(b"GET a b.txt"), Ok(get("a b.txt")));
        assert_eq!(parse_request(b"GET "), Ok(get("")));
        assert_eq!(
            parse_request(b"RESUME 12 x/y"),
            Ok(Request::Resume {
                offset: 12,
                path: "x/y".to_string()
            })
        );
        assert_eq!(parse_request(b"LIST"), Ok(Request::List));
        for bad in [
            &b"get x"[..],
            b"GET",
            b"LIST ",
            b"RESUME x y",
            b"RESUME +1 y",
            b"RESUME  1 y",
            b"RESUME 18446744073709551616 y",
            b"GET \xff",
            b"",
        ] {
            let refusal = parse_request(bad).unwrap_err();
            assert_eq!(refusal.code, Code::BadRequest, "{bad:?}");
        }
    }

    #[test]
    fn path_rules_refuse_by_text_alone() {
        for good in [
            "a",
            "a/b.txt",
            "my notes.txt",
            "données/été.txt",
            "a..b",
            "x.",
            "%2e%2e",
        ] {
            assert!(check_path(good, false).is_ok(), "{good:?} should pass");
        }
        for bad in [
            "/a",
            "..",
            "../a",
            "a/../b",
            ".",
            "./a",
            "a//b",
            "a/",
            "a\\b",
            "C:a",
            "c:/a",
            "a\0b",
            "a\nb",
            "a\u{1b}b",
            ".env",
            "a/.git/config",
        ] {
            let refusal = check_path(bad, false).unwrap_err();
            assert_eq!(refusal.code, Code::Forbidden, "{bad:?}");
        }
        assert_eq!(check_path("", false).unwrap_err().code, Code::BadRequest);
        assert!(check_path(".env", true).is_ok());
        assert!(
            check_path("../a", true).is_err(),
            "--hidden never allows .."
        );
        assert_eq!(
            check_path("a/b c/d", false).unwrap(),
            Path::new("a").join("b c").join("d")
        );
    }

    #[test]
    fn replies_have_three_shapes() {
        let sha = "A".repeat(64);
        assert_eq!(
            parse_reply(format!("OK 5 {sha}").as_bytes()),
            Some(Reply::File {
                size: 5,
                sha256: "a".repeat(64)
            })
        );
        assert_eq!(parse_reply(b"OK 3"), Some(Reply::Count(3)));
        assert_eq!(
            parse_reply(b"ERR not-found no such file"),
            Some(Reply::Refused {
                code: "not-found".to_string(),
                message: "no such file".to_string()
            })
        );
        for bad in [
            &b"OK"[..],
            b"OK x",
            b"OK 5 abc",
            b"ok 5",
            b"HELLO",
            b"OK -1",
        ] {
            assert_eq!(parse_reply(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_refusal_is_one_line() {
        let refusal = Refusal::new(Code::NotAFile, "only regular files are served");
        assert_eq!(
            refusal.line(),
            "ERR not-a-file only regular files are served\n"
        );
    }
}
