//! `start`, `reset` and `restore`: the commands that rewrite an exercise's
//! code, to blank or back to the reference. Each keeps what the regions
//! held in `.exercise/saved/` first.

use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

use crate::book;
use crate::catalogue::Exercise;
use crate::lang::{say, tr};
use crate::regions;
use crate::workspace::{self, FileRegions, State, Workspace};

pub fn start(workspace: &Workspace, id: &str, force: bool) -> anyhow::Result<ExitCode> {
    let exercise = workspace.find(id)?;
    let files = workspace.load(exercise)?;
    let progress = workspace.progress();
    match workspace.state(exercise, &progress)? {
        State::Blank => {
            println!(
                "{}",
                say(
                    "Exercise {id} is already started: its code is blank. Write it, then `cargo exercise check {id}`.",
                    &[("id", &id)]
                )
            );
            return Ok(ExitCode::SUCCESS);
        }
        // Code that passed once and is the reference again is not the
        // learner's to lose.
        State::Started | State::Passing | State::ChangedSincePassed
            if !force && !workspace::holds_reference(&files, id) =>
        {
            bail!(
                "{}",
                say(
                    "exercise {id} already holds your code; `cargo exercise reset {id}` starts it over \
                     (your code is kept in .exercise/saved/), or `cargo exercise check {id}` checks it",
                    &[("id", &id)]
                )
            )
        }
        _ => {}
    }
    // Refuse before writing anything: every file must differ from the
    // reference only inside exercise regions.
    for file in &files {
        let now = regions::skeleton(&file.current, &file.current_regions());
        let Some(before) = workspace.committed_skeleton(&file.path) else {
            continue;
        };
        if now != before && !force {
            let line = first_difference(&now, &before);
            bail!(
                "{}",
                say(
                    "{file} has changes outside the exercise regions ({line}), which `start` did not make; \
                     nothing was changed. Undo or commit them (`git diff {file}`), or pass --force to start \
                     anyway and keep them",
                    &[("file", &file.path.display()), ("line", &line)]
                )
            );
        }
    }
    blank(workspace, exercise, &files, "start")?;

    println!(
        "{}\n",
        say(
            "Started exercise {id}: {title}.",
            &[("id", &id), ("title", &tr(&exercise.title))]
        )
    );
    println!(
        "{}\n",
        say(
            "Your code must {behaviour}.",
            &[(
                "behaviour",
                &tr(&exercise.behaviour).trim_end_matches(['.', '。'])
            )]
        )
    );
    for file in &files {
        for pair in file.of(id) {
            println!(
                "  {}",
                say(
                    "write it in {file}, line {line}",
                    &[
                        ("file", &file.path.display()),
                        ("line", &pair.current.first_line())
                    ]
                )
            );
        }
    }
    let package = exercise
        .tests
        .first()
        .map(|t| t.package.as_str())
        .unwrap_or("...");
    println!(
        "\n{}",
        say(
            "Read first: {place}\nThen: cargo exercise check {id}   (or cargo test -p {package})\nStuck? cargo exercise hint {id}",
            &[
                ("place", &book::read_first(workspace, exercise)),
                ("id", &id),
                ("package", &package)
            ]
        )
    );
    Ok(ExitCode::SUCCESS)
}

/// `line N: TEXT` of the first line where two skeletons differ.
fn first_difference(now: &[String], before: &[String]) -> String {
    let at = now
        .iter()
        .zip(before)
        .position(|(a, b)| a != b)
        .unwrap_or(now.len().min(before.len()));
    match now.get(at) {
        Some(line) => say("first at `{line}`", &[("line", &line.trim())]),
        None => tr("lines were removed at the end").to_string(),
    }
}

/// Blanks `exercise`'s regions in `files`, as `start` and `reset` do. The
/// reference is kept first (a workspace without git has no other copy),
/// and what the regions held is saved in `.exercise/saved/`, whose file
/// it returns.
fn blank(
    workspace: &Workspace,
    exercise: &Exercise,
    files: &[FileRegions],
    why: &str,
) -> anyhow::Result<PathBuf> {
    for file in files {
        workspace.keep_reference(&file.path, &file.reference)?;
    }
    let saved = workspace.save_regions(exercise, files, why)?;
    workspace.rewrite(exercise, files, |body, region| {
        regions::blank_body(body, region, exercise)
    })?;
    Ok(saved)
}

pub fn reset(workspace: &Workspace, id: &str, yes: bool) -> anyhow::Result<ExitCode> {
    let exercise = workspace.find(id)?;
    let files = workspace.load(exercise)?;
    if !yes {
        print!(
            "{} ",
            say(
                "Put exercise {id} back to blank? Your code in it is saved to .exercise/saved/ first. [y/N]",
                &[("id", &id)]
            )
        );
        io::stdout().flush()?;
        let mut answer = String::new();
        io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("{}", tr("Nothing changed."));
            return Ok(ExitCode::FAILURE);
        }
    }
    let saved = blank(workspace, exercise, &files, "reset")?;
    let mut progress = workspace.progress();
    progress.passed.remove(id);
    workspace.save_progress(&progress)?;
    println!(
        "{}",
        say(
            "Exercise {id} is blank again; your code was saved in {saved}.",
            &[("id", &id), ("saved", &saved.display())]
        )
    );
    Ok(ExitCode::SUCCESS)
}

pub fn restore(workspace: &Workspace, id: &str) -> anyhow::Result<ExitCode> {
    let exercise = workspace.find(id)?;
    let files = workspace.load(exercise)?;
    let saved = workspace.save_regions(exercise, &files, "restore")?;
    workspace.rewrite(exercise, &files, |body, _| body.to_vec())?;
    println!(
        "{}",
        say(
            "Exercise {id} holds the reference again; what was there is saved in {saved}.",
            &[("id", &id), ("saved", &saved.display())]
        )
    );
    Ok(ExitCode::SUCCESS)
}
