//! What two or more lessons share, and nothing else.
//!
//! Every lesson prints text that arrived from the network, reads lines with a
//! size limit, turns addresses typed on the command line into socket
//! addresses, and reports errors as one line. Those pieces live here so that
//! each lesson's `lib.rs` can stay about the socket calls it teaches.
//!
//! | module     | what it holds                                                     |
//! |------------|-------------------------------------------------------------------|
//! | [`text`]   | [`printable`]: network bytes made safe for a terminal; [`say!`]   |
//! | [`addr`]   | [`resolve`], [`connect`], [`listen`]: addresses with a default port |
//! | [`line`]   | [`read_line`]: one line, at most N bytes, however the bytes arrive |
//! | [`log`]    | a server's log never waits for its reader: a bounded queue, lines dropped and counted; the stop signals kept off its thread, and held until a server watches for them |
//! | [`errors`] | [`describe`] an I/O error in plain words; [`report`] it and exit; [`is_timeout`] |
//! | [`close`]  | [`close_gently`]: close without a reset destroying the last reply |
//! | [`deadline`] | [`Deadline`]: a read that must finish by a time, not just wait less |
//! | [`serve`]  | [`serve_threads`]: a thread per client, at most N at once          |
//! | [`lessons`] | [`wrong_server`]: which other lesson's server a client reached    |
//! | [`sync`]   | [`lock`]: a mutex taken whole even after a panic elsewhere        |

pub mod addr;
pub mod close;
pub mod deadline;
pub mod errors;
pub mod lessons;
pub mod line;
pub mod log;
pub mod serve;
pub mod sync;
pub mod text;

pub use addr::{announce, bind_error, connect, connect_any, listen, resolve};
pub use close::close_gently;
pub use deadline::Deadline;
pub use errors::{describe, is_timeout, report};
pub use lessons::{other_server, server_that_sent, wrong_server};
pub use line::{ReadLine, read_line};
pub use log::{
    ClientLines, LOG_LINES_PER_CLIENT, flush_log, hold_stop_signals, log_without_blocking,
    release_stop_signals,
};
pub use serve::{ClientLimit, Slot, refuse, serve_threads};
pub use sync::lock;
pub use text::{count, print_line, printable};
