//! `cargo exercise` (or `list`): every exercise, its state, and the next
//! one to do.

use std::process::ExitCode;

use crate::catalogue::Exercise;
use crate::lang::{say, tr};
use crate::workspace::{State, Workspace};

pub fn list(workspace: &Workspace) -> anyhow::Result<ExitCode> {
    let mut progress = workspace.progress();
    let unknown = progress.forget_unknown(&workspace.exercises);
    if !unknown.is_empty() {
        println!(
            "(forgot your progress on {}: no such exercise any more, renamed or removed)\n",
            unknown.join(", ")
        );
        workspace.save_progress(&progress)?;
    }
    let mut next: Option<(&Exercise, State)> = None;
    let mut lesson = 0;
    for exercise in &workspace.exercises {
        if exercise.lesson != lesson {
            lesson = exercise.lesson;
            if lesson != workspace.exercises[0].lesson {
                println!();
            }
            println!(
                "{}",
                say(
                    "Lesson {lesson} (docs/src/{chapter})",
                    &[("lesson", &lesson), ("chapter", &exercise.chapter)]
                )
            );
        }
        let state = match workspace.state(exercise, &progress) {
            Ok(state) => state,
            Err(err) => {
                println!(
                    "  {:<5} {} {} ({err:#})",
                    exercise.id,
                    column(tr("broken")),
                    tr(&exercise.title)
                );
                continue;
            }
        };
        println!(
            "  {:<5} {} {}",
            exercise.id,
            column(state.words()),
            tr(&exercise.title)
        );
        if next.is_none() && state != State::Passing {
            next = Some((exercise, state));
        }
    }
    println!();
    let next = match next {
        Some((exercise, State::NotStarted)) => say(
            "Next: {id} {title}.\n  cargo exercise start {id}    then write it, and: cargo exercise check {id}",
            &[("id", &exercise.id), ("title", &tr(&exercise.title))],
        ),
        Some((exercise, _)) => say(
            "Next: finish {id} {title}.\n  cargo exercise check {id}    (stuck? cargo exercise hint {id})",
            &[("id", &exercise.id), ("title", &tr(&exercise.title))],
        ),
        None => tr("Every exercise passes. Well done.").to_string(),
    };
    println!("{next}");
    Ok(ExitCode::SUCCESS)
}

/// A state padded to its column, 23 columns wide as a terminal shows it: a
/// Chinese character takes two columns, so `{:<23}` (which counts
/// characters) would leave the titles after it out of line.
fn column(state: &str) -> String {
    let width: usize = state
        .chars()
        .map(|c| {
            if ('\u{2e80}'..='\u{9fff}').contains(&c) || ('\u{ff00}'..='\u{ffef}').contains(&c) {
                2
            } else {
                1
            }
        })
        .sum();
    format!("{state}{}", " ".repeat(23usize.saturating_sub(width)))
}
