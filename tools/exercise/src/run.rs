//! Building and running an exercise's tests with Cargo, and reading what
//! libtest printed: which tests passed, and each failure's message.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::catalogue::TestRef;

/// The longest one build or one test run may take. The lessons' tests wait
/// at most a few seconds for anything; a run past this is stuck.
pub const RUN_DEADLINE: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Failed,
    /// libtest never reported it: the name is wrong, or the run died.
    NotRun,
}

/// What running some tests found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The compiler's complaint, when the tests did not build.
    pub build_error: Option<String>,
    pub verdicts: BTreeMap<TestRef, Verdict>,
    /// Each failed test's message (what it printed, its panic).
    pub messages: BTreeMap<TestRef, String>,
    /// Everything the runs printed, for `verify`'s search.
    pub output: String,
}

impl Outcome {
    pub fn verdict(&self, test: &TestRef) -> Verdict {
        self.verdicts.get(test).copied().unwrap_or(Verdict::NotRun)
    }
}

/// Builds and runs `tests` in the workspace at `root`, one Cargo run per
/// test target. Snapshots can never be written: every `INSTA_*` setting of
/// the caller is removed and `INSTA_UPDATE=no` set, so a wrong program
/// cannot pass by rewriting the lesson's expected output.
pub fn run_tests(root: &Path, tests: &[TestRef], target_dir: Option<&Path>) -> Outcome {
    let mut groups: BTreeMap<(String, String), Vec<&TestRef>> = BTreeMap::new();
    for test in tests {
        groups
            .entry((test.package.clone(), test.target.clone()))
            .or_default()
            .push(test);
    }
    let mut outcome = Outcome::default();
    for group in groups.values() {
        let target_args = group[0].cargo_target_args();

        let mut build = vec!["test".to_string()];
        build.extend(target_args.iter().cloned());
        build.push("--no-run".to_string());
        let (built, printed) = cargo(root, &build, target_dir);
        outcome.output.push_str(&printed);
        if !built {
            outcome.build_error = Some(printed);
            return outcome;
        }

        let mut run = vec!["test".to_string()];
        run.extend(target_args);
        run.extend(["--".to_string(), "--exact".to_string()]);
        run.extend(group.iter().map(|test| test.name.clone()));
        let (_, printed) = cargo(root, &run, target_dir);
        let (verdicts, messages) = parse(&printed);
        for test in group {
            if let Some(verdict) = verdicts.get(&test.name) {
                outcome.verdicts.insert((*test).clone(), *verdict);
            }
            if let Some(message) = messages.get(&test.name) {
                outcome.messages.insert((*test).clone(), message.clone());
            }
        }
        outcome.output.push_str(&printed);
    }
    outcome
}

/// Runs `cargo ARGS` in `root`, its output captured; whether it succeeded,
/// and what it printed (standard output, then standard error).
fn cargo(root: &Path, args: &[String], target_dir: Option<&Path>) -> (bool, String) {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .args(args)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("CARGO_TERM_COLOR", "never")
        .env("RUST_BACKTRACE", "0")
        .env("INSTA_UPDATE", "no");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("INSTA_") && key != "INSTA_UPDATE" {
            command.env_remove(&key);
        }
    }
    if let Some(dir) = target_dir {
        command.env("CARGO_TARGET_DIR", dir);
    }
    match run_with_deadline(&mut command, RUN_DEADLINE) {
        Ok((success, stdout, stderr)) => (success, format!("{stdout}{stderr}")),
        Err(err) => (false, format!("cargo {}: {err:#}\n", args.join(" "))),
    }
}

/// Runs a command to its end or to `deadline`, whichever comes first.
fn run_with_deadline(
    command: &mut Command,
    deadline: Duration,
) -> anyhow::Result<(bool, String, String)> {
    let mut child = command.spawn().context("could not start cargo")?;
    let mut pipes = (child.stdout.take(), child.stderr.take());
    let read_all = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = read_all(pipes.0.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = read_all(pipes.1.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().context("could not wait for cargo")? {
            break Some(status);
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let stdout = stdout.join().unwrap_or_default();
    let mut stderr = stderr.join().unwrap_or_default();
    let success = match status {
        Some(status) => status.success(),
        None => {
            stderr.push_str(&format!(
                "\n(stopped: still running after {} s)\n",
                deadline.as_secs()
            ));
            false
        }
    };
    Ok((success, stdout, stderr))
}

type Parsed = (BTreeMap<String, Verdict>, BTreeMap<String, String>);

/// Reads libtest's plain output: `test NAME ... ok` lines, then a
/// `---- NAME stdout ----` section for each failure.
fn parse(output: &str) -> Parsed {
    let mut verdicts = BTreeMap::new();
    let mut messages = BTreeMap::new();
    let mut section: Option<(String, String)> = None;
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("test ")
            && let Some((name, result)) = rest.rsplit_once(" ... ")
        {
            let verdict = match result.trim() {
                "ok" => Verdict::Passed,
                "FAILED" => Verdict::Failed,
                _ => continue,
            };
            verdicts.insert(name.to_string(), verdict);
            continue;
        }
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|rest| rest.strip_suffix(" stdout ----"))
        {
            if let Some((done, text)) = section.take() {
                messages.insert(done, text.trim_end().to_string());
            }
            section = Some((name.to_string(), String::new()));
            continue;
        }
        if line == "failures:" || line.starts_with("test result:") {
            if let Some((done, text)) = section.take() {
                messages.insert(done, text.trim_end().to_string());
            }
            continue;
        }
        if let Some((_, text)) = section.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    if let Some((done, text)) = section.take() {
        messages.insert(done, text.trim_end().to_string());
    }
    (verdicts, messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_output_gives_each_verdict_and_each_failure_message() {
        let output = "\nrunning 3 tests\ntest a_b ... ok\ntest c_d ... FAILED\ntest e ... ignored\n\nfailures:\n\n---- c_d stdout ----\n\nthread 'c_d' panicked at x.rs:1:2:\nthe server should reply\n\n\nfailures:\n    c_d\n\ntest result: FAILED. 1 passed; 1 failed\n";
        let (verdicts, messages) = parse(output);
        assert_eq!(verdicts.get("a_b"), Some(&Verdict::Passed));
        assert_eq!(verdicts.get("c_d"), Some(&Verdict::Failed));
        assert_eq!(verdicts.get("e"), None);
        assert_eq!(
            messages.get("c_d").map(String::as_str),
            Some("\nthread 'c_d' panicked at x.rs:1:2:\nthe server should reply")
        );
    }
}
