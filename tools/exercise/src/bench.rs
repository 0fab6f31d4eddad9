//! `cargo exercise bench`: how long a learner waits for a verdict after a
//! one-line edit, with a warm build. In a scratch copy of the workspace
//! (never the learner's tree), with a target folder of its own, for each
//! exercise measured: one harmless line added (the check passes), then one
//! line changed into a mistake (the check fails). Each is the whole
//! `cargo exercise check ID`, as the learner runs it, minus Cargo's own
//! start-up of the tool.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::verify;
use crate::workspace::Workspace;

/// An exercise measured, and the one-line mistake made in it: in `file`,
/// the line that reads `line` (trimmed) becomes `mistake`.
struct Case {
    id: &'static str,
    file: &'static str,
    line: &'static str,
    mistake: &'static str,
}

const CASES: &[Case] = &[
    Case {
        id: "2.3",
        file: "crates/02-server/src/lib.rs",
        line: "Ok(n) => filled += n,",
        mistake: "Ok(n) => filled = n,",
    },
    Case {
        id: "3.3",
        file: "crates/03-multi-client/src/lib.rs",
        line: "say!(\"[{client}] {}\", printable(&line));",
        mistake: "say!(\"{}\", printable(&line));",
    },
    Case {
        id: "4.2",
        file: "crates/04-relay/src/registry.rs",
        line: "Ok(()) => return Delivery::Queued,",
        mistake: "Ok(()) => return Delivery::Gone,",
    },
    Case {
        id: "5.4",
        file: "crates/05-file-download/src/client.rs",
        line: "format!(\"RESUME {have} {path}\\n\")",
        mistake: "format!(\"GET {path}\\n\")",
    },
    Case {
        id: "6.1",
        file: "crates/06-event-loop/src/by_hand/connection.rs",
        line: "let answered = answer(&mut self.input, false, &mut self.log, &mut self.output);",
        mistake: "let answered = answer(&mut self.input, true, &mut self.log, &mut self.output);",
    },
];

/// One timed check: whether it passed, how long it took, and what it said
/// first failed.
struct Timed {
    passed: bool,
    seconds: f64,
    first: String,
    /// The check's own account: `build 3.1 s, 34 tests 5.2 s, clippy 0.4 s`.
    parts: String,
}

pub fn bench(workspace: &Workspace, only: Option<&str>) -> anyhow::Result<()> {
    let cases: Vec<&Case> = CASES
        .iter()
        .filter(|c| only.is_none_or(|id| c.id == id))
        .collect();
    if cases.is_empty() {
        bail!("the benchmark measures {}", ids());
    }
    let scratch = workspace.root.join("target/exercise-bench/workspace");
    verify::copy_workspace(&workspace.root, &scratch)?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace.root.join("target"))
        .join("exercise-bench-target");
    println!(
        "Scratch copy: {} (target folder {})",
        scratch.display(),
        target_dir.display()
    );
    println!(
        "Warming up: every check once on the reference (the first time builds everything) ..."
    );
    for case in &cases {
        let warm = check(&scratch, &target_dir, case.id)?;
        if !warm.passed {
            println!(
                "  {}'s check fails on the reference, first at: {} (a flaky test? measured all the same)",
                case.id, warm.first
            );
        }
    }
    println!();
    println!(
        "{:<9} {:>26} {:>10}   fails in, first at",
        "exercise", "one line added: passes in", "a mistake:"
    );
    let mut worst: f64 = 0.0;
    for case in &cases {
        let path = scratch.join(case.file);
        let original = fs::read_to_string(&path)
            .with_context(|| format!("could not read {}", path.display()))?;

        // A harmless line at the top of the exercise's first region.
        let marker = format!("// exercise {}: begin", case.id);
        let added = edit(&original, |line| {
            (line.trim() == marker).then(|| {
                let indent = &line[..line.len() - line.trim_start().len()];
                format!("{line}\n{indent}let _bench = 0;")
            })
        })
        .with_context(|| format!("no `{marker}` in {}", case.file))?;
        fs::write(&path, added)?;
        let passing = check(&scratch, &target_dir, case.id);
        fs::write(&path, &original)?;
        let passing = passing?;

        let wrong = edit(&original, |line| {
            (line.trim() == case.line).then(|| line.replace(case.line, case.mistake))
        })
        .with_context(|| format!("no line `{}` in {}", case.line, case.file))?;
        fs::write(&path, wrong)?;
        let failing = check(&scratch, &target_dir, case.id);
        fs::write(&path, &original)?;
        let failing = failing?;

        println!(
            "{:<9} {:>26} {:>10}   {}",
            case.id,
            format!(
                "{:.1} s{}",
                passing.seconds,
                if passing.passed { "" } else { " (FAILED!)" }
            ),
            format!("{:.1} s", failing.seconds),
            if failing.passed {
                "(it PASSED: the mistake was not caught)".to_string()
            } else {
                failing.first.clone()
            }
        );
        println!(
            "{:<9} passing: {}; failing: {}",
            "", passing.parts, failing.parts
        );
        worst = worst.max(passing.seconds).max(failing.seconds);
    }
    println!(
        "\nLongest wait for a verdict: {worst:.1} s ({} cores; `cargo exercise` adds Cargo's start-up, about 0.2 s)",
        thread_count()
    );
    // Leave the scratch copy's files as the reference (the target is kept).
    Ok(())
}

