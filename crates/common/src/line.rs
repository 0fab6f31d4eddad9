//! Reading one line at a time from a stream, with a size limit.
//!
//! TCP carries a stream of bytes, not messages. One `read()` may return half
//! a line, or three lines, or a line and a half; where the bytes are cut
//! depends on the sender's writes, the network and timing, never on the
//! message. So a line protocol has to collect bytes until it sees `\n`, and
//! it has to stop collecting at some size, or a peer that never sends `\n`
//! makes us hold its bytes in memory until we run out.

use std::io::{self, BufRead, ErrorKind};

// ANCHOR: read_line_outcome
/// What one call to [`read_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadLine {
    /// One line, without its `\n` and without a `\r` just before it (so `nc -C`
    /// and telnet, which end lines with `\r\n`, work too). A last line that the
    /// peer ended by closing instead of sending `\n` counts as a line.
    Line(Vec<u8>),
    /// More than `max_len` bytes arrived without a `\n`. The rest of that line
    /// is still unread: the caller should say so to the peer and close.
    TooLong,
    /// The peer closed its side (a read returned 0 bytes) and every line
    /// before that has been returned.
    Closed,
}
// ANCHOR_END: read_line_outcome

// ANCHOR: read_line
/// Reads the next line from `reader`, holding at most `max_len` bytes of it.
///
/// `reader` is a `BufRead` (usually a `BufReader` around the `TcpStream`):
/// it keeps the bytes that arrived after the `\n` for the next call, so no
/// byte is lost between lines, and a caller that switches from lines to raw
/// bytes (a file after a header) reads on from the same `BufReader`.
///
/// An error (a read timeout, a reset) is returned as it is; the part of a
/// line read before it is dropped, because the caller closes the connection.
pub fn read_line(reader: &mut impl BufRead, max_len: usize) -> io::Result<ReadLine> {
    // exercise 3.4: begin
    let mut line = Vec::new();
    loop {
        let available = match reader.fill_buf() {
            Ok(bytes) => bytes,
            // A signal interrupted the read before any byte came: just retry.
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if available.is_empty() {
            // End of stream: the peer closed (or half-closed) its side.
            return Ok(if line.is_empty() {
                ReadLine::Closed
            } else {
                ReadLine::Line(line)
            });
        }
        match available.iter().position(|&byte| byte == b'\n') {
            Some(newline) => {
                if line.len() + newline > max_len {
                    return Ok(ReadLine::TooLong);
                }
                line.extend_from_slice(&available[..newline]);
                reader.consume(newline + 1);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(ReadLine::Line(line));
            }
            None => {
                let taken = available.len();
                if line.len() + taken > max_len {
                    return Ok(ReadLine::TooLong);
                }
                line.extend_from_slice(available);
                reader.consume(taken);
            }
        }
    }
    // exercise 3.4: end
}
// ANCHOR_END: read_line

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Read};

    /// A reader that hands out its bytes in the given pieces, as a socket
    /// hands out whatever has arrived.
    struct Pieces(Vec<Vec<u8>>);

    impl Read for Pieces {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let piece = &mut self.0[0];
            let n = piece.len().min(buf.len());
            buf[..n].copy_from_slice(&piece[..n]);
            piece.drain(..n);
            if piece.is_empty() {
                self.0.remove(0);
            }
            Ok(n)
        }
    }

    fn lines(pieces: &[&[u8]], max_len: usize) -> Vec<ReadLine> {
        let pieces = pieces.iter().map(|p| p.to_vec()).collect();
        drain(BufReader::with_capacity(8, Pieces(pieces)), max_len)
    }

    /// Every result up to and including the first that is not a line.
    fn drain(mut reader: impl BufRead, max_len: usize) -> Vec<ReadLine> {
        let mut found = Vec::new();
        loop {
            let next = read_line(&mut reader, max_len).unwrap();
            let done = !matches!(next, ReadLine::Line(_));
            found.push(next);
            if done {
                return found;
            }
        }
    }

    fn line(text: &str) -> ReadLine {
        ReadLine::Line(text.as_bytes().to_vec())
    }

    /// Where the chapter explains it, for the failure messages.
    const BOOK: &str = "(book: 03-multi-client.md § Lines, not reads, are the messages)";

    #[test]
    fn two_lines_in_one_read_are_two_lines() {
        assert_eq!(
            lines(&[b"one\ntwo\n"], 100),
            [line("one"), line("two"), ReadLine::Closed],
            "read_line on a reader whose one read hands out `one\\ntwo\\n`: two lines arriving \
             in one read are two lines, `one` then `two` (each without its newline), then Closed; \
             the bytes after the first newline stay in the BufReader for the next call {BOOK}"
        );
    }

    #[test]
    fn a_line_split_over_reads_is_one_line() {
        let pieces: &[&[u8]] = &[b"he", b"llo wor", b"ld\n"];
        assert_eq!(
            lines(pieces, 100),
            [line("hello world"), ReadLine::Closed],
            "read_line on reads of `he`, `llo wor` and `ld\\n`: a line split over several reads \
             is one line, `hello world`, once its newline has come {BOOK}"
        );
        // 你 is e4 bd a0: split it between two reads.
        let pieces: &[&[u8]] = &[b"\xe4\xbd", b"\xa0\n"];
        assert_eq!(
            lines(pieces, 100),
            [line("你"), ReadLine::Closed],
            "read_line on reads of e4 bd and a0 0a (`你` split inside the character, then a \
             newline): one line, `你` {BOOK}"
        );
    }

    #[test]
    fn last_line_without_newline_counts_and_crlf_is_trimmed() {
        assert_eq!(
            lines(&[b"a\r\nb"], 100),
            [line("a"), line("b"), ReadLine::Closed],
            "read_line on `a\\r\\nb` and then the end of the stream: a line ended by `\\r\\n` \
             (as `nc -C` and telnet send) is `a`, without the `\\r`, and a last line ended by the \
             peer closing is a line too, `b` {BOOK}"
        );
        assert_eq!(
            lines(&[b"\n\n"], 100),
            [line(""), line(""), ReadLine::Closed],
            "read_line on `\\n\\n`: two empty lines, then Closed {BOOK}"
        );
        assert_eq!(
            lines(&[], 100),
            [ReadLine::Closed],
            "read_line on a stream that ends at once: Closed, no line {BOOK}"
        );
    }

    /// A reader that hands out `len` bytes of `x` (no newline), counting
    /// what it handed out.
    struct Endless {
        left: usize,
        handed_out: usize,
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.left);
            buf[..n].fill(b'x');
            self.left -= n;
            self.handed_out += n;
            Ok(n)
        }
    }

    #[test]
    fn a_long_line_is_refused_holding_at_most_max_len() {
        let mut reader = BufReader::with_capacity(
            1024,
            Endless {
                left: 1024 * 1024,
                handed_out: 0,
            },
        );
        let found = read_line(&mut reader, 1000).unwrap();
        let handed_out = reader.get_ref().handed_out;
        assert_eq!(
            found,
            ReadLine::TooLong,
            "read_line(reader, 1000) on 1 MiB of `x` with no newline: the line is too long {BOOK}"
        );
        assert!(
            handed_out <= 1000 + 1024,
            "read_line(reader, 1000) on 1 MiB of `x` with no newline, through a BufReader of \
             1024 bytes: it must refuse the line holding at most max_len bytes of it (check the \
             limit before each append), so it should read at most 1000 + 1024 bytes; it read \
             {handed_out}. Without the check inside the loop, a peer that never sends a newline \
             makes the server hold all it sends {BOOK}"
        );
    }

    /// A reader whose first read is interrupted by a signal, as a blocking
    /// read can be: `ErrorKind::Interrupted`, no byte read.
    struct InterruptedOnce {
        interrupted: bool,
        rest: Pieces,
    }

    impl Read for InterruptedOnce {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if !self.interrupted {
                self.interrupted = true;
                return Err(io::Error::from(ErrorKind::Interrupted));
            }
            self.rest.read(buf)
        }
    }

    #[test]
    fn an_interrupted_read_is_retried() {
        let reader = InterruptedOnce {
            interrupted: false,
            rest: Pieces(vec![b"hello\n".to_vec()]),
        };
        let mut reader = BufReader::with_capacity(8, reader);
        let found = read_line(&mut reader, 100);
        assert!(
            matches!(&found, Ok(ReadLine::Line(line)) if line == b"hello"),
            "read_line on a reader whose first read fails with ErrorKind::Interrupted (a signal \
             came before any byte), then hands out `hello\\n`: an interrupted read is not an \
             error, it must be retried, and the line is `hello`; got {found:?} {BOOK}"
        );
    }

    /// [`drain`] for `bytes` handed out in pieces cut at `cuts`, through a buffer of
    /// `capacity` bytes.
    fn read_all(bytes: &[u8], cuts: &[usize], capacity: usize, max_len: usize) -> Vec<ReadLine> {
        let mut pieces = Vec::new();
        let mut start = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        for cut in cuts {
            pieces.push(bytes[start..cut].to_vec());
            start = cut;
        }
        pieces.push(bytes[start..].to_vec());
        pieces.retain(|p| !p.is_empty()); // a 0-byte read means end of stream
        drain(BufReader::with_capacity(capacity, Pieces(pieces)), max_len)
    }

    proptest::proptest! {
        /// Where the stream is cut never changes the lines: TCP may split
        /// the bytes anywhere, and the messages must come out the same.
        #[test]
        fn lines_do_not_depend_on_where_reads_split_the_stream(
            bytes in proptest::collection::vec(proptest::prop_oneof![
                4 => proptest::num::u8::ANY,
                1 => proptest::strategy::Just(b'\n'),
                1 => proptest::strategy::Just(b'\r'),
            ], 0..200),
            cuts in proptest::collection::vec(0usize..1000, 0..20),
            capacity in 1usize..32,
            max_len in 0usize..40,
        ) {
            let whole = read_all(&bytes, &[], 4096, max_len);
            let split = read_all(&bytes, &cuts, capacity, max_len);
            proptest::prop_assert_eq!(whole, split);
        }

        /// No input makes the reader panic, every line respects the limit,
        /// and no byte is invented.
        #[test]
        fn lines_respect_the_limit_and_come_from_the_input(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            max_len in 0usize..64,
        ) {
            let found = read_all(&bytes, &[], 7, max_len);
            let mut total = 0;
            for result in &found {
                if let ReadLine::Line(line) = result {
                    proptest::prop_assert!(line.len() <= max_len);
                    proptest::prop_assert!(!line.contains(&b'\n'));
                    total += line.len();
                }
            }
            proptest::prop_assert!(total <= bytes.len());
        }
    }

    #[test]
    fn the_limit_is_the_line_without_its_newline() {
        assert_eq!(
            lines(&[b"12345\n"], 5),
            [line("12345"), ReadLine::Closed],
            "read_line(reader, 5) on `12345\\n`: a line of exactly max_len bytes (the newline \
             not counted) is within the limit {BOOK}"
        );
        assert_eq!(
            lines(&[b"123456\n"], 5),
            [ReadLine::TooLong],
            "read_line(reader, 5) on `123456\\n`: a line of max_len + 1 bytes is too long {BOOK}"
        );
        assert_eq!(
            lines(&[b"1234567890"], 5),
            [ReadLine::TooLong],
            "read_line(reader, 5) on `1234567890` with no newline: too long, without waiting for \
             the newline {BOOK}"
        );
    }
}
