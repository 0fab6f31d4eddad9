//! What the benchmarks share: starting and stopping the server, the
//! Python to compare with, and figures from samples in units that suit them.
//! (The benchmarks are plain programs in each lesson's `benches/`; they use
//! the test kit as a dev-dependency.)

use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

/// The duration that `percent` % of the `sorted` ones do not exceed.
pub fn percentile(sorted: &[Duration], percent: f64) -> Duration {
    let last = sorted.len().saturating_sub(1);
    let at = ((percent / 100.0) * last as f64).round() as usize;
    sorted.get(at).copied().unwrap_or_default()
}

/// The median of `values` (the upper middle one for an even number):
/// what a benchmark reports over several runs, since one run on a busy
/// machine can be far off. `values` must not be empty.
#[track_caller]
pub fn median<T: Copy + PartialOrd>(values: impl IntoIterator<Item = T>) -> T {
    let mut values: Vec<T> = values.into_iter().collect();
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values[values.len() / 2]
}

/// A duration in the unit that suits it: `0.150 ms`, `38 ms`, `12.5 s`.
pub fn show(d: Duration) -> String {
    if d < Duration::from_millis(10) {
        format!("{:.3} ms", d.as_secs_f64() * 1e3)
    } else if d < Duration::from_secs(10) {
        format!("{:.0} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Starts server `bin` with `args` and `--listen 127.0.0.1:0`, and reads its
/// first line, `listening on ADDR`. Returns the process, the address, and
/// the rest of its standard output (its log): keep reading that, or the
/// server blocks when the pipe is full.
pub fn start_server(
    bin: &str,
    args: &[&str],
) -> io::Result<(Child, SocketAddr, BufReader<ChildStdout>)> {
    let mut child = Command::new(bin)
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|err| io::Error::other(format!("could not start {bin}: {err}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("no stdout pipe"))?;
    let mut log = BufReader::new(stdout);
    let mut first = String::new();
    log.read_line(&mut first)?;
    let addr = first
        .trim_end()
        .strip_prefix("listening on ")
        .and_then(|addr| addr.parse().ok())
        .ok_or_else(|| io::Error::other(format!("the server's first line was {first:?}")))?;
    Ok((child, addr, log))
}

/// A server under test whose log is read and thrown away (or the pipe
/// fills and the server blocks on printing, or drops log lines); dropping
/// it kills the server.
pub struct Server {
    child: Child,
    /// Where it listens: from its first line, `listening on ADDR`.
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `bin` with `args` and `--listen 127.0.0.1:0` (see
    /// [`start_server`]).
    pub fn start(bin: &str, args: &[&str]) -> io::Result<Server> {
        Server::start_reading_log(bin, args, |mut log| {
            let _ = io::copy(&mut log, &mut io::sink());
        })
    }

    /// [`start`](Server::start), with the server's log (its output after
    /// the first line) given to `read_log` on a thread of its own, to keep
    /// what it needs. It must read to the end, or the server blocks when
    /// the pipe is full.
    pub fn start_reading_log(
        bin: &str,
        args: &[&str],
        read_log: impl FnOnce(BufReader<ChildStdout>) + Send + 'static,
    ) -> io::Result<Server> {
        let (child, addr, log) = start_server(bin, args)?;
        std::thread::spawn(move || read_log(log));
        Ok(Server { child, addr })
    }

    /// Its process id, to read its memory and threads from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python that the benchmarks measure the lessons against: the
/// language of the original lesson, and what a learner would have used
/// instead.
pub struct Python {
    /// The `python3` program.
    pub path: PathBuf,
    /// What `python3 --version` says: `Python 3.11.7`.
    pub version: String,
}

impl Python {
    /// `python3` from `PATH` and its version, or why a benchmark's Python
    /// column is skipped: the benchmark says so and runs the rest.
    pub fn find() -> Result<Python, String> {
        let path = crate::on_path("python3")
            .ok_or("python3 is not installed (not on PATH): install it to compare")?;
        let out = Command::new(&path)
            .arg("--version")
            .output()
            .map_err(|err| format!("{} --version failed: {err}", path.display()))?;
        // Python 2 printed its version on stderr; any python3 on stdout.
        let version = String::from_utf8_lossy(&[out.stdout, out.stderr].concat())
            .trim()
            .to_string();
        if !out.status.success() || !version.starts_with("Python 3") {
            return Err(format!(
                "{} --version said {version:?}, not `Python 3...`",
                path.display()
            ));
        }
        Ok(Python { path, version })
    }
}

/// `ours` against `theirs` as a ratio, for the lines that compare a
/// lesson with the program a learner would have used: `3.14x`.
pub fn times(ours: f64, theirs: f64) -> String {
    format!("{:.2}x", ours / theirs)
}
