//! `cargo exercise verify`: what CI runs to prove every exercise is real.
//!
//! 1. Statically: the catalogues are complete (hints, tests, a chapter
//!    section that exists), the markers are well formed and match the
//!    catalogues, every test named exists, and the book's pages are current.
//! 2. In a copy of the workspace (never the learner's tree), for each
//!    exercise: blank it; it must compile, every test it lists must fail, and
//!    the failures must show its `exercise ID:` message; then put the
//!    reference back, byte for byte.
//! 3. On the restored copy, every listed test passes.
//!
//! Snapshots cannot be written on the way (see `run`), and a tracked `.snap`
//! that changed anyway fails the exercise.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::book;
use crate::catalogue::{Exercise, TestRef, Variant};
use crate::regions::{self, Region, Source};
use crate::run::{self, Verdict};
use crate::workspace::Workspace;

pub fn verify(workspace: &Workspace, only: Option<&str>, repeat: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let problems = static_problems(workspace, Blanks::AreProblems)?;
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("- {problem}");
        }
        bail!(
            "{} problem(s) with the exercises (listed above)",
            problems.len()
        );
    }
    println!(
        "{} exercises: catalogues, markers, sections, test names and book pages are consistent",
        workspace.exercises.len()
    );

    let selected: Vec<&Exercise> = workspace
        .exercises
        .iter()
        .filter(|e| only.is_none_or(|id| e.id == id))
        .collect();
    if selected.is_empty() {
        bail!("no exercise matches {}", only.unwrap_or_default());
    }

    let copy = workspace.root.join("target/exercise-verify/workspace");
    copy_workspace(&workspace.root, &copy)?;
    // The copy builds into a target folder of its own, kept between runs so
    // that only what changed is rebuilt. Never the workspace's own: Cargo
    // names a workspace member's artifacts without its path, so the copy's
    // builds would overwrite the workspace's binaries and fingerprints, and
    // the learner's next build could run the copy's stale binaries.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.root.join("target"))
        .join("exercise-verify-target");
    let copied = Workspace::open(&copy)?;
    let snapshots = snapshot_files(&copy)?;

    let mut failed = Vec::new();
    for exercise in &selected {
        let clock = Instant::now();
        match blank_must_fail(&copied, exercise, &target_dir, &snapshots) {
            Ok(()) => println!(
                "ok    {} {}: blank, its {} test(s) fail with its message ({:.0} s)",
                exercise.id,
                exercise.title,
                exercise.tests.len(),
                clock.elapsed().as_secs_f64()
            ),
            Err(err) => {
                println!("FAIL  {} {}: {err:#}", exercise.id, exercise.title);
                failed.push(exercise.id.clone());
            }
        }
        for mistake in &exercise.mistakes {
            for round in 1..=repeat {
                let clock = Instant::now();
                let round_words = if repeat > 1 {
                    format!(" (run {round} of {repeat})")
                } else {
                    String::new()
                };
                match mistake_must_fail(&copied, exercise, mistake, &target_dir, &snapshots) {
                    Ok(test) => println!(
                        "ok    {} mistake `{}`: caught by {}{round_words} ({:.0} s)",
                        exercise.id,
                        mistake.name,
                        test.sentence(),
                        clock.elapsed().as_secs_f64()
                    ),
                    Err(err) => {
                        println!(
                            "FAIL  {} mistake `{}`{round_words}: {err:#}",
                            exercise.id, mistake.name
                        );
                        failed.push(format!("{} `{}`", exercise.id, mistake.name));
                        break;
                    }
                }
            }
        }
        for alternative in &exercise.alternatives {
            let clock = Instant::now();
            match alternative_must_pass(&copied, exercise, alternative, &target_dir, &snapshots) {
                Ok(()) => println!(
                    "ok    {} alternative `{}`: passes ({:.0} s)",
                    exercise.id,
                    alternative.name,
                    clock.elapsed().as_secs_f64()
                ),
                Err(err) => {
                    println!(
                        "FAIL  {} alternative `{}`: {err:#}",
                        exercise.id, alternative.name
                    );
                    failed.push(format!("{} `{}`", exercise.id, alternative.name));
                }
            }
        }
    }

    let all: Vec<TestRef> = selected
        .iter()
        .flat_map(|e| e.tests.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let outcome = run::run_tests(&copy, &all, Some(&target_dir));
    if let Some(error) = &outcome.build_error {
        println!("FAIL  the reference does not build:\n{error}");
        failed.push("reference".to_string());
    } else {
        let broken: Vec<&TestRef> = all
            .iter()
            .filter(|test| outcome.verdict(test) != Verdict::Passed)
            .collect();
        if broken.is_empty() {
            println!(
                "ok    restored: all {} listed tests pass on the reference",
                all.len()
            );
        } else {
            for test in &broken {
                println!(
                    "FAIL  restored: {}:{}:{} does not pass on the reference\n{}",
                    test.package,
                    test.target,
                    test.name,
                    outcome.messages.get(test).cloned().unwrap_or_default()
                );
            }
            failed.push("reference".to_string());
        }
    }

    println!(
        "verify: {} exercise(s) in {:.0} s",
        selected.len(),
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        println!("{} passed, 0 failed", selected.len() + 1);
        Ok(())
    } else {
        bail!("verify failed for: {}", failed.join(", "))
    }
}

