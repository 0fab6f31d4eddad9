//! Lesson 4 against the test kit's misbehaving clients: after each one, two
//! well-behaved clients must still register, relay a line, and leave.

mod support;

use std::net::SocketAddr;

use support::{book, book_section, explains, start_server};
use testkit::Connection;
use testkit::hostile::run_battery;

/// Where the chapter promises that the server closes gently after its last
/// line (`BYE`, `ERR line-too-long`, `ERR hello-first`): its writer thread
/// half-closes and drains, so that no reset destroys that line.
const GENTLE_CLOSE: &str = book::ONE_CLIENTS_CONVERSATION;

/// The next line that is not news about someone else: a misbehaving client
/// of the case before may still be registered when this one joins, and its
/// `JOINED`/`LEFT` can come in between.
fn next_line(conn: &mut Connection, names: &[&str], expected: &str) -> String {
    loop {
        let line = conn.read_line(&format!(
            "after a misbehaving client (the case is printed above), a good one should still get `{expected}` {}",
            book_section()
        ));
        let news_of = line
            .strip_prefix("JOINED ")
            .or_else(|| line.strip_prefix("LEFT "));
        match news_of {
            Some(name) if !names.contains(&name) => continue,
            _ => return line,
        }
    }
}

fn expect(conn: &mut Connection, expected: &str) {
    let got = next_line(conn, &["good-a", "good-b"], expected);
    assert_eq!(
        got,
        expected,
        "after a misbehaving client (the case is printed above), a good one should still be served: expected `{expected}` {}",
        book_section()
    );
}

fn well_behaved(addr: SocketAddr) {
    let mut a = Connection::open(addr);
    a.send_line("HELLO good-a");
    let welcome = format!("WELCOME good-a {}", a.local_addr());
    expect(&mut a, &welcome);
    let mut b = Connection::open(addr);
    b.send_line("HELLO good-b");
    let welcome = format!("WELCOME good-b {}", b.local_addr());
    expect(&mut b, &welcome);
    expect(&mut a, "JOINED good-b");
    a.send_line("SEND good-b are you still there?");
    expect(&mut a, "SENT good-b");
    expect(&mut b, "FROM good-a are you still there?");
    b.send_line("BYE");
    expect(&mut b, "BYE");
    b.expect_orderly_close(&format!(
        "after a misbehaving client, a good client that says BYE should see the server close its connection gently {GENTLE_CLOSE}"
    ));
    expect(&mut a, "LEFT good-b");
    a.send_line("BYE");
    expect(&mut a, "BYE");
    a.expect_orderly_close(&format!(
        "after a misbehaving client, a good client that says BYE should see the server close its connection gently {GENTLE_CLOSE}"
    ));
}

#[test]
fn the_relay_survives_every_misbehaving_client() {
    explains(book::THE_LIMITS);
    // The whole battery, twice, with a check that memory does not grow. A
    // short HELLO deadline frees the slots of connections that say nothing.
    let mut server = start_server(&["--hello-timeout", "1"]);
    run_battery("04-relay", &mut server, "HELLO hostile", well_behaved);
}
