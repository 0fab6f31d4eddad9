//! Lesson 3 against the test kit's misbehaving clients: after each one, a
//! well-behaved client must still get `ok` to its lines.

use std::net::SocketAddr;
use std::path::Path;

use testkit::hostile::{Case, run_battery};
use testkit::{Connection, Process};

fn server_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_03-multi-client"))
}

fn well_behaved(addr: SocketAddr) {
    let mut client = Connection::open(addr);
    client.send(b"are you still there?\nand now?\n");
    client.expect_bytes(
        b"ok\nok\n",
        "after a misbehaving client, the server should still reply `ok` to each line of a good one",
    );
    client.half_close();
    client.expect_closed("a good client that half-closes should see the server close too");
}

#[test]
fn thread_per_client_survives_every_misbehaving_client() {
    // The whole battery, twice, with a check that memory does not grow.
    let mut server = Process::server(server_bin(), &["--idle-timeout", "1"]);
    run_battery("03-multi-client", &mut server, "hello", well_behaved);
}

#[test]
fn one_at_a_time_survives_each_misbehaving_client_in_turn() {
    // One at a time, a misbehaving client holds up everyone behind it until
    // it leaves or the idle timeout (1 s here) ends it; the good client
    // waits its turn and is then served. The burst of 500 silent
    // connections is left out: served one by one, each silent for 1 s,
    // they would take minutes, which is this mode's weakness, not a bug.
    let mut server = Process::server(server_bin(), &["--one-at-a-time", "--idle-timeout", "1"]);
    let addr = server.addr();
    for case in Case::ALL {
        if let Case::Burst = case {
            continue;
        }
        println!("03-multi-client --one-at-a-time: a client that does {case:?}, then a good one");
        let held = case.act(addr, "hello");
        well_behaved(addr);
        drop(held);
    }
    let log = server.stdout_now();
    assert!(
        !log.contains('\u{1b}'),
        "the server printed a terminal escape from the network raw; it must be escaped"
    );
}
