//! Addresses typed on the command line, and the two ways a lesson reaches
//! the network: [`connect`] as a client, [`listen`] as a server.

use std::io::{self, ErrorKind};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

use crate::errors::describe;

// ANCHOR: resolve
/// Turns `HOST:PORT`, `HOST`, `IP`, `[IPv6]` or `[IPv6]:PORT` into the socket
/// addresses it names, using `default_port` when no port is given.
///
/// A name such as `localhost` can stand for several addresses (`::1` and
/// `127.0.0.1`): all of them are returned, in the order the system gives,
/// and a client should try each in turn.
pub fn resolve(text: &str, default_port: u16) -> anyhow::Result<Vec<SocketAddr>> {
    let text = text.trim();
    // Literal addresses need no lookup: 127.0.0.1:7890, [::1]:7890, ::1, 127.0.0.1.
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    if let Ok(ip) = text
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(vec![SocketAddr::new(ip, default_port)]);
    }
    let (host, port) = match text.rsplit_once(':') {
        None => (text, default_port),
        Some((host, port)) => match port.parse::<u16>() {
            Ok(port) if !host.is_empty() && !host.contains(':') => (host, port),
            _ => bail!(
                "bad address {text:?}: expected HOST:PORT, for example 127.0.0.1:{default_port} or [::1]:{default_port}"
            ),
        },
    };
    if host.is_empty() {
        bail!("bad address {text:?}: expected HOST:PORT, for example 127.0.0.1:{default_port}");
    }
    // The system's resolver: /etc/hosts, then DNS.
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|err| anyhow!("could not find the address of {host:?}: {}", describe(&err)))?
        .collect();
    if addrs.is_empty() {
        bail!("could not find the address of {host:?}: the name has no addresses");
    }
    Ok(addrs)
}
// ANCHOR_END: resolve

// ANCHOR: connect
/// Connects to the first address of `server` that answers within `timeout`.
///
/// `hint` is the command that starts the server, shown when the connection
/// is refused (nobody listens on that port), e.g. `cargo run -p server`.
pub fn connect(
    server: &str,
    default_port: u16,
    timeout: Duration,
    hint: &str,
) -> anyhow::Result<TcpStream> {
    let addrs = resolve(server, default_port)?;
    connect_any(server, &addrs, timeout, hint)
}

/// Connects to the first of `addrs` (what `server` resolved to) that answers
/// within `timeout`, trying them in order; when none does, the error names
/// each address tried and what went wrong there.
pub fn connect_any(
    server: &str,
    addrs: &[SocketAddr],
    timeout: Duration,
    hint: &str,
) -> anyhow::Result<TcpStream> {
    // exercise 1.1: begin
    let mut failures = Vec::new();
    for addr in addrs {
        // connect() sends SYN and waits for SYN-ACK: the three-way handshake.
        // Without a timeout a silent host (a firewall that drops packets)
        // keeps us waiting for minutes while the kernel retries.
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(err) => failures.push((*addr, err)),
        }
    }
    Err(connect_error(server, &failures, timeout, hint))
    // exercise 1.1: end
}
// ANCHOR_END: connect

/// One line that says what was tried, what went wrong, and what to do.
fn connect_error(
    server: &str,
    failures: &[(SocketAddr, io::Error)],
    timeout: Duration,
    hint: &str,
) -> anyhow::Error {
    let what = match failures {
        [(addr, err)] => format!("could not connect to {addr}: {}", describe(err)),
        _ => {
            let tried: Vec<String> = failures
                .iter()
                .map(|(addr, err)| format!("{addr}: {}", describe(err)))
                .collect();
            format!("could not connect to {server} ({})", tried.join("; "))
        }
    };
    let kinds: Vec<ErrorKind> = failures.iter().map(|(_, err)| err.kind()).collect();
    if kinds.contains(&ErrorKind::ConnectionRefused) {
        anyhow!("{what} (is the server running? try: {hint})")
    } else if kinds.contains(&ErrorKind::TimedOut) || kinds.contains(&ErrorKind::WouldBlock) {
        anyhow!(
            "{what} (no answer within {} s: is the address right? is a firewall dropping packets?)",
            timeout.as_secs_f64()
        )
    } else {
        anyhow!("{what}")
    }
}

