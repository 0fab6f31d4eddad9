//! The sections of docs/src/01-client.md that the tests' failure messages
//! point to, each named once: a renamed heading is one line to change
//! here, and the book's test checks that each names a real section.

// Each test file uses some of them.
#![allow(dead_code)]

pub const STEP_1_CONNECT: &str = "(book: 01-client.md § Step 1: connect)";
pub const STEP_2_SEND: &str = "(book: 01-client.md § Step 2: send)";
pub const STEP_3_HALF_CLOSE: &str = "(book: 01-client.md § Step 3: half-close)";
pub const STEP_4_READ_THE_REPLY: &str = "(book: 01-client.md § Step 4: read the reply)";
pub const TYPING_LINES: &str = "(book: 01-client.md § Typing lines)";
pub const WHEN_THINGS_GO_WRONG: &str = "(book: 01-client.md § When things go wrong)";
