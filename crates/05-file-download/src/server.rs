//! The server: a thread per client, a deadline for the request, the bytes
//! moved by the kernel, and the digest computed while they go.

use std::fs::{self, File};
use std::io::{self, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use common::{Deadline, ReadLine, describe, is_timeout, printable, read_line, say};

use crate::digest::{Digests, Waiting, Wanted};
use crate::listing::Listings;
use crate::per_address::PerAddress;
use crate::sendfile::send_range;
use crate::{
    Code, DEFAULT_PORT, GONE_CHECK_EVERY, LINE_LIMIT, LINGER, MIN_RATE, PROGRESS_EVERY, Refusal,
    Request, SEND_TIMEOUT, check_opened, check_path, open_inside, parse_request,
};

/// What `serve` needs to know; the command line fills it in.
pub struct ServeOptions {
    pub folder: PathBuf,
    pub listen: String,
    pub max_clients: usize,
    /// How many of those one client address may hold.
    pub max_per_address: usize,
    pub hidden: bool,
    pub request_timeout: Duration,
    /// Over each such window a client must take MIN_RATE bytes/s.
    pub rate_window: Duration,
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
        per_address: PerAddress::default(),
        max_per_address: options.max_per_address,
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

/// What every client's thread shares.
struct Server {
    /// The served folder, open: every file served and every folder listed
    /// is opened from this handle, one name at a time (see `open_inside`).
    folder: File,
    /// The connections each client address holds.
    per_address: PerAddress,
    max_per_address: usize,
    hidden: bool,
    request_timeout: Duration,
    rate_window: Duration,
    digests: Digests,
    listings: Listings,
}

impl Server {
    // ANCHOR: serve_client
    /// One client's whole conversation: a request, an answer, one log line.
    fn serve_client(&self, stream: TcpStream, client: SocketAddr) {
        // Held until the conversation ends, as the slot is.
        let place = self.per_address.enter(client.ip(), self.max_per_address);
        let outcome = match place {
            Some(_) => self.answer(&stream),
            None => {
                let busy = Refusal::new(
                    Code::Busy,
                    format!(
                        "your address already holds {} connections, the most one may; try again later",
                        self.max_per_address
                    ),
                );
                refuse(&stream, "(not read)", &busy)
            }
        };
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
        let sent = self.send_body(&file, stream, offset, size);
        let count = match sent {
            Ok(count) => count,
            Err(why) => {
                // Nobody here will read the digest: one fewer waits for it.
                drop(wanted);
                return Err(Failure::Lost(why));
            }
        };
        let sha256 = digest_to_send(stream, wanted, size).map_err(Failure::Lost)?;
        (&*stream)
            .write_all(format!("SHA256 {sha256}\n").as_bytes())
            .map_err(lost)?;
        Ok(format!(
            "sent {} in {:.2} s, {digest}",
            sent_phrase(offset, count, size),
            started.elapsed().as_secs_f64()
        ))
    }
    // ANCHOR_END: send_file

    // ANCHOR: send_body
    /// Sends the file's bytes from `offset` to `size`: how many were sent,
    /// or why they stopped, in words for the log.
    fn send_body(
        &self,
        file: &File,
        stream: &TcpStream,
        offset: u64,
        size: u64,
    ) -> Result<u64, String> {
        let mut position = offset;
        let sent = send_range(file, stream, &mut position, size, self.rate_window);
        let count = position - offset;
        match sent {
            Ok(()) if position == size => Ok(count),
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
        }
    }
    // ANCHOR_END: send_body

    // ANCHOR: send_list
    /// Answers `LIST`.
    fn send_list(&self, stream: &TcpStream) -> Result<String, Failure> {
        let (listing, how) = self.listings.listing(&self.folder, self.hidden);
        let lost = |err: io::Error| Failure::Lost(format!("could not reply: {}", describe(&err)));
        stream.set_write_timeout(Some(SEND_TIMEOUT)).map_err(lost)?;
        // Straight from the listing every LIST shares: no copy per client.
        (&*stream).write_all(&listing.reply).map_err(lost)?;
        Ok(format!(
            "listed {}, {how}",
            common::count(listing.count as u64, "file")
        ))
    }
    // ANCHOR_END: send_list
}

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

// ANCHOR: digest_to_send
/// The digest to send after the bytes: the one known, or the hash's once
/// it has ended; else why there is none, in words for the log.
fn digest_to_send(stream: &TcpStream, wanted: Wanted, size: u64) -> Result<String, String> {
    match wanted {
        Wanted::Known(sha256) => Ok(sha256),
        // If the client is gone and was the last to want this digest, the
        // hashing stops (within one buffer) before its slot is free.
        Wanted::Hashing { hash, .. } => {
            wait_for_digest(stream, &hash, size).map_err(|why| format!("{why}; {}", hash.leave()))
        }
    }
}
// ANCHOR_END: digest_to_send

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
fn sent_phrase(offset: u64, count: u64, size: u64) -> String {
    if offset == 0 {
        common::count(count, "byte")
    } else {
        format!(
            "{} ({offset} to {size} of {size})",
            common::count(count, "byte")
        )
    }
}
