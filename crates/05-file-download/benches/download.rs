//! Lesson 5's benchmark: our download against a raw byte pipe.
//!
//! ```console
//! $ cargo bench -p file-download                 # a 1 GiB file
//! $ cargo bench -p file-download -- --mib 64     # a quick run
//! $ BENCH_MIB=64 cargo bench -p file-download    # the same
//! ```
//!
//! It makes a file of --mib MiB (or BENCH_MIB; default 1024) of
//! pseudo-random bytes in a temporary folder, on tmpfs (/dev/shm) where
//! there is one, so the disk does not decide the result. Then --rounds
//! times (or BENCH_ROUNDS; default 5) after
//! one warm-up round, alternating which goes first:
//!
//! - a fresh `05-file-download serve`, and `get` run twice against it: the
//!   first download (the server computes the SHA-256 on a second thread
//!   while it sends) and a repeated one (the digest is known);
//! - the same bytes through a raw byte pipe over loopback into the same
//!   folder: `socat` if it is installed (with its default 8 KiB blocks, and
//!   with `-b 262144`, the buffer size our client uses), otherwise a
//!   minimal `std::io::copy` pair in this program;
//! - what a learner of the original lesson would use instead: a fresh
//!   `python3 -m http.server` serving the same folder, the file fetched with
//!   `curl`, then checked with `sha256sum` (against the digest this program
//!   computed beforehand): curl alone is an unverified download, curl then
//!   sha256sum a verified one, as `get`'s (which verifies as it goes).
//!   Where python3, curl or sha256sum is missing, it says so and skips that
//!   column.
//!
//! It prints the median MB/s of each (1 MB = 10^6 bytes), the ratios (the
//! first download against the repeated one, and `get` against curl and
//! sha256sum, with the Python version, among them), and
//! the peak resident memory (VmHWM) of our client and our server for each
//! kind of download (and of curl and Python's server). The binaries are the release builds `cargo bench`
//! makes. Linux only (it reads /proc).

// A benchmark is a test: it fails by panicking, with a message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use testkit::bench::{Python, times};
use testkit::on_path;

const EXAMPLES: &str = "\
Examples:
  cargo bench -p file-download
      a 1 GiB file
  cargo bench -p file-download -- --mib 64
      a quick run (BENCH_MIB=64 does the same)";

/// Lesson 5's download against a raw byte pipe over loopback: MB/s, and the
/// peak memory of client and server.
#[derive(Parser)]
// The name a reader types, not the harness binary's hashed file name.
#[command(bin_name = "cargo bench -p file-download --", after_help = EXAMPLES)]
struct Args {
    /// The size of the file, in MiB; BENCH_MIB sets the default.
    #[arg(long, value_name = "MIB", default_value_t = setting("BENCH_MIB", 1024),
          value_parser = clap::value_parser!(u64).range(1..))]
    mib: u64,

    /// How many rounds after the warm-up; the summary is the median.
    /// BENCH_ROUNDS sets the default.
    #[arg(long, default_value_t = setting("BENCH_ROUNDS", 5),
          value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,

    /// `cargo bench` passes this to every benchmark; it means nothing here.
    #[arg(long, hide = true)]
    bench: bool,
}

const CLIENT_BUFFER: usize = file_download::BUFFER_SIZE;
/// The first download of a file (its digest computed while it is sent)
/// should be at least this fast, against a repeated one (digest known).
const FIRST_TO_REPEATED: f64 = 0.8;

