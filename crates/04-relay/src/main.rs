//! The command line of lesson 4. The lesson itself is in lib.rs and its modules.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

const EXAMPLES: &str = "\
Examples, each in a terminal of its own:
  cargo run -p relay -- serve
      the relay server, on 127.0.0.1:7788
  cargo run -p relay -- join alice
  cargo run -p relay -- join bob
      two clients; type `/to bob hi` in alice's, `/direct alice hi` in bob's
  nc 127.0.0.1 7788
      talk the protocol by hand: HELLO carol, LIST, SEND alice hi, BYE";

const SERVE_EXAMPLES: &str = "\
Examples:
  cargo run -p relay -- serve
      listen on 127.0.0.1:7788, at most 64 clients at once
  cargo run -p relay -- serve --listen 0.0.0.0:7788
      accept clients from other machines too
  cargo run -p relay -- serve --listen 127.0.0.1:0 --max-clients 4
      a free port (printed on the first line), at most 4 clients
  cargo run -p relay -- serve --log-text
      log what everyone says, not only how many bytes (for a demo)
  cargo run -p relay -- serve --stuck-after 3
      drop a client that takes no line for 3 s, not 10 (to watch the
      slow-receiver design at work without waiting)";

const JOIN_EXAMPLES: &str = "\
Examples:
  cargo run -p relay -- join alice
      join the relay on 127.0.0.1:7788 as alice, reachable directly
  cargo run -p relay -- join bob --server 192.168.1.20
      join a relay on another machine (port 7788)
  cargo run -p relay -- join carol --no-listen
      relay only: nobody can connect to carol directly
  cargo run -p relay -- join dave --direct-deadline 3
      cut off a peer connected directly after 3 s, not 10

Then type (a plain line goes to everyone):
  /list               who is here
  /to bob hi there    one line to bob, through the server
  /all hi everyone    one line to everyone else, through the server
  /where bob          ask the server where bob listens
  /direct bob hi      connect to bob and send `hi` without the server
  /quit               leave (so does Ctrl-D)";

/// Lesson 4: clients talking through a server.
///
/// `serve` runs the relay: clients register with a name, and the server
/// passes their lines on to one client or to all, and tells a client where
/// another one listens so they can connect directly. `join` is a client.
///
/// The protocol is UTF-8 lines of at most 4096 bytes: HELLO <name>
/// [<listen-port>], LIST, SEND <name> <text>, ALL <text>, WHERE <name>, BYE;
/// answered by WELCOME, PEERS, SENT, AT, BYE or `ERR <code>`, with FROM,
/// JOINED and LEFT arriving unasked.
#[derive(Parser)]
#[command(name = "04-relay", version, after_help = EXAMPLES)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the relay server.
    ///
    /// Prints `listening on ADDR`, then one line per event: who joined from
    /// where, who sent how many bytes to whom (never the text, unless
    /// --log-text), who left and why. Each client has a
    /// queue of 128 lines: a sender whose line finds it full waits for room,
    /// 2 s at most (then `ERR full NAME`), and a client the server cannot
    /// write a line to for 10 s (--stuck-after) is dropped, so a client that stops reading
    /// never holds up anyone else. A registered client that sends nothing
    /// for 300 s (--idle-limit) is closed. Ctrl-C stops the server.
    #[command(after_help = SERVE_EXAMPLES)]
    Serve {
        /// The address to listen on: IP:PORT, or just IP (port 7788). Port
        /// 0 picks a free port.
        #[arg(long, value_name = "ADDR", default_value = relay::DEFAULT_ADDR)]
        listen: String,

        /// The most clients served at once (at most 100, so that `PEERS`
        /// fits on one line); more are told `ERR busy` and closed.
        #[arg(long, value_name = "N", default_value_t = relay::DEFAULT_MAX_CLIENTS,
              value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
                  .range(1..=relay::MAX_CLIENTS_LIMIT as u64))]
        max_clients: usize,

        /// Seconds a new connection has to send HELLO before it is closed.
        #[arg(long, value_name = "SECS", default_value_t = relay::DEFAULT_HELLO_TIMEOUT.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..=3600))]
        hello_timeout: u64,

        /// Seconds a line may wait to be written to a client before the
        /// client is dropped as not reading (its buffers and queue are full).
        #[arg(long, value_name = "SECS", default_value_t = relay::STUCK_AFTER.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..=3600))]
        stuck_after: u64,

        /// Seconds a registered client may send nothing before it is
        /// closed (any line restarts it; `join` says something every 60 s).
        #[arg(long, value_name = "SECS", default_value_t = relay::DEFAULT_IDLE_LIMIT.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..=86400))]
        idle_limit: u64,

        /// Also log the text of every relayed (and refused) line, escaped.
        /// Off by default: the log is no place for everyone's private lines.
        #[arg(long)]
        log_text: bool,
    },

    /// Join the relay as NAME, and chat.
    ///
    /// Listens on a port of its own for direct messages (announced in
    /// HELLO) unless --no-listen. Then sends what you type, and prints each
    /// line that arrives as it comes: `[bob] hi` through the server,
    /// `[direct from bob] hi` straight from bob, `-- ...` for notices.
    /// Exits 0 after /quit or the end of input; non-zero, with one line on
    /// standard error, if the server refuses the name or goes away.
    #[command(after_help = JOIN_EXAMPLES)]
    Join {
        /// The name to register: 1 to 32 letters, digits, `_` or `-`.
        #[arg(value_name = "NAME")]
        name: String,

        /// The relay server: HOST:PORT, [IPv6]:PORT, or just HOST (port 7788).
        #[arg(long, short, value_name = "ADDR", default_value = relay::DEFAULT_ADDR)]
        server: String,

        /// Do not listen for direct connections: peers can reach us only
        /// through the server (`WHERE` answers `ERR not-listening`).
        #[arg(long)]
        no_listen: bool,

        /// Seconds to wait to connect, for the server's WELCOME, and for it
        /// to close after BYE.
        #[arg(long, value_name = "SECS", default_value_t = relay::DEFAULT_TIMEOUT.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..=3600))]
        timeout: u64,

        /// Seconds a peer connected directly has, from the accept, to say
        /// HI, send its lines and close; then it is cut off.
        #[arg(long, value_name = "SECS", default_value_t = relay::DIRECT_DEADLINE.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..=3600))]
        direct_deadline: u64,
    },
}

fn main() -> ExitCode {
    let result = match Args::parse().command {
        Command::Serve {
            listen,
            max_clients,
            hello_timeout,
            stuck_after,
            idle_limit,
            log_text,
        } => relay::serve(&relay::ServeOptions {
            listen,
            max_clients,
            limits: relay::ClientLimits {
                hello_timeout: Duration::from_secs(hello_timeout),
                stuck_after: Duration::from_secs(stuck_after),
                idle_limit: Duration::from_secs(idle_limit),
            },
            log_text,
        }),
        Command::Join {
            name,
            server,
            no_listen,
            timeout,
            direct_deadline,
        } => relay::join(
            &relay::JoinOptions {
                name,
                server,
                listen: !no_listen,
                timeout: Duration::from_secs(timeout),
                direct_deadline: Duration::from_secs(direct_deadline),
            },
            std::io::BufReader::new(std::io::stdin()),
        ),
    };
    common::report(result)
}
