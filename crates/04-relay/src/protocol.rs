//! The protocol: the commands a client sends, the refusals it can get, and
//! the parser that turns one line into one or the other. No I/O here.

use crate::limits::{NAME_LIMIT, TEXT_LIMIT};

// ANCHOR: command
/// What a client can ask of the server: one line each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `HELLO <name> [<listen-port>]`: register, optionally with the port
    /// this client listens on for direct connections.
    Hello {
        name: String,
        listen_port: Option<u16>,
    },
    /// `LIST`: who is here.
    List,
    /// `SEND <name> <text>`: relay one line to one client.
    Send { to: String, text: String },
    /// `ALL <text>`: relay one line to every other client.
    All { text: String },
    /// `WHERE <name>`: where that client listens for direct connections.
    Where { name: String },
    /// `BYE`: leave.
    Bye,
}

// ANCHOR_END: command

// ANCHOR: refusal
/// Why a line was refused: the `ERR` line the client gets. The server
/// stays connected, except after `LineTooLong`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Anything but `HELLO` (or `BYE`) before registering.
    HelloFirst,
    /// A `HELLO` after registering.
    AlreadyRegistered,
    /// A name that breaks the rules (see [`valid_name`]).
    BadName,
    /// Someone else has this name.
    NameTaken,
    /// No registered client has this name.
    NoSuchPeer(String),
    /// This client's queue stayed full for RELAY_WAIT: the line was not
    /// relayed (the client reads slower than it is sent to, or not at all).
    Full(String),
    /// This client registered without a listen port.
    NotListening(String),
    /// A known command whose arguments do not fit its form (its name, if
    /// it has one, is checked first: a missing name is `BadName`); holds
    /// the right form.
    Usage(&'static str),
    /// Text longer than TEXT_LIMIT.
    TextTooLong,
    /// Relayed text holds a character that would steer the recipient's
    /// terminal (see [`steers_a_terminal`]).
    ControlCharacter,
    /// The line is not UTF-8.
    NotUtf8,
    /// A command word the server does not know (or an empty line).
    UnknownCommand,
    /// More than LINE_LIMIT bytes without a newline.
    LineTooLong,
}

impl Refusal {
    /// The whole `ERR` line, with its newline.
    pub fn line(&self) -> String {
        match self {
            Refusal::HelloFirst => "ERR hello-first\n".to_string(),
            Refusal::AlreadyRegistered => "ERR already-registered\n".to_string(),
            Refusal::BadName => "ERR bad-name\n".to_string(),
            Refusal::NameTaken => "ERR name-taken\n".to_string(),
            Refusal::NoSuchPeer(name) => format!("ERR no-such-peer {name}\n"),
            Refusal::Full(name) => format!("ERR full {name}\n"),
            Refusal::NotListening(name) => format!("ERR not-listening {name}\n"),
            Refusal::Usage(form) => format!("ERR usage {form}\n"),
            Refusal::TextTooLong => "ERR text-too-long\n".to_string(),
            Refusal::ControlCharacter => "ERR control-character\n".to_string(),
            Refusal::NotUtf8 => "ERR not-utf8\n".to_string(),
            Refusal::UnknownCommand => "ERR unknown-command\n".to_string(),
            Refusal::LineTooLong => "ERR line-too-long\n".to_string(),
        }
    }
}

// ANCHOR_END: refusal

// ANCHOR: parse
/// Reads one command line (without its newline), with no I/O. Single
/// spaces separate the word and the first arguments; the text of `SEND`
/// and `ALL` is the rest of the line, spaces and all, and may be empty.
pub fn parse_command(line: &[u8]) -> Result<Command, Refusal> {
    // exercise 4.1: begin
    let line = std::str::from_utf8(line).map_err(|_| Refusal::NotUtf8)?;
    let (word, rest) = match line.split_once(' ') {
        Some((word, rest)) => (word, Some(rest)),
        None => (line, None),
    };
    match (word, rest) {
        ("HELLO", rest) => {
            let mut args = rest.unwrap_or("").split(' ');
            let name = args.next().unwrap_or("");
            if !valid_name(name) {
                return Err(Refusal::BadName);
            }
            let usage = Refusal::Usage("HELLO <name> [<listen-port>]");
            let listen_port = match args.next() {
                None => None,
                Some(port) => Some(parse_port(port).ok_or(usage.clone())?),
            };
            if args.next().is_some() {
                return Err(usage);
            }
            Ok(Command::Hello {
                name: name.to_string(),
                listen_port,
            })
        }
        ("LIST", None) => Ok(Command::List),
        ("LIST", Some(_)) => Err(Refusal::Usage("LIST")),
        ("SEND", rest) => {
            let Some((to, text)) = rest.and_then(|rest| rest.split_once(' ')) else {
                return Err(Refusal::Usage("SEND <name> <text>"));
            };
            if !valid_name(to) {
                return Err(Refusal::BadName);
            }
            Ok(Command::Send {
                to: to.to_string(),
                text: checked_text(text)?,
            })
        }
        ("ALL", Some(text)) => Ok(Command::All {
            text: checked_text(text)?,
        }),
        ("ALL", None) => Err(Refusal::Usage("ALL <text>")),
        ("WHERE", Some(name)) if valid_name(name) => Ok(Command::Where {
            name: name.to_string(),
        }),
        ("WHERE", Some(_)) => Err(Refusal::BadName),
        ("WHERE", None) => Err(Refusal::Usage("WHERE <name>")),
        ("BYE", None) => Ok(Command::Bye),
        ("BYE", Some(_)) => Err(Refusal::Usage("BYE")),
        _ => Err(Refusal::UnknownCommand),
    }
    // exercise 4.1: end
}
// ANCHOR_END: parse

// ANCHOR: rules

/// A name is 1 to NAME_LIMIT ASCII letters, digits, `_` and `-`. No spaces
/// (names are separated by spaces in `PEERS`), nothing invisible, and
/// nothing outside ASCII, so no Unicode look-alike (a Cyrillic `а` in
/// `аlice`). Names are compared byte for byte: `alice`, `Alice` and `aIice`
/// (a capital i) are three names, and ASCII look-alikes (`l`, `I`, `1`;
/// `O`, `0`) stay possible. A name says who registered it first, nothing
/// more: it proves no one's identity.
pub fn valid_name(name: &str) -> bool {
    (1..=NAME_LIMIT).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

/// A port in decimal digits, 1 to 65535 (`str::parse` would also take `+5`).
fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|&port| port != 0)
}

fn checked_text(text: &str) -> Result<String, Refusal> {
    if text.len() > TEXT_LIMIT {
        return Err(Refusal::TextTooLong);
    }
    // The relay hands the text to other people's terminals (`nc` shows it
    // as it comes): refused whole, so that no recipient ever gets it raw.
    if text.chars().any(steers_a_terminal) {
        return Err(Refusal::ControlCharacter);
    }
    Ok(text.to_string())
}

/// Whether a character in relayed text could steer the terminal that shows
/// it, rather than be shown: the C0 controls but tab (ESC starts colour,
/// cursor and clipboard sequences; `\r` and an erase-line can rewrite
/// `FROM mallory` into `FROM alice`), DEL, the C1 controls (U+0080 to
/// U+009F, which some terminals obey too), and the marks that reorder
/// text (U+202E turns `txt.exe` into `exe.txt` on screen).
pub fn steers_a_terminal(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{a}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}
// ANCHOR_END: rules
