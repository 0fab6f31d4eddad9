//! What the compiler and clippy say about an exercise's code once its tests
//! pass. Warnings in the exercise's files are shown (an unused variable, or
//! a value assigned and never read, is often the bug). A lint that catches
//! an ignored I/O count or result, inside the exercise's regions, fails the
//! check: on a real network it loses bytes or errors that no loopback test
//! may happen to show.

use std::path::PathBuf;

use crate::catalogue::Exercise;
use crate::regions::{self, Source};
use crate::run::{self, Diagnostic, Place};
use crate::select;
use crate::workspace::Workspace;

/// The lints that fail a check when they fire inside the exercise's
/// regions, each with what it means on a network.
pub const FAILING: &[(&str, &str)] = &[
    (
        "clippy::unused_io_amount",
        "a read or write whose count is ignored: `write` may take only part of the bytes \
         (what fits in the socket's buffer now), and `read` returns what has arrived so far, \
         so the count it returns is how many bytes really moved. Ignoring it loses bytes on a \
         real network even when every test over loopback passes. Use `write_all` or \
         `read_exact`, or loop on the count",
    ),
    (
        "clippy::read_zero_byte_vec",
        "a read into an empty Vec reads nothing: a Vec's capacity is not its length, and \
         `read` fills only the length. Read into a buffer that has a length, such as \
         `vec![0u8; n]` or `[0u8; N]`",
    ),
    (
        "unused_must_use",
        "an I/O result is ignored: the `Result` is how a failed send or close tells you \
         it failed, and ignoring it hides a lost connection. Handle it with `?` or a \
         `match`, or, where it truly does not matter, say so with `let _ =`",
    ),
];

/// The exercise's files and, for each, the lines (1-based) inside its regions.
fn regions_of(workspace: &Workspace, exercise: &Exercise) -> Vec<(PathBuf, Vec<(usize, usize)>)> {
    let mut found = Vec::new();
    for path in workspace.files_of(&exercise.id).unwrap_or_default() {
        let Ok(source) = Source::read(&workspace.root.join(&path)) else {
            continue;
        };
        let spans = regions::regions(&source)
            .unwrap_or_default()
            .iter()
            .filter(|r| r.id == exercise.id)
            // `end`, the end marker's index from 0, is the body's last line from 1.
            .map(|r| (r.first_line(), r.end))
            .collect();
        found.push((path, spans));
    }
    found
}

fn same_file(diagnostic: &Diagnostic, path: &std::path::Path) -> bool {
    let path = path.to_string_lossy().replace('\\', "/");
    let file = diagnostic.file.replace('\\', "/");
    file == path || file.ends_with(&format!("/{path}"))
}

/// The build's warnings about the exercise's files, each once.
pub fn warnings(
    workspace: &Workspace,
    exercise: &Exercise,
    diagnostics: &[Diagnostic],
) -> Vec<String> {
    let files = regions_of(workspace, exercise);
    let mut shown: Vec<String> = Vec::new();
    for diagnostic in diagnostics {
        if diagnostic.level != "warning"
            || !files.iter().any(|(path, _)| same_file(diagnostic, path))
            || shown.contains(&diagnostic.rendered)
        {
            continue;
        }
        shown.push(diagnostic.rendered.clone());
    }
    shown
}

/// A lint of the failing kind inside the exercise's regions, as the
/// message a learner reads, after one `cargo clippy` on the packages that
/// hold them. `Err` when clippy could not run at all.
pub fn failing_lint(
    place: &Place,
    workspace: &Workspace,
    exercise: &Exercise,
) -> Result<Option<String>, String> {
    let members = select::members(place.root);
    let files = regions_of(workspace, exercise);
    let mut args = vec!["clippy", "--message-format=json"];
    let mut packages: Vec<String> = Vec::new();
    for (path, _) in &files {
        let full = place.root.join(path);
        if let Some(member) = members
            .iter()
            .filter(|m| full.starts_with(&m.dir))
            .max_by_key(|m| m.dir.as_os_str().len())
            && !packages.contains(&member.name)
        {
            packages.push(member.name.clone());
        }
    }
    for package in &packages {
        args.extend(["-p", package.as_str()]);
    }
    let (ok, stdout, stderr) = run::cargo(place, &args);
    let diagnostics = run::diagnostics(&stdout);
    if !ok && diagnostics.is_empty() {
        return Err(stderr);
    }
    for diagnostic in &diagnostics {
        let Some((_, meaning)) = FAILING.iter().find(|(code, _)| *code == diagnostic.code) else {
            continue;
        };
        let inside = files.iter().any(|(path, spans)| {
            same_file(diagnostic, path)
                && spans
                    .iter()
                    .any(|&(from, to)| (from..=to).contains(&diagnostic.line))
        });
        if inside {
            return Ok(Some(format!(
                "{}: {meaning}.\n\n{}\n(book: {} § {})",
                diagnostic.code,
                diagnostic.rendered.trim_end(),
                exercise.chapter,
                exercise.section
            )));
        }
    }
    Ok(None)
}
