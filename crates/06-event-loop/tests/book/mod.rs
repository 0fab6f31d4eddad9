//! The sections of docs/src/06-event-loop.md that the tests' failure
//! messages point to, each named once: a renamed heading is one line to
//! change here, and the book's test checks that each names a real section.

// Each test file uses some of them.
#![allow(dead_code)]

pub const GRACEFUL_SHUTDOWN: &str = "(book: 06-event-loop.md § Graceful shutdown)";
pub const ONE_LOOP_PER_CORE: &str = "(book: 06-event-loop.md § One loop per core)";
pub const ONE_TURN_OF_THE_EVENT_LOOP: &str =
    "(book: 06-event-loop.md § One turn of the event loop)";
pub const READINESS_AGAINST_BLOCKING: &str =
    "(book: 06-event-loop.md § Readiness against blocking)";
pub const READING_UNTIL_WOULDBLOCK: &str = "(book: 06-event-loop.md § Reading until WouldBlock)";
pub const RUNNING_OUT_OF_FILE_DESCRIPTORS: &str =
    "(book: 06-event-loop.md § Running out of file descriptors)";
pub const THE_BUFFERS_A_CONNECTION_OWNS: &str =
    "(book: 06-event-loop.md § The buffers a connection owns)";
pub const THE_SAME_SERVER_WITH_TOKIO: &str =
    "(book: 06-event-loop.md § The same server with Tokio)";
pub const TIMERS: &str = "(book: 06-event-loop.md § Timers)";
pub const WRITING_WHAT_FITS: &str = "(book: 06-event-loop.md § Writing what fits)";
