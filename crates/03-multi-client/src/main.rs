//! The command line of lesson 3. The lesson itself is in lib.rs.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

const EXAMPLES: &str = "\
Examples:
  cargo run -p multi-client
      a thread per client, at most 64 at once, on 127.0.0.1:7890
  cargo run -p multi-client -- --one-at-a-time
      the original lesson's loop: a second client waits until the first leaves
  cargo run -p multi-client -- --max-clients 2 --idle-timeout 10
      a small cap, and clients silent for 10 s are disconnected

Then, in other terminals (each line you type gets `ok`; Ctrl-D ends):
  cargo run -p client
  nc -N 127.0.0.1 7890
  printf 'hello\\nworld\\n' | nc -N 127.0.0.1 7890";

/// Lesson 3: a TCP server for many clients.
///
/// Replies `ok` to every line each client sends, until the client closes.
/// By default each client is served on a thread of its own, at most
/// --max-clients at once; a client over the cap gets
/// `busy: too many clients, try again later` and is closed. With
/// --one-at-a-time it serves clients one after another, as the original
/// lesson does. Lines over 64 KiB are refused. The first line of output is
/// `listening on ADDR`; then one line per event, tagged with the client's
/// address. Ctrl-C stops the server.
#[derive(Parser)]
#[command(name = "03-multi-client", version, after_help = EXAMPLES)]
struct Args {
    /// The address to listen on: IP:PORT, or just IP (port 7890). Port 0
    /// picks a free port.
    #[arg(long, value_name = "ADDR", default_value = multi_client::DEFAULT_ADDR)]
    listen: String,

    /// Serve one client at a time (the original lesson's loop): the others
    /// wait in the kernel's queue until the current one leaves.
    #[arg(long)]
    one_at_a_time: bool,

    /// The most clients served at once, each on its own thread; more are
    /// told `busy` and closed.
    #[arg(long, value_name = "N", default_value_t = multi_client::DEFAULT_MAX_CLIENTS as u64,
          value_parser = clap::value_parser!(u64).range(1..=100_000),
          conflicts_with = "one_at_a_time")]
    max_clients: u64,

    /// Seconds a client may stay silent before it is disconnected; 0 for no
    /// limit.
    #[arg(long, value_name = "SECS", default_value_t = multi_client::DEFAULT_IDLE_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(0..=86400))]
    idle_timeout: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = multi_client::Config {
        listen: args.listen,
        one_at_a_time: args.one_at_a_time,
        max_clients: args.max_clients as usize,
        idle_timeout: (args.idle_timeout > 0).then(|| Duration::from_secs(args.idle_timeout)),
    };
    common::report(multi_client::run(&config))
}