// ANCHOR: listen
/// Creates a listening socket on `addr` (socket, bind and listen in one call)
/// and announces it with [`announce`].
///
/// `TcpListener::bind` does what lesson 2 does by hand: `socket()`, sets
/// `SO_REUSEADDR` (on Unix), `bind()`, and `listen()` with a backlog of 128.
pub fn listen(addr: &str, default_port: u16) -> anyhow::Result<TcpListener> {
    let addrs = resolve(addr, default_port)?;
    let listener = TcpListener::bind(&addrs[..]).map_err(|err| bind_error(addr, &err))?;
    announce(&listener)?;
    Ok(listener)
}
// ANCHOR_END: listen

/// The one line for a socket that could not be bound to `addr`.
pub fn bind_error(addr: &str, err: &io::Error) -> anyhow::Error {
    let words = describe(err);
    match err.kind() {
        ErrorKind::AddrInUse => anyhow!(
            "could not listen on {addr}: {words} (is another server running there? stop it, or pick a free port with --listen 127.0.0.1:0)"
        ),
        ErrorKind::PermissionDenied => anyhow!(
            "could not listen on {addr}: {words} (ports below 1024 need administrator rights; pick a port above 1024)"
        ),
        ErrorKind::AddrNotAvailable => anyhow!(
            "could not listen on {addr}: {words} (use an address of this machine, such as 127.0.0.1 or 0.0.0.0)"
        ),
        _ => anyhow!("could not listen on {addr}: {words}"),
    }
}

