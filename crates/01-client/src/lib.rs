//! Lesson 1: a TCP client.
//!
//! The original lesson's client does four things, and this file follows
//! them in order:
//!
//! 1. connect to the server,
//! 2. send a message,
//! 3. close its sending side, so the server knows the message is complete,
//! 4. read the reply until the server closes.
//!
//! [`send_message`] is that whole program. [`send_lines`] is the same
//! conversation typed line by line, with replies printed as they arrive;
//! it is handy against lesson 3's server.

use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{Context, bail};
use common::{ReadLine, describe, printable, read_line, say};

// ANCHOR: limits
/// The server we talk to unless told otherwise: lesson 2's default address.
pub const DEFAULT_SERVER: &str = "127.0.0.1:7890";
/// The port used when `--server` names only a host.
pub const DEFAULT_PORT: u16 = 7890;
/// How long we wait to connect, and then for each reply, unless `--timeout`
/// says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest reply line we hold in memory; a longer one is an error.
pub const REPLY_LIMIT: usize = 64 * 1024;
/// What to run when nobody is listening.
const START_SERVER: &str = "cargo run -p server";
// ANCHOR_END: limits

// ANCHOR: send_message
/// Connects to `server`, sends `message` and a newline, half-closes, and
/// prints the reply until the server closes the connection.
pub fn send_message(server: &str, timeout: Duration, message: &str) -> anyhow::Result<()> {
    // Step 1: connect.
    let mut stream = connect(server, timeout)?;
    let peer = stream
        .peer_addr()
        .context("could not read the server's address")?;

    // Step 2: send the message and its newline. write_all() loops until the
    // kernel has taken every byte; a single write() may take only part of a
    // long message and return how much it took, and ignoring that count
    // loses the rest. The line goes out in one call: a server that reads
    // once (as the original does) should find the whole line there, not
    // the message now and its newline a moment later.
    stream.set_write_timeout(Some(timeout))?;
    // exercise 1.2: begin
    //~ todo!();
    let line = format!("{message}\n");
    stream
        .write_all(line.as_bytes())
        .map_err(|err| anyhow::anyhow!("could not send to {peer}: {}", describe(&err)))?;
    // exercise 1.2: end
    say!(
        "sent {}: {}",
        common::count(message.len() as u64, "byte"),
        printable(message.as_bytes())
    );

    // Step 3: half-close. shutdown(Write) sends FIN: the server's next read
    // returns 0 bytes, "end of input", so it knows the message is complete
    // even if it does not look for the newline. Our reading side stays
    // open for the reply.
    half_close(&stream, peer)?;

    // Step 4: read the reply until the server closes. The timeout bounds
    // each wait, so a server that never answers cannot hang us.
    stream.set_read_timeout(Some(timeout))?;
    print_replies(stream, peer, timeout)
}
// ANCHOR_END: send_message

/// Step 3: shutdown(Write). After a server replied and closed the whole
/// connection (the original one-shot server does), this still succeeds on
/// Linux: the server's FIN does not end our sending side. Only a reset (a
/// server that closed with bytes of ours unread) makes it fail with "not
/// connected": that is no error for us, and on Linux the reply that came
/// before the reset is still waiting in our receive buffer.
fn half_close(stream: &TcpStream, peer: SocketAddr) -> anyhow::Result<()> {
    // exercise 1.2: begin
    match stream.shutdown(Shutdown::Write) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == ErrorKind::NotConnected => Ok(()),
        Err(err) => bail!(
            "could not half-close the connection to {peer}: {}",
            describe(&err)
        ),
    }
    // exercise 1.2: end
}

// ANCHOR: connect
/// Step 1: resolve the address, try each address it names in turn, and
/// report which one answered and which local port the kernel gave us.
fn connect(server: &str, timeout: Duration) -> anyhow::Result<TcpStream> {
    let stream = common::connect(server, DEFAULT_PORT, timeout, START_SERVER)?;
    let peer = stream
        .peer_addr()
        .context("could not read the server's address")?;
    // We never chose a local port: connect() made the kernel pick a free
    // "ephemeral" one. The server sees us as this address.
    let local = stream
        .local_addr()
        .context("could not read our own address")?;
    say!("connected to {peer} (local {local})");
    Ok(stream)
}
// ANCHOR_END: connect

// ANCHOR: print_replies
/// Step 4: prints each reply line until the server closes the connection.
fn print_replies(stream: TcpStream, peer: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    // exercise 1.3: begin
    let mut replies = BufReader::new(stream);
    loop {
        match read_line(&mut replies, REPLY_LIMIT) {
            Ok(ReadLine::Line(line)) => print_reply(&line),
            Ok(ReadLine::Closed) => {
                say!("server closed the connection");
                return Ok(());
            }
            Ok(ReadLine::TooLong) => {
                bail!("the server at {peer} sent a line longer than {REPLY_LIMIT} bytes")
            }
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => bail!(
                "no reply from {peer} within {} s (the server accepted the connection but neither answered nor closed it)",
                timeout.as_secs_f64()
            ),
            Err(err) => bail!("lost the connection to {peer}: {}", describe(&err)),
        }
    }
    // exercise 1.3: end
}

