//! Printing what arrives from the network.
//!
//! Bytes from a peer are not text until we check them. A peer can send
//! invalid UTF-8, or control characters such as `ESC [2J` that clear the
//! terminal of whoever reads our log. So nothing from the network reaches the
//! terminal raw: it goes through [`printable`] first.

use std::fmt;

// ANCHOR: printable
/// Turns bytes from the network into one line that is safe to print.
///
/// Valid UTF-8 is kept as it is (so `你好` prints as `你好`), except:
/// - control characters become escapes: `\n`, `\r`, `\t`, or `\u{1b}` for ESC;
/// - Unicode's invisible direction marks (which can make text display in
///   a different order from the bytes) become `\u{202e}` and the like;
/// - bytes that are not valid UTF-8 become `\xff`.
pub fn printable(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() || is_direction_mark(c) => {
                    out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}
// ANCHOR_END: printable

/// The bidirectional formatting characters (Unicode's "Bidi_Control" set).
fn is_direction_mark(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Prints one line on standard output, like `println!`, through [`say!`].
///
/// `println!` panics when standard output is gone (say the program was piped
/// into `head`, which has exited). A server must not die because nobody reads
/// its log, so this ignores a failed write. It flushes after every line so a
/// test, or a person running `tail -f`, sees each event as it happens. And
/// once a program listens, it never waits for a reader at all: see
/// [`crate::log`].
pub fn print_line(line: fmt::Arguments) {
    crate::log::write_line(line);
}

// ANCHOR: say
/// `println!` that never panics: see [`print_line`].
///
/// ```
/// common::say!("listening on {}", "127.0.0.1:7890");
/// ```
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::print_line(::std::format_args!($($arg)*))
    };
}
// ANCHOR_END: say

/// A count and its noun, singular for one: `1 file`, `0 files`, `12 bytes`.
/// For the nouns whose plural is the noun and an `s`.
pub fn count(number: u64, noun: &str) -> String {
    match number {
        1 => format!("1 {noun}"),
        _ => format!("{number} {noun}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::{count, printable};

    #[test]
    fn a_count_of_one_is_singular() {
        assert_eq!(count(1, "file"), "1 file");
        assert_eq!(count(0, "file"), "0 files");
        assert_eq!(count(12, "byte"), "12 bytes");
    }

    #[test]
    fn plain_text_is_kept() {
        assert_eq!(printable(b"hello world"), "hello world");
        assert_eq!(printable("你好".as_bytes()), "你好");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable(b"a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_eq!(printable(b"\x1b[2J"), "\\u{1b}[2J");
        assert_eq!(printable(b"\0"), "\\u{0}");
        assert_eq!(printable("\u{202e}txt".as_bytes()), "\\u{202e}txt");
    }

    #[test]
    fn invalid_utf8_is_escaped_byte_by_byte() {
        assert_eq!(printable(b"caf\xe9"), "caf\\xe9");
        // The first two bytes of 你 (e4 bd a0) with the third missing.
        assert_eq!(printable(b"\xe4\xbd!"), "\\xe4\\xbd!");
    }
}
