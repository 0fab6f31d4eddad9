//! `cargo exercise`: the lessons' exercises, for the learner and for CI.
//!
//! The committed code is the reference solution. Regions of it, marked
//! `// exercise ID: begin` / `// exercise ID: end`, are the exercises; each
//! lesson's `exercises.toml` describes them (FORMAT.md beside this crate).
//! `start` blanks an exercise in place, `check` runs only its tests and
//! prints a verdict, `verify` proves in CI that every exercise fails when
//! blank and passes when solved.

mod bench;
mod book;
mod catalogue;
mod lints;
mod regions;
mod run;
mod select;
mod verify;
mod workspace;

use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::bail;
use clap::{Parser, Subcommand};

use catalogue::{Exercise, TestRef};
use run::Verdict;
use workspace::{State, Workspace};

const EXAMPLES: &str = "\
Examples:
  cargo exercise                 every exercise, its state, and what to do next
  cargo exercise start 2.1       blank exercise 2.1 so you can write it
  cargo exercise check 2.1       build and run every test that sees it; a short verdict
  cargo exercise hint 2.1        the next hint (one at a time)
  cargo exercise diff 2.1        your code against the reference
  cargo exercise solution 2.1    show the reference
  cargo exercise reset 2.1       back to blank (asks first; your code is kept)
  cargo exercise restore 2.1     back to the reference (your code is kept)
  cargo exercise verify          CI: every exercise fails blank and passes solved
  cargo exercise bench           how long a check takes after a one-line edit

Plain `cargo test -p server` checks lesson 2 as well. Your replaced code is
always kept in .exercise/saved/ first.";

/// The lessons' exercises: start one, write it, check it.
#[derive(Parser)]
#[command(name = "cargo exercise", version, after_help = EXAMPLES)]
struct Args {
    #[command(subcommand)]
    command: Option<Action>,