/// Puts `make`'s bodies into `exercise`'s regions in the copy (it is given
/// the region's number, its reference body and the region), runs `tests`,
/// and puts the reference back, byte for byte.
fn with_regions(
    copy: &Workspace,
    exercise: &Exercise,
    tests: &[TestRef],
    target_dir: &Path,
    snapshots: &BTreeMap<PathBuf, Vec<u8>>,
    make: impl Fn(usize, &[String], &Region) -> Vec<String>,
) -> anyhow::Result<run::Outcome> {
    let files = copy.load(exercise)?;
    let originals: Vec<(PathBuf, String)> = files
        .iter()
        .map(|file| (copy.root.join(&file.path), file.current.text()))
        .collect();
    // `rewrite` visits the regions in the order `solution` prints them.
    let number = Cell::new(0);
    copy.rewrite(exercise, &files, |body, region| {
        number.set(number.get() + 1);
        make(number.get(), body, region)
    })?;
    let outcome = run::run_tests(&copy.root, tests, Some(target_dir));
    for (path, text) in &originals {
        fs::write(path, text).with_context(|| format!("could not restore {}", path.display()))?;
    }
    for (path, text) in &originals {
        if fs::read_to_string(path).ok().as_deref() != Some(text.as_str()) {
            bail!("{} did not read back as the reference", path.display());
        }
    }
    for (path, bytes) in snapshots {
        if fs::read(copy.root.join(path)).ok().as_ref() != Some(bytes) {
            fs::write(copy.root.join(path), bytes)?;
            bail!(
                "{} changed while its tests ran: snapshots must never be written",
                path.display()
            );
        }
    }
    Ok(outcome)
}

/// Blanks `exercise` in the copy: it must compile, and every listed test
/// must fail with its `todo!` message.
fn blank_must_fail(
    copy: &Workspace,
    exercise: &Exercise,
    target_dir: &Path,
    snapshots: &BTreeMap<PathBuf, Vec<u8>>,
) -> anyhow::Result<()> {
    let outcome = with_regions(
        copy,
        exercise,
        &exercise.tests,
        target_dir,
        snapshots,
        |_, body, region| regions::blank_body(body, region, exercise),
    )?;
    if let Some(error) = outcome.build_error {
        bail!(
            "blank, it does not compile; fix its stub lines:\n{}",
            last_lines(&error, 30)
        );
    }
    let passing: Vec<String> = exercise
        .tests
        .iter()
        .filter(|test| outcome.verdict(test) != Verdict::Failed)
        .map(|test| format!("{} ({:?})", test.name, outcome.verdict(test)))
        .collect();
    if !passing.is_empty() {
        bail!(
            "blank, these tests did not fail, so they do not prove it: {}",
            passing.join(", ")
        );
    }
    let tag = format!("exercise {}:", exercise.id);
    if !outcome.output.contains(&tag) {
        bail!("blank, its tests failed but their output never shows `{tag}` (the todo! message)");
    }
    Ok(())
}

/// The variant's code for region `number`, or the reference body.
fn variant_or_reference(
    variant: &Variant,
    number: usize,
    body: &[String],
    region: &Region,
) -> Vec<String> {
    match variant.code.get(&number) {
        Some(code) => regions::variant_body(code, region),
        None => body.to_vec(),
    }
}

/// Puts a known mistake in the copy: it must compile (a learner's mistake
/// does), and the check must fail, the first failure's message naming the
/// behaviour the mistake breaks. Returns the test that caught it.
fn mistake_must_fail(
    copy: &Workspace,
    exercise: &Exercise,
    mistake: &Variant,
    target_dir: &Path,
    snapshots: &BTreeMap<PathBuf, Vec<u8>>,
) -> anyhow::Result<TestRef> {
    let outcome = with_regions(
        copy,
        exercise,
        &exercise.tests,
        target_dir,
        snapshots,
        |number, body, region| variant_or_reference(mistake, number, body, region),
    )?;
    if let Some(error) = outcome.build_error {
        bail!(
            "it does not compile, so it proves nothing about the tests:\n{}",
            last_lines(&error, 30)
        );
    }
    let Some(first) = exercise
        .tests
        .iter()
        .find(|test| outcome.verdict(test) != Verdict::Passed)
    else {
        bail!("every test passes with it: the check lets this mistake through");
    };
    let message = outcome.messages.get(first).cloned().unwrap_or_default();
    if !names(&message, &mistake.breaks) {
        bail!(
            "caught by {}, but its message does not say `{}`:\n{}",
            first.sentence(),
            mistake.breaks,
            message
        );
    }
    Ok(first.clone())
}

