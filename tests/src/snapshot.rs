//! insta settings that hide what changes from run to run (ports, paths),
//! so a snapshot shows only the lesson's expected output.

use std::net::SocketAddr;

/// insta settings for program output: what changes from run to run is
/// replaced by a placeholder, so the snapshot shows only what matters.
///
/// - ephemeral ports: `127.0.0.1:51234` becomes `127.0.0.1:[PORT]` (also for
///   `[::1]`), and `port 51234` becomes `port [PORT]`. Only five-digit ports
///   are ephemeral (the kernel picks them from 32768 and up on Linux, 49152
///   and up elsewhere), so the lessons' default ports (7890, 7788, 7799) and `:0`
///   in a hint stay as they are.
///
/// `[PORT]` hides *which* port a line shows, so a program that logs the
/// wrong one (its own address as the client's) would still match: where a
/// test knows the ports, it names them with [`snapshot_settings_with_ports`].
///
/// Use it as `let _guard = testkit::snapshot_settings().bind_to_scope();`
/// and add a lesson's own filters with `settings.add_filter(..)` first.
pub fn snapshot_settings() -> insta::Settings {
    snapshot_settings_with_ports::<&str>(&[])
}

/// [`snapshot_settings`], with each port the test knows shown as its role:
/// `(server.addr().port(), "listen port")` turns `127.0.0.1:41234` into
/// `127.0.0.1:[listen port]`, and `(port, "alice's direct port")` turns
/// `direct port 45678` into `direct port [alice's direct port]`. A program
/// that prints one port where another belongs then fails the snapshot; a
/// port the test did not name is still `[PORT]`.
///
/// A port is recognised after an address's `:` or after the word `port`,
/// never as a bare number, so a byte count that happens to be equal is left alone.
pub fn snapshot_settings_with_ports<S: AsRef<str>>(ports: &[(u16, S)]) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    for (port, role) in ports {
        // `$` would start a capture group's name in the replacement.
        let role = role.as_ref().replace('$', "$$");
        settings.add_filter(&format!(r"(:|\bport ){port}\b"), format!("${{1}}[{role}]"));
    }
    settings.add_filter(
        r"(\d+\.\d+\.\d+\.\d+|\[[0-9a-fA-F:.]+\]):\d{5}\b",
        "$1:[PORT]",
    );
    settings.add_filter(r"\bport \d{5}\b", "port [PORT]");
    settings.set_prepend_module_to_snapshot(false);
    settings
}

/// The local port a client program reports in its line
/// `connected to ADDR (local ADDR)` (lessons 1 and 4), for a snapshot to
/// name: the test cannot see that socket itself. `output` is the client's
/// standard output; a missing or malformed line fails the test.
#[track_caller]
pub fn reported_local_port(output: &str) -> u16 {
    let port = output
        .lines()
        .find(|line| line.starts_with("connected to "))
        .and_then(|line| line.split_once("(local "))
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .and_then(|addr| addr.parse::<SocketAddr>().ok())
        .map(|addr| addr.port());
    match port {
        Some(port) => port,
        None => panic!(
            "the client should print `connected to ADDR (local ADDR)` first \
             (book: 01-client.md § Step 1: connect); its output:\n{output}"
        ),
    }
}
