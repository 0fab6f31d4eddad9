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
//! This lesson keeps the idea and fixes each, one file per part, in the
//! order the chapter goes:
//!
//! - `protocol.rs`: a request line, and a reply that says how many bytes
//!   follow, and after them what their SHA-256 is ([`parse_request`], [`Refusal`],
//!   [`parse_reply`]);
//! - `paths.rs`: the path checks, from the text of the path to the file it
//!   opens ([`check_path`], [`open_inside`], [`check_opened`]);
//! - `server.rs`: a thread per client, a deadline for the request, the
//!   bytes moved by the kernel, the digest computed while they go ([`serve`]);
//! - `client.rs`: `.part` file, digest checked while receiving, resume
//!   ([`get`], [`list`]).
//!
//! This file holds the limits all four share.

use std::time::Duration;

mod client;
mod digest;
mod listing;
mod part;
mod paths;
mod per_address;
mod protocol;
mod reply;
mod sendfile;
mod server;

pub use client::{GetOptions, get, list};
pub use digest::sha256_of;
pub use paths::{EntryKind, MAX_LINKS, check_opened, check_path, list_folder, open_inside};
pub use protocol::{Code, Refusal, Reply, Request, parse_reply, parse_request};
pub use server::{ServeOptions, serve};

// ANCHOR: limits
/// Where the server listens, and the client connects, unless told
/// otherwise: loopback, on a port of this lesson's own. Lesson 4's relay
/// has the original lesson's 7788: sharing it, a relay left running would
/// answer every request here with its `ERR hello-first`.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7799";
/// The port used when `--listen` or `--server` names only a host.
pub const DEFAULT_PORT: u16 = 7799;
/// The longest header line either side accepts (a request, a reply, a line
/// of a listing), without its newline. A longer one is `line-too-long`.
pub const LINE_LIMIT: usize = 4096;
/// How long a client has to send its whole request line, unless
/// `--request-timeout` says otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How many clients are served at once unless `--max-clients` says otherwise.
pub const DEFAULT_MAX_CLIENTS: usize = 32;
/// How many of those one address may hold at once, unless
/// `--max-per-address` says otherwise: a quarter, so that one machine
/// alone cannot take every slot (an IPv6 address counts by its /64, which
/// one machine is usually given whole).
pub const MAX_CLIENTS_PER_ADDRESS: usize = 8;
/// How long the server waits for a client that has stopped taking the
/// lines it writes (a header, a listing, the digest).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// The slowest a client may take a file's bytes, in bytes per second,
/// measured over each RATE_WINDOW: a slower one is dropped, so that a
/// client reading a few bytes now and then cannot keep one of the
/// server's slots for good. 4 KiB/s is 32 kbit/s, slower than any link
/// worth downloading a file over.
pub const MIN_RATE: u64 = 4096;
/// How long the server measures a client's rate before judging it,
/// unless `--rate-window` says otherwise: long enough for a honest
/// client's pauses (a busy disk, a congested link), short enough that a
/// crawler frees its slot soon.
pub const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(30);
/// On Linux, the most bytes of a file that wait in a client's socket not
/// yet sent (TCP_NOTSENT_LOWAT): so the bytes the server hands over follow
/// what the client takes, and MIN_RATE judges the client, not the socket's
/// buffers (`send_range`).
pub const UNSENT_LIMIT: u32 = 16 * 1024;
// ANCHOR_END: limits

// ANCHOR: limits_after
/// After a file's bytes, how often the server tells a client that it is
/// still computing the digest (`HASHING <done> <size>`): well under the
/// client's own timeout, so a file of any size never looks like a server
/// that stopped answering.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// How often the server looks, while it waits for a digest, whether the
/// client has hung up: a client gone after the bytes must not keep its slot
/// and a core busy hashing for a digest nobody will read.
pub const GONE_CHECK_EVERY: Duration = Duration::from_millis(100);
/// How long a listing is sent again to every `LIST` while none of the
/// folders it walked has changed (a name added, removed or renamed). A
/// file changed in place (its size, its permissions) changes no folder:
/// this is how stale its line can get. A walk of 100,000 files took about
/// a second of a core (a debug build): once per LIST_KEPT_FOR, while
/// nothing changes, is a tenth of a core at most.
pub const LIST_KEPT_FOR: Duration = Duration::from_secs(10);
/// After its reply, how long the server waits for the client to close.
pub const LINGER: Duration = Duration::from_secs(2);
/// How many bytes the client receives at a time, and both sides hash at a
/// time. This, not the file's size, is what a transfer holds in memory.
pub const BUFFER_SIZE: usize = 256 * 1024;
/// How many buffers the client's hashing thread may lag behind its
/// receiving thread (see `receive`).
pub const HASH_AHEAD: usize = 4;
/// How long the client waits to connect, then for each whole line of the
/// reply (a deadline, however the line arrives), and for each read of a
/// file's bytes, unless `--timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// What to run when nobody is listening.
const START_SERVER: &str = "cargo run -p file-download -- serve";
// ANCHOR_END: limits_after
