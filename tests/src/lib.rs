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

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// How long any one expectation may take before the test fails: a line from
/// a program, a reply on a socket, a program's exit. Generous for a slow CI
/// machine, short enough that a hanging attempt fails quickly.
pub const WAIT: Duration = Duration::from_secs(5);

/// How long a test watches for something that must *not* happen (a reply
/// that should not come yet). Long enough for loopback, where a reply takes
/// microseconds; a wrong program is caught unless it is this slow on purpose.
pub const QUIET: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------
// Binaries
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Programs
// ---------------------------------------------------------------------------

/// A program started by a test. Its standard output is read line by line in
/// the background (so it can never block on a full pipe) and handed to the
/// test through [`Process::next_line`] and friends; its standard error is
/// kept for failure messages. Dropping it kills the program and reaps it.
pub struct Process {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every stdout line the test has taken so far, for failure messages.
    seen: Vec<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// Says when the stderr reader has reached end-of-file.
    stderr_done: Receiver<()>,
    addr: Option<SocketAddr>,
}

/// A server whose standard output nobody reads after its first line, as
/// with `server | less` waiting for a key, or a terminal paused by Ctrl-S:
/// the pipe fills, and every further write to it would wait. Dropping it
/// kills the server.
pub struct UnreadServer {
    child: Child,
    /// Kept open and never read: closing it would make writes fail at once
    /// instead of waiting, which is a different (and easier) case.
    _stdout: std::process::ChildStdout,
    addr: SocketAddr,
}

