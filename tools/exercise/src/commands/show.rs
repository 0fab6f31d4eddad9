//! `hint`, `diff` and `solution`: what the tool shows of an exercise
//! without changing its code.

use std::process::ExitCode;

use crate::lang::{say, tr};
use crate::regions;
use crate::workspace::Workspace;

pub fn hint(workspace: &Workspace, id: &str) -> anyhow::Result<ExitCode> {
    let exercise = workspace.find(id)?;
    let mut progress = workspace.progress();
    let total = exercise.hints.len();
    let shown = progress.hints.get(id).copied().unwrap_or(0);
    let next = (shown + 1).min(total);
    for number in 1..=next {
        if number < next {
            continue;
        }
        let hint = exercise.hints[number - 1].trim();
        println!(
            "{}\n\n  {}\n",
            say(
                "Exercise {id}, hint {number} of {total}:",
                &[("id", &id), ("number", &number), ("total", &total)]
            ),
            tr(hint).trim()
        );
    }
    if next == total {
        println!(
            "{}",
            say(
                "That was the last hint. `cargo exercise solution {id}` shows the reference.",
                &[("id", &id)]
            )
        );
    } else {
        println!("{}", tr("Run it again for the next hint."));
    }
    progress.hints.insert(id.to_string(), next);
    workspace.save_progress(&progress)?;
    Ok(ExitCode::SUCCESS)
}

pub fn diff(workspace: &Workspace, id: &str) -> anyhow::Result<ExitCode> {
    let exercise = workspace.find(id)?;
    for file in workspace.load(exercise)? {
        for pair in file.of(id) {
            let reference = regions::solution_body(file.reference_body(pair)).join("\n") + "\n";
            let yours = file.current_body(pair).join("\n") + "\n";
            let line = pair.current.first_line();
            if reference == yours {
                println!("{}:{line}: the same as the reference", file.path.display());
                continue;
            }
            let diff = similar::TextDiff::from_lines(&reference, &yours);
            print!(
                "{}",
                diff.unified_diff().header(
                    &format!("reference {}:{line}", file.path.display()),
                    &format!("yours     {}:{line}", file.path.display()),
                )
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn solution(workspace: &Workspace, id: &str) -> anyhow::Result<ExitCode> {
    let exercise = workspace.find(id)?;
    for file in workspace.load(exercise)? {
        for pair in file.of(id) {
            println!(
                "// {}, line {}",
                file.path.display(),
                pair.reference.first_line()
            );
            for line in regions::solution_body(file.reference_body(pair)) {
                println!("{line}");
            }
            println!();
        }
    }
    Ok(ExitCode::SUCCESS)
}
