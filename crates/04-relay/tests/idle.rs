//! A registered client holds one of the server's slots. One that says
//! nothing for `--idle-limit` is closed, so that silent names cannot keep
//! everyone else out for as long as they like; any line restarts its time.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use support::{
    book, book_section, exchange, explains, register, register_two, start_server, with_section,
};
use testkit::Connection;

#[test]
fn a_silent_registered_client_is_closed_after_the_idle_limit() {
    explains(book::IDLE_CLIENTS);
    let idle_limit = Duration::from_secs(2);
    let mut server = start_server(&[
        "--max-clients",
        "2",
        "--idle-limit",
        &idle_limit.as_secs().to_string(),
    ]);
    let (mut chatty, _quiet) = register_two(server.addr(), "chatty", "quiet");
    // Both slots are taken: a third client is turned away.
    let mut third = Connection::open(server.addr());
    let busy = third.read_line(&format!(
        "with --max-clients 2 and two clients registered, a third should be told `ERR busy` {}",
        book_section()
    ));
    assert_eq!(busy, "ERR busy", "a third client {}", book_section());

    // chatty says something every half of the idle limit, for longer than
    // the limit; quiet says nothing.
    let started = Instant::now();
    while started.elapsed() < idle_limit + idle_limit / 2 {
        chatty.send_line("LIST");
        let answer = chatty.read_line(&format!("chatty's LIST {}", book_section()));
        assert!(
            answer.starts_with("PEERS chatty") || answer == "LEFT quiet",
            "chatty sent `LIST`: expected `PEERS ...` (or `LEFT quiet`); got `{answer}` {}",
            book_section()
        );
        thread::sleep(idle_limit / 4);
    }
    server.expect_line(&format!(
            "quiet left (closed: it sent nothing for {} s)",
            idle_limit.as_secs()
        ), &with_section("quiet registered and then said nothing for --idle-limit: the server should close it, so that silent names cannot hold the slots for ever"));
    let log = server.stdout_now();
    assert!(
        !log.contains("chatty left"),
        "chatty sent a line every {} ms: any line restarts the idle limit ({} s), so it must stay; the server's log:\n{log}\n{}",
        (idle_limit / 4).as_millis(),
        idle_limit.as_secs(),
        book_section()
    );
    // quiet's slot is free again.
    let mut newcomer = register(server.addr(), "newcomer");
    exchange(&mut newcomer, "BYE", "BYE");
}
