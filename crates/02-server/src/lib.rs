//! Lesson 2: a one-shot server.
//!
//! The original lesson builds a server in seven steps, and this file follows
//! them in order:
//!
//! 1. create a socket,
//! 2. bind it to an address (an IP and a port),
//! 3. listen, which turns it into a socket that accepts connections,
//! 4. accept one client,
//! 5. receive its message,
//! 6. reply `OK`,
//! 7. close.
//!
//! Steps 1 to 3 are written out with the `socket2` crate so that each system
//! call shows. In everyday Rust, `std::net::TcpListener::bind` does all
//! three in one call (see [`common::listen`], which lessons 3 to 5 use).

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::Context;
use common::{Deadline, describe, is_timeout, printable, say};
use socket2::{Domain, Protocol, Socket, Type};

// ANCHOR: limits
/// Where the server listens unless told otherwise: loopback, so that only
/// programs on this machine can connect (use `--listen 0.0.0.0:7890` to
/// accept other machines), on the original lesson's port.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7890";
/// The port used when `--listen` names only a host.
pub const DEFAULT_PORT: u16 = 7890;
/// How many finished handshakes the kernel queues for us before we accept
/// them (the argument of `listen()`; the original lesson uses 128 too).
pub const BACKLOG: i32 = 128;
/// The most bytes we read of the message, like the original's `recv(1024)`.
pub const MESSAGE_LIMIT: usize = 1024;
/// The deadline for the client's whole message, counted from the accept,
/// unless `--timeout` says otherwise.
pub const DEFAULT_RECEIVE_TIMEOUT: Duration = Duration::from_secs(30);
/// After replying, how long we wait for the client to close before we do.
pub const LINGER: Duration = Duration::from_secs(2);
// ANCHOR_END: limits

/// Runs the seven steps once: serves one client, then returns.
///
/// An error means the server could not start (a bad address, a port in use)
/// or could not accept. What one client does wrong (sending nothing, closing
/// early, resetting) is reported on standard output as one line, and the
/// server still returns `Ok`: it did its one job.
// ANCHOR: run
pub fn run(listen_addr: &str, receive_timeout: Duration) -> anyhow::Result<()> {
    let listener = open_listener(listen_addr)?;
    common::announce(&listener)?;

    // Step 4: accept. This blocks until a client has connected. The kernel
    // did the three-way handshake on its own (that is what listen() asked
    // for); accept() hands us the finished connection as a new socket, and
    // the address of the client's end.
    say!("waiting for a client...");
    // exercise 2.2: begin
    //~ let (stream, client): (TcpStream, SocketAddr) = todo!();
    let (stream, client) = listener
        .accept()
        .with_context(|| format!("could not accept a connection on {listen_addr}"))?;
    // exercise 2.2: end
    say!("client connected: {client}");

    serve(stream, client, receive_timeout);
    Ok(())
}
// ANCHOR_END: run

// ANCHOR: open_listener
/// Steps 1 to 3: socket, bind, listen.
fn open_listener(listen_addr: &str) -> anyhow::Result<TcpListener> {
    let addr: SocketAddr = common::resolve(listen_addr, DEFAULT_PORT)?[0];

    // exercise 2.1: begin
    // Step 1: socket(). A TCP socket (a STREAM socket of the IPv4 or IPv6
    // family, matching the address). It has no address yet.
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .context("could not create a socket")?;

    // SO_REUSEADDR lets us bind the port again right after a previous run
    // of this server closed a connection on it. Without it, restarting the
    // server can fail with "address already in use" for 60 s on Linux
    // (TCP_TIMEWAIT_LEN), while the old connection sits in TIME_WAIT. On
    // Unix it does not let two servers listen on the same port at once. On
    // Windows it does (a socket may then bind a port that is in use), so,
    // like std's TcpListener::bind, we set it only on Unix.
    #[cfg(unix)]
    socket
        .set_reuse_address(true)
        .context("could not set SO_REUSEADDR")?;

    // Step 2: bind(). Claim the address. Port 0 asks the kernel for any
    // free port; we print the one it picked below.
    socket
        .bind(&addr.into())
        .map_err(|err| common::bind_error(listen_addr, &err))?;

    // Step 3: listen(). From now on the kernel answers clients' handshakes
    // by itself and queues up to BACKLOG finished connections for accept().
    socket
        .listen(BACKLOG)
        .map_err(|err| common::bind_error(listen_addr, &err))?;

    // The same socket, as the standard library's listener type.
    Ok(socket.into())
    // exercise 2.1: end
}
// ANCHOR_END: open_listener