    /// The workspace to work on (default: the one this tool belongs to).
    #[arg(long, value_name = "DIR", hide = true, global = true)]
    root: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Action {
    /// Every exercise, lesson by lesson, with its state and the next one to do.
    List,
    /// Blanks an exercise's code so you can write it yourself.
    Start {
        /// The exercise, e.g. 2.1.
        id: String,
        /// Start even if the files have other changes of yours (they are kept).
        #[arg(long)]
        force: bool,
    },
    /// Builds and runs every test that can see an exercise (its own first),
    /// and says what holds.
    Check {
        /// The exercise (default: the one you are working on).
        id: Option<String>,
    },
    /// Shows the next hint for an exercise.
    Hint { id: String },
    /// Shows your code in an exercise against the reference.
    Diff { id: String },
    /// Prints the reference code of an exercise.
    Solution { id: String },
    /// Puts an exercise back to blank (your code is saved first).
    Reset {
        id: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Puts the reference code back (your code is saved first).
    Restore { id: String },
    /// For CI: proves every exercise fails when blank and passes when solved.
    Verify {
        /// Only this exercise.
        #[arg(long, value_name = "ID")]
        only: Option<String>,
        /// Run each known mistake this many times; every run must catch it
        /// (a check that catches a mistake only sometimes is flaky).
        #[arg(long, value_name = "N", default_value_t = 1)]
        repeat: usize,
    },
    /// Writes the book's exercise pages from the catalogues.
    Book,
    /// Measures how long a check takes after a one-line edit (2.3, 3.3,
    /// 4.2, 5.4, 6.1), passing and failing, in a scratch copy.
    Bench {
        /// Only this exercise.
        #[arg(long, value_name = "ID")]
        only: Option<String>,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let root = args.root.unwrap_or_else(default_root);
    // Cargo names files by their absolute paths; so must the tool.
    let root = root.canonicalize().unwrap_or(root);
    match act(&root, args.command.unwrap_or(Action::List)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace this tool was built in: two folders above its manifest.
fn default_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

fn act(root: &Path, action: Action) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(root)?;
    match action {
        Action::List => list(&workspace),
        Action::Start { id, force } => start(&workspace, &id, force),
        Action::Check { id } => check(&workspace, id.as_deref()),
        Action::Hint { id } => hint(&workspace, &id),
        Action::Diff { id } => diff(&workspace, &id),
        Action::Solution { id } => solution(&workspace, &id),
        Action::Reset { id, yes } => reset(&workspace, &id, yes),
        Action::Restore { id } => restore(&workspace, &id),
        Action::Verify { only, repeat } => {
            verify::verify(&workspace, only.as_deref(), repeat.max(1))?;
            Ok(ExitCode::SUCCESS)
        }
        Action::Bench { only } => {
            bench::bench(&workspace, only.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Action::Book => {
            for path in book::write_pages(&workspace)? {
                println!("wrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list(workspace: &Workspace) -> anyhow::Result<ExitCode> {
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
                    "  {:<5} {:<16} {} ({err:#})",
                    exercise.id, "broken", exercise.title
                );
                continue;
            }
        };
        println!(
            "  {:<5} {:<16} {}",
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

fn start(workspace: &Workspace, id: &str, force: bool) -> anyhow::Result<ExitCode> {
    let exercise = workspace.find(id)?;
    let files = workspace.load(exercise)?;
    let progress = workspace.progress();
    match workspace.state(exercise, &progress)? {
        State::Blank => {
            println!(
                "Exercise {id} is already started: its code is blank. Write it, then `cargo exercise check {id}`."
            );
            return Ok(ExitCode::SUCCESS);
        }
        State::Started | State::Passing if !force => bail!(
            "exercise {id} already holds your code; `cargo exercise reset {id}` starts it over \
             (your code is kept in .exercise/saved/), or `cargo exercise check {id}` checks it"
        ),
        _ => {}
    }
    // Refuse before writing anything: every file must differ from the
    // reference only inside exercise regions.
    for file in &files {
        let now = regions::skeleton(&file.current, &file.current_regions);
        let before = regions::skeleton(&file.reference, &file.reference_regions);
        if now != before && !force {
            let line = first_difference(&now, &before);
            bail!(
                "{} has changes outside the exercise regions ({line}), which `start` did not make; \
                 nothing was changed. Undo or commit them (`git diff {}`), or pass --force to start \
                 anyway and keep them",
                file.path.display(),
                file.path.display()
            );
        }
    }
    for file in &files {
        workspace.keep_reference(&file.path, &file.reference)?;
    }
    workspace.save_regions(exercise, &files, "start")?;
    workspace.rewrite(exercise, &files, |body, region| {
        regions::blank_body(body, region, exercise)
    })?;

    println!("Started exercise {id}: {}.\n", exercise.title);
    println!(
        "Your code must {}.\n",
        exercise.behaviour.trim_end_matches('.')
    );
    for file in &files {
        for index in file.of(id) {
            let region = &file.current_regions[index];
            println!(
                "  write it in {}, line {}",
                file.path.display(),
                region.begin + 2
            );
        }
    }
    println!(
        "\nRead first: docs/src/{} § {}\nThen: cargo exercise check {id}   (or cargo test -p {})\nStuck? cargo exercise hint {id}",
        exercise.chapter,
        book::plain(&exercise.section),
        exercise
            .tests
            .first()
            .map(|t| t.package.as_str())
            .unwrap_or("...")
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
        Some(line) => format!("first at `{}`", line.trim()),
        None => "lines were removed at the end".to_string(),
    }
}

fn check(workspace: &Workspace, id: Option<&str>) -> anyhow::Result<ExitCode> {
    let progress = workspace.progress();
    let exercise = match id {
        Some(id) => workspace.find(id)?,
        None => current(workspace, &progress)?,
    };
    let id = &exercise.id;

    if let Some(changed) = changed_snapshots(&workspace.root) {
        bail!(
            "{} differ from the committed ones. Snapshots are the lesson's expected output, not \
             yours to change: `git checkout -- {}` puts them back",
            changed.join(", "),
            changed.join(" ")
        );
    }

    println!("Checking exercise {id}: {} ...", exercise.title);
    let selection = select::select(workspace, exercise)?;
    let place = run::Place {
        root: &workspace.root,
        target_dir: None,
        env: &[],
        overlap: true,
    };
    let outcome = run::run(&place, &selection, run::Stop::AtFirstFailure);
    if let Some(error) = &outcome.build_error {
        println!("\nYour code does not compile yet:\n");
        println!("{}", error.trim_end());
        for (code, section) in book::explained_errors(error) {
            println!(
                "\n{code} is a trap of socket code in Rust, explained in \
                 docs/src/rust-for-python.md § {section}"
            );
        }
        println!(
            "\nExercise {id}: read docs/src/{} § {}\nStuck? cargo exercise hint {id}",
            exercise.chapter,
            book::plain(&exercise.section)
        );
        return Ok(ExitCode::FAILURE);
    }

    println!(
        "\nYour code must {}.\n",
        exercise.behaviour.trim_end_matches('.')
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
        println!("  {}  {}", mark(judged(test)), test.sentence());
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
    let read = format!(
        "Exercise {id}: read docs/src/{} § {}\nStuck? cargo exercise hint {id}",
        exercise.chapter,
        book::plain(&exercise.section)
    );
    if let Some(test) = &outcome.first_failure {
        println!(
            "\n{holding} hold. The first that does not: {}\n",
            test.sentence()
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
                "\nAll {holding} tests hold, but clippy sees a mistake in your code that tests over loopback can miss:\n"
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
            "\nThe compiler warns about your code (an unused variable, or a value assigned and never read, is often a bug):\n"
        );
        for warning in &warnings {
            for line in warning.trim_end().lines() {
                println!("    {line}");
            }
            println!();
        }
    }
    let mut progress = progress;
    let files = workspace.load(exercise)?;
    progress
        .passed
        .insert(id.clone(), workspace::fingerprint(&files, id));
    workspace.save_progress(&progress)?;
    println!(
        "\nAll {holding} hold: exercise {id} passes. `cargo exercise` shows what is next.\n({timing})"
    );
    Ok(ExitCode::SUCCESS)
}

/// The exercise the learner is on: the first started and not passing, or
/// else the first not passing.
/// `; slowest: NAME 12.2 s`, the test a verdict waited for longest.
fn slowest(outcome: &run::Outcome) -> String {
    outcome
        .slowest()
        .map(|(test, took)| format!("; slowest: {} {:.1} s", test.name, took.as_secs_f64()))
        .unwrap_or_default()
}

fn current<'a>(
    workspace: &'a Workspace,
    progress: &workspace::Progress,
) -> anyhow::Result<&'a Exercise> {
    let mut first_open = None;
    for exercise in &workspace.exercises {
        match workspace.state(exercise, progress)? {
            State::Blank | State::Started => return Ok(exercise),
            State::NotStarted if first_open.is_none() => first_open = Some(exercise),
            _ => {}
        }
    }
    match first_open {
        Some(exercise) => Ok(exercise),
        None => bail!("every exercise passes; name one to check it again"),
    }
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

fn hint(workspace: &Workspace, id: &str) -> anyhow::Result<ExitCode> {
    let exercise = workspace.find(id)?;
    let mut progress = workspace.progress();
    let total = exercise.hints.len();
    let shown = progress.hints.get(id).copied().unwrap_or(0);
    let next = (shown + 1).min(total);
    for number in 1..=next {
        if number < next {
            continue;
        }
        println!(
            "Exercise {id}, hint {number} of {total}:\n\n  {}\n",
            exercise.hints[number - 1].trim()
        );
    }
    if next == total {
        println!("That was the last hint. `cargo exercise solution {id}` shows the reference.");
    } else {
        println!("Run it again for the next hint.");
    }
    progress.hints.insert(id.to_string(), next);
    workspace.save_progress(&progress)?;
    Ok(ExitCode::SUCCESS)
}

fn diff(workspace: &Workspace, id: &str) -> anyhow::Result<ExitCode> {
    let exercise = workspace.find(id)?;
    for file in workspace.load(exercise)? {
        for index in file.of(id) {
            let reference = regions::solution_body(file.reference_body(index)).join("\n") + "\n";
            let yours = file.current_body(index).join("\n") + "\n";
            let line = file.current_regions[index].begin + 2;
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

fn solution(workspace: &Workspace, id: &str) -> anyhow::Result<ExitCode> {
    let exercise = workspace.find(id)?;
    for file in workspace.load(exercise)? {
        for index in file.of(id) {
            println!(
                "// {}, line {}",
                file.path.display(),
                file.reference_regions[index].begin + 2
            );
            for line in regions::solution_body(file.reference_body(index)) {
                println!("{line}");
            }
            println!();
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn reset(workspace: &Workspace, id: &str, yes: bool) -> anyhow::Result<ExitCode> {
    let exercise = workspace.find(id)?;
    let files = workspace.load(exercise)?;
    if !yes {
        print!(
            "Put exercise {id} back to blank? Your code in it is saved to .exercise/saved/ first. [y/N] "
        );
        io::stdout().flush()?;
        let mut answer = String::new();
        io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("Nothing changed.");
            return Ok(ExitCode::FAILURE);
        }
    }
    for file in &files {
        workspace.keep_reference(&file.path, &file.reference)?;
    }
    let saved = workspace.save_regions(exercise, &files, "reset")?;
    workspace.rewrite(exercise, &files, |body, region| {
        regions::blank_body(body, region, exercise)
    })?;
    let mut progress = workspace.progress();
    progress.passed.remove(id);
    workspace.save_progress(&progress)?;
    println!(
        "Exercise {id} is blank again; your code was saved in {}.",
        saved.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn restore(workspace: &Workspace, id: &str) -> anyhow::Result<ExitCode> {
    let exercise = workspace.find(id)?;
    let files = workspace.load(exercise)?;
    let saved = workspace.save_regions(exercise, &files, "restore")?;
    workspace.rewrite(exercise, &files, |body, _| body.to_vec())?;
    println!(
        "Exercise {id} holds the reference again; what was there is saved in {}.",
        saved.display()
    );
    Ok(ExitCode::SUCCESS)
}
