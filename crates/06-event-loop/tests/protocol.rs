//! Lesson 3's protocol, checked against both engines of lesson 6: the same
//! checks (in the test kit's `line_protocol`) that lesson 3's server
//! passes. Write the server yourself, then run `cargo test -p event-loop`.
//!
//! Every test starts the real `06-event-loop` with `--listen 127.0.0.1:0`
//! and `--engine mio` or `--engine tokio`, learns its port from its first
//! line, and talks to it over loopback.

use std::path::Path;

use testkit::Process;

fn server_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_06-event-loop"))
}

/// The event loop written by hand.
fn mio(args: &[&str]) -> Process {
    let mut all = vec!["--engine", "mio"];
    all.extend_from_slice(args);
    Process::server(server_bin(), &all)
}

/// The same server as Tokio tasks.
fn tokio(args: &[&str]) -> Process {
    let mut all = vec!["--engine", "tokio"];
    all.extend_from_slice(args);
    Process::server(server_bin(), &all)
}

/// Each check, once per engine: `mio_engine::NAME` and `tokio_engine::NAME`.
/// (Written as `fn NAME();` so that each test's name is in this file;
/// attributes before one, such as an `ignore`, go on both of its tests.)
macro_rules! on_both_engines {
    ($($(#[$attr:meta])* fn $check:ident();)*) => {
        mod mio_engine {
            $( #[test] $(#[$attr])* fn $check() { testkit::line_protocol::$check(super::mio); } )*
        }
        mod tokio_engine {
            $( #[test] $(#[$attr])* fn $check() { testkit::line_protocol::$check(super::tokio); } )*
        }
    };
}

on_both_engines! {
    fn one_client_gets_ok_for_each_line();
    fn a_second_client_is_answered_while_the_first_is_connected();
    fn two_lines_in_one_write_get_two_replies();
    fn a_line_in_several_writes_gets_one_reply_when_it_is_whole();
    fn a_utf8_character_split_between_reads_is_logged_whole();
    fn a_last_line_without_newline_still_gets_its_reply();
    fn empty_lines_are_messages_too();
    fn a_line_over_the_limit_is_refused_and_the_server_lives_on();
    fn a_line_of_exactly_the_limit_is_accepted();
    fn a_client_over_the_cap_is_told_busy_and_the_others_keep_working();
    fn a_silent_client_is_disconnected_after_the_idle_timeout();
    fn a_client_that_keeps_talking_is_not_idle();
    fn a_reset_is_logged_as_one_line();
    fn control_characters_and_invalid_utf8_are_logged_escaped();
    fn each_client_of_several_gets_its_own_replies();
    // Ignored, with the reason, where OpenBSD nc is missing (the cfg comes
    // from the test kit's build script, which this package runs too).
    #[cfg_attr(not(has_nc), ignore = "needs OpenBSD nc (netcat-openbsd): install it, or run .ci/run")]
    fn nc_with_half_close_gets_ok_per_line();
    #[cfg_attr(not(has_nc), ignore = "needs OpenBSD nc (netcat-openbsd): install it, or run .ci/run")]
    fn nc_without_half_close_is_ended_by_the_idle_timeout();
}