/// Puts a correct solution written differently in the copy: every test
/// must pass with it.
fn alternative_must_pass(
    copy: &Workspace,
    exercise: &Exercise,
    alternative: &Variant,
    target_dir: &Path,
    snapshots: &BTreeMap<PathBuf, Vec<u8>>,
) -> anyhow::Result<()> {
    let outcome = with_regions(
        copy,
        exercise,
        &exercise.tests,
        target_dir,
        snapshots,
        |number, body, region| variant_or_reference(alternative, number, body, region),
    )?;
    if let Some(error) = outcome.build_error {
        bail!("it does not compile:\n{}", last_lines(&error, 30));
    }
    if let Some(test) = exercise
        .tests
        .iter()
        .find(|test| outcome.verdict(test) != Verdict::Passed)
    {
        bail!(
            "the check rejects this correct code at {}:\n{}",
            test.sentence(),
            outcome.messages.get(test).cloned().unwrap_or_default()
        );
    }
    Ok(())
}

/// Whether `message` says `words`: the same words in the same order, case
/// and line breaks aside.
fn names(message: &str, words: &str) -> bool {
    let fold = |text: &str| {
        text.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    fold(message).contains(&fold(words))
}

/// Whether a blank region counts as a problem: for `verify`, which checks
/// the reference, it does; for the tests a learner runs, it does not.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Blanks {
    AreProblems,
    #[cfg(test)]
    AreFine,
}

/// What is wrong before anything runs.
pub fn static_problems(workspace: &Workspace, blanks: Blanks) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    let packages = package_dirs(&workspace.root)?;

    for exercise in &workspace.exercises {
        let id = &exercise.id;
        if !ids.insert(id.clone()) {
            problems.push(format!("exercise {id} is listed twice"));
        }
        if !id.starts_with(&format!("{}.", exercise.lesson)) {
            problems.push(format!(
                "exercise {id} is in lesson {}'s catalogue but its id does not start with `{}.`",
                exercise.lesson, exercise.lesson
            ));
        }
        if exercise.behaviour.trim().is_empty() || exercise.title.trim().is_empty() {
            problems.push(format!("exercise {id} has no title or no behaviour"));
        }
        if exercise.hints.len() < 2 || exercise.hints.iter().any(|h| h.trim().is_empty()) {
            problems.push(format!(
                "exercise {id} needs two or three hints, none empty"
            ));
        }
        if exercise.tests.is_empty() {
            problems.push(format!("exercise {id} names no test that proves it"));
        }
        for variant in exercise.mistakes.iter().chain(&exercise.alternatives) {
            let regions = workspace
                .files_of(id)
                .and_then(|files| {
                    files
                        .iter()
                        .map(|path| workspace.load_file(path).map(|file| file.of(id).len()))
                        .sum::<anyhow::Result<usize>>()
                })
                .unwrap_or(0);
            if let Some(number) = variant.code.keys().find(|&&number| number > regions) {
                problems.push(format!(
                    "exercise {id}, `{}`: region {number} does not exist (it has {regions})",
                    variant.name
                ));
            }
        }
        let chapter = workspace.root.join("docs/src").join(&exercise.chapter);
        match fs::read_to_string(&chapter) {
            Ok(text) => {
                if !book::headings(&text).contains(&book::plain(&exercise.section)) {
                    problems.push(format!(
                        "exercise {id}: its section `{}` is not a heading of docs/src/{}",
                        exercise.section, exercise.chapter
                    ));
                }
            }
            Err(_) => problems.push(format!(
                "exercise {id}: its chapter docs/src/{} does not exist",
                exercise.chapter
            )),
        }
        for test in &exercise.tests {
            if let Some(problem) = missing_test(&workspace.root, &packages, test) {
                problems.push(format!("exercise {id}: {problem}"));
            }
        }
    }

    let mut marked = BTreeSet::new();
    for path in regions::candidate_files(&workspace.root)? {
        let source = Source::read(&workspace.root.join(&path))?;
        match regions::regions(&source) {
            Ok(found) => {
                for region in found {
                    let Some(exercise) = workspace.exercises.iter().find(|e| e.id == region.id)
                    else {
                        problems.push(format!(
                            "{}:{}: exercise {} is in no catalogue",
                            path.display(),
                            region.begin + 1,
                            region.id
                        ));
                        continue;
                    };
                    let body = region.body(&source);
                    if blanks == Blanks::AreProblems
                        && body == regions::blank_body(body, &region, exercise).as_slice()
                    {
                        problems.push(format!(
                            "{}:{}: exercise {} is blank: verify checks the reference (`cargo exercise restore {}`)",
                            path.display(),
                            region.begin + 1,
                            region.id,
                            region.id
                        ));
                    }
                    marked.insert(region.id);
                }
            }
            Err(found) => {
                for problem in found {
                    problems.push(format!("{}: {problem}", path.display()));
                }
            }
        }
    }
    for exercise in &workspace.exercises {
        if !marked.contains(&exercise.id) {
            problems.push(format!(
                "exercise {} has no `// exercise {}: begin` region in the code",
                exercise.id, exercise.id
            ));
        }
    }
    if problems.is_empty() {
        for path in book::stale_pages(workspace)? {
            problems.push(format!(
                "{} is out of date: run `cargo exercise book`",
                path.display()
            ));
        }
    }
    Ok(problems)
}

