//! The sections of docs/src/02-server.md that the tests' failure messages
//! point to, each named once: a renamed heading is one line to change
//! here, and the book's test checks that each names a real section.

// Each test file uses some of them.
#![allow(dead_code)]

pub const A_CLIENT_THAT_MISBEHAVES: &str = "(book: 02-server.md § A client that misbehaves)";
pub const RUN_IT: &str = "(book: 02-server.md § Run it)";
pub const STEPS_1_TO_3_SOCKET_BIND_LISTEN: &str =
    "(book: 02-server.md § Steps 1 to 3: socket, bind, listen)";
pub const STEP_4_ACCEPT: &str = "(book: 02-server.md § Step 4: accept)";
pub const STEP_5_ONE_READ_IS_NOT_ONE_MESSAGE: &str =
    "(book: 02-server.md § Step 5: one read is not one message)";
pub const STEP_6_REPLY: &str = "(book: 02-server.md § Step 6: reply)";
pub const STEP_7_CLOSE_WITHOUT_LOSING_THE_REPLY: &str =
    "(book: 02-server.md § Step 7: close without losing the reply)";
pub const THE_SEVEN_STEPS: &str = "(book: 02-server.md § The seven steps)";