// ANCHOR: serve
/// Steps 5 to 7 for one client, each outcome reported as one line.
fn serve(mut stream: TcpStream, client: SocketAddr, receive_timeout: Duration) {
    // Without a limit, a client that connects and sends nothing would keep
    // this one-shot server waiting forever. And the limit is a deadline for
    // the whole message, counted from now: a read timeout alone starts
    // again at every read, so a client sending one byte every few seconds
    // would never reach it.
    let deadline = Instant::now() + receive_timeout;

    // Step 5: receive.
    match receive(&stream, deadline) {
        Ok(Message::Line(text)) => say!("received: {}", printable(&text)),
        Ok(Message::Cut(text)) => {
            say!("received: {}", printable(&text));
            say!("(the message filled all {MESSAGE_LIMIT} bytes; the rest was not read)");
        }
        Ok(Message::Nothing) => {
            say!("client closed the connection without sending anything");
            return;
        }
        Err(err) if is_timeout(&err) => {
            say!(
                "no message from {client} within {} s, giving up",
                receive_timeout.as_secs_f64()
            );
            return;
        }
        Err(err) => {
            say!("connection error: {}", describe(&err));
            return;
        }
    }

    // Step 6: reply. write_all() keeps writing until every byte is handed
    // to the kernel; a single write() may take only some of them.
    // exercise 2.4: begin
    //~ todo!();
    if let Err(err) = stream.write_all(b"OK\n") {
        say!("could not reply: {}", describe(&err));
        return;
    }
    // exercise 2.4: end
    say!("replied: OK");

    // Step 7: close, without a reset destroying the reply (see close_gently).
    common::close_gently(stream, LINGER);
    say!("closed the connection");
}
// ANCHOR_END: serve

/// What step 5 found.
enum Message {
    /// The bytes before the first newline (or before the client closed).
    Line(Vec<u8>),
    /// MESSAGE_LIMIT bytes and no newline among them.
    Cut(Vec<u8>),
    /// The client closed without sending a byte.
    Nothing,
}

// ANCHOR: receive
/// Step 5: reads until the first newline, the end of input, or
/// MESSAGE_LIMIT bytes, whichever comes first, and gives up at `deadline`
/// (a read then fails with a timeout).
///
/// One `read()` is not one message. TCP delivers a stream of bytes, and a
/// read returns whatever has arrived so far: `hel` now and `lo\n` a moment
/// later, if the network split it so. So we keep reading until the message
/// is complete; the newline (or the client closing its side) says when.
fn receive(stream: &TcpStream, deadline: Instant) -> io::Result<Message> {
    // exercise 2.3: begin
    // Each read through `Deadline` may wait only for what is left of the
    // time (it sets the socket's read timeout to that before reading).
    let mut reader = Deadline {
        stream,
        until: Some(deadline),
    };
    let mut buffer = [0u8; MESSAGE_LIMIT];
    let mut filled = 0;
    loop {
        if let Some(newline) = buffer[..filled].iter().position(|&b| b == b'\n') {
            let line = buffer[..newline]
                .strip_suffix(b"\r")
                .unwrap_or(&buffer[..newline]);
            return Ok(Message::Line(line.to_vec()));
        }
        if filled == MESSAGE_LIMIT {
            return Ok(Message::Cut(buffer.to_vec()));
        }
        match reader.read(&mut buffer[filled..]) {
            // 0 bytes: the client closed (or half-closed) its side.
            Ok(0) if filled == 0 => return Ok(Message::Nothing),
            Ok(0) => return Ok(Message::Line(buffer[..filled].to_vec())),
            Ok(n) => filled += n,
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
    // exercise 2.3: end
}
// ANCHOR_END: receive
