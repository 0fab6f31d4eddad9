//! `cargo exercise` (or `list`): every exercise, its state, and the next
//! one to do.

use std::process::ExitCode;

use crate::catalogue::Exercise;
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
            println!(
                "{}Lesson {lesson} (docs/src/{})",
                if lesson == workspace.exercises[0].lesson {
                    ""
                } else {
                    "\n"
                },
                exercise.chapter
            );
        }
        let state = match workspace.state(exercise, &progress) {
            Ok(state) => state,
            Err(err) => {
                println!(
                    "  {:<5} {:<23} {} ({err:#})",
                    exercise.id, "broken", exercise.title
                );
                continue;
            }
        };
        println!(
            "  {:<5} {:<23} {}",
            exercise.id,
            state.words(),
            exercise.title
        );
        if next.is_none() && state != State::Passing {
            next = Some((exercise, state));
        }
    }
    println!();
    match next {
        Some((exercise, State::NotStarted)) => println!(
            "Next: {} {}.\n  cargo exercise start {}    then write it, and: cargo exercise check {}",
            exercise.id, exercise.title, exercise.id, exercise.id
        ),
        Some((exercise, _)) => println!(
            "Next: finish {} {}.\n  cargo exercise check {}    (stuck? cargo exercise hint {})",
            exercise.id, exercise.title, exercise.id, exercise.id
        ),
        None => println!("Every exercise passes. Well done."),
    }
    Ok(ExitCode::SUCCESS)
}
