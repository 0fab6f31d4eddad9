//! What lesson 5's test files share: temporary folders, test files with
//! known bytes, the programs started the same way every time.

// Each test file uses a part of this module. Helpers outside #[test]
// functions fail the way tests do: by panicking.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};
use testkit::{Connection, Finished, Process};

pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_05-file-download"))
}

/// Temporary folders come from the test kit (the cross-lesson tests use them too).
pub use testkit::TempDir;

/// `len` bytes that look random and are the same on every run (xorshift64*
/// from `seed`): no two test files alike, and no rand crate needed.
pub fn file_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// The line after a file's bytes: `SHA256 <hex>` of the whole file.
pub fn trailer(whole: &[u8]) -> String {
    format!("SHA256 {}\n", sha256_hex(whole))
}

/// The exact reply to `GET` of a file holding `bytes`: the header, the
/// bytes, the digest.
pub fn whole_reply(bytes: &[u8]) -> Vec<u8> {
    let mut reply = format!("OK {}\n", bytes.len()).into_bytes();
    reply.extend_from_slice(bytes);
    reply.extend_from_slice(trailer(bytes).as_bytes());
    reply
}

/// The lesson's server on a free port, serving `folder`, past its
/// `serving FOLDER` line.
pub fn start_server(folder: &Path, extra: &[&str]) -> Process {
    let folder = folder.to_str().unwrap();
    let mut args = vec!["serve", folder];
    args.extend(extra);
    let mut server = Process::server(bin(), &args);
    let second = server.next_line("the second line should be `serving FOLDER`");
    assert_eq!(
        second,
        format!("serving {folder}"),
        "after `listening on ADDR`, the server should say which folder it serves, as an \
         absolute path with every link resolved {}",
        book::RUN_IT
    );
    server
}

/// Runs the client with `args` in the folder `cwd` (where `get` saves), and
/// waits for it to exit.
pub fn client(cwd: &Path, args: &[&str]) -> Finished {
    Process::start_command(Command::new(bin()).current_dir(cwd).args(args)).finish()
}

/// `get PATH --server ADDR` and more `args`, run in `cwd`.
pub fn get(server: std::net::SocketAddr, cwd: &Path, path: &str, args: &[&str]) -> Finished {
    let addr = server.to_string();
    let mut all = vec!["get", path, "--server", addr.as_str()];
    all.extend(args);
    client(cwd, &all)
}

/// Sends one request line over a raw socket and returns the whole reply
/// (the server closes after it).
pub fn ask(server: std::net::SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut conn = Connection::open(server);
    conn.send(request);
    conn.read_to_end(&format!(
        "the server should reply to {} and then close {}",
        testkit::show(request),
        book::PROTOCOL
    ))
}

/// insta settings for this lesson: the kit's (ports) plus temporary paths,
/// durations and rates.
pub fn settings(temp: &TempDir) -> insta::Settings {
    settings_naming_ports(temp, &[])
}

/// [`settings`], with each port the test knows shown as its role
/// (`[listen port]`, `[client 1's port]`), so that a log that shows one
/// where another belongs fails the snapshot.
pub fn settings_naming_ports(temp: &TempDir, ports: &[(u16, String)]) -> insta::Settings {
    let mut settings = testkit::snapshot_settings_with_ports(ports);
    settings.add_filter(&regex::escape(temp.path().to_str().unwrap()), "[DIR]");
    settings.add_filter(r"\b\d+\.\d+ s\b", "[TIME] s");
    settings.add_filter(r"\(\d+(\.\d+)? [KMGT]?i?B/s\)", "([RATE])");
    settings
}

/// The chapter's sections, as failure messages name them: where to read
/// about what a failing test checks.
pub mod book {
    pub const RUN_IT: &str = "(book: 05-file-download.md § Run it)";
    pub const BY_HAND: &str = "(book: 05-file-download.md § By hand, with nc)";
    pub const LIMITS: &str = "(book: 05-file-download.md § The limits)";
    pub const PROTOCOL: &str = "(book: 05-file-download.md § The protocol)";
    pub const PATHS: &str =
        "(book: 05-file-download.md § Paths: keeping every request inside the folder)";
    pub const STAGE_1: &str = "(book: 05-file-download.md § Stage 1: the text of the path)";
    pub const STAGE_2: &str = "(book: 05-file-download.md § Stage 2: where the path really leads)";
    pub const STAGE_3: &str = "(book: 05-file-download.md § Stage 3: open once, then look)";
    pub const SERVING: &str =
        "(book: 05-file-download.md § Serving: a thread per client, a deadline for the request)";
    pub const DEADLINE: &str = "(book: 05-file-download.md § A deadline is not a timeout)";
    pub const SENDING: &str =
        "(book: 05-file-download.md § Sending: the bytes never come up into the program)";
    pub const DIGEST_ONCE: &str =
        "(book: 05-file-download.md § The digest, computed while the bytes go)";
    pub const LIST_AND_CLOSE: &str = "(book: 05-file-download.md § LIST, refusals, and the close)";
    pub const CLIENT: &str =
        "(book: 05-file-download.md § The client: `.part`, the digest, and resuming)";
    pub const GOES_WRONG: &str = "(book: 05-file-download.md § When things go wrong)";
    pub const MEMORY: &str = "(book: 05-file-download.md § How fast, and how much memory)";
}

/// The peak resident memory of process `pid` so far, in KiB: `VmHWM`
/// ("high water mark") in /proc/PID/status. Linux only.
pub fn peak_resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|err| panic!("could not read /proc/{pid}/status: {err}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or_else(|| panic!("/proc/{pid}/status has no `VmHWM: N kB` line"))
}

/// How many bytes process `pid` has read so far, by any read call (`rchar`
/// in /proc/PID/io): from the page cache too, so a sparse file read twice
/// counts twice. Linux only.
pub fn bytes_read(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_else(|err| panic!("could not read /proc/{pid}/io: {err}"));
    io.lines()
        .find_map(|line| line.strip_prefix("rchar:"))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or_else(|| panic!("/proc/{pid}/io has no `rchar: N` line"))
}

/// Creates `path`, `size` bytes of zeros that take no disk (a sparse
/// file): big files for the price of none.
pub fn sparse(path: &Path, size: u64) {
    let file = std::fs::File::create(path).unwrap();
    file.set_len(size).unwrap();
}

/// Off Linux, says the test is skipped because `needs`, which only Linux
/// has, and returns true.
pub fn skipped_off_linux(needs: &str) -> bool {
    if cfg!(target_os = "linux") {
        return false;
    }
    eprintln!("skipped: {needs}, which only Linux has");
    true
}
