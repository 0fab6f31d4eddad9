//! Property tests for what lesson 4 parses: the server's command parser,
//! and the client's typed commands. No input may make either panic, and
//! how TCP cuts the stream into reads must not change the commands.

// Helpers outside #[test] functions fail the way tests do: by panicking.
#![allow(clippy::unwrap_used)]

use std::io::{BufReader, Read};

use proptest::prelude::*;
use relay::{
    Command, Intent, LINE_LIMIT, Refusal, TEXT_LIMIT, intent_of, parse_command, valid_name,
};

/// Where the chapter explains the parser, for failure messages.
const READING: &str = "(book: 04-relay.md § Reading a command)";
/// Where it explains how the client turns typed lines into commands.
const CLIENT: &str = "(book: 04-relay.md § The client)";

/// A valid name: 1 to 32 of the allowed characters.
fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,32}"
}

/// Text that may be relayed: anything but the characters that steer a
/// terminal (C0 but tab, DEL, C1, the marks that reorder text).
const SHOWN_TEXT: &str = r"[^\x00-\x08\x0A-\x1F\x7F-\x{9F}\x{61C}\x{200E}\x{200F}\x{202A}-\x{202E}\x{2066}-\x{2069}]{0,40}";

/// Any command a well-behaved client can send, and its line.
fn command() -> impl Strategy<Value = (Command, String)> {
    let text = SHOWN_TEXT;
    prop_oneof![
        (name(), proptest::option::of(1u16..)).prop_map(|(name, listen_port)| {
            let line = match listen_port {
                Some(port) => format!("HELLO {name} {port}"),
                None => format!("HELLO {name}"),
            };
            (Command::Hello { name, listen_port }, line)
        }),
        Just((Command::List, "LIST".to_string())),
        (name(), text).prop_map(|(to, text)| {
            let line = format!("SEND {to} {text}");
            (Command::Send { to, text }, line)
        }),
        text.prop_map(|text| {
            let line = format!("ALL {text}");
            (Command::All { text }, line)
        }),
        name().prop_map(|name| {
            let line = format!("WHERE {name}");
            (Command::Where { name }, line)
        }),
        Just((Command::Bye, "BYE".to_string())),
    ]
}

/// A reader that hands out `bytes` in pieces cut at `cuts`, as a socket
/// hands out whatever has arrived.
struct Pieces {
    bytes: Vec<u8>,
    cuts: Vec<usize>,
    at: usize,
}

impl Read for Pieces {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let next_cut = self
            .cuts
            .iter()
            .copied()
            .find(|&cut| cut > self.at)
            .unwrap_or(self.bytes.len());
        let n = (next_cut - self.at).min(buf.len());
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Every command in `bytes`, read line by line as the server reads them.
fn commands(bytes: &[u8], cuts: &[usize]) -> Vec<Result<Command, String>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let pieces = Pieces {
        bytes: bytes.to_vec(),
        cuts,
        at: 0,
    };
    let mut reader = BufReader::with_capacity(16, pieces);
    let mut found = Vec::new();
    loop {
        match common::read_line(&mut reader, LINE_LIMIT).unwrap() {
            common::ReadLine::Line(line) => {
                found.push(parse_command(&line).map_err(|refusal| refusal.line()));
            }
            common::ReadLine::TooLong => found.push(Err("too long".to_string())),
            common::ReadLine::Closed => return found,
        }
    }
}