impl UnreadServer {
    /// Starts `bin` with `args` and `--listen 127.0.0.1:0`, reads its first
    /// line (`listening on ADDR`) and then nothing more.
    #[track_caller]
    pub fn start(bin: &Path, args: &[&str]) -> UnreadServer {
        let spawned = Command::new(bin)
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(err) => panic!("could not start {}: {err}", bin.display()),
        };
        let mut stdout = child.stdout.take().unwrap();
        let (sender, first) = mpsc::channel();
        thread::spawn(move || {
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            while let Ok(1) = stdout.read(&mut byte) {
                if byte[0] == b'\n' {
                    break;
                }
                line.push(byte[0]);
            }
            let _ = sender.send((String::from_utf8_lossy(&line).into_owned(), stdout));
        });
        let Ok((line, stdout)) = first.recv_timeout(WAIT) else {
            let _ = child.kill();
            panic!(
                "{}: no first line `listening on ADDR` within {} s",
                bin.display(),
                WAIT.as_secs()
            );
        };
        let Some(addr) = line
            .strip_prefix("listening on ")
            .and_then(|addr| addr.parse().ok())
        else {
            panic!("the first line should be `listening on ADDR`; got {line:?}")
        };
        UnreadServer {
            child,
            _stdout: stdout,
            addr,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for UnreadServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A program that has exited: its status and everything it printed.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Process {
    /// Starts `bin` with `args`, its stdin a pipe the test writes with
    /// [`send`](Process::send) and closes with [`close_stdin`](Process::close_stdin).
    #[track_caller]
    pub fn start(bin: &Path, args: &[&str]) -> Process {
        Self::start_command(Command::new(bin).args(args))
    }

    /// Starts a prepared command (to set its working folder or environment).
    #[track_caller]
    pub fn start_command(command: &mut Command) -> Process {
        let name = Path::new(command.get_program())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let spawned = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(err) => panic!("could not start `{name}`: {err}"),
        };

        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n') {
                let Ok(line) = line else { break };
                let line = String::from_utf8_lossy(&line).into_owned();
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        let (finished, stderr_done) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
            let _ = finished.send(());
        });
        let stdin = child.stdin.take();
        Process {
            name,
            child,
            stdin,
            lines,
            seen: Vec::new(),
            stderr,
            stderr_done,
            addr: None,
        }
    }

    /// Starts a server: `bin` with `args` and `--listen 127.0.0.1:0`, and
    /// waits for its first line, `listening on ADDR`, to learn its port.
    #[track_caller]
    pub fn server(bin: &Path, args: &[&str]) -> Process {
        let mut args = args.to_vec();
        args.extend(["--listen", "127.0.0.1:0"]);
        let mut server = Self::start(bin, &args);
        let first = server.next_line(
            "a server's first line should be `listening on ADDR`, printed and flushed as soon as it \
             listens (book: 02-server.md § Steps 1 to 3: socket, bind, listen)",
        );
        let Some(addr) = first
            .strip_prefix("listening on ")
            .and_then(|addr| addr.parse().ok())
        else {
            server.fail(&format!(
                "the first line should be `listening on ADDR` with the bound address, e.g. `listening on 127.0.0.1:7890` \
                 (book: 02-server.md § Steps 1 to 3: socket, bind, listen); got {first:?}"
            ))
        };
        server.addr = Some(addr);
        server
    }

    /// The address a server announced in its first line.
    #[track_caller]
    pub fn addr(&self) -> SocketAddr {
        match self.addr {
            Some(addr) => addr,
            None => panic!("`{}` was not started with Process::server", self.name),
        }
    }

    /// The next line of standard output, waiting at most [`WAIT`].
    /// `expected` says, for the failure message, what the line should be.
    #[track_caller]
    pub fn next_line(&mut self, expected: &str) -> String {
        match self.lines.recv_timeout(WAIT) {
            Ok(line) => {
                self.seen.push(line.clone());
                line
            }
            Err(RecvTimeoutError::Timeout) => self.fail(&format!(
                "{expected}; got no line within {} s",
                WAIT.as_secs()
            )),
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.try_wait().ok().flatten();
                self.fail(&format!(
                    "{expected}; but it closed its output (exit status: {})",
                    status.map_or("still running".to_string(), |s| s.to_string())
                ))
            }
        }
    }

    /// Waits (at most [`WAIT`] in all) for a line that contains `text`, and
    /// returns it; the lines before it are kept for failure messages.
    #[track_caller]
    pub fn wait_for(&mut self, text: &str) -> String {
        self.expect_line(text, "")
    }

    /// [`wait_for`](Process::wait_for), with `what` at the start of the
    /// failure message: the behaviour and the case, for a line the learner's
    /// program may not print.
    #[track_caller]
    pub fn expect_line(&mut self, text: &str, what: &str) -> String {
        self.expect_line_within(text, what, WAIT)
    }

    /// [`expect_line`](Process::expect_line), waiting at most `limit`: for
    /// a line that comes after a build (a tool's verdict), not over a socket.
    #[track_caller]
    pub fn expect_line_within(&mut self, text: &str, what: &str, limit: Duration) -> String {
        let what = if what.is_empty() {
            String::new()
        } else {
            format!("{what}: ")
        };
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => self.fail(&format!(
                    "{what}it should print a line containing `{text}`; none came within {} s",
                    limit.as_secs()
                )),
            }
        }
    }

    /// Asserts that no line of standard output comes within [`QUIET`].
    #[track_caller]
    pub fn expect_no_line(&mut self, why: &str) {
        if let Ok(line) = self.lines.recv_timeout(QUIET) {
            self.seen.push(line.clone());
            self.fail(&format!("{why}; but it printed {line:?}"));
        }
    }

    /// Writes `line` and a newline to the program's standard input.
    #[track_caller]
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin was already closed");
        if let Err(err) = stdin.write_all(format!("{line}\n").as_bytes()) {
            self.fail(&format!(
                "could not write {line:?} to its standard input: {err}"
            ));
        }
    }

    /// Writes raw bytes to the program's standard input (for input that is
    /// not valid UTF-8).
    #[track_caller]
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin was already closed");
        if let Err(err) = stdin.write_all(bytes) {
            self.fail(&format!(
                "could not write {} to its standard input: {err}",
                show(bytes)
            ));
        }
    }

    /// Closes the program's standard input: it reads end-of-file.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Closes the program's standard input, waits (at most [`WAIT`]) for it
    /// to exit by itself, and returns its status and all it printed.
    #[track_caller]
    pub fn finish(&mut self) -> Finished {
        self.close_stdin();
        self.wait_exit()
    }

    /// Waits (at most [`WAIT`]) for the program to exit by itself, its
    /// standard input left open (for a program that reads the end of its
    /// input as "quit", when the test wants to see it exit for another reason).
    #[track_caller]
    pub fn wait_exit(&mut self) -> Finished {
        let deadline = Instant::now() + WAIT;
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line);
        }
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                _ => self.fail(&format!(
                    "it should exit by itself; it was still running after {} s",
                    WAIT.as_secs()
                )),
            }
        };
        // The program has exited; its stderr reader ends as soon as it has
        // read the last bytes from the pipe.
        let _ = self
            .stderr_done
            .recv_timeout(deadline.saturating_duration_since(Instant::now()));
        Finished {
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }

    /// Stops the program (as Ctrl-C would) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Freezes the program (SIGSTOP): it runs no code until [`thaw`](Process::thaw),
    /// though the kernel still completes handshakes on its listening sockets.
    /// A test uses it to prove that something happened without this program.
    #[cfg(unix)]
    #[track_caller]
    pub fn freeze(&self) {
        self.signal(rustix::process::Signal::STOP);
    }

    /// Lets a frozen program run again (SIGCONT).
    #[cfg(unix)]
    #[track_caller]
    pub fn thaw(&self) {
        self.signal(rustix::process::Signal::CONT);
    }

    /// Interrupts the program as Ctrl-C in its terminal would (SIGINT).
    #[cfg(unix)]
    #[track_caller]
    pub fn interrupt(&self) {
        self.signal(rustix::process::Signal::INT);
    }

    #[cfg(unix)]
    #[track_caller]
    fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.pid() as i32).unwrap();
        if let Err(err) = rustix::process::kill_process(pid, signal) {
            self.fail(&format!("could not send it {signal:?}: {err}"));
        }
    }

    /// The program's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Takes every stdout line that has arrived by now, without waiting,
    /// and returns all lines taken so far (see [`stdout`](Process::stdout)).
    pub fn stdout_now(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.stdout()
    }

    /// The stdout lines taken so far, each ending in `\n`.
    pub fn stdout(&self) -> String {
        self.seen.iter().map(|line| format!("{line}\n")).collect()
    }

    /// Everything written to standard error so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Fails the test with `message` and everything the program printed.
    #[track_caller]
    pub fn fail(&self, message: &str) -> ! {
        panic!(
            "`{}`: {message}\n--- its standard output so far ---\n{}--- its standard error ---\n{}---",
            self.name,
            self.stdout(),
            self.stderr()
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        // A failing test shows what every program it started said on standard
        // error: a panic there (such as an exercise's `todo!`) is often the
        // real reason the test failed.
        if thread::panicking() {
            let _ = self.stderr_done.recv_timeout(Duration::from_secs(1));
            let stderr = self.stderr();
            if !stderr.trim().is_empty() {
                eprintln!(
                    "--- `{}` wrote on standard error ---\n{stderr}---",
                    self.name
                );
            }
        }
    }
}

