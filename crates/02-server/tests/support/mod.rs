//! What lesson 2's tests need from the kernel to make a timing deterministic:
//! where the server's main thread is waiting, and what a socket still holds.
//! Linux only (`/proc`); elsewhere the tests that need it are left out.

#![allow(dead_code)]

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use testkit::{Process, WAIT};

/// The system call number of `recvfrom` (what `TcpStream::read` calls).
#[cfg(target_arch = "x86_64")]
const RECVFROM: Option<u64> = Some(45);
#[cfg(target_arch = "aarch64")]
const RECVFROM: Option<u64> = Some(207);
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const RECVFROM: Option<u64> = None;

/// The state letter of the program's main thread (`R`, `S`, `T`...), or
/// `None` once it is gone.
pub fn state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "PID (NAME) S ...": the name may hold spaces and parentheses.
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.chars().next()
}

/// Whether the main thread sleeps in `recvfrom`: the server waits in a
/// `read` on a socket. Where `/proc/PID/syscall` cannot tell, a sleeping
/// main thread counts.
fn blocked_in_read(pid: u32) -> bool {
    if state(pid) != Some('S') {
        return false;
    }
    let Some(recvfrom) = RECVFROM else {
        return true;
    };
    match fs::read_to_string(format!("/proc/{pid}/syscall")) {
        Ok(text) => {
            text.split_whitespace()
                .next()
                .and_then(|number| number.parse::<u64>().ok())
                == Some(recvfrom)
        }
        Err(_) => true,
    }
}