fn ids() -> String {
    CASES.iter().map(|c| c.id).collect::<Vec<_>>().join(", ")
}

fn thread_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// `text` with the first line for which `change` says something replaced.
fn edit(text: &str, change: impl Fn(&str) -> Option<String>) -> Option<String> {
    let mut done = false;
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let body = line.strip_suffix('\n').unwrap_or(line);
        match (done, change(body)) {
            (false, Some(new)) => {
                out.push_str(&new);
                if line.ends_with('\n') {
                    out.push('\n');
                }
                done = true;
            }
            _ => out.push_str(line),
        }
    }
    done.then_some(out)
}

/// Runs `exercise --root ROOT check ID` (this very program) and times it.
fn check(root: &Path, target_dir: &Path, id: &str) -> anyhow::Result<Timed> {
    let program = std::env::current_exe().context("could not find this program")?;
    let clock = Instant::now();
    let output = Command::new(program)
        .arg("--root")
        .arg(root)
        .args(["check", id])
        .env("CARGO_TARGET_DIR", target_dir)
        .output()
        .context("could not run the check")?;
    let seconds = clock.elapsed().as_secs_f64();
    let said = String::from_utf8_lossy(&output.stdout);
    let first = said
        .lines()
        .find_map(|line| line.split_once("The first that does not: ").map(|(_, t)| t))
        .or_else(|| {
            said.contains("Your code does not compile")
                .then_some("(it does not compile)")
        })
        .or_else(|| said.contains("clippy sees").then_some("clippy"))
        .unwrap_or("")
        .to_string();
    if !output.status.success() && first.is_empty() {
        bail!(
            "the check of {id} failed without a verdict:\n{said}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let parts = said
        .lines()
        .rev()
        .find_map(|line| {
            line.strip_prefix("(build ")
                .and_then(|rest| rest.strip_suffix(')'))
                .map(|rest| format!("build {rest}"))
        })
        .unwrap_or_default();
    Ok(Timed {
        passed: output.status.success(),
        seconds,
        first,
        parts,
    })
}

#[cfg(test)]
mod tests {
    use super::CASES;

    /// A case whose line has moved (a file split, a rename) would measure
    /// nothing: each line must be in its file, once.
    #[test]
    fn every_case_edits_a_line_that_is_in_its_file() {
        let root = crate::default_root();
        for case in CASES {
            let text = std::fs::read_to_string(root.join(case.file)).unwrap();
            let found = text.lines().filter(|line| line.trim() == case.line).count();
            assert_eq!(
                found, 1,
                "cargo exercise bench's case {} edits `{}` in {}: that line should be there once",
                case.id, case.line, case.file
            );
        }
    }
}