impl Finished {
    /// Asserts the program exited with status 0.
    #[track_caller]
    pub fn assert_success(&self, what: &str) -> &Self {
        assert!(
            self.status.success(),
            "{what}: it should exit with status 0; {self}"
        );
        self
    }

    /// Asserts the program exited with a non-zero status.
    #[track_caller]
    pub fn assert_failure(&self, what: &str) -> &Self {
        assert!(
            !self.status.success(),
            "{what}: it should exit with a non-zero status; {self}"
        );
        self
    }
}

impl std::fmt::Display for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "it exited with {}\n--- standard output ---\n{}--- standard error ---\n{}---",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `bin` with `args` and `stdin` as its whole standard input, and
/// waits (at most [`WAIT`]) for it to exit.
#[track_caller]
pub fn run(bin: &Path, args: &[&str], stdin: &str) -> Finished {
    let mut process = Process::start(bin, args);
    if !stdin.is_empty() {
        let pipe = process.stdin.as_mut().unwrap();
        // A program may exit before reading its input; that is its business.
        let _ = pipe.write_all(stdin.as_bytes());
    }
    process.finish()
}

/// Runs `bin` with `args` and `--listen` on `taken` (the address of a
/// server that is running), and asserts it fails with one line on standard
/// error that names the address and says it is in use.
#[track_caller]
pub fn assert_port_in_use_is_one_line(bin: &Path, args: &[&str], taken: SocketAddr) {
    let addr = taken.to_string();
    let mut args = args.to_vec();
    args.extend(["--listen", &addr]);
    let second = run(bin, &args, "");
    second.assert_failure("a second server on a port that is taken");
    assert!(
        second.stderr.starts_with(&format!(
            "error: could not listen on {addr}: address already in use"
        )) && second.stderr.lines().count() == 1,
        "the error should be one line naming the address; {second}"
    );
}

// ---------------------------------------------------------------------------
// Sockets
// ---------------------------------------------------------------------------

/// A client connection from the test, with read and write timeouts, and
/// assertions that show the exact bytes when they fail.
pub struct Connection {
    reader: BufReader<TcpStream>,
    peer: SocketAddr,
}

impl Connection {
    /// Connects to `addr` within [`WAIT`].
    #[track_caller]
    pub fn open(addr: SocketAddr) -> Connection {
        let stream = match TcpStream::connect_timeout(&addr, WAIT) {
            Ok(stream) => stream,
            Err(err) => panic!("could not connect to the server at {addr}: {err}"),
        };
        Self::from_stream(stream)
    }