/// Waits (at most [`WAIT`]) until the server's main thread sleeps in a
/// socket read. `what` says, for the failure message, which read.
pub fn wait_blocked_in_read(server: &Process, what: &str) {
    let deadline = Instant::now() + WAIT;
    while !blocked_in_read(server.pid()) {
        if Instant::now() > deadline {
            server.fail(&format!(
                "{what}: the server should be waiting in a read; after {} s it was not \
                 (state {:?})",
                WAIT.as_secs(),
                state(server.pid())
            ));
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Freezes the server (SIGSTOP) and waits until it is really stopped: from
/// then on it runs no code, not even the end of a system call.
pub fn freeze(server: &Process) {
    server.freeze();
    let deadline = Instant::now() + WAIT;
    while state(server.pid()) != Some('T') {
        if Instant::now() > deadline {
            server.fail("it did not stop after SIGSTOP");
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// The net.core.somaxconn the kernel caps every backlog at.
pub fn somaxconn() -> i32 {
    fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(4096)
}

/// The lowest file descriptor number a program started by this test would
/// find free: it inherits 0, 1 and 2, and every descriptor of ours that is
/// not close-on-exec.
pub fn lowest_free_fd_for_a_child() -> u64 {
    let mut used = vec![0, 1, 2];
    if let Ok(dir) = fs::read_dir("/proc/self/fd") {
        for entry in dir.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let flags = fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
                .ok()
                .and_then(|info| {
                    info.lines()
                        .find_map(|line| line.strip_prefix("flags:"))
                        .and_then(|flags| u64::from_str_radix(flags.trim(), 8).ok())
                });
            // O_CLOEXEC is 0o2000000 on Linux.
            if flags.is_some_and(|flags| flags & 0o2000000 == 0) {
                used.push(fd);
            }
        }
    }
    (0..).find(|fd| !used.contains(fd)).unwrap_or(3)
}

/// The send and receive queues, in bytes, of the loopback IPv4 socket whose
/// local port is `local` and remote port is `remote` (`/proc/net/tcp`): the
/// bytes sent and not yet acknowledged, and the bytes received and not yet
/// read by the program.
pub fn queues(local: u16, remote: u16) -> Option<(u64, u64)> {
    testkit::tcp_queues(local, remote).0
}

/// Waits (at most [`WAIT`]) until the server has read every byte the
/// client at port `client` sent it: the client's socket has nothing left
/// unacknowledged, and the server's side has nothing left unread. Then a
/// server that takes one read as the whole message has taken what came so far.
/// `what` names the case and the chapter section, for the failure message.
pub fn wait_until_server_read_everything(server: &Process, client: u16, what: &str) {
    let port = server.addr().port();
    let deadline = Instant::now() + WAIT;
    loop {
        let (client_side, server_side) = testkit::tcp_queues(client, port);
        let sent = client_side.map(|(tx, _)| tx);
        let unread = server_side.map(|(_, rx)| rx);
        if sent == Some(0) && unread == Some(0) {
            return;
        }
        if Instant::now() > deadline {
            server.fail(&format!(
                "{what}: the server should read what the client sent; after {} s the client \
                 still had {sent:?} bytes unacknowledged and the server {unread:?} bytes unread",
                WAIT.as_secs()
            ));
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Waits (at most [`WAIT`]) until the server has exited (it may not be
/// reaped yet); fails with `what` if it is still running then.
pub fn wait_gone(server: &Process, what: &str) {
    let deadline = Instant::now() + WAIT;
    while !matches!(state(server.pid()), None | Some('Z')) {
        if Instant::now() > deadline {
            server.fail(&format!(
                "{what}; it was still running after {} s",
                WAIT.as_secs()
            ));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Waits (at most [`WAIT`]) until the server's main thread sleeps in a
/// socket read (`true`) or the server has exited (`false`).
pub fn wait_blocked_in_read_or_gone(server: &Process, what: &str) -> bool {
    let deadline = Instant::now() + WAIT;
    loop {
        if blocked_in_read(server.pid()) {
            return true;
        }
        if matches!(state(server.pid()), None | Some('Z')) {
            return false;
        }
        if Instant::now() > deadline {
            server.fail(&format!(
                "{what}: the server should be waiting in a read or have ended; after {} s it was \
                 neither (state {:?})",
                WAIT.as_secs(),
                state(server.pid())
            ));
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// For a client at port `client` that has sent a whole message and waits
/// for the reply: fails at once, with `what`, when the server has shown
/// that no reply is coming, instead of waiting [`WAIT`] for it. That is
/// when the server has read every byte the client sent and sleeps in a
/// read again, and nothing has been written back: its socket has nothing
/// unacknowledged and the client's nothing unread. A server that replies
/// writes before its next read, so its reply is in one of the two queues
/// by then; one that waits for more of the message never writes.
pub fn fail_now_if_no_reply_is_coming(server: &Process, client: u16, what: &str) {
    wait_until_server_read_everything(server, client, what);
    if !wait_blocked_in_read_or_gone(server, what) {
        return;
    }
    let port = server.addr().port();
    let (server_side, client_side) = testkit::tcp_queues(port, client);
    let written = server_side.map(|(tx, _)| tx);
    let arrived = client_side.map(|(_, rx)| rx);
    if written == Some(0) && arrived == Some(0) {
        server.fail(&format!(
            "{what}: the server read every byte and waits for more, without a reply"
        ));
    }
}

/// The CPU time the program has used so far (user and system), in
/// `/proc` clock ticks: hundredths of a second on Linux.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    // Fields 14 and 15 of the line; `rest` starts at field 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// As [`wait_gone`], but fails at once, with `what`, once the server has
/// used a third of a second of CPU time without ending: it is spinning
/// (retrying a call that fails at once), and will not end. CPU time, not
/// time on the clock, so a busy machine that runs it late changes nothing;
/// a server that ends as it should uses a few milliseconds.
pub fn wait_gone_unless_spinning(server: &Process, what: &str) {
    let deadline = Instant::now() + WAIT;
    while !matches!(state(server.pid()), None | Some('Z')) {
        let used = cpu_ticks(server.pid()).unwrap_or(0);
        if used >= 33 {
            server.fail(&format!(
                "{what}; it was still running after {:.2} s of CPU time: it tries again and \
                 again, and will never end",
                used as f64 / 100.0
            ));
        }
        if Instant::now() > deadline {
            server.fail(&format!(
                "{what}; it was still running after {} s",
                WAIT.as_secs()
            ));
        }
        thread::sleep(Duration::from_millis(10));
    }
}
