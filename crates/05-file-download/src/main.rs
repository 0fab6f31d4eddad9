//! The command line of lesson 5. The lesson itself is in lib.rs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  cargo run -p file-download -- serve /tmp/lesson5
      serve the files of the folder /tmp/lesson5 on 127.0.0.1:7799
  cargo run -p file-download -- list
      show what the server offers
  cargo run -p file-download -- get hello.txt -o /tmp/hello-copy.txt
      download hello.txt, saved as /tmp/hello-copy.txt (without -o: as
      hello.txt here); checked with SHA-256, resumed if cut
  printf 'GET hello.txt\\n' | nc -N 127.0.0.1 7799
      the same request by hand: `OK <size>`, the bytes, then `SHA256 <hex>`";

const SERVE_EXAMPLES: &str = "\
Examples:
  cargo run -p file-download -- serve
      serve the current folder on 127.0.0.1:7799
  cargo run -p file-download -- serve ~/Downloads --listen 0.0.0.0:7799
      serve a folder to other machines too
  cargo run -p file-download -- serve . --hidden --max-clients 4
      serve dotfiles as well, to at most 4 clients at once
  cargo run -p file-download -- serve . --max-clients 64 --max-per-address 4
      64 clients at once, at most 4 of them from any one machine";

const GET_EXAMPLES: &str = "\
Examples:
  cargo run -p file-download -- get notes.txt
      save the server's notes.txt as notes.txt here
  cargo run -p file-download -- get 'photos/my cat.jpg' -o cat.jpg --force
      save under another name, replacing it if it exists
  cargo run -p file-download -- get big.iso --server 192.168.1.20
      from another machine (port 7799); run it again to resume if cut";

const LIST_EXAMPLES: &str = "\
Examples:
  cargo run -p file-download -- list
      the files of the server on 127.0.0.1:7799: bytes, size, path
  cargo run -p file-download -- list --server 192.168.1.20
      of the server on another machine (port 7799)
  printf 'LIST\\n' | nc -N 127.0.0.1 7799
      the same request by hand: `OK <count>`, then `<size> <path>` per file";

/// Lesson 5: a file server and a downloader you can trust.
///
/// `serve` offers the files of a folder, and nothing outside it; `get`
/// downloads one file, checks its size and SHA-256, and resumes a transfer
/// that was cut; `list` shows what a server offers.
///
/// The protocol is one text line per request (`GET <path>`, `RESUME <offset>
/// <path>`, `LIST`), answered by `OK <size>`, the bytes and `SHA256
/// <sha256>`, by `OK <count>` and a line per file, or by `ERR <code>
/// <message>`.
#[derive(Parser)]
#[command(name = "05-file-download", version, after_help = EXAMPLES)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the files of a folder (and its subfolders).
    ///
    /// Refuses every path that leaves the folder (`..`, absolute paths,
    /// links that point outside), dotfiles unless --hidden, and anything
    /// that is not a regular file. Prints `listening on ADDR`, `serving
    /// FOLDER`, then one line per request.
    #[command(after_help = SERVE_EXAMPLES)]
    Serve {
        /// The folder to serve.
        #[arg(value_name = "DIR", default_value = ".")]
        dir: PathBuf,

        /// The address to listen on: IP:PORT, or just IP (port 7799). Port
        /// 0 picks a free port.
        #[arg(long, value_name = "ADDR", default_value = file_download::DEFAULT_ADDR)]
        listen: String,

        /// How many clients are served at once; more are told `ERR busy`.
        #[arg(long, value_name = "N", default_value_t = file_download::DEFAULT_MAX_CLIENTS,
              value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
        max_clients: usize,

        /// How many of those one client address may hold at once (an IPv6
        /// address counts by its /64); more are told `ERR busy`.
        #[arg(long, value_name = "N", default_value_t = file_download::MAX_CLIENTS_PER_ADDRESS,
              value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
        max_per_address: usize,

        /// Serve dotfiles too (names starting with `.`, such as .env).
        #[arg(long)]
        hidden: bool,

        /// Seconds a client has to send its whole request line.
        #[arg(long, value_name = "SECS",
              default_value_t = file_download::DEFAULT_REQUEST_TIMEOUT.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..=3600))]
        request_timeout: u64,

        /// Seconds over which a client must take at least 4096 bytes/s of
        /// a file; a slower one is dropped.
        #[arg(long, value_name = "SECS",
              default_value_t = file_download::DEFAULT_RATE_WINDOW.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..=3600))]
        rate_window: u64,
    },

    /// Download one file; resume it if an earlier attempt was cut.
    ///
    /// Writes to OUT.part, checks the size and SHA-256 the server announced,
    /// flushes to disk, and only then renames it to OUT. Prints one summary
    /// line on standard output (and a progress bar on standard error when
    /// that is a terminal).
    #[command(after_help = GET_EXAMPLES)]
    Get {
        /// The file's path in the served folder, with / between folders.
        #[arg(value_name = "PATH")]
        path: String,

        /// The server: HOST:PORT, [IPv6]:PORT, or just HOST (port 7799).
        #[arg(long, short, value_name = "ADDR", default_value = file_download::DEFAULT_ADDR)]
        server: String,

        /// Where to save it (default: the last part of PATH, in the
        /// current folder).
        #[arg(long, short, value_name = "OUT")]
        output: Option<PathBuf>,

        /// Replace OUT if it exists.
        #[arg(long)]
        force: bool,

        /// Seconds to wait for the connection, then for each whole line of
        /// the reply, and for each read of the file's bytes.
        #[arg(long, value_name = "SECS", default_value_t = file_download::DEFAULT_TIMEOUT.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..=3600))]
        timeout: u64,
    },

    /// List the files a server offers, with their sizes.
    ///
    /// Prints a table (the size in bytes and in KiB/MiB, then the path),
    /// sorted by path, and a line with the count and the total.
    #[command(after_help = LIST_EXAMPLES)]
    List {
        /// The server: HOST:PORT, [IPv6]:PORT, or just HOST (port 7799).
        #[arg(long, short, value_name = "ADDR", default_value = file_download::DEFAULT_ADDR)]
        server: String,

        /// Seconds to wait for the connection, and then for each line.
        #[arg(long, value_name = "SECS", default_value_t = file_download::DEFAULT_TIMEOUT.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..=3600))]
        timeout: u64,
    },
}

fn main() -> ExitCode {
    let result = match Args::parse().command {
        Command::Serve {
            dir,
            listen,
            max_clients,
            max_per_address,
            hidden,
            request_timeout,
            rate_window,
        } => file_download::serve(file_download::ServeOptions {
            folder: dir,
            listen,
            max_clients,
            max_per_address,
            hidden,
            request_timeout: Duration::from_secs(request_timeout),
            rate_window: Duration::from_secs(rate_window),
        }),
        Command::Get {
            path,
            server,
            output,
            force,
            timeout,
        } => file_download::get(&file_download::GetOptions {
            server,
            path,
            output,
            force,
            timeout: Duration::from_secs(timeout),
        }),
        Command::List { server, timeout } => {
            file_download::list(&server, Duration::from_secs(timeout))
        }
    };
    common::report(result)
}
