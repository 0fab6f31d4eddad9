//! Lesson 6 against the test kit's misbehaving clients, on both engines:
//! after each one, a well-behaved client must still get `ok` to its lines,
//! and the server's memory must not keep growing.

mod book;

use std::net::SocketAddr;
use std::path::Path;

use testkit::hostile::run_battery;
use testkit::{Connection, Process};

fn server_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_06-event-loop"))
}

fn well_behaved(addr: SocketAddr) {
    let mut client = Connection::open(addr);
    client.send(b"are you still there?\nand now?\n");
    client.expect_bytes(
        b"ok\nok\n",
        &format!("after a misbehaving client, the server should still reply `ok` to each line of a good one: \
         one client's trouble ends at its own connection {}", book::THE_BUFFERS_A_CONNECTION_OWNS),
    );
    client.half_close();
    client.expect_orderly_close(&format!(
        "a good client that half-closes should see the server close too, with a FIN \
         {}",
        book::THE_BUFFERS_A_CONNECTION_OWNS
    ));
}

/// A server against the battery: each engine on one loop, and the mio
/// engine on two, where its first loop hands each new client, however it
/// misbehaves, to the other in turn. (Tokio on two worker threads runs the
/// same code of ours on Tokio's scheduler; the other tests of the whole
/// server run it.)
fn survives_every_misbehaving_client(engine: &str, loops: &str) {
    let mut server = Process::server(
        server_bin(),
        &["--engine", engine, "--loops", loops, "--idle-timeout", "1"],
    );
    run_battery(
        &format!("06-event-loop --engine {engine} --loops {loops}"),
        &mut server,
        "hello",
        well_behaved,
    );
}

#[test]
fn the_mio_engine_survives_every_misbehaving_client() {
    survives_every_misbehaving_client("mio", "1");
}

#[test]
fn the_mio_engine_on_two_loops_survives_every_misbehaving_client() {
    survives_every_misbehaving_client("mio", "2");
}

#[test]
fn the_tokio_engine_survives_every_misbehaving_client() {
    survives_every_misbehaving_client("tokio", "1");
}
