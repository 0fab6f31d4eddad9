//! `cargo exercise watch`: the exercise is checked again each time one of
//! its files is saved, so the learner writes and reads verdicts without
//! going back to the terminal to type a command.
//!
//! Top to bottom:
//! - what is watched: the files that hold the exercise's regions, through
//!   the system's file events (inotify, FSEvents, ReadDirectoryChangesW),
//!   or by polling where those do not arrive (WSL2's Windows drives and
//!   network folders, where the editor's writes happen on another machine's
//!   side of the mount) or when `--poll` asks for it;
//! - the loop: an editor's save is several events (a temporary file, a
//!   rename, a change of attributes), so a check starts once they have
//!   stopped for a moment; each check is `cargo exercise check ID` in a
//!   child process, the same verdict word for word, and a save during a
//!   check stops it and starts over on the new code;
//! - after a pass: what is next, and an offer to start it;
//! - Ctrl-C stops the check that is running and ends the watch.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind};
use notify::{Event, EventKind, RecursiveMode, Watcher};

use crate::catalogue::Exercise;
use crate::lang::{say, tr};
use crate::run;
use crate::workspace::{State, Workspace};

/// How long the files must stay quiet after a change before the check
/// starts. Editors write a save in bursts a few milliseconds apart; a
/// check started in the middle of one would build half a save.
const SETTLE: Duration = Duration::from_millis(200);

/// How often polling looks at the files. Each look is one `stat` and one
/// hash of a few source files; half a second keeps a save checked within
/// a second even when polling.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// What the watcher threads tell the loop.
enum Message {
    /// One of the exercise's files was written, replaced or removed.
    Saved(PathBuf),
    /// The watcher could not look at the files (a folder removed, a
    /// permission changed); said, and the watch goes on.
    Trouble(String),
    /// A line the learner typed (stdin is read only when it is a terminal).
    Typed(String),
}

/// What ends the watch of one exercise.
enum Then<'a> {
    Stop,
    /// Watch this one now: check it at once (it is started already), or
    /// wait for its first save (`start` has just blanked it).
    Watch {
        exercise: &'a Exercise,
        check_now: bool,
    },
}

/// `cargo exercise watch [ID] [--poll]`.
pub fn watch(workspace: &Workspace, id: Option<&str>, poll: bool) -> anyhow::Result<ExitCode> {
    // Ctrl-C reaches this program only: the check runs in a process group
    // of its own, and is stopped by the loop.
    run::stop_on_signals().context("could not take over Ctrl-C")?;
    let (sender, messages) = mpsc::channel();
    let asks = io::stdin().is_terminal();
    if asks {
        read_lines(sender.clone());
    }
    let mut session = Session {
        workspace,
        sender,
        messages,
        poll,
        asks,
    };
    let mut exercise = match id {
        Some(id) => workspace.find(id)?,
        None => crate::commands::check::current(workspace, &workspace.progress())?
            .context("every exercise passes; name one to watch it again")?,
    };
    let mut check_now = true;
    loop {
        match session.watch_one(exercise, check_now)? {
            Then::Stop => return Ok(ExitCode::SUCCESS),
            Then::Watch {
                exercise: next,
                check_now: now,
            } => (exercise, check_now) = (next, now),
        }
    }
}

/// Passes the learner's lines to the loop, so that waiting for an answer
/// never stops the watch.
fn read_lines(sender: Sender<Message>) {
    thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if sender.send(Message::Typed(line)).is_err() {
                break;
            }
        }
    });
}

struct Session<'a> {
    workspace: &'a Workspace,
    /// Kept to give each new watcher its own copy.
    sender: Sender<Message>,
    messages: Receiver<Message>,
    /// `--poll`: poll even where file events work.
    poll: bool,
    /// Whether stdin is a terminal, to ask questions on.
    asks: bool,
}