/// One line of each form, well-formed or not, and exactly what it reads as:
/// the quickest check of the parser, one case at a time. Each case says
/// why: the rule of the protocol that a wrong answer breaks.
#[test]
fn each_line_reads_as_its_command_or_its_refusal() {
    let name = |name: &str| name.to_string();
    let usage = Refusal::Usage;
    let longest_text = "t".repeat(TEXT_LIMIT);
    let send_longest = format!("SEND bob {longest_text}");
    let send_too_long = format!("SEND bob {longest_text}t");
    let all_too_long = format!("ALL {longest_text}t");
    let port_form = "a port is 1 to 65535 in decimal digits, and HELLO takes at most one";
    let single_spaces = "the command word and its arguments are separated by single spaces: a second space, or a tab, is not a separator";
    let rest_of_line = "the text of SEND and ALL is the rest of the line after one space, spaces and all, and may be empty";
    let text_limit = "relayed text is at most TEXT_LIMIT (4058) bytes, in SEND as in ALL, so that every FROM line fits in LINE_LIMIT";
    let name_rules =
        "a name is 1 to 32 ASCII letters, digits, `_` or `-`, in SEND and WHERE as in HELLO";
    let cases: Vec<(&[u8], Result<Command, Refusal>, &str)> = vec![
        (
            b"HELLO alice",
            Ok(Command::Hello {
                name: name("alice"),
                listen_port: None,
            }),
            "HELLO and a name registers",
        ),
        (
            b"HELLO bob 40123",
            Ok(Command::Hello {
                name: name("bob"),
                listen_port: Some(40123),
            }),
            "HELLO, a name and a port registers with a listen port",
        ),
        (
            b"HELLO",
            Err(Refusal::BadName),
            "`HELLO` alone has an empty name: in HELLO the name is checked first, and the empty name is a bad name",
        ),
        (b"HELLO al!ce", Err(Refusal::BadName), name_rules),
        (b"HELLO \xd0\xb0lice", Err(Refusal::BadName), name_rules),
        (b"HELLO  alice", Err(Refusal::BadName), single_spaces),
        (b"HELLO\talice", Err(Refusal::UnknownCommand), single_spaces),
        (
            b"HELLO alice 0",
            Err(usage("HELLO <name> [<listen-port>]")),
            port_form,
        ),
        (
            b"HELLO alice +80",
            Err(usage("HELLO <name> [<listen-port>]")),
            port_form,
        ),
        (
            b"HELLO alice 80 x",
            Err(usage("HELLO <name> [<listen-port>]")),
            port_form,
        ),
        (b"LIST", Ok(Command::List), "LIST takes nothing"),
        (b"LIST everyone", Err(usage("LIST")), "LIST takes nothing"),
        (
            b"SEND bob hi  there ",
            Ok(Command::Send {
                to: name("bob"),
                text: name("hi  there "),
            }),
            rest_of_line,
        ),
        (
            b"SEND bob  hi",
            Ok(Command::Send {
                to: name("bob"),
                text: name(" hi"),
            }),
            rest_of_line,
        ),
        (
            b"SEND bob ",
            Ok(Command::Send {
                to: name("bob"),
                text: name(""),
            }),
            rest_of_line,
        ),
        (
            send_longest.as_bytes(),
            Ok(Command::Send {
                to: name("bob"),
                text: longest_text.clone(),
            }),
            text_limit,
        ),
        (
            send_too_long.as_bytes(),
            Err(Refusal::TextTooLong),
            text_limit,
        ),
        (
            all_too_long.as_bytes(),
            Err(Refusal::TextTooLong),
            text_limit,
        ),
        (
            b"SEND bob",
            Err(usage("SEND <name> <text>")),
            "SEND needs a name, a space and a text",
        ),
        (
            b"SEND",
            Err(usage("SEND <name> <text>")),
            "SEND needs a name, a space and a text",
        ),
        (b"SEND\tbob hi", Err(Refusal::UnknownCommand), single_spaces),
        (b"SEND c@rol hi", Err(Refusal::BadName), name_rules),
        (b"SEND  hi", Err(Refusal::BadName), name_rules),
        (
            b"ALL hi everyone",
            Ok(Command::All {
                text: name("hi everyone"),
            }),
            rest_of_line,
        ),
        (b"ALL ", Ok(Command::All { text: name("") }), rest_of_line),
        (
            b"ALL",
            Err(usage("ALL <text>")),
            "ALL needs a space and a text",
        ),
        (
            b"WHERE bob",
            Ok(Command::Where { name: name("bob") }),
            "WHERE takes one name",
        ),
        (b"WHERE", Err(usage("WHERE <name>")), "WHERE takes one name"),
        (
            b"WHERE bob carol",
            Err(Refusal::BadName),
            "WHERE takes one name, the rest of the line: `bob carol` is not a name",
        ),
        (b"BYE", Ok(Command::Bye), "BYE takes nothing"),
        (b"BYE now", Err(usage("BYE")), "BYE takes nothing"),
        (
            b"",
            Err(Refusal::UnknownCommand),
            "the empty line is no command",
        ),
        (
            b"list",
            Err(Refusal::UnknownCommand),
            "command words are upper case and compared byte for byte: `list` is not `LIST`",
        ),
        (
            b"Hello alice",
            Err(Refusal::UnknownCommand),
            "command words are upper case and compared byte for byte: `Hello` is not `HELLO`",
        ),
        (
            b"FOO bar",
            Err(Refusal::UnknownCommand),
            "FOO is no command",
        ),
        (
            b"SEND bob caf\xe9",
            Err(Refusal::NotUtf8),
            "a line that is not UTF-8 is refused as such",
        ),
    ];
    for (line, expected, why) in cases {
        let got = parse_command(line);
        let shown = |read: &Result<Command, Refusal>| match read {
            Ok(command) => short(&format!("{command:?}")),
            Err(refusal) => format!("the refusal `{}`", refusal.line().trim_end()),
        };
        assert!(
            got == expected,
            "the line {:?} should read as {}; got {}: {why} {READING}",
            short(&String::from_utf8_lossy(line)),
            shown(&expected),
            shown(&got)
        );
    }
}

