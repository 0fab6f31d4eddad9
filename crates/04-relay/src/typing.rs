//! What you type: each line turned into what it asks for, and the thread
//! that sends it to the server.

use std::io::{self, BufRead, Write};
use std::net::TcpStream;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{lock, say};

use crate::client::{Event, Introductions};
use crate::direct::send_direct;
use crate::limits::LINE_LIMIT;
use crate::protocol::valid_name;

// ANCHOR: intent
/// What a typed line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Intent {
    /// A protocol line to send to the server as it is.
    Line(String),
    /// `/direct NAME TEXT`: send TEXT straight to NAME, not through the server.
    Direct { to: String, text: String },
    /// `/quit`.
    Quit,
    /// `/help`, or a command we do not know: print this.
    Help(String),
    /// An empty line: nothing.
    Nothing,
}

/// The commands, for `/help`.
pub const HELP: &str = "commands: /list, /to NAME TEXT, /all TEXT (or just TEXT), /where NAME, /direct NAME TEXT, /quit";

/// Turns a typed line into what to do. A plain line goes to everyone.
pub fn intent_of(line: &str) -> Intent {
    let line = line.trim_end_matches('\r');
    if line.is_empty() {
        return Intent::Nothing;
    }
    if !line.starts_with('/') {
        return Intent::Line(format!("ALL {line}"));
    }
    let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
    let (first, text) = rest.split_once(' ').unwrap_or((rest, ""));
    match command {
        "/list" => Intent::Line("LIST".to_string()),
        "/to" => Intent::Line(format!("SEND {first} {text}")),
        "/all" => Intent::Line(format!("ALL {rest}")),
        "/where" => Intent::Line(format!("WHERE {rest}")),
        "/direct" if valid_name(first) => Intent::Direct {
            to: first.to_string(),
            text: text.to_string(),
        },
        "/direct" => Intent::Help("usage: /direct NAME TEXT".to_string()),
        "/quit" => Intent::Quit,
        "/help" => Intent::Help(HELP.to_string()),
        _ => Intent::Help(format!("unknown command {command}; {HELP}")),
    }
}
// ANCHOR_END: intent

// ANCHOR: typist
/// The thread that reads what you type, and sends it to the server.
pub(crate) struct Typist {
    /// Shared with the keepalive thread: one line at a time goes out.
    pub(crate) stream: Arc<Mutex<TcpStream>>,
    pub(crate) name: String,
    pub(crate) timeout: Duration,
    pub(crate) introductions: Arc<Mutex<Introductions>>,
}

/// Whether to go on reading what is typed.
enum Typing {
    GoOn,
    Quit,
}

impl Typist {
    /// Sends each typed line until `/quit` or the end of input, then `BYE`,
    /// and tells the main thread.
    pub(crate) fn run(mut self, input: impl BufRead, events: &SyncSender<Event>) {
        let typed = (|| {
            for line in input.split(b'\n') {
                let Ok(line) = line else { break };
                if let Typing::Quit = self.act_on(&line)? {
                    break;
                }
            }
            Ok(())
        })();
        // The main thread hears of it before the server can answer BYE and
        // close, so it takes that close for the end it asked for.
        let said = typed.and_then(|()| {
            let _ = events.send(Event::Quitting);
            self.send("BYE")
        });
        if let Err(err) = said {
            let _ = events.send(Event::CannotSend(err));
        }
    }
    // ANCHOR_END: typist

    // ANCHOR: act_on
    /// Acts on one typed line.
    fn act_on(&mut self, line: &[u8]) -> io::Result<Typing> {
        let Ok(line) = std::str::from_utf8(line) else {
            say!("-- not sent: the protocol carries UTF-8 text only");
            return Ok(Typing::GoOn);
        };
        match intent_of(line) {
            Intent::Line(line) if line.len() > LINE_LIMIT => {
                say!("-- not sent: longer than {LINE_LIMIT} bytes");
            }
            Intent::Line(line) => {
                // `/where NAME`: its answer is one we asked for.
                if let Some(name) = line.strip_prefix("WHERE ").filter(|name| valid_name(name)) {
                    lock(&self.introductions).asked.push(name.to_string());
                }
                self.send(&line)?;
            }
            Intent::Direct { to, text } => {
                let mut introductions = lock(&self.introductions);
                match introductions.known.get(&to) {
                    Some(&addr) => {
                        drop(introductions);
                        send_direct(&self.name, &to, addr, text, self.timeout);
                    }
                    None => {
                        // Ask the server first; `heard` sends it on `AT`.
                        introductions.asked.push(to.clone());
                        introductions.waiting.push((to.clone(), text));
                        drop(introductions);
                        self.send(&format!("WHERE {to}"))?;
                    }
                }
            }
            Intent::Quit => return Ok(Typing::Quit),
            Intent::Help(help) => say!("-- {help}"),
            Intent::Nothing => {}
        }
        Ok(Typing::GoOn)
    }

    /// Sends one protocol line.
    fn send(&mut self, line: &str) -> io::Result<()> {
        lock(&self.stream).write_all(format!("{line}\n").as_bytes())
    }
}
// ANCHOR_END: act_on