fn main() {
    let args = Args::parse();
    let mib = args.mib;
    let rounds = usize::try_from(args.rounds).unwrap();
    let size = mib * 1024 * 1024;
    let bench = Bench::new(size);
    let socat = on_path("socat");
    let original = Original::find(&bench);

    println!("file-download benchmark");
    println!("machine: {}", machine());
    println!(
        "load:    {} (other programs running share the cores)",
        load()
    );
    println!(
        "file:    {mib} MiB in {} ({}), {} after a warm-up",
        bench.dir.display(),
        if bench.dir.starts_with("/dev/shm") {
            "tmpfs"
        } else {
            "not tmpfs: the disk may decide"
        },
        common::count(args.rounds, "round")
    );
    match &socat {
        Some(socat) => println!(
            "raw pipe: {} (default 8 KiB blocks, and -b {CLIENT_BUFFER})",
            socat.display()
        ),
        None => println!("raw pipe: socat is not installed; a std::io::copy pair in this program"),
    }
    match &original {
        Ok(original) => println!(
            "original: {} -m http.server ({}), curl, then sha256sum",
            original.python.path.display(),
            original.python.version
        ),
        Err(why) => println!("original: the Python column is skipped: {why}"),
    }

    let mut first = Vec::new();
    let mut repeated = Vec::new();
    let mut raw_default = Vec::new();
    let mut raw_big = Vec::new();
    let mut curls = Vec::new();
    let mut verifieds = Vec::new();
    for round in 0..=rounds {
        let mut ours = None;
        let mut raws = None;
        let mut python = None;
        // Who goes first changes from round to round.
        for turn in 0..3 {
            match (round + turn) % 3 {
                0 => ours = Some(bench.ours()),
                1 => {
                    raws = Some(match &socat {
                        Some(socat) => (
                            bench.socat(socat, None),
                            Some(bench.socat(socat, Some(CLIENT_BUFFER))),
                        ),
                        None => (bench.std_pipe(), None),
                    })
                }
                _ => {
                    python = original
                        .as_ref()
                        .ok()
                        .map(|original| original.download(&bench))
                }
            }
        }
        let ((f, r), (d, b)) = (ours.unwrap(), raws.unwrap());
        let label = if round == 0 {
            "warm-up".to_string()
        } else {
            format!("round {round}")
        };
        println!(
            "{label:>8}: first {:7.0} MB/s, repeated {:7.0} MB/s ({:.2}), raw {:7.0} MB/s{}",
            f.mb_per_s(size),
            r.mb_per_s(size),
            f.mb_per_s(size) / r.mb_per_s(size),
            d.mb_per_s(size),
            b.map(|b| format!(", raw -b {CLIENT_BUFFER} {:7.0} MB/s", b.mb_per_s(size)))
                .unwrap_or_default()
        );
        if let Some((curl, verified)) = python {
            println!(
                "{:>8}  curl from http.server {:7.0} MB/s, then sha256sum {:7.0} MB/s",
                "",
                curl.mb_per_s(size),
                verified.mb_per_s(size)
            );
            if round > 0 {
                curls.push(curl);
                verifieds.push(verified);
            }
        }
        if round > 0 {
            first.push(f);
            repeated.push(r);
            raw_default.push(d);
            raw_big.extend(b);
        }
    }

    let raw_name = if socat.is_some() {
        "socat"
    } else {
        "std::io::copy pair"
    };
    let raw = median(&raw_default, size);
    println!();
    println!("median of {}:", common::count(args.rounds, "round"));
    println!(
        "{:<30} {:>9} {:>10} {:>16} {:>16}",
        "",
        "MB/s",
        format!("vs {raw_name}"),
        "client VmHWM",
        "server VmHWM"
    );
    let mut downloads = vec![
        ("first download (sha256 new)", &first),
        ("repeated download (known)", &repeated),
    ];
    if original.is_ok() {
        // Their client is curl, their server Python's.
        downloads.push(("curl from http.server", &curls));
        downloads.push(("curl, then sha256sum", &verifieds));
    }
    for (name, runs) in downloads {
        let speed = median(runs, size);
        println!(
            "{name:<30} {speed:>9.0} {:>10.2} {:>13} KiB {:>13} KiB",
            speed / raw,
            runs.iter().map(|run| run.client_kib).max().unwrap_or(0),
            runs.iter().map(|run| run.server_kib).max().unwrap_or(0),
        );
    }
    println!("{raw_name:<30} {raw:>9.0} {:>10.2}", 1.0);
    if !raw_big.is_empty() {
        let big = median(&raw_big, size);
        println!(
            "{:<30} {big:>9.0} {:>10.2}",
            format!("socat -b {CLIENT_BUFFER}"),
            big / raw
        );
        println!(
            "(against socat -b {CLIENT_BUFFER}: first {:.2}, repeated {:.2})",
            median(&first, size) / big,
            median(&repeated, size) / big
        );
    }
    if let Ok(original) = &original {
        let (curl, verified) = (median(&curls, size), median(&verifieds, size));
        for (name, runs) in [("first", &first), ("repeated", &repeated)] {
            let ours = median(runs, size);
            println!(
                "get ({name} download, verified) {ours:.0} MB/s = {} curl, then sha256sum \
                 ({verified:.0} MB/s, verified); {} curl alone ({curl:.0} MB/s, not verified); \
                 {} -m http.server",
                times(ours, verified),
                times(ours, curl),
                original.python.version,
            );
        }
    }
    println!(
        "first / repeated: {:.2} (target >= {FIRST_TO_REPEATED:.2})",
        median(&first, size) / median(&repeated, size)
    );
    println!(
        "targets: repeated >= 1.00, first >= 0.50 of the raw pipe; VmHWM <= 16384 KiB each side"
    );
}