/// A long line cut to its start and length, for failure messages.
fn short(line: &str) -> String {
    match line.char_indices().nth(60) {
        Some((at, _)) => format!("{}... ({} bytes)", &line[..at], line.len()),
        None => line.to_string(),
    }
}

proptest! {
    /// No line makes the parser panic, and every refusal is one `ERR` line.
    #[test]
    fn any_bytes_are_a_command_or_one_err_line(line in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Err(refusal) = parse_command(&line) {
            let err = refusal.line();
            prop_assert!(
                err.starts_with("ERR ") && err.ends_with('\n') && err.matches('\n').count() == 1,
                "a refused line should be answered with one `ERR ...` line; the line {:?} got {:?} {}",
                String::from_utf8_lossy(&line), err, READING
            );
        }
    }

    /// Lines that look almost right: a real command word and random rest.
    #[test]
    fn near_misses_never_panic(word in "(HELLO|LIST|SEND|ALL|WHERE|BYE)", rest in "[ -~\u{80}-\u{10ffff}]{0,60}") {
        let _ = parse_command(format!("{word}{rest}").as_bytes());
        let _ = parse_command(format!("{word} {rest}").as_bytes());
    }

    /// Every command a client can send is read back as that command.
    #[test]
    fn every_command_reads_back((command, line) in command()) {
        prop_assert_eq!(
            parse_command(line.as_bytes()), Ok(command),
            "every line a well-behaved client sends should read back as the command it is; the line {:?} {}",
            line, READING
        );
    }

    /// A name the parser accepts in HELLO is a name by the rules: never a
    /// space, a control character or anything outside ASCII.
    #[test]
    fn accepted_names_follow_the_rules(name in "\\PC{0,40}") {
        if let Ok(Command::Hello { name: got, .. }) = parse_command(format!("HELLO {name}").as_bytes()) {
            prop_assert!(
                valid_name(&got)
                    && got.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                    && (1..=32).contains(&got.len()),
                "HELLO should accept only names of 1 to 32 ASCII letters, digits, `_` or `-`; it accepted {:?} {}",
                got, READING
            );
        }
    }

    /// Relayed text never holds a character that steers a terminal.
    #[test]
    fn text_that_would_steer_a_terminal_is_refused(
        before in SHOWN_TEXT,
        control in proptest::sample::select(vec![
            '\u{0}', '\u{7}', '\u{8}', '\r', '\u{b}', '\u{1b}', '\u{1f}', '\u{7f}', '\u{80}',
            '\u{85}', '\u{9b}', '\u{9f}', '\u{61c}', '\u{200e}', '\u{200f}', '\u{202a}',
            '\u{202e}', '\u{2066}', '\u{2069}',
        ]),
        after in SHOWN_TEXT,
        all in proptest::bool::ANY,
    ) {
        let text = format!("{before}{control}{after}");
        let line = if all { format!("ALL {text}") } else { format!("SEND bob {text}") };
        prop_assert_eq!(
            parse_command(line.as_bytes()), Err(Refusal::ControlCharacter),
            "the line {:?} holds {:?}, which steers the terminal that shows it: relayed text is \
             refused with ERR control-character, so that no recipient gets it raw {}",
            line, control, READING
        );
    }

    /// Relayed text never exceeds TEXT_LIMIT, so FROM lines fit the line limit.
    #[test]
    fn relayed_text_fits(text_len in 0usize..5000) {
        let line = format!("ALL {}", "x".repeat(text_len));
        match parse_command(line.as_bytes()) {
            Ok(Command::All { text }) => prop_assert!(
                text.len() <= TEXT_LIMIT,
                "ALL with a text of {} bytes should be refused with ERR text-too-long: at most TEXT_LIMIT ({}) bytes are relayed, so that every FROM line fits in {} {}",
                text_len, TEXT_LIMIT, LINE_LIMIT, READING
            ),
            Ok(other) => prop_assert!(false, "`ALL` and {} bytes of text should read as Command::All; got {:?} {}", text_len, other, READING),
            Err(refusal) => prop_assert_eq!(
                refusal.line(), "ERR text-too-long\n",
                "ALL with a text of {} bytes should be relayed up to TEXT_LIMIT ({}) bytes and refused with ERR text-too-long beyond {}",
                text_len, TEXT_LIMIT, READING
            ),
        }
    }

    /// However TCP cuts the stream into reads, the server reads the same
    /// commands as from one piece.
    #[test]
    fn commands_do_not_depend_on_where_reads_split_the_stream(
        sent in proptest::collection::vec(command(), 0..12),
        cuts in proptest::collection::vec(0usize..2000, 0..30),
    ) {
        let stream: String = sent.iter().map(|(_, line)| format!("{line}\n")).collect();
        let whole = commands(stream.as_bytes(), &[]);
        let split = commands(stream.as_bytes(), &cuts);
        let expected: Vec<Result<Command, String>> =
            sent.into_iter().map(|(command, _)| Ok(command)).collect();
        prop_assert_eq!(&whole, &expected, "each line sent should read back as its command {}", READING);
        prop_assert_eq!(
            split, expected,
            "the commands should not depend on where TCP cuts the stream into reads (cut at {:?}) {}",
            cuts, READING
        );
    }

    /// No typed line makes the client panic, and every protocol line it
    /// makes is one line.
    #[test]
    fn any_typed_line_is_handled(line in "\\PC{0,80}") {
        if let Intent::Line(sent) = intent_of(&line) {
            prop_assert!(
                !sent.contains('\n'),
                "a typed line should become one protocol line; {:?} became {:?} {}",
                line, sent, CLIENT
            );
        }
    }

    /// `/to NAME TEXT` becomes exactly `SEND NAME TEXT`.
    #[test]
    fn to_becomes_send(to in name(), text in SHOWN_TEXT) {
        let Intent::Line(line) = intent_of(&format!("/to {to} {text}")) else {
            return Err(TestCaseError::fail(format!("`/to {to} {text}` should become a protocol line {CLIENT}")));
        };
        prop_assert_eq!(
            parse_command(line.as_bytes()), Ok(Command::Send { to, text }),
            "a typed `/to NAME TEXT` should become exactly `SEND NAME TEXT`; it became {:?} {}",
            line, CLIENT
        );
    }
}

#[test]
fn typed_commands_become_protocol_lines() {
    let line = |text: &str| Intent::Line(text.to_string());
    let direct = Intent::Direct {
        to: "bob".to_string(),
        text: "hi".to_string(),
    };
    for (typed_line, expected) in [
        ("/list", line("LIST")),
        ("/to bob hi there", line("SEND bob hi there")),
        ("/all hi everyone", line("ALL hi everyone")),
        ("hi everyone", line("ALL hi everyone")),
        ("/where bob", line("WHERE bob")),
        ("/direct bob hi", direct),
        ("/quit", Intent::Quit),
        ("", Intent::Nothing),
        ("\r", Intent::Nothing),
    ] {
        assert_eq!(
            intent_of(typed_line),
            expected,
            "the typed line {typed_line:?} should become {expected:?} {CLIENT}"
        );
    }
    assert!(
        matches!(intent_of("/dance"), Intent::Help(help) if help.starts_with("unknown command /dance;")),
        "an unknown typed command, `/dance`, should print help starting `unknown command /dance;` {CLIENT}"
    );
    assert!(
        matches!(intent_of("/direct"), Intent::Help(_)),
        "`/direct` without a name should print its usage {CLIENT}"
    );
}
