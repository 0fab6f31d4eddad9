//! The test kit: what every lesson's tests use to run the real programs and
//! talk to them over real loopback sockets.
//!
//! Three rules hold everywhere in it, so a broken program fails in seconds
//! with a message that says what was expected, instead of hanging:
//!
//! - a server is started with `--listen 127.0.0.1:0` and its port is read from
//!   its first line, `listening on ADDR`: never a fixed port, never a sleep;
//! - every socket has read and write timeouts, and every wait for a child
//!   process has a deadline ([`WAIT`]);
//! - every failure message says what the program should have done and shows
//!   what it did (its output so far, its standard error, its exit status).
//!
//! Every helper that can fail a test is `#[track_caller]`, so a failure is
//! reported at the line of the test that called it, not inside the kit. A
//! panic in a closure loses that (closures cannot be `#[track_caller]`):
//! the helpers panic from `match` and `let ... else` instead. The
//! `line_protocol` and `hostile` checks are tests themselves, and report
//! their own line.
//!
//! The kit's files, by role: `process.rs` (programs), `connection.rs`
//! (sockets), `temp.rs` (folders), `snapshot.rs` (insta settings), `tool.rs`
//! (outside programs); their items are used from the crate's root, as
//! `testkit::Process`.
//!
//! | item | for |
//! |------|-----|
//! | [`binary`] | the path of a lesson's binary, built with Cargo on first use |
//! | [`Process`] | a running program: its output line by line, its stdin, its exit |
//! | [`UnreadServer`] | a server whose log nobody reads (a paused terminal, a pager) |
//! | [`Connection`] | a client socket with timeouts, and assertions on the bytes |
//! | [`FakeServer`] | a listening socket in the test, to check what a client sends |
//! | [`snapshot_settings`] | insta settings that redact ports and other things that change |
//! | [`snapshot_settings_with_ports`] | the same, each port the test knows shown as its role |
//! | [`tool`] | an outside program (`nc`, `python3`), or a clear skip |
//! | [`interop_script`] | a Python stand-in for the original lesson's programs |
//! | [`TempDir`] | a folder of the test's own, removed afterwards |
//! | [`hostile`] | misbehaving clients, and the battery every server must survive |
//! | [`line_protocol`] | lesson 3's protocol as checks, for every server that speaks it |
//! | [`bench`] | what the benchmarks share: percentiles, durations in words |

// A test kit fails by panicking, with a message; that is what tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod bench;
pub mod client_log;
pub mod fake_accept;
pub mod hostile;
pub mod line_protocol;
pub mod paced;

mod connection;
mod process;
mod snapshot;
mod temp;
mod tool;

pub use connection::*;
pub use process::*;
pub use snapshot::*;
pub use temp::*;
pub use tool::*;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// How long any one expectation may take before the test fails: a line from
/// a program, a reply on a socket, a program's exit. Generous for a slow CI
/// machine, short enough that a hanging attempt fails quickly.
pub const WAIT: Duration = Duration::from_secs(5);

/// How long a test watches for something that must *not* happen (a reply
/// that should not come yet). Long enough for loopback, where a reply takes
/// microseconds; a wrong program is caught unless it is this slow on purpose.
pub const QUIET: Duration = Duration::from_millis(300);

/// The path of binary `bin` of workspace package `package`, built on first
/// use with `cargo build` (through escargot) in the test's own profile;
/// taken as it is when `cargo exercise check` has just built it and says so
/// (`TESTKIT_FRESH_BINARIES`).
///
/// A lesson's tests reach their own binary with `env!("CARGO_BIN_EXE_NAME")`;
/// this is for the binary of *another* package, such as lesson 1's client in
/// lesson 2's tests, which Cargo does not build for them.
#[track_caller]
pub fn binary(package: &str, bin: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap();
    if let Some(path) = built.get(bin) {
        return path.clone();
    }
    // `cargo exercise check` has just built these (the names, separated by
    // spaces): the program is where Cargo puts it, beside the folder of
    // this test's own executable (`target/debug/deps/`).
    let fresh = std::env::var("TESTKIT_FRESH_BINARIES").unwrap_or_default();
    if fresh.split(' ').any(|name| name == bin)
        && let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
    {
        let path = dir.join(format!("{bin}{}", std::env::consts::EXE_SUFFIX));
        if path.is_file() {
            built.insert(bin.to_string(), path.clone());
            return path;
        }
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let run = escargot::CargoBuild::new()
        .manifest_path(manifest)
        .package(package)
        .bin(bin)
        .current_release()
        .run();
    let run = match run {
        Ok(run) => run,
        Err(err) => panic!("could not build `{bin}` of package `{package}`: {err}"),
    };
    let path = run.path().to_path_buf();
    built.insert(bin.to_string(), path.clone());
    path
}