    /// Wraps a stream the test accepted or connected, setting its timeouts.
    #[track_caller]
    pub fn from_stream(stream: TcpStream) -> Connection {
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_write_timeout(Some(WAIT)).unwrap();
        let peer = stream.peer_addr().unwrap();
        Connection {
            reader: BufReader::new(stream),
            peer,
        }
    }

    /// The socket itself, for what the helpers do not cover.
    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// This side's address, as the other side sees it.
    #[track_caller]
    pub fn local_addr(&self) -> SocketAddr {
        self.stream().local_addr().unwrap()
    }

    /// Sends all of `bytes`.
    #[track_caller]
    pub fn send(&mut self, bytes: &[u8]) {
        let peer = self.peer;
        if let Err(err) = self.reader.get_mut().write_all(bytes) {
            panic!("could not send {} to {peer}: {err}", show(bytes));
        }
    }

    /// Sends `line` and `\n`.
    #[track_caller]
    pub fn send_line(&mut self, line: &str) {
        self.send(format!("{line}\n").as_bytes());
    }

    /// Half-closes: the peer reads end-of-input, and can still reply.
    #[track_caller]
    pub fn half_close(&self) {
        self.stream().shutdown(Shutdown::Write).unwrap();
    }

    /// Closes with a reset (RST) instead of the orderly FIN, as a crashed
    /// program or a dropped network does: SO_LINGER with a zero timeout.
    #[track_caller]
    pub fn reset(self) {
        let socket = socket2::SockRef::from(self.stream());
        socket.set_linger(Some(Duration::ZERO)).unwrap();
        drop(self);
    }

    /// Reads one line (up to and including `\n`) within [`WAIT`] and returns
    /// it without the `\n`. `expected` says what should have come.
    #[track_caller]
    pub fn read_line(&mut self, expected: &str) -> String {
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Ok(_) if line.ends_with(b"\n") => {
                line.pop();
                match String::from_utf8(line) {
                    Ok(line) => line,
                    Err(err) => panic!("{expected}; got invalid UTF-8: {}", show(err.as_bytes())),
                }
            }
            Ok(_) => panic!(
                "{expected}; got {} and then the connection closed{}",
                show(&line),
                no_newline(&line)
            ),
            Err(err) => panic!(
                "{expected}; got {} and then: {}{}",
                show(&line),
                waited(&err),
                no_newline(&line)
            ),
        }
    }

    /// Reads exactly `expected.len()` bytes within [`WAIT`] and asserts they
    /// are `expected`.
    #[track_caller]
    pub fn expect_bytes(&mut self, expected: &[u8], what: &str) {
        let mut got = vec![0; expected.len()];
        let mut filled = 0;
        while filled < got.len() {
            match self.reader.read(&mut got[filled..]) {
                Ok(0) => panic!(
                    "{what}: expected {}; got {} and then the connection closed",
                    show(expected),
                    show(&got[..filled])
                ),
                Ok(n) => filled += n,
                Err(err) => panic!(
                    "{what}: expected {}; got {} and then: {}",
                    show(expected),
                    show(&got[..filled]),
                    waited(&err)
                ),
            }
        }
        assert!(
            got == expected,
            "{what}: expected {}; got {}",
            show(expected),
            show(&got)
        );
    }

    /// Reads until the peer closes, within [`WAIT`], and returns the bytes.
    #[track_caller]
    pub fn read_to_end(&mut self, what: &str) -> Vec<u8> {
        let mut got = Vec::new();
        if let Err(err) = self.reader.read_to_end(&mut got) {
            panic!("{what}: got {} and then: {}", show(&got), waited(&err));
        }
        got
    }

    /// Asserts the peer closes the connection gently: a FIN, so that a read
    /// returns 0 within [`WAIT`], with no more bytes before it. A reset (RST)
    /// fails: it is what a server sends when it closes a socket whose input it
    /// did not read, and on the way it can destroy a reply still on its way
    /// (book: 02-server.md § Step 7: close without losing the reply).
    #[track_caller]
    pub fn expect_orderly_close(&mut self, what: &str) {
        let mut got = Vec::new();
        match self.reader.read_to_end(&mut got) {
            Ok(_) if got.is_empty() => {}
            Ok(_) => panic!(
                "{what}: expected the connection to close; got {} first",
                show(&got)
            ),
            Err(err) if err.kind() == ErrorKind::ConnectionReset => panic!(
                "{what}: expected a clean end of stream (FIN, a read returning 0); \
                 the connection was reset (RST) instead{}. A socket closed with unread \
                 input is reset; read what the client sent (drain) or half-close \
                 first (book: 02-server.md § Step 7: close without losing the reply)",
                if got.is_empty() {
                    String::new()
                } else {
                    format!(" after {}", show(&got))
                }
            ),
            Err(err) => panic!(
                "{what}: expected the connection to close; got {}",
                waited(&err)
            ),
        }
    }

    /// Asserts the peer resets the connection (RST) within [`WAIT`], with no
    /// more bytes before it. For the cases where a reset is the right ending.
    #[track_caller]
    pub fn expect_reset(&mut self, what: &str) {
        let mut got = Vec::new();
        match self.reader.read_to_end(&mut got) {
            Err(err) if got.is_empty() && err.kind() == ErrorKind::ConnectionReset => {}
            Ok(_) if got.is_empty() => panic!(
                "{what}: expected a reset (RST); the connection was closed gently (FIN) instead"
            ),
            Ok(_) => panic!("{what}: expected a reset (RST); got {} first", show(&got)),
            Err(err) => panic!("{what}: expected a reset (RST); got {}", waited(&err)),
        }
    }

    /// Asserts the peer closes the connection, gently or with a reset, within
    /// [`WAIT`], with no more bytes before that. Only for cases where either
    /// ending is right: a server that drops a client who would not stop
    /// sending may well reset it.
    #[track_caller]
    pub fn expect_closed_or_reset(&mut self, what: &str) {
        let mut got = Vec::new();
        match self.reader.read_to_end(&mut got) {
            Ok(_) if got.is_empty() => {}
            Err(err) if got.is_empty() && err.kind() == ErrorKind::ConnectionReset => {}
            Ok(_) => panic!(
                "{what}: expected the connection to close; got {} first",
                show(&got)
            ),
            Err(err) => panic!(
                "{what}: expected the connection to close; got {}",
                waited(&err)
            ),
        }
    }

    /// Asserts that nothing arrives within [`QUIET`] (and the connection stays open).
    #[track_caller]
    pub fn expect_nothing(&mut self, why: &str) {
        let stream = self.reader.get_ref();
        stream.set_read_timeout(Some(QUIET)).unwrap();
        let mut got = [0; 64];
        let result = self.reader.read(&mut got);
        self.reader.get_ref().set_read_timeout(Some(WAIT)).unwrap();
        match result {
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Ok(0) => panic!("{why}; but the connection was closed"),
            Ok(n) => panic!("{why}; but {} arrived", show(&got[..n])),
            Err(err) => panic!("{why}; but the read failed: {err}"),
        }
    }
}

