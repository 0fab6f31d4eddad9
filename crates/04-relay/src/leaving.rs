//! Why a client leaves, and the server's log line for each way out.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use common::{describe, is_timeout, say};

use crate::limits::LINE_LIMIT;
use crate::server::ClientLimits;

// ANCHOR: leaving_why
/// Why a client leaves the registry: how its `... left` log line ends.
pub(crate) enum Leaving {
    /// It said `BYE`.
    Bye,
    /// It closed the connection.
    Closed,
    /// Reading from it failed (a reset, for example).
    Failed(io::Error),
    /// It sent a line over LINE_LIMIT.
    TooLong,
    /// Its writer could not write a line within `--stuck-after`
    /// (STUCK_AFTER unless told otherwise): it stopped reading.
    Stuck,
    /// Writing to it failed.
    Lost,
    /// Registered, it sent nothing for `--idle-limit`.
    Idle,
}
// ANCHOR_END: leaving_why

impl Leaving {
    // ANCHOR: leaving
    /// The server's log line for registered client `name` leaving this way
    /// (`limits`: how long its writer waited, for `Stuck`, or it was idle).
    pub(crate) fn say_left(&self, name: &str, limits: &ClientLimits) {
        match self {
            Leaving::Bye | Leaving::Closed => say!("{name} left"),
            Leaving::Failed(err) => say!("{name} left (connection error: {})", describe(err)),
            Leaving::TooLong => say!("{name} left (line longer than {LINE_LIMIT} bytes)"),
            Leaving::Stuck => say!(
                "{name} left (dropped: it took no line for {} s, it is not reading)",
                limits.stuck_after.as_secs()
            ),
            Leaving::Lost => say!("{name} left (dropped: could not write to it)"),
            Leaving::Idle => say!(
                "{name} left (closed: it sent nothing for {} s)",
                limits.idle_limit.as_secs()
            ),
        }
    }
    // ANCHOR_END: leaving

    // ANCHOR: unregistered
    /// The server's log line for a client at `seen_as` that leaves this
    /// way before it registered.
    pub(crate) fn say_unregistered(&self, seen_as: SocketAddr, hello_timeout: Duration) {
        match self {
            Leaving::Bye | Leaving::Closed => say!("[{seen_as}] left without registering"),
            Leaving::Failed(err) if is_timeout(err) => say!(
                "[{seen_as}] no HELLO within {} s, closing",
                hello_timeout.as_secs_f64()
            ),
            Leaving::Failed(err) => say!("[{seen_as}] connection error: {}", describe(err)),
            Leaving::TooLong => say!("[{seen_as}] line longer than {LINE_LIMIT} bytes, closing"),
            Leaving::Stuck => say!("[{seen_as}] dropped: it is not reading"),
            Leaving::Lost => say!("[{seen_as}] dropped: could not write to it"),
            // Only a registered client has an idle limit.
            Leaving::Idle => say!("[{seen_as}] closed: it sent nothing"),
        }
    }
}

/// Says, once the registry is unlocked, who missed a notice because its
/// queue was full even for notices (it is far behind; it is not dropped
/// for that: its writer drops it if it stops reading).
pub(crate) fn say_missed(missed: &[String], notice: &str) {
    if !missed.is_empty() {
        say!("{} missed `{notice}`: queue full", missed.join(", "));
    }
}
// ANCHOR_END: unregistered