// ANCHOR: announce
/// Prints `listening on ADDR` with the address the kernel really bound
/// (with `--listen 127.0.0.1:0` the kernel picks the port, and this is the
/// only way to learn it). It is the first line every server prints; tests
/// and scripts wait for it instead of guessing when the server is ready.
pub fn announce(listener: &TcpListener) -> anyhow::Result<SocketAddr> {
    let local = listener
        .local_addr()
        .context("could not read the listening socket's address")?;
    // The first line is written and flushed before anything else happens,
    // so whoever started the server learns its address even if the server
    // dies at once (a test waits for this line). Nothing can make it wait:
    // no client has connected yet, and a fresh pipe has room for it.
    crate::say!("listening on {local}");
    // From here on this program is a server: its log must never make it
    // wait for whoever reads standard output (see common::log).
    crate::log_without_blocking();
    Ok(local)
}
// ANCHOR_END: announce

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_addresses_with_and_without_port() {
        let v4: SocketAddr = "127.0.0.1:7890".parse().unwrap();
        let v6: SocketAddr = "[::1]:7890".parse().unwrap();
        assert_eq!(resolve("127.0.0.1:7890", 1).unwrap(), vec![v4]);
        assert_eq!(resolve("127.0.0.1", 7890).unwrap(), vec![v4]);
        assert_eq!(resolve("[::1]:7890", 1).unwrap(), vec![v6]);
        assert_eq!(resolve("[::1]", 7890).unwrap(), vec![v6]);
        assert_eq!(resolve("::1", 7890).unwrap(), vec![v6]);
    }

    #[test]
    fn names_resolve_to_every_address() {
        let addrs = resolve("localhost:7890", 1).unwrap();
        assert!(!addrs.is_empty());
        assert!(
            addrs
                .iter()
                .all(|a| a.port() == 7890 && a.ip().is_loopback())
        );
    }

    /// `localhost` resolves to one address on some machines, so the
    /// fallback is tested with a list we control: the first address
    /// refuses, the second listens.
    #[test]
    fn when_the_first_address_refuses_the_next_one_is_tried() {
        let refusing = TcpListener::bind("127.0.0.1:0").unwrap();
        let refused = refusing.local_addr().unwrap();
        drop(refusing);
        let listening = TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listening.local_addr().unwrap();
        let stream = connect_any(
            "a name",
            &[refused, open],
            Duration::from_secs(5),
            "start it",
        )
        .unwrap_or_else(|err| {
            panic!(
                "`{refused}` refuses and `{open}` listens: the client should try each \
                     address a name has, in order, and connect to `{open}`; it failed: {err:#} \
                     (book: 01-client.md § Step 1: connect)"
            )
        });
        assert_eq!(
            stream.peer_addr().unwrap(),
            open,
            "the connection should be to the address that listens (book: 01-client.md § Step 1: connect)"
        );
    }

    #[test]
    fn when_every_address_refuses_the_error_names_each_one_and_the_fix() {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let b = TcpListener::bind("127.0.0.1:0").unwrap();
        let addrs = [a.local_addr().unwrap(), b.local_addr().unwrap()];
        drop((a, b));
        let err = connect_any("a name", &addrs, Duration::from_secs(5), "start it")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "could not connect to a name ({}: connection refused; {}: connection refused) \
                 (is the server running? try: start it)",
                addrs[0], addrs[1]
            ),
            "when no address of a name answers, the one error line should name each address \
             tried and suggest starting the server (book: 01-client.md § Step 1: connect)"
        );
    }

    /// An IPv6 address is as good as an IPv4 one: a name such as
    /// `localhost` gives both, and the server may listen on either.
    #[test]
    fn an_ipv6_address_is_tried_like_any_other() {
        let Ok(listening) = TcpListener::bind("[::1]:0") else {
            eprintln!("skipped: this machine has no IPv6 loopback (::1)");
            return;
        };
        let open = listening.local_addr().unwrap();
        let refusing = TcpListener::bind("127.0.0.1:0").unwrap();
        let refused = refusing.local_addr().unwrap();
        drop(refusing);
        let stream = connect_any(
            "a name",
            &[refused, open],
            Duration::from_secs(5),
            "start it",
        )
        .unwrap_or_else(|err| {
            panic!(
                "`{refused}` refuses and `{open}` (IPv6) listens: every address a name has must \
                 be tried in order, IPv6 ones too, so the client should connect to `{open}`; it \
                 failed: {err:#} (book: 01-client.md § Step 1: connect)"
            )
        });
        assert_eq!(
            stream.peer_addr().unwrap(),
            open,
            "the connection should be to `{open}`, the address that listens \
             (book: 01-client.md § Step 1: connect)"
        );
    }

    /// A loopback address that never answers: a listener with a backlog of
    /// 0 whose queue is full, so the kernel drops each new SYN, as a firewall
    /// that drops packets does. It never sends traffic off the machine.
    /// Returns the listener and the queued connections (keep them) and the
    /// address; the connection that timed out proves the queue is full.
    fn black_hole() -> (socket2::Socket, Vec<TcpStream>, SocketAddr) {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        socket.bind(&any.into()).unwrap();
        socket.listen(0).unwrap();
        let addr = socket.local_addr().unwrap().as_socket().unwrap();
        let mut queued = Vec::new();
        for _ in 0..16 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(stream) => queued.push(stream),
                Err(_) => return (socket, queued, addr),
            }
        }
        panic!(
            "a listener with a backlog of 0 took 16 connections: the test cannot make an address that never answers"
        );
    }

    #[test]
    fn an_address_that_never_answers_is_given_up_after_the_timeout() {
        use std::sync::mpsc;
        use std::thread;
        let (_hole, _queued, silent) = black_hole();
        let listening = TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listening.local_addr().unwrap();
        let (done, result) = mpsc::channel();
        thread::spawn(move || {
            let connected = connect_any(
                "a name",
                &[silent, open],
                Duration::from_millis(500),
                "start it",
            );
            let _ = done.send(connected.map(|stream| stream.peer_addr().ok()));
        });
        match result.recv_timeout(Duration::from_secs(4)) {
            Ok(Ok(peer)) => assert_eq!(
                peer,
                Some(open),
                "the connection should be to `{open}`, the address that listens \
                 (book: 01-client.md § Step 1: connect)"
            ),
            Ok(Err(err)) => panic!(
                "`{silent}` never answers (its SYN is dropped, as by a firewall) and `{open}` \
                 listens: with a timeout of 0.5 s the client should give up on `{silent}` and \
                 connect to `{open}`; it failed: {err:#} (book: 01-client.md § Step 1: connect)"
            ),
            Err(_) => panic!(
                "`{silent}` never answers (its SYN is dropped, as by a firewall that drops \
                 packets) and `{open}` listens; with a timeout of 0.5 s, an address that never \
                 answers must be given up after the timeout and the next one tried, but \
                 connect_any had not returned after 4 s. A connect without a timeout waits \
                 minutes while the kernel retries: use TcpStream::connect_timeout for each \
                 address (book: 01-client.md § Step 1: connect)"
            ),
        }
    }

    #[test]
    fn bad_syntax_is_one_clear_line() {
        for bad in ["nonsense:::", "127.0.0.1:port", ":7890", "127.0.0.1:99999"] {
            let err = resolve(bad, 7890).unwrap_err().to_string();
            assert!(err.starts_with("bad address"), "{bad}: {err}");
            assert!(err.contains("HOST:PORT"), "{bad}: {err}");
        }
    }
}