/// A listening socket in the test, standing in for a server, to check the
/// exact bytes a client sends and to answer it by hand.
pub struct FakeServer {
    listener: TcpListener,
}

impl FakeServer {
    /// Listens on a free loopback port.
    #[track_caller]
    pub fn start() -> FakeServer {
        Self::on("127.0.0.1:0")
    }

    /// Listens on `addr` (for example `[::1]:0`).
    #[track_caller]
    pub fn on(addr: &str) -> FakeServer {
        let listener = match TcpListener::bind(addr) {
            Ok(listener) => listener,
            Err(err) => panic!("could not listen on {addr}: {err}"),
        };
        FakeServer { listener }
    }

    #[track_caller]
    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap()
    }

    /// Accepts the next connection within [`WAIT`].
    #[track_caller]
    pub fn accept(&self, expected: &str) -> Connection {
        self.listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    return Connection::from_stream(stream);
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(5));
                }
                Err(err) => panic!(
                    "{expected}; no connection came within {} s ({err})",
                    WAIT.as_secs()
                ),
            }
        }
    }
}

/// A free loopback address where nothing listens (to test "refused").
#[track_caller]
pub fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// For a line that stopped before its newline: says that the newline is
/// what is missing (a peer that sent `LEFT bob` without `\n` shows up as a
/// wait for the rest of the line). Empty when nothing came.
fn no_newline(partial: &[u8]) -> &'static str {
    if partial.is_empty() {
        ""
    } else {
        " (a line without its newline: every line the protocol sends ends with `\\n`, and \
         the reader waits for it)"
    }
}

/// Bytes as a Rust byte string literal: `b"ok\n"`, for failure messages.
pub fn show(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "nothing".to_string();
    }
    let mut out = String::from("b\"");
    for &byte in bytes {
        out.extend(std::ascii::escape_default(byte).map(char::from));
    }
    out.push('"');
    out
}

