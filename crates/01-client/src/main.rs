//! The command line of lesson 1. The lesson itself is in lib.rs.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

const EXAMPLES: &str = "\
Examples:
  cargo run -p client -- hello
      send `hello` to 127.0.0.1:7890 (start lesson 2 first: cargo run -p server)
  cargo run -p client -- --server localhost:7890 hello there
      try each address `localhost` names; the words are sent as `hello there`
  cargo run -p client -- --server [::1]:7890 hi
      connect over IPv6
  cargo run -p client
      type lines; each is sent as you press Enter, replies show as they come;
      Ctrl-D ends the input (useful with lesson 3: cargo run -p multi-client)";

/// Lesson 1: a TCP client.
///
/// Connects to the server, sends the message and a newline, closes its
/// sending side (so the server sees the end of the message), prints each
/// reply line until the server closes the connection, and exits 0.
///
/// Text that arrives is printed with control characters and invalid UTF-8
/// escaped (`\n`, `\u{1b}`, `\xff`), never raw.
#[derive(Parser)]
#[command(name = "01-client", version, after_help = EXAMPLES)]
struct Args {
    /// The server: HOST:PORT, [IPv6]:PORT, or just HOST (port 7890).
    #[arg(long, short, value_name = "ADDR", default_value = client::DEFAULT_SERVER)]
    server: String,

    /// Seconds to wait for the connection, and then for each reply.
    #[arg(long, value_name = "SECS", default_value_t = client::DEFAULT_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: u64,

    /// The message, sent as one line (the words joined with spaces). Without
    /// it, each line of standard input is sent as it is typed.
    #[arg(value_name = "MESSAGE")]
    message: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let timeout = Duration::from_secs(args.timeout);
    let result = if args.message.is_empty() {
        client::send_lines(&args.server, timeout, client::stdin_lines())
    } else {
        client::send_message(&args.server, timeout, &args.message.join(" "))
    };
    common::report(result)
}
