//! The sections of docs/src/03-multi-client.md that the tests' failure messages
//! point to, each named once: a renamed heading is one line to change
//! here, and the book's test checks that each names a real section.

// Each test file uses some of them.
#![allow(dead_code)]

pub const A_LOG_NOBODY_READS: &str = "(book: 03-multi-client.md § A log nobody reads)";
pub const CLIENTS_THAT_MISBEHAVE: &str = "(book: 03-multi-client.md § Clients that misbehave)";
pub const LINES_NOT_READS_ARE_THE_MESSAGES: &str =
    "(book: 03-multi-client.md § Lines, not reads, are the messages)";
pub const ONE_CLIENTS_CONVERSATION: &str = "(book: 03-multi-client.md § One client's conversation)";
pub const RUN_IT: &str = "(book: 03-multi-client.md § Run it)";
pub const THE_FIX_A_THREAD_PER_CLIENT_WITH_A_CAP: &str =
    "(book: 03-multi-client.md § The fix: a thread per client, with a cap)";
pub const THE_ORIGINAL_LOOP_ONE_CLIENT_AT_A_TIME: &str =
    "(book: 03-multi-client.md § The original loop: one client at a time)";
pub const TRY_IT_THE_SECOND_CLIENT_WAITS: &str =
    "(book: 03-multi-client.md § Try it: the second client waits)";
pub const WHY_THE_CAP: &str = "(book: 03-multi-client.md § Why the cap)";