/// One timed transfer.
#[derive(Clone, Copy)]
struct Run {
    seconds: f64,
    client_kib: u64,
    server_kib: u64,
}

impl Run {
    fn mb_per_s(&self, size: u64) -> f64 {
        size as f64 / self.seconds / 1e6
    }
}

fn median(runs: &[Run], size: u64) -> f64 {
    testkit::bench::median(runs.iter().map(|run| run.mb_per_s(size)))
}

struct Bench {
    dir: PathBuf,
    served: PathBuf,
    out: PathBuf,
    size: u64,
}

impl Bench {
    fn new(size: u64) -> Bench {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("file-download-bench-{}", std::process::id()));
        let served = dir.join("served");
        let out = dir.join("out");
        fs::create_dir_all(&served).unwrap();
        fs::create_dir_all(&out).unwrap();
        // Pseudo-random bytes (xorshift64), 1 MiB at a time.
        let mut file = io::BufWriter::new(File::create(served.join("big.bin")).unwrap());
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut chunk = vec![0u8; 1024 * 1024];
        for _ in 0..size / chunk.len() as u64 {
            for word in chunk.chunks_exact_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                word.copy_from_slice(&state.to_le_bytes());
            }
            file.write_all(&chunk).unwrap();
        }
        file.flush().unwrap();
        Bench {
            dir,
            served,
            out,
            size,
        }
    }

    /// A fresh server, and two downloads from it: (first, repeated).
    fn ours(&self) -> (Run, Run) {
        let program = Path::new(env!("CARGO_BIN_EXE_05-file-download"));
        let mut server = Command::new(program)
            .args([
                "serve",
                self.served.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
        let first_line = lines.next().unwrap().unwrap();
        let addr: SocketAddr = first_line
            .strip_prefix("listening on ")
            .unwrap()
            .parse()
            .unwrap();
        // Keep reading the server's log, so it never waits on a full pipe.
        thread::spawn(move || for _ in lines {});

        let runs = [
            self.download(program, addr, server.id()),
            self.download(program, addr, server.id()),
        ];
        stop(&mut server);
        (runs[0], runs[1])
    }

    fn download(&self, program: &Path, addr: SocketAddr, server: u32) -> Run {
        // Reset the server's high-water mark, to measure this download alone.
        let _ = fs::write(format!("/proc/{server}/clear_refs"), "5");
        // Into a new file each time, as the raw pipe writes: replacing a
        // file of this size costs time of its own (freeing its pages).
        let out = self.out.join("big.bin");
        let _ = fs::remove_file(&out);
        let started = Instant::now();
        let client = Command::new(program)
            .args([
                "get",
                "big.bin",
                "--server",
                &addr.to_string(),
                "--force",
                "-o",
            ])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let (seconds, client_kib) = wait_measuring(client, started);
        assert_eq!(
            fs::metadata(&out).unwrap().len(),
            self.size,
            "our download should be whole"
        );
        Run {
            seconds,
            client_kib,
            server_kib: vm_hwm_kib(server).unwrap_or(0),
        }
    }

    /// socat from the file, over loopback, into a file in the same folder.
    fn socat(&self, socat: &Path, block: Option<usize>) -> Run {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = self.out.join("raw.bin");
        let block: Vec<String> = block
            .map(|b| vec!["-b".to_string(), b.to_string()])
            .unwrap_or_default();
        let receiver = Command::new(socat)
            .arg("-u")
            .args(&block)
            .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr"))
            .arg(format!("OPEN:{},creat,trunc", out.display()))
            .spawn()
            .unwrap();
        let started = Instant::now();
        // retry: the receiver may not be listening yet (a few ms at most).
        let sender = Command::new(socat)
            .arg("-u")
            .args(&block)
            .arg(format!("OPEN:{}", self.served.join("big.bin").display()))
            .arg(format!("TCP:127.0.0.1:{port},retry=500,interval=0.002"))
            .spawn()
            .unwrap();
        let (seconds, _) = wait_measuring(receiver, started);
        let _ = wait_measuring(sender, started);
        self.raw_run(&out, seconds)
    }

    /// Without socat: std::io::copy from the file to a socket, and from the
    /// socket to a file, on two threads of this program.
    fn std_pipe(&self) -> Run {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let out = self.out.join("raw.bin");
        let source = self.served.join("big.bin");
        let started = Instant::now();
        let receiver = {
            let out = out.clone();
            thread::spawn(move || {
                let (mut stream, _) = listener.accept().unwrap();
                io::copy(&mut stream, &mut File::create(out).unwrap()).unwrap();
            })
        };
        let mut stream = TcpStream::connect(addr).unwrap();
        io::copy(&mut File::open(source).unwrap(), &mut stream).unwrap();
        drop(stream);
        receiver.join().unwrap();
        let seconds = started.elapsed().as_secs_f64();
        self.raw_run(&out, seconds)
    }
}

impl Bench {
    /// The result of a raw copy into `out`, checked whole and removed.
    fn raw_run(&self, out: &Path, seconds: f64) -> Run {
        let copied = fs::metadata(out).unwrap().len();
        assert_eq!(copied, self.size, "the raw copy should be whole");
        let _ = fs::remove_file(out);
        Run {
            seconds,
            client_kib: 0,
            server_kib: 0,
        }
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Waits for `child` to exit, reading its peak memory as it runs; returns
/// the seconds since `started` and the last VmHWM read (KiB). VmHWM only
/// grows, so the last reading before the exit is the peak.
fn wait_measuring(mut child: Child, started: Instant) -> (f64, u64) {
    let mut peak = 0;
    loop {
        if let Some(kib) = vm_hwm_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "a benchmarked program failed: {status}");
            return (started.elapsed().as_secs_f64(), peak);
        }
        thread::sleep(Duration::from_millis(2));
    }
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
        Err(_) => default,
    }
}

