//! Which lesson's server answered: a client that reached the wrong one says
//! so in one line.
//!
//! The lessons' servers share ports (lessons 2, 3 and 6 listen on 7890 by
//! default), and a server left running in another terminal answers in its own
//! protocol. Without this, lesson 5's `list` against lesson 4's relay printed
//! `the server refused to list its files: hello-first ()`, which sends a
//! learner looking for a bug in the wrong program.
//!
//! The lines below are what each lesson's server sends a client that speaks
//! another lesson's protocol: the first line it gets back. The tests in
//! `tests/tests/wrong_lesson.rs` run every client against the real servers,
//! so a lesson that changes one of these lines fails them.

use std::net::SocketAddr;

use crate::printable;

/// A lesson's server, as a line it sent gives it away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Server {
    /// The lessons whose servers send that line.
    pub lessons: &'static [u32],
    /// What to call it in a message: `lesson 4's relay`.
    pub name: &'static str,
    /// The command that starts its own client.
    pub client: &'static str,
}

const LESSON_2: Server = Server {
    lessons: &[2],
    name: "lesson 2's one-shot server",
    client: "cargo run -p client -- MESSAGE",
};
const LESSONS_3_AND_6: Server = Server {
    lessons: &[3, 6],
    name: "lesson 3's (or lesson 6's) line server",
    client: "cargo run -p client",
};
const LESSON_4: Server = Server {
    lessons: &[4],
    name: "lesson 4's relay",
    client: "cargo run -p relay -- join NAME",
};
const LESSON_5: Server = Server {
    lessons: &[5],
    name: "lesson 5's file server",
    client: "cargo run -p file-download -- list",
};

/// The server that sends `line` (without its newline), if it is one of the
/// lines only one lesson's server sends.
pub fn server_that_sent(line: &[u8]) -> Option<Server> {
    let line = std::str::from_utf8(line).ok()?;
    let starts = |prefix: &str| line.starts_with(prefix);
    let server = match line {
        // Lesson 2 answers any message with `OK`, and closes.
        "OK" => LESSON_2,
        // Lessons 3 and 6 answer every line with `ok`.
        "ok" | "busy: too many clients, try again later" => LESSONS_3_AND_6,
        _ if starts("error: line longer than ") => LESSONS_3_AND_6,
        // Lesson 4 wants `HELLO <name>` before anything else.
        "ERR hello-first" | "ERR unknown-command" | "ERR busy" => LESSON_4,
        _ if starts("WELCOME ") => LESSON_4,
        // Lesson 5 wants `GET <path>`, `RESUME <offset> <path>` or `LIST`.
        _ if starts("ERR bad-request ") || starts("ERR line-too-long ") => LESSON_5,
        _ if starts("ERR busy all ") => LESSON_5,
        _ => return None,
    };
    Some(server)
}

/// The server that sent `line`, if it is a server of none of the lessons
/// in `ours` (the lessons whose servers the asking client talks to).
pub fn other_server(ours: &[u32], line: &[u8]) -> Option<Server> {
    server_that_sent(line).filter(|server| !server.lessons.iter().any(|l| ours.contains(l)))
}

/// The one line a client of `ours` (the lessons whose servers it talks to)
/// reports when the server at `peer` answered `line` in another lesson's
/// protocol; `None` when the line is not another lesson's. `expected` is
/// what the client wanted to reach: `a file server`.
///
/// `the server at 127.0.0.1:7788 answered `ERR hello-first`: that is lesson
/// 4's relay, not a file server; is it still running?`
pub fn wrong_server(ours: &[u32], expected: &str, peer: SocketAddr, line: &[u8]) -> Option<String> {
    let server = other_server(ours, line)?;
    Some(format!(
        "the server at {peer} answered `{}`: that is {}, not {expected}; is it still running?",
        printable(line),
        server.name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_lessons_answer_to_a_stranger_names_that_lesson() {
        let cases: [(&[u8], u32); 10] = [
            (b"OK", 2),
            (b"ok", 3),
            (b"busy: too many clients, try again later", 6),
            (
                b"error: line longer than 65536 bytes, closing the connection",
                3,
            ),
            (b"ERR hello-first", 4),
            (b"WELCOME alice 127.0.0.1:51834", 4),
            (b"ERR busy", 4),
            (
                b"ERR bad-request expected GET <path>, RESUME <offset> <path> or LIST",
                5,
            ),
            (b"ERR line-too-long a request line is at most 4096 bytes", 5),
            (
                b"ERR busy all 32 client slots are taken; try again later",
                5,
            ),
        ];
        for (line, lesson) in cases {
            let server = server_that_sent(line);
            assert!(
                server.is_some_and(|server| server.lessons.contains(&lesson)),
                "{:?} is what lesson {lesson}'s server sends a client of another lesson, so it \
                 should be recognised as lesson {lesson}'s; got {server:?}",
                printable(line)
            );
        }
        for line in [
            &b"OK 12"[..],
            b"ERR not-found no such file",
            b"hello",
            b"",
            b"\xff",
        ] {
            assert_eq!(
                server_that_sent(line),
                None,
                "{:?} is no lesson's answer to a stranger: it should be recognised as nobody's",
                printable(line)
            );
        }
    }

    #[test]
    fn a_clients_own_lessons_are_never_called_wrong() {
        let peer: SocketAddr = "127.0.0.1:7788".parse().unwrap();
        assert_eq!(
            wrong_server(&[5], "a file server", peer, b"ERR hello-first").as_deref(),
            Some(
                "the server at 127.0.0.1:7788 answered `ERR hello-first`: that is lesson 4's \
                 relay, not a file server; is it still running?"
            ),
            "lesson 5's client getting lesson 4's `ERR hello-first` should say it reached the relay"
        );
        assert_eq!(
            wrong_server(&[2, 3, 6], "their server", peer, b"ok"),
            None,
            "lesson 1's client talks to lessons 2, 3 and 6: their `ok` is no wrong server"
        );
        assert_eq!(
            wrong_server(&[4], "a relay server", peer, b"ERR busy"),
            None,
            "lesson 4's own `ERR busy` is no wrong server for lesson 4's client"
        );
    }
}
