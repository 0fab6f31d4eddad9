//! Lesson 4: clients talking through a server.
//!
//! In the original lesson, two clients talk *through* the server: the server
//! accepts client 1 and notes its address, accepts client 2 and notes its
//! address, then hands client 2's address to client 1, which connects to
//! client 2 directly. This lesson builds both halves of that idea:
//!
//! - the server **relays**: a client sends `SEND bob hi`, the server passes
//!   `FROM alice hi` on to bob;
//! - the server **introduces**: `WHERE bob` answers with the address where
//!   bob listens, and alice connects there herself.
//!
//! The modules follow the chapter:
//!
//! 1. [`limits`]: the limits every part below respects;
//! 2. [`protocol`]: [`parse_command`], the protocol, one line at a time;
//! 3. [`registry`]: the [`Registry`] of who is here, each client with a
//!    **bounded** queue of lines for it, so one stuck receiver never blocks
//!    anyone else; its lock is taken only inside its own methods;
//! 4. [`writer`]: each client's writer thread, the only one that writes
//!    to its socket;
//! 5. [`server`]: [`serve_client`], one client's conversation (and
//!    [`leaving`], why it ended); and
//!    [`serve`]: listen, and a thread per client with a cap (lesson 3);
//! 6. [`client`]: [`join`], the client, which registers, listens on a port
//!    of its own for direct messages, and turns what you type into commands.

pub mod client;
pub mod direct;
pub mod leaving;
pub mod limits;
pub mod protocol;
pub mod registry;
pub mod server;
pub mod typing;
pub mod writer;

// What main.rs, the tests and the benchmark use, by its short name.
pub use client::{JoinOptions, join};
pub use limits::*;
pub use protocol::{Command, Refusal, parse_command, valid_name};
pub use registry::Registry;
pub use server::{ClientLimits, ServeOptions, serve, serve_client};
pub use typing::{HELP, Intent, intent_of};
