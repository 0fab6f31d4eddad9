//! `check`: builds and runs every test that can see an exercise, prints a
//! short verdict, and records a pass.

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

use crate::book;
use crate::catalogue::{Exercise, TestRef};
use crate::lang::{say, tr};
use crate::run::{self, Verdict};
use crate::workspace::{self, State, Workspace};
use crate::{lints, select};

pub fn check(workspace: &Workspace, id: Option<&str>) -> anyhow::Result<ExitCode> {
    let progress = workspace.progress();
    let exercise = match id {
        Some(id) => workspace.find(id)?,
        None => current(workspace, &progress)?
            .context("every exercise passes; name one to check it again")?,
    };
    let id = &exercise.id;

    if let Some(changed) = changed_snapshots(&workspace.root) {
        bail!(
            "{}",
            say(
                "{files} differ from the committed ones. Snapshots are the lesson's expected output, not \
                 yours to change: `git checkout -- {paths}` puts them back",
                &[
                    ("files", &changed.join(", ")),
                    ("paths", &changed.join(" "))
                ]
            )
        );
    }

    println!(
        "{}",
        say(
            "Checking exercise {id}: {title} ...",
            &[("id", id), ("title", &tr(&exercise.title))]
        )
    );
    // Ctrl-C stops the tests too, with the servers they started.
    run::stop_on_signals().context("could not take over Ctrl-C")?;
    let interrupted = || {
        println!(
            "\n{}",
            say("The check of exercise {id} was stopped.", &[("id", id)])
        );
        Ok(ExitCode::from(130))
    };
    let selection = select::select(workspace, exercise)?;
    // What is built is what may be recorded as passing: the code as it is
    // now, before cargo reads it. A save during the run changes what later
    // stages build, so then nothing is recorded (below).
    let built = workspace.fingerprint(id)?;
    let place = run::Place {
        root: &workspace.root,
        target_dir: None,
        env: &[],
        overlap: true,
    };
    let outcome = run::run(&place, &selection, run::Stop::AtFirstFailure);
    if run::interrupted() {
        return interrupted();
    }
    if let Some(error) = &outcome.build_error {
        println!("\n{}\n", tr("Your code does not compile yet:"));
        println!("{}", error.trim_end());
        for (code, section) in book::explained_errors(error) {
            println!(
                "\n{code} is a trap of socket code in Rust, explained in \
                 docs/src/rust-for-python.md § {section}"
            );
        }
        println!(
            "\n{}",
            say(
                "Exercise {id}: read {place}\nStuck? cargo exercise hint {id}",
                &[
                    ("id", id),
                    ("place", &book::read_first(workspace, exercise))
                ]
            )
        );
        return Ok(ExitCode::FAILURE);
    }

    println!(
        "\n{}\n",
        say(
            "Your code must {behaviour}.",
            &[(
                "behaviour",
                &tr(&exercise.behaviour).trim_end_matches(['.', '。'])
            )]
        )
    );
    let mark = |verdict: Verdict| match verdict {
        Verdict::Passed => "ok  ",
        Verdict::Failed => "FAIL",
        Verdict::Ignored => "skip",
        Verdict::Stopped => "--  ",
        Verdict::NotRun => "??  ",
    };
    // What comes after the first failure is not judged, however far it
    // got: the verdict must not depend on how the runs interleaved.
    let first_at = outcome
        .first_failure
        .as_ref()
        .and_then(|first| outcome.order.iter().position(|t| t == first));
    let judged = |test: &TestRef| {
        let at = outcome.order.iter().position(|t| t == test);
        match (at, first_at) {
            (Some(at), Some(first)) if at > first => Verdict::Stopped,
            _ => outcome.verdict(test),
        }
    };
    for test in &exercise.tests {
        println!("  {}  {}", mark(judged(test)), tr(&test.sentence()));
    }
    let others: Vec<&TestRef> = outcome
        .order
        .iter()
        .filter(|test| !exercise.tests.contains(test))
        .collect();
    let passed_others = others
        .iter()
        .filter(|t| judged(t) == Verdict::Passed)
        .count();
    let ignored: Vec<&&TestRef> = others
        .iter()
        .filter(|t| outcome.verdict(t) == Verdict::Ignored)
        .collect();
    let mut packages = selection.packages.clone();
    if !selection.cross.is_empty() {
        packages.push("the cross-lesson tests".to_string());
    }
    let first_other = outcome
        .first_failure
        .as_ref()
        .filter(|test| !exercise.tests.contains(test));
    match first_other {
        Some(test) => {
            println!(
                "  ok    {passed_others} more tests of {} before it",
                packages.join(", ")
            );
            println!(
                "  FAIL  {} ({} {})",
                test.sentence(),
                test.package,
                test.target
            );
        }
        None if outcome.first_failure.is_none() => println!(
            "  {}  and {passed_others} more tests of {}{}",
            mark(Verdict::Passed),
            packages.join(", "),
            if ignored.is_empty() {
                String::new()
            } else {
                format!(" ({} skipped: see `cargo test`)", ignored.len())
            }
        ),
        None => {}
    }
    if let Some(changed) = changed_snapshots(&workspace.root) {
        bail!(
            "the tests changed {}: that must never happen",
            changed.join(", ")
        );
    }
    let holding = outcome
        .order
        .iter()
        .filter(|test| judged(test) == Verdict::Passed)
        .count();
    let read = say(
        "Exercise {id}: read {place}\nStuck? cargo exercise hint {id}",
        &[
            ("id", id),
            ("place", &book::read_first(workspace, exercise)),
        ],
    );
    if let Some(test) = &outcome.first_failure {
        println!(
            "\n{}\n",
            say(
                "{holding} hold. The first that does not: {test}",
                &[("holding", &holding), ("test", &tr(&test.sentence()))]
            )
        );
        match outcome.messages.get(test) {
            Some(message) => {
                for line in message.trim().lines() {
                    println!("    {line}");
                }
            }
            None => println!(
                "    (it did not run: {}:{}:{})",
                test.package, test.target, test.name
            ),
        }
        println!(
            "\n{read}\n(build {:.1} s, tests {:.1} s{})",
            outcome.build_time.as_secs_f64(),
            outcome.test_time.as_secs_f64(),
            slowest(&outcome)
        );
        return Ok(ExitCode::FAILURE);
    }

    let warnings = lints::warnings(workspace, exercise, &outcome.diagnostics);
    let clock = std::time::Instant::now();
    let lint = lints::failing_lint(&place, workspace, exercise);
    if run::interrupted() {
        return interrupted();
    }
    let timing = format!(
        "build {:.1} s, {} tests {:.1} s{}, clippy {:.1} s",
        outcome.build_time.as_secs_f64(),
        outcome.order.len(),
        outcome.test_time.as_secs_f64(),
        slowest(&outcome),
        clock.elapsed().as_secs_f64()
    );
    match lint {
        Ok(Some(message)) => {
            println!(
                "\n{}\n",
                say(
                    "All {holding} tests hold, but clippy sees a mistake in your code that tests over loopback can miss:",
                    &[("holding", &holding)]
                )
            );
            for line in message.lines() {
                println!("    {line}");
            }
            println!("\n{read}");
            return Ok(ExitCode::FAILURE);
        }
        Ok(None) => {}
        Err(error) => println!(
            "\n(clippy could not run, so only the tests checked your code: {})",
            error.trim()
        ),
    }
    if !warnings.is_empty() {
        println!(
            "\n{}\n",
            tr(
                "The compiler warns about your code (an unused variable, or a value assigned and never read, is often a bug):"
            )
        );
        for warning in &warnings {
            for line in warning.trim_end().lines() {
                println!("    {line}");
            }
            println!();
        }
    }
    if workspace.fingerprint(id)? != built {
        println!(
            "\nAll {holding} hold, but exercise {id}'s code changed while it was checked, so the \
             tests may have run either version: nothing is recorded. Check it again: \
             cargo exercise check {id}\n({timing})"
        );
        return Ok(ExitCode::FAILURE);
    }
    let mut progress = progress;
    progress.passed.insert(id.clone(), built);
    workspace.save_progress(&progress)?;
    println!(
        "\n{}\n({timing})",
        say(
            "All {holding} hold: exercise {id} passes. `cargo exercise` shows what is next.",
            &[("holding", &holding), ("id", id)]
        )
    );
    Ok(ExitCode::SUCCESS)
}

/// The exercise the learner is on: the first started and not passing, or
/// else the first not passing; none when every exercise passes.
pub fn current<'a>(
    workspace: &'a Workspace,
    progress: &workspace::Progress,
) -> anyhow::Result<Option<&'a Exercise>> {
    let mut first_open = None;
    for exercise in &workspace.exercises {
        match workspace.state(exercise, progress)? {
            State::Blank | State::Started | State::ChangedSincePassed => return Ok(Some(exercise)),
            State::NotStarted if first_open.is_none() => first_open = Some(exercise),
            _ => {}
        }
    }
    Ok(first_open)
}

/// Tracked `.snap` files that differ from the committed ones, if git can say.
fn changed_snapshots(root: &Path) -> Option<Vec<String>> {
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["diff", "--name-only", "HEAD", "--", "*.snap"])
        .output()
        .ok()?;
    let changed: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    (output.status.success() && !changed.is_empty()).then_some(changed)
}

/// `; slowest: NAME 12.2 s`, the test a verdict waited for longest.
fn slowest(outcome: &run::Outcome) -> String {
    outcome
        .slowest()
        .map(|(test, took)| format!("; slowest: {} {:.1} s", test.name, took.as_secs_f64()))
        .unwrap_or_default()
}