/// Package name -> its folder, for every workspace member with a manifest.
fn package_dirs(root: &Path) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![root.join("tests")];
    for entry in fs::read_dir(root.join("crates"))?.flatten() {
        dirs.push(entry.path());
    }
    for dir in dirs {
        let Ok(manifest) = fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        let name = manifest.lines().find_map(|line| {
            let value = line.trim().strip_prefix("name = \"")?;
            Some(value.trim_end_matches('"').to_string())
        });
        if let Some(name) = name {
            found.insert(name, dir);
        }
    }
    Ok(found)
}

/// Why `test` cannot be found, if it cannot: its package, its target file,
/// or a `fn NAME(` in them.
fn missing_test(
    root: &Path,
    packages: &BTreeMap<String, PathBuf>,
    test: &TestRef,
) -> Option<String> {
    let Some(dir) = packages.get(&test.package) else {
        return Some(format!("no package `{}`", test.package));
    };
    let sources: Vec<PathBuf> = if test.target == "lib" {
        let mut found = Vec::new();
        collect_rs(&dir.join("src"), &mut found);
        found
    } else {
        let mut found = vec![dir.join("tests").join(format!("{}.rs", test.target))];
        collect_rs(&dir.join("tests").join(&test.target), &mut found);
        collect_rs(&dir.join("tests/support"), &mut found);
        found
    };
    let function = test.name.rsplit("::").next().unwrap_or(&test.name);
    let needle = format!("fn {function}(");
    let exists = sources
        .iter()
        .any(|path| fs::read_to_string(path).is_ok_and(|text| text.contains(&needle)));
    (!exists).then(|| {
        format!(
            "test `{}` not found in target `{}` of `{}` ({})",
            test.name,
            test.target,
            test.package,
            dir.strip_prefix(root).unwrap_or(dir).display()
        )
    })
}

fn collect_rs(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// Copies the workspace's files (what git tracks, and new files it does not
/// ignore) into `to`, fresh.
fn copy_workspace(root: &Path, to: &Path) -> anyhow::Result<()> {
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .context("verify needs git to list the workspace's files")?;
    if !output.status.success() {
        bail!(
            "git ls-files failed in {}: {}",
            root.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    if to.exists() {
        fs::remove_dir_all(to).with_context(|| format!("could not empty {}", to.display()))?;
    }
    for name in output.stdout.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let relative = PathBuf::from(String::from_utf8_lossy(name).into_owned());
        let from = root.join(&relative);
        if !from.is_file() {
            continue; // deleted in the working tree
        }
        let dest = to.join(&relative);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::copy(&from, &dest).with_context(|| format!("could not copy {}", from.display()))?;
    }
    Ok(())
}

/// Every `.snap` file under the copy, with its bytes.
fn snapshot_files(root: &Path) -> anyhow::Result<BTreeMap<PathBuf, Vec<u8>>> {
    let mut all = Vec::new();
    collect_all(root, &mut all);
    let mut found = BTreeMap::new();
    for path in all {
        if path.extension().is_some_and(|e| e == "snap") {
            let bytes = fs::read(&path)?;
            found.insert(
                path.strip_prefix(root).unwrap_or(&path).to_path_buf(),
                bytes,
            );
        }
    }
    Ok(found)
}

fn collect_all(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_all(&path, found);
        } else {
            found.push(path);
        }
    }
}

fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("Compiling"))
        .collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real workspace's catalogues, markers, chapter sections, test
    /// names and book pages agree (blank regions allowed: a learner may
    /// have started an exercise). `cargo exercise book` mends stale pages.
    #[test]
    fn the_lessons_catalogues_and_markers_agree() {
        let workspace = Workspace::open(&crate::default_root()).unwrap();
        let problems = static_problems(&workspace, Blanks::AreFine).unwrap();
        assert!(
            problems.is_empty(),
            "the exercises and the code disagree:\n{}",
            problems.join("\n")
        );
    }
}
