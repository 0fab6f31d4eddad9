//! Programs a test starts: [`Process`] reads their output line by line in
//! the background and answers the test's expectations with deadlines;
//! [`UnreadServer`] is a server whose log nobody reads; [`run`] runs a
//! program to its end.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::{QUIET, WAIT, show};

/// A program started by a test. Its standard output is read line by line in
/// the background (so it can never block on a full pipe) and handed to the
/// test through [`Process::next_line`] and friends; its standard error is
/// kept for failure messages. Dropping it kills the program and reaps it.
pub struct Process {
    name: String,
    pub(crate) child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every stdout line the test has taken so far, for failure messages.
    seen: Vec<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// Says when the stderr reader has reached end-of-file.
    pub(crate) stderr_done: Receiver<()>,
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
    /// `should` says, for the failure message, what the line should be.
    #[track_caller]
    pub fn next_line(&mut self, should: &str) -> String {
        match self.lines.recv_timeout(WAIT) {
            Ok(line) => {
                self.seen.push(line.clone());
                line
            }
            Err(RecvTimeoutError::Timeout) => self.fail(&format!(
                "{should}; got no line within {} s",
                WAIT.as_secs()
            )),
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.try_wait().ok().flatten();
                self.fail(&format!(
                    "{should}; but it closed its output (exit status: {})",
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
        // SIGSTOP stops each thread as it next enters the kernel, not when
        // kill(2) returns: a thread running on another core may still do a
        // little work meanwhile (accept a connection, and refuse it). Wait
        // until every thread is stopped (Linux's /proc; elsewhere, go on).
        #[cfg(target_os = "linux")]
        {
            let deadline = Instant::now() + WAIT;
            while !self.every_thread_stopped() {
                if Instant::now() > deadline {
                    self.fail(&format!(
                        "the test sent it SIGSTOP, and some of its threads were still running \
                         {} s later (a test that freezes a program needs all of it stopped)",
                        WAIT.as_secs()
                    ));
                }
                thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Whether every thread of the program is stopped (state `T` in
    /// /proc/PID/task/TID/stat; a thread gone meanwhile counts as stopped).
    #[cfg(target_os = "linux")]
    fn every_thread_stopped(&self) -> bool {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid())) else {
            return false;
        };
        tasks.filter_map(Result::ok).all(|task| {
            std::fs::read_to_string(task.path().join("stat"))
                .ok()
                .and_then(|stat| {
                    let state = stat
                        .get(stat.rfind(')')? + 1..)?
                        .split_whitespace()
                        .next()?;
                    Some(state == "T" || state == "t")
                })
                .unwrap_or(true)
        })
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
