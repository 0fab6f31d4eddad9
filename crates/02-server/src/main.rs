//! The command line of lesson 2. The lesson itself is in lib.rs.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

const EXAMPLES: &str = "\
Examples:
  cargo run -p server
      listen on 127.0.0.1:7890, serve one client, exit
  cargo run -p server -- --listen 127.0.0.1:0
      let the kernel pick a free port (printed on the first line)
  cargo run -p server -- --listen 0.0.0.0:7890
      accept clients from other machines too

Then, in a second terminal:
  cargo run -p client -- hello
  printf 'hello\\n' | nc -N 127.0.0.1 7890";

/// Lesson 2: a one-shot TCP server.
///
/// Creates a socket, binds it, listens (backlog 128), accepts one client,
/// reads its message (up to the first newline, at most 1024 bytes), replies
/// `OK`, closes the connection and exits. The first line of output is
/// `listening on ADDR`, with the address really bound.
#[derive(Parser)]
#[command(name = "02-server", version, after_help = EXAMPLES)]
struct Args {
    /// The address to listen on: IP:PORT, or just IP (port 7890). Port 0
    /// picks a free port.
    #[arg(long, value_name = "ADDR", default_value = server::DEFAULT_ADDR)]
    listen: String,

    /// The deadline, in seconds from the accept, for the client's whole
    /// message: a client still sending when it passes is given up on.
    #[arg(long, value_name = "SECS", default_value_t = server::DEFAULT_RECEIVE_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    timeout: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    common::report(server::run(&args.listen, Duration::from_secs(args.timeout)))
}
