//! Every server keeps serving when nobody reads its log.
//!
//! Each test starts a server whose standard output is a pipe that nobody
//! reads after the first line (as with `server | less` waiting for a key,
//! or a terminal paused with Ctrl-S), makes it log far more than the pipe
//! holds (peer bytes that print escaped, six bytes for one), and then
//! checks that a new client is still served. A server that writes its log
//! from the threads that serve clients freezes here, one thread after the
//! other, the accept loop included.

use testkit::{Connection, TempDir, UnreadServer, binary, show};

const WHY: &str = "a server's log must never stop the service: its standard output is a \
     pipe nobody reads (as behind `| less`), so a log line must be dropped rather than waited for \
     (book: 03-multi-client.md § A log nobody reads)";

#[test]
fn lesson_3_keeps_serving_when_nobody_reads_its_log() {
    let server = UnreadServer::start(&binary("multi-client", "03-multi-client"), &[]);
    let mut flooder = Connection::open(server.addr());
    let mut line = vec![0x1b; 60_000];
    line.push(b'\n');
    for _ in 0..16 {
        flooder.send(&line);
    }
    flooder.expect_bytes(
        &b"ok\n".repeat(16),
        &format!("a client sent 16 lines of 60,000 ESC bytes (each logs as 360,000 bytes) and should get 16 `ok`: {WHY}"),
    );
    for round in 1..=3 {
        let mut client = Connection::open(server.addr());
        client.send(b"hello\n");
        client.expect_bytes(
            b"ok\n",
            &format!(
                "new client {round}, after another sent 16 lines of 60,000 ESC bytes, sent `hello`: {WHY}"
            ),
        );
    }
}

#[test]
fn lesson_4_keeps_serving_when_nobody_reads_its_log() {
    // --log-text: the relay logs what is relayed, not only its length.
    let server = UnreadServer::start(&binary("relay", "04-relay"), &["serve", "--log-text"]);
    let mut flooder = Connection::open(server.addr());
    flooder.send_line("HELLO flooder");
    let welcome = flooder.read_line("WELCOME for the flooder");
    assert!(welcome.starts_with("WELCOME flooder "), "got {welcome:?}");
    // Lines the relay logs (as it does for everything relayed), each full of
    // control bytes that print escaped.
    let mut line = b"ALL ".to_vec();
    line.extend(std::iter::repeat_n(0x01, 900));
    line.push(b'\n');
    for _ in 0..200 {
        flooder.send(&line);
    }
    for round in 1..=3 {
        let mut client = Connection::open(server.addr());
        let name = format!("late{round}");
        client.send_line(&format!("HELLO {name}"));
        let got = client.read_line(&format!(
            "new client {name} sent `HELLO {name}` after another relayed 200 lines of 900 control bytes, \
             and should be welcomed: {WHY}"
        ));
        assert!(
            got.starts_with(&format!("WELCOME {name} ")),
            "`HELLO {name}` should be answered with WELCOME; got {got:?}: {WHY}"
        );
    }
}

#[test]
fn lesson_5_keeps_serving_when_nobody_reads_its_log() {
    let folder = TempDir::new();
    folder.write("a.txt", b"hello\n");
    let folder_arg = folder.path().to_str().unwrap().to_string();
    let server = UnreadServer::start(
        &binary("file-download", "05-file-download"),
        &["serve", &folder_arg],
    );
    // Requests for names full of control bytes: each is refused and logged.
    for _ in 0..40 {
        let mut bad = Connection::open(server.addr());
        let mut request = b"GET ".to_vec();
        request.extend(std::iter::repeat_n(0x01, 3000));
        request.push(b'\n');
        bad.send(&request);
        let _ = bad.read_line(&format!("a request for a name of 3000 control bytes should be refused with one `ERR` line: {WHY}"));
    }
    for round in 1..=3 {
        let mut client = Connection::open(server.addr());
        client.send(b"LIST\n");
        let got = client.read_line(&format!(
            "new client {round} sent `LIST` after 40 requests of 3000 control bytes, and should get `OK 1`: {WHY}"
        ));
        assert_eq!(
            got,
            "OK 1",
            "`LIST` should be answered: {WHY}; got {}",
            show(got.as_bytes())
        );
    }
}