impl<'a> Session<'a> {
    fn watch_one(&mut self, exercise: &'a Exercise, check_now: bool) -> anyhow::Result<Then<'a>> {
        let id = &exercise.id;
        let relative = self.workspace.files_of(id)?;
        let files: Vec<PathBuf> = relative
            .iter()
            .map(|path| self.workspace.root.join(path))
            .collect();
        // Changes made before this watcher (by `start`, by the last
        // exercise's watcher) are not saves of this exercise.
        while self.messages.try_recv().is_ok() {}
        let (_watcher, how) = self.start_watcher(&files)?;
        let names: Vec<String> = relative.iter().map(|p| p.display().to_string()).collect();
        let footer = say(
            "Watching {files} ({how}): each save checks exercise {id} again. Ctrl-C stops.",
            &[("files", &names.join(", ")), ("how", &how), ("id", &id)],
        );

        let mut check: Option<Child> = None;
        // When the next check starts: once the files have settled.
        let mut due = check_now.then(Instant::now);
        // The first change since the last check started, to say how long
        // the check waited for the files to settle.
        let mut first_change: Option<(PathBuf, Instant)> = None;
        let mut offer: Option<(&'a Exercise, State)> = None;
        if !check_now {
            println!("\n{footer}");
        }
        loop {
            if run::interrupted() {
                if let Some(child) = check.take() {
                    stop_check(child);
                }
                println!("\nStopped watching exercise {id}.");
                return Ok(Then::Stop);
            }

            if due.is_some_and(|at| Instant::now() >= at) {
                due = None;
                offer = None;
                // What it was checking is no longer the code in the file.
                if let Some(child) = check.take() {
                    stop_check(child);
                }
                clear_screen();
                if let Some((path, at)) = first_change.take() {
                    let name = path.strip_prefix(&self.workspace.root).unwrap_or(&path);
                    println!(
                        "{}",
                        say(
                            "({file} changed; checking {seconds} s later)",
                            &[
                                ("file", &name.display()),
                                ("seconds", &format!("{:.1}", at.elapsed().as_secs_f64()))
                            ]
                        )
                    );
                }
                check = Some(self.start_check(id)?);
            }

            if let Some(child) = check.as_mut()
                && let Some(status) = child.try_wait().context("could not wait for the check")?
            {
                check = None;
                println!("\n{footer}");
                // Last, so that a question is where the cursor waits.
                if status.success() {
                    offer = self.offer_next(exercise)?;
                }
            }

            // Wake up for the check that is due, for the one that runs
            // (to see it end), and for Ctrl-C.
            let mut wait = Duration::from_millis(50);
            if let Some(at) = due {
                wait = wait.min(at.saturating_duration_since(Instant::now()));
            }
            match self.messages.recv_timeout(wait) {
                Ok(Message::Saved(path)) => {
                    first_change.get_or_insert((path, Instant::now()));
                    due = Some(Instant::now() + SETTLE);
                }
                Ok(Message::Trouble(error)) => println!("(watching: {error})"),
                Ok(Message::Typed(answer)) => {
                    if let Some((next, state)) = offer.take() {
                        if !matches!(answer.trim(), "y" | "Y" | "yes") {
                            println!("{}", say("Staying on exercise {id}.", &[("id", &id)]));
                            continue;
                        }
                        if state != State::NotStarted {
                            return Ok(Then::Watch {
                                exercise: next,
                                check_now: true,
                            });
                        }
                        // Its own message says what to write, and where.
                        println!();
                        match crate::commands::start::start(self.workspace, &next.id, false) {
                            Ok(code) if code == ExitCode::SUCCESS => {
                                return Ok(Then::Watch {
                                    exercise: next,
                                    check_now: false,
                                });
                            }
                            Ok(_) => {}
                            // Refused (other changes in its files): said,
                            // and this watch goes on.
                            Err(error) => println!("error: {error:#}"),
                        }
                        println!("\n{footer}");
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                // Cannot happen while `self.sender` lives.
                Err(RecvTimeoutError::Disconnected) => return Ok(Then::Stop),
            }
        }
    }

    /// Starts watching `files`, and says how.
    fn start_watcher(&self, files: &[PathBuf]) -> anyhow::Result<(Box<dyn Watcher>, String)> {
        let handler = {
            let files = files.to_vec();
            let sender = self.sender.clone();
            move |event: notify::Result<Event>| {
                let message = match event {
                    Ok(event) if is_a_save(&event.kind) => {
                        match event.paths.into_iter().find(|path| files.contains(path)) {
                            Some(path) => Message::Saved(path),
                            None => return,
                        }
                    }
                    Ok(_) => return,
                    Err(error) => Message::Trouble(error.to_string()),
                };
                let _ = sender.send(message);
            }
        };
        let why_poll = if self.poll {
            Some("--poll".to_string())
        } else {
            files.iter().find_map(|file| events_unreliable(file))
        };
        if why_poll.is_none() {
            // Folders, not files: many editors save by writing a new file
            // and renaming it over the old one, which ends a watch on the
            // old file.
            let mut folders: Vec<&Path> = files.iter().filter_map(|f| f.parent()).collect();
            folders.sort();
            folders.dedup();
            let watched = notify::recommended_watcher(handler.clone()).and_then(|mut watcher| {
                for folder in &folders {
                    watcher.watch(folder, RecursiveMode::NonRecursive)?;
                }
                Ok(watcher)
            });
            match watched {
                Ok(watcher) => return Ok((Box::new(watcher), "file events".to_string())),
                // Out of inotify watches, for example: polling still works.
                Err(error) => println!("(file events do not work here: {error}; polling instead)"),
            }
        }
        // Polling stats each file anew, so a file replaced by a rename is
        // seen; its contents are hashed too, because a save within the
        // same second can keep the modification time on coarse clocks.
        let config = notify::Config::default()
            .with_poll_interval(POLL_EVERY)
            .with_compare_contents(true);
        let mut watcher = notify::PollWatcher::new(handler, config)
            .context("could not start polling the exercise's files")?;
        for file in files {
            watcher
                .watch(file, RecursiveMode::NonRecursive)
                .with_context(|| format!("could not poll {}", file.display()))?;
        }
        let why = why_poll.unwrap_or_else(|| "file events failed".to_string());
        Ok((
            Box::new(watcher),
            format!("polling every {:.1} s: {why}", POLL_EVERY.as_secs_f64()),
        ))
    }

    /// `cargo exercise check ID`, as the learner would type it, in a
    /// process group of its own: stopping it stops the cargo it started.
    fn start_check(&self, id: &str) -> anyhow::Result<Child> {
        let tool = std::env::current_exe()
            .context("could not find this program to run the check (was it rebuilt?)")?;
        let mut command = Command::new(tool);
        command
            .arg("--root")
            .arg(&self.workspace.root)
            .args(["check", id])
            .stdin(Stdio::null());
        // The check speaks the watch's language, however it was chosen.
        if crate::lang::chinese() {
            command.args(["--lang", "zh-CN"]);
        }
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        command.spawn().context("could not start the check")
    }

    /// After a pass: says what is next and, on a terminal, offers it.
    fn offer_next(&self, passed: &Exercise) -> anyhow::Result<Option<(&'a Exercise, State)>> {
        let progress = self.workspace.progress();
        let Some(next) = crate::commands::check::current(self.workspace, &progress)? else {
            println!("\n{}", tr("Every exercise passes. Well done."));
            return Ok(None);
        };
        if next.id == passed.id {
            return Ok(None);
        }
        let state = self.workspace.state(next, &progress)?;
        let slots: [(&str, &dyn std::fmt::Display); 2] =
            [("id", &next.id), ("title", &tr(&next.title))];
        // A whole line: the answer goes on the next, and whatever reads
        // the output line by line sees the question.
        let line = match (state, self.asks) {
            (State::NotStarted, true) => {
                say("Next: {id} {title}. Start it and watch it? [y/N]", &slots)
            }
            (_, true) => say("Next: finish {id} {title}. Watch it instead? [y/N]", &slots),
            (State::NotStarted, false) => say(
                "Next: {id} {title}: cargo exercise start {id}, then cargo exercise watch {id}",
                &slots,
            ),
            (_, false) => say(
                "Next: finish {id} {title}: cargo exercise watch {id}",
                &slots,
            ),
        };
        println!("\n{line}");
        Ok(self.asks.then_some((next, state)))
    }
}

/// Stops a check as Ctrl-C stops `cargo exercise check`: it kills the
/// tests it runs (each in a process group of its own, which a signal to
/// the check's group does not reach) with their servers, and exits. If it
/// has not within a few seconds, it is killed with everything in its group.
fn stop_check(mut child: Child) {
    #[cfg(unix)]
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(None) => thread::sleep(Duration::from_millis(10)),
                // Gone, and reaped: its id may be another's by now.
                _ => return,
            }
        }
    }
    run::kill(&mut child);
}

/// Whether an event is a change of the file's contents. Reads are not
/// (the check's own compiler opens the files), nor are access times.
fn is_a_save(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        _ => false,
    }
}