fn waited(err: &std::io::Error) -> String {
    match err.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => {
            format!("nothing more within {} s", WAIT.as_secs())
        }
        _ => format!("an error: {err}"),
    }
}

/// A TCP socket's `(tx_queue, rx_queue)` in bytes, as /proc/net/tcp gives
/// them: sent and not yet acknowledged, received and not yet read.
pub type Queues = Option<(u64, u64)>;

/// The queues of both ends of a loopback IPv4 connection, from one reading
/// of /proc/net/tcp (Linux; elsewhere `None`): the socket from port `local`
/// to port `remote`, and the one back. That file lists every TCP socket of
/// the machine, tens of thousands on a busy test machine: it is read once
/// for both, and scanned without an allocation a row.
pub fn tcp_queues(local: u16, remote: u16) -> (Queues, Queues) {
    let Ok(table) = fs::read_to_string("/proc/net/tcp") else {
        return (None, None);
    };
    let (local, remote) = (format!(":{local:04X}"), format!(":{remote:04X}"));
    let (mut there, mut back) = (None, None);
    for row in table.lines().skip(1) {
        let mut fields = row.split_whitespace().skip(1);
        let (Some(from), Some(to)) = (fields.next(), fields.next()) else {
            continue;
        };
        let slot = if from.ends_with(&local) && to.ends_with(&remote) {
            &mut there
        } else if from.ends_with(&remote) && to.ends_with(&local) {
            &mut back
        } else {
            continue;
        };
        // After the two addresses: the state, then `tx_queue:rx_queue`.
        *slot = fields.nth(1).and_then(|queues| {
            let (tx, rx) = queues.split_once(':')?;
            Some((
                u64::from_str_radix(tx, 16).ok()?,
                u64::from_str_radix(rx, 16).ok()?,
            ))
        });
        if there.is_some() && back.is_some() {
            break;
        }
    }
    (there, back)
}

// ---------------------------------------------------------------------------
// Folders
// ---------------------------------------------------------------------------

/// A folder of its own under the system's temporary folder, removed when
/// dropped. Its path is canonical (no links), as a server prints it.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    #[track_caller]
    pub fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "tcp-lessons-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let path = std::env::temp_dir().join(name);
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir {
            path: fs::canonicalize(&path).unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self/relative`, with its folders created.
    #[track_caller]
    pub fn join(&self, relative: &str) -> PathBuf {
        let path = self.path.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        path
    }

    /// Writes `bytes` to `self/relative`, creating folders, and returns the path.
    #[track_caller]
    pub fn write(&self, relative: &str, bytes: &[u8]) -> PathBuf {
        let path = self.join(relative);
        fs::write(&path, bytes).unwrap();
        path
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------
// Snapshots
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Outside tools
// ---------------------------------------------------------------------------

/// The path of an outside program such as `nc` or `python3`, or `None` after
/// printing why the test is skipped. In CI (`CI` is set) a missing tool fails
/// the test instead: `.ci/run` installs them, so CI skips nothing.
///
/// `nc` counts only if it is the OpenBSD netcat: the tests use its `-N`.
/// A test that calls this for `nc` or `python3` must also be marked ignored
/// when the tool is missing, `#[cfg_attr(not(has_nc), ignore = "...")]`
/// (the cfg comes from `tests/build.rs`, which this package and the lessons
/// with such tests run), so that the test result says it did not run.
#[track_caller]
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = on_path(name).filter(|path| name != "nc" || is_openbsd_nc(path));
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "`{name}` is not installed (for nc: the OpenBSD one), and CI must skip nothing: .ci/run should install it"
        );
        eprintln!(
            "skipped: `{name}` is not installed (for nc: the OpenBSD one; install it, or run .ci/run, to run this test)"
        );
    }
    found
}

/// The first program called `name` in the folders of `PATH`, if any.
pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// The path of `tests/interop/NAME`: the Python programs that stand in for
/// the original lesson's (and the `nc` scripts), which tests and benchmarks
/// run against the lessons.
pub fn interop_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("interop")
        .join(name)
}

/// Whether `nc` is the OpenBSD netcat, whose help says so.
fn is_openbsd_nc(path: &Path) -> bool {
    Command::new(path).arg("-h").output().is_ok_and(|out| {
        String::from_utf8_lossy(&[out.stdout, out.stderr].concat()).contains("OpenBSD")
    })
}
