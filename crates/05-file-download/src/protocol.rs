//! The protocol: one request line per connection, and a reply that says
//! how many bytes follow, and after them what their SHA-256 is. Pure functions: bytes
//! in, a value out, no sockets, so a test can throw any bytes at them.

// ANCHOR: request
/// What a client asks for. One request line per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `GET <path>`: the whole file.
    Get { path: String },
    /// `RESUME <offset> <path>`: the file from byte `offset` on.
    Resume { offset: u64, path: String },
    /// `LIST`: the files offered.
    List,
}

/// Reads a request line (without its newline). It does no I/O, so a test
/// can throw any bytes at it.
///
/// The path is the rest of the line, spaces and all: a name like
/// `my notes.txt` needs no quoting. Nothing is decoded (no `%2e`, no
/// escapes): the bytes that pass [`check_path`](crate::check_path) are the
/// name that is opened.
pub fn parse_request(line: &[u8]) -> Result<Request, Refusal> {
    let Ok(line) = std::str::from_utf8(line) else {
        return Err(Refusal::new(Code::BadRequest, "a request must be UTF-8"));
    };
    if line == "LIST" {
        return Ok(Request::List);
    }
    if let Some(path) = line.strip_prefix("GET ") {
        return Ok(Request::Get {
            path: path.to_string(),
        });
    }
    if let Some(rest) = line.strip_prefix("RESUME ") {
        let (offset, path) = rest.split_once(' ').unwrap_or((rest, ""));
        let Some(offset) = parse_number(offset) else {
            return Err(Refusal::new(
                Code::BadRequest,
                "expected RESUME <offset> <path>, the offset in decimal digits",
            ));
        };
        return Ok(Request::Resume {
            offset,
            path: path.to_string(),
        });
    }
    Err(Refusal::new(
        Code::BadRequest,
        "expected GET <path>, RESUME <offset> <path> or LIST",
    ))
}

/// A number in decimal digits and nothing else: `str::parse` would also
/// take `+5`, which no client of ours sends.
pub(crate) fn parse_number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}
// ANCHOR_END: request

// ANCHOR: refusal
/// Why a request is refused: the code of an `ERR` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    NotFound,
    Forbidden,
    NotAFile,
    BadRequest,
    BadOffset,
    LineTooLong,
    Busy,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::NotFound => "not-found",
            Code::Forbidden => "forbidden",
            Code::NotAFile => "not-a-file",
            Code::BadRequest => "bad-request",
            Code::BadOffset => "bad-offset",
            Code::LineTooLong => "line-too-long",
            Code::Busy => "busy",
        }
    }
}

/// A refused request: `ERR <code> <message>` on the wire.
///
/// The message is always our own text, never a piece of the request: a
/// path sent back could carry control characters to the client's terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: Code,
    pub message: String,
}

impl Refusal {
    pub fn new(code: Code, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }

    /// The reply line, newline included.
    pub fn line(&self) -> String {
        format!("ERR {} {}\n", self.code.as_str(), self.message)
    }
}
// ANCHOR_END: refusal

// ANCHOR: reply
/// A line from the server, as the client reads it: a reply's header, or
/// one of the lines after a file's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `OK <number>`: for `GET` and `RESUME` the file's whole size (the
    /// bytes from the requested offset on follow); for `LIST` the count of
    /// lines `<size> <path>` that follow.
    Ok(u64),
    /// `SHA256 <64 hex digits>`, after a file's bytes: the whole file's
    /// digest.
    Digest(String),
    /// `HASHING <done> <size>`, after a file's bytes, while the server is
    /// still computing the digest: how far it got.
    Hashing { done: u64, size: u64 },
    /// `ERR <code> <message>`.
    Refused { code: String, message: String },
}

/// Reads a line from the server (without its newline); `None` if it is
/// not one of the four shapes. Pure, like [`parse_request`].
pub fn parse_reply(line: &[u8]) -> Option<Reply> {
    // exercise 5.1: begin
    let line = std::str::from_utf8(line).ok()?;
    if let Some(rest) = line.strip_prefix("ERR ") {
        let (code, message) = rest.split_once(' ').unwrap_or((rest, ""));
        return Some(Reply::Refused {
            code: code.to_string(),
            message: message.to_string(),
        });
    }
    if let Some(number) = line.strip_prefix("OK ") {
        return Some(Reply::Ok(parse_number(number)?));
    }
    if let Some(sha256) = line.strip_prefix("SHA256 ") {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        return Some(Reply::Digest(sha256.to_ascii_lowercase()));
    }
    let (done, size) = line.strip_prefix("HASHING ")?.split_once(' ')?;
    Some(Reply::Hashing {
        done: parse_number(done)?,
        size: parse_number(size)?,
    })
    // exercise 5.1: end
}
// ANCHOR_END: reply

#[cfg(test)]
mod tests {
    use super::*;

    const SECTION: &str = "(book: 05-file-download.md § The protocol)";

    fn get(path: &str) -> Request {
        Request::Get {
            path: path.to_string(),
        }
    }