/// What a learner of the original lesson would use instead of lesson 5:
/// Python's HTTP server, curl, and sha256sum to check the file.
struct Original {
    python: Python,
    curl: PathBuf,
    sha256sum: PathBuf,
    /// The file's SHA-256, computed before the rounds (not timed).
    digest: String,
}

impl Original {
    /// The three programs, or why the column is skipped.
    fn find(bench: &Bench) -> Result<Original, String> {
        let python = Python::find()?;
        let curl = on_path("curl").ok_or("curl is not installed (not on PATH)")?;
        let sha256sum = on_path("sha256sum").ok_or("sha256sum is not installed (not on PATH)")?;
        let file = File::open(bench.served.join("big.bin")).unwrap();
        let (digest, _) = file_download::sha256_of(file).unwrap();
        Ok(Original {
            python,
            curl,
            sha256sum,
            digest,
        })
    }

    /// A fresh `python3 -m http.server`, and one download from it with
    /// curl, then sha256sum: (curl alone, curl then sha256sum), both
    /// timed from curl's start.
    fn download(&self, bench: &Bench) -> (Run, Run) {
        // -u: its first line, the port, must not wait in a pipe's buffer.
        let mut server = Command::new(&self.python.path)
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(&bench.served)
            .stdout(Stdio::piped())
            // One line per request: not this benchmark's output.
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
        // `Serving HTTP on 127.0.0.1 port 46705 (http://127.0.0.1:46705/) ...`
        let first_line = lines.next().unwrap().unwrap();
        let port: u16 = first_line
            .split_whitespace()
            .skip_while(|word| *word != "port")
            .nth(1)
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("python3 -m http.server said {first_line:?}"));
        thread::spawn(move || for _ in lines {});

        let out = bench.out.join("curl.bin");
        let _ = fs::remove_file(&out);
        let started = Instant::now();
        let curl = Command::new(&self.curl)
            .args(["--silent", "--show-error", "--fail", "--output"])
            .arg(&out)
            .arg(format!("http://127.0.0.1:{port}/big.bin"))
            .spawn()
            .unwrap();
        let (curl_seconds, curl_kib) = wait_measuring(curl, started);
        let check = Command::new(&self.sha256sum)
            .arg(&out)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
            .wait_with_output()
            .unwrap();
        let seconds = started.elapsed().as_secs_f64();
        let server_kib = vm_hwm_kib(server.id()).unwrap_or(0);
        stop(&mut server);
        let said = String::from_utf8_lossy(&check.stdout);
        assert!(
            check.status.success() && said.starts_with(&self.digest),
            "sha256sum of curl's download should be the file's, {}; it said {said:?}",
            self.digest
        );
        let _ = fs::remove_file(&out);
        let run = |seconds| Run {
            seconds,
            client_kib: curl_kib,
            server_kib,
        };
        (run(curl_seconds), run(seconds))
    }
}

fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cpus} x {model} ({}), Linux {}",
        std::env::consts::ARCH,
        kernel.trim()
    )
}

/// The load averages (1, 5, 15 minutes) from /proc/loadavg.
fn load() -> String {
    let text = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