/// Prints one reply line, escaped (`reply: LINE`). A line that only another
/// lesson's server sends (lesson 4's relay, lesson 5's file server: this
/// client speaks the protocol of lessons 2, 3 and 6) gets a note saying
/// which server answered and what its own client is.
fn print_reply(line: &[u8]) {
    say!("reply: {}", printable(line));
    if let Some(server) = common::other_server(&[2, 3, 6], line) {
        say!(
            "note: that is {}, not a server of lessons 2, 3 or 6: its own client is {}",
            server.name,
            server.client
        );
    }
}
// ANCHOR_END: print_replies

// ANCHOR: send_lines
/// What the two helper threads of [`send_lines`] report to the main one.
enum Event {
    /// A line typed on standard input (without its newline).
    Typed(Vec<u8>),
    /// Standard input ended (Ctrl-D, or the end of a piped file).
    EndOfInput,
    /// The server closed the connection, or reading from it failed.
    ServerDone(anyhow::Result<()>),
}

/// Connects to `server` and sends each line of `input` as it is typed,
/// printing replies as they arrive. At the end of `input` it half-closes and
/// waits (at most `timeout`) for the server to close.
///
/// Two things can happen at any moment: the user types a line, or the
/// server sends one. A thread waits for each, and both report to this one
/// through a channel, which takes events in the order they happen.
pub fn send_lines(
    server: &str,
    timeout: Duration,
    input: impl BufRead + Send + 'static,
) -> anyhow::Result<()> {
    let mut stream = connect(server, timeout)?;
    let peer = stream
        .peer_addr()
        .context("could not read the server's address")?;
    stream.set_write_timeout(Some(timeout))?;
    let (events, next_event) = mpsc::channel();

    // The reply reader: a second handle to the same socket. No read timeout
    // here: while the user is typing, the server has nothing to say.
    let replies = stream.try_clone().context("could not clone the socket")?;
    let to_main = events.clone();
    thread::spawn(move || {
        let _ = to_main.send(Event::ServerDone(print_replies(replies, peer, timeout)));
    });

    // The input reader: a line at a time, as bytes (whatever is typed is sent).
    thread::spawn(move || read_input(input, events));

    loop {
        match next_event.recv() {
            Ok(Event::Typed(line)) => send_typed(&mut stream, peer, line)?,
            Ok(Event::EndOfInput) => {
                half_close(&stream, peer)?;
                return wait_for_close(&next_event, peer, timeout);
            }
            Ok(Event::ServerDone(result)) => return result,
            Err(mpsc::RecvError) => bail!("lost track of the connection to {peer}"),
        }
    }
}

// ANCHOR_END: send_lines

// ANCHOR: send_lines_helpers
/// Sends each line of `input` to the main thread, then says the input ended.
fn read_input(input: impl BufRead, events: mpsc::Sender<Event>) {
    for line in input.split(b'\n') {
        let Ok(line) = line else { break };
        if events.send(Event::Typed(line)).is_err() {
            // The main thread has finished: nobody wants more lines.
            return;
        }
    }
    let _ = events.send(Event::EndOfInput);
}

/// Sends one typed line and its newline, and says so.
fn send_typed(stream: &mut TcpStream, peer: SocketAddr, mut line: Vec<u8>) -> anyhow::Result<()> {
    // Hold standard output while we send and say so. The reply thread
    // prints too, and without this a quick server's reply could be printed
    // before the line saying we sent what it answers. (The lock is
    // re-entrant: say! below can take it.)
    let _terminal = io::stdout().lock();
    line.push(b'\n');
    stream
        .write_all(&line)
        .map_err(|err| anyhow::anyhow!("could not send to {peer}: {}", describe(&err)))?;
    line.pop();
    say!(
        "sent {}: {}",
        common::count(line.len() as u64, "byte"),
        printable(&line)
    );
    Ok(())
}

/// After our half-close, the server has `timeout` to finish and close.
fn wait_for_close(
    next_event: &mpsc::Receiver<Event>,
    peer: SocketAddr,
    timeout: Duration,
) -> anyhow::Result<()> {
    match next_event.recv_timeout(timeout) {
        Ok(Event::ServerDone(result)) => result,
        Ok(_) | Err(_) => bail!(
            "the server at {peer} did not close the connection within {} s after we finished sending",
            timeout.as_secs_f64()
        ),
    }
}
// ANCHOR_END: send_lines_helpers

/// Standard input, for [`send_lines`], as the binary uses it.
pub fn stdin_lines() -> impl BufRead + Send + 'static {
    BufReader::new(io::stdin())
}
