//! The ways out of the traps in the book's "Rust for a Python programmer"
//! (§ When the compiler stops you). The book includes these functions by
//! anchor; `cargo test` builds this example, so each way out compiles.
//! The traps themselves, which must not compile, are in
//! `tests/book/rust_for_python/` with the errors rustc prints for them,
//! checked by `tests/tests/book.rs`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::thread;

// ANCHOR: lend
/// One thread reads lines and writes replies, in turn: the reader borrows.
pub fn lend(stream: TcpStream) -> io::Result<()> {
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    (&stream).write_all(b"ok\n")?;
    Ok(())
}
// ANCHOR_END: lend

// ANCHOR: get_mut
/// The reader owns the socket; `get_mut` lends it back for writing.
pub fn reach_through(stream: TcpStream) -> io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    reader.get_mut().write_all(b"ok\n")?;
    Ok(())
}
// ANCHOR_END: get_mut

// ANCHOR: try_clone
/// A second handle on the same connection, for a second thread.
pub fn two_threads(stream: TcpStream) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    let sending = thread::spawn(move || writer.write_all(b"hello\n"));
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    sending.join().unwrap_or(Ok(()))
}
// ANCHOR_END: try_clone

// ANCHOR: mutable_copy
pub fn receive(stream: &TcpStream) -> io::Result<usize> {
    let mut buffer = [0u8; 1024];
    let mut reader = stream; // another &TcpStream, this one mutable
    reader.read(&mut buffer)
}
// ANCHOR_END: mutable_copy

// ANCHOR: budget
/// Takes at most `budget` chunks from `source`; says whether it found the
/// source empty. Running out of budget is not finding it empty.
pub fn take_some(source: &mut Vec<Vec<u8>>, budget: usize, taken: &mut Vec<u8>) -> bool {
    let mut nothing_left = false;
    for _ in 0..budget {
        match source.pop() {
            Some(chunk) => taken.extend_from_slice(&chunk),
            None => {
                nothing_left = true; // the source said "empty": a fact
                break;
            }
        }
    }
    // Here nothing_left is false when the budget ran out, and that matters.
    nothing_left
}
// ANCHOR_END: budget

fn main() {
    let mut source = vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()];
    let mut taken = Vec::new();
    assert!(!take_some(&mut source, 2, &mut taken), "stopped early");
    assert!(take_some(&mut source, 2, &mut taken), "then found it empty");
    let _ = (lend, reach_through, two_threads, receive);
}