/// Why file events would miss saves of `file`, if they would: on a folder
/// shared from another machine, a write made on the other side sends no
/// event to this one.
#[cfg(target_os = "linux")]
fn events_unreliable(file: &Path) -> Option<String> {
    let folder = file.parent()?;
    let stat = rustix::fs::statfs(folder).ok()?;
    // The kernel's magic numbers (statfs(2)); every one fits in 32 bits,
    // and the field's type differs between architectures.
    let what = match stat.f_type as u32 {
        0x0102_1997 => "a 9p folder, as WSL2 mounts Windows drives",
        0x6969 => "an NFS folder",
        0xFF53_4D42 | 0xFE53_4D42 | 0x517B => "an SMB folder",
        0x6573_5546 => "a FUSE folder (sshfs, ...)",
        0x6A65_6A63 => "a virtiofs folder shared by a virtual machine's host",
        _ => return None,
    };
    Some(format!(
        "{} is on {what}, where file events miss edits made on the other side",
        folder.display()
    ))
}

#[cfg(not(target_os = "linux"))]
fn events_unreliable(_file: &Path) -> Option<String> {
    None
}

/// A fresh screen for each verdict, on a terminal; elsewhere (a pipe, a
/// log) the verdicts follow each other.
fn clear_screen() {
    if io::stdout().is_terminal() {
        // Clear the screen and its scrollback, cursor to the top left.
        print!("\x1b[2J\x1b[3J\x1b[H");
    } else {
        println!();
    }
    let _ = io::stdout().flush();
}