    #[test]
    fn requests_have_three_shapes() {
        let good = [
            (
                &b"GET a b.txt"[..],
                get("a b.txt"),
                "the path is the rest of the line, spaces and all",
            ),
            (
                b"GET ",
                get(""),
                "an empty path is the path check's to refuse, not the parser's",
            ),
            (
                b"RESUME 12 x/y",
                Request::Resume {
                    offset: 12,
                    path: "x/y".to_string(),
                },
                "the offset in decimal digits, then the path",
            ),
            (b"LIST", Request::List, "LIST alone"),
        ];
        for (line, expected, why) in good {
            assert_eq!(
                parse_request(line),
                Ok(expected),
                "parse_request({}) should read it as shown ({why}) {SECTION}",
                testkit::show(line)
            );
        }
        for bad in [
            &b"get x"[..],
            b"GET",
            b"LIST ",
            b"RESUME x y",
            b"RESUME +1 y",
            b"RESUME  1 y",
            b"RESUME 18446744073709551616 y",
            b"GET \xff",
            b"",
        ] {
            let got = parse_request(bad).map_err(|refusal| refusal.code);
            assert_eq!(
                got,
                Err(Code::BadRequest),
                "parse_request({}) should refuse it with bad-request: a request is `GET <path>`, \
                 `RESUME <offset in decimal digits> <path>` or `LIST`, in UTF-8 {SECTION}",
                testkit::show(bad)
            );
        }
    }

    #[test]
    fn replies_have_four_shapes() {
        let sha = "A".repeat(64);
        let good = [
            (
                "OK 5".to_string(),
                Reply::Ok(5),
                "a file's size, or a listing's count",
            ),
            (
                format!("SHA256 {sha}"),
                Reply::Digest("a".repeat(64)),
                "a file's digest, after its bytes (in lowercase, whatever case it came in)",
            ),
            (
                "HASHING 10 20".to_string(),
                Reply::Hashing { done: 10, size: 20 },
                "how far the server got computing the digest",
            ),
            (
                "ERR not-found no such file".to_string(),
                Reply::Refused {
                    code: "not-found".to_string(),
                    message: "no such file".to_string(),
                },
                "a refusal: the code, then the message, split at the first space only",
            ),
            (
                "ERR busy".to_string(),
                Reply::Refused {
                    code: "busy".to_string(),
                    message: String::new(),
                },
                "a refusal whose message is empty is still a refusal",
            ),
            (
                format!("OK {}", u64::MAX),
                Reply::Ok(u64::MAX),
                "the largest number a u64 holds",
            ),
        ];
        for (line, expected, why) in good {
            let got = std::panic::catch_unwind(|| parse_reply(line.as_bytes()));
            assert!(
                got.is_ok(),
                "parse_reply({line:?}) should read it as shown ({why}), not panic {SECTION}"
            );
            assert_eq!(
                got.ok().flatten(),
                Some(expected),
                "parse_reply({line:?}) should read it as shown ({why}) {SECTION}"
            );
        }
    }

    #[test]
    fn a_line_of_no_reply_shape_is_none() {
        let short = format!("SHA256 {}", "a".repeat(63));
        let long = format!("SHA256 {}", "a".repeat(65));
        let not_hex = format!("SHA256 {}", "z".repeat(64));
        let too_big = format!("OK {}0", u64::MAX);
        let hashing_too_big = format!("HASHING 1 {}0", u64::MAX);
        for (bad, why) in [
            (&b"OK"[..], "a number must follow"),
            (b"OK x", "numbers in decimal digits"),
            (b"OK 5 abc", "one number and nothing after it"),
            (b"ok 5", "the words are in capitals"),
            (b"HELLO", "not one of the four shapes"),
            (b"OK -1", "numbers in decimal digits, with no sign"),
            (b"OK +1", "numbers in decimal digits, with no sign"),
            (
                b"OK  5",
                "numbers in decimal digits, with no space around them",
            ),
            (
                b"OK 5 ",
                "numbers in decimal digits, with no space around them",
            ),
            (
                too_big.as_bytes(),
                "a number too big for a u64 is no number: None, not a panic",
            ),
            (
                hashing_too_big.as_bytes(),
                "a number too big for a u64 is no number: None, not a panic",
            ),
            (short.as_bytes(), "a digest is 64 hex digits, not 63"),
            (long.as_bytes(), "a digest is 64 hex digits, not 65"),
            (
                not_hex.as_bytes(),
                "a digest is 64 hex digits (0-9, a-f, A-F), not any letters",
            ),
            (b"SHA256 ", "a digest is 64 hex digits"),
            (b"HASHING 1", "two numbers: done and size"),
            (b"HASHING 1 x", "two numbers in decimal digits"),
        ] {
            let got = std::panic::catch_unwind(|| parse_reply(bad));
            assert!(
                got.as_ref().is_ok_and(Option::is_none),
                "parse_reply({}) should be None ({why}); it {}: a line from the server is \
                 `OK <number>`, `SHA256 <64 hex digits>`, `HASHING <done> <size>` or \
                 `ERR <code> <message>`, numbers in decimal digits {SECTION}",
                testkit::show(bad),
                match &got {
                    Ok(reply) => format!("gave {reply:?}"),
                    Err(_) => "panicked".to_string(),
                }
            );
        }
    }

    #[test]
    fn a_refusal_is_one_line() {
        let refusal = Refusal::new(Code::NotAFile, "only regular files are served");
        assert_eq!(
            refusal.line(),
            "ERR not-a-file only regular files are served\n",
            "a refusal goes on the wire as one line `ERR <code> <message>\\n` {SECTION}"
        );
    }
}
