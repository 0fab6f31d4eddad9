//! `cargo exercise verify`: what CI runs to prove every exercise is real.
//!
//! 1. Statically: the catalogues are complete (hints, tests, a chapter
//!    section that exists, enough known mistakes and other solutions), the
//!    markers are well formed and match the catalogues, the code has the
//!    catalogues' digests of the reference, every test named exists, and
//!    the book's pages are current.
//! 2. In a copy of the workspace (never the learner's tree), with the same
//!    test selection and runner as `check`:
//!    - the reference: every test that can see a selected exercise passes;
//!    - each exercise blank: it compiles, every listed test fails, and the
//!      failures show its `exercise ID:` message;
//!    - each known mistake: the check fails, and its first failure's
//!      message names what the mistake breaks (`--repeat N`: N times);
//!    - the other correct solutions: the whole check passes. One of each
//!      exercise goes in at once, so the suites run once for all of them;
//!      a failing round is retried one solution at a time to say which.
//!
//!    After each, the reference goes back byte for byte.
//!
//! Snapshots cannot be written on the way (see `run`), and a tracked `.snap`
//! that changed anyway fails the run.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::book;
use crate::catalogue::{Exercise, TestRef, Variant};
use crate::lang;
use crate::lints;
use crate::regions::{self, Region, Source};
use crate::run::{self, Outcome, Place, Stop, Verdict};
use crate::select::{self, Selection};
use crate::workspace::Workspace;

/// Whether every exercise must carry at least [`MIN_MISTAKES`] known
/// mistakes and [`MIN_ALTERNATIVES`] other correct solutions (a static
/// problem when it does not). Flip to `false` to let catalogues in that do
/// not meet it yet.
pub const REQUIRE_MINIMUM: bool = true;
pub const MIN_MISTAKES: usize = 4;
pub const MIN_ALTERNATIVES: usize = 1;

/// The copy builds with the workspace's own profile, so that its first
/// build can start from the workspace's compiled dependencies (see [`seed`]).
const COPY_ENV: &[(&str, &str)] = &[];

/// The copy of the workspace verify works in.
struct Copy {
    workspace: Workspace,
    target_dir: PathBuf,
    snapshots: BTreeMap<PathBuf, Vec<u8>>,
}

impl Copy {
    fn place(&self) -> Place<'_> {
        Place {
            root: &self.workspace.root,
            target_dir: Some(&self.target_dir),
            env: COPY_ENV,
            overlap: false,
        }
    }
}

pub fn verify(workspace: &Workspace, only: Option<&str>, repeat: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let problems = static_problems(workspace, Blanks::AreProblems, REQUIRE_MINIMUM)?;
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

    let root = workspace.root.join("target/exercise-verify/workspace");
    copy_workspace(&workspace.root, &root)?;
    // The copy builds into a target folder of its own, kept between runs so
    // that only what changed is rebuilt. Never the workspace's own: Cargo
    // names a workspace member's artifacts without its path, so the copy's
    // builds would overwrite the workspace's binaries and fingerprints, and
    // the learner's next build could run the copy's stale binaries.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.root.join("target"))
        .join("exercise-verify-target");
    let main_target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.root.join("target"));
    let clock = Instant::now();
    let seeded = seed(&main_target, &target_dir, &select::members(&workspace.root))?;
    if seeded > 0 {
        println!(
            "seeded the copy's target folder with {seeded} compiled dependencies of the workspace's ({:.1} s)",
            clock.elapsed().as_secs_f64()
        );
    }
    let copy = Copy {
        workspace: Workspace::open(&root)?,
        snapshots: snapshot_files(&root)?,
        target_dir,
    };
    let selections: Vec<Selection> = selected
        .iter()
        .map(|exercise| select::select(&copy.workspace, exercise))
        .collect::<anyhow::Result<_>>()?;

    let mut failed = Vec::new();
    let mut times: BTreeMap<&str, (usize, f64)> = BTreeMap::new();
    let mut timed = |kind: &'static str, clock: Instant| {
        let seconds = clock.elapsed().as_secs_f64();
        let entry = times.entry(kind).or_default();
        entry.0 += 1;
        entry.1 += seconds;
        seconds
    };

    // The reference first: it builds everything the rest needs.
    let clock = Instant::now();
    let all = Selection::merge(&selections);
    let outcome = with_variants(&copy, &[], &all, Stop::AtFirstFailure)?;
    let seconds = timed("reference", clock);
    match passes(&outcome) {
        Ok(count) => println!(
            "ok    reference: all {count} tests that see the exercises pass ({seconds:.1} s)"
        ),
        Err(err) => {
            println!("FAIL  reference: {err:#} ({seconds:.1} s)");
            bail!("the reference does not pass its own checks; nothing else can be verified");
        }
    }

    for (exercise, selection) in selected.iter().zip(&selections) {
        let clock = Instant::now();
        let result = blank_must_fail(&copy, exercise);
        let seconds = timed("blank", clock);
        match result {
            Ok(()) => println!(
                "ok    {} {}: blank, its {} test(s) fail with its message ({seconds:.1} s)",
                exercise.id,
                exercise.title,
                exercise.tests.len(),
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
                let result = mistake_must_fail(&copy, exercise, mistake, selection);
                let seconds = timed("mistake", clock);
                match result {
                    Ok(by) => println!(
                        "ok    {} mistake `{}`: caught by {by}{round_words} ({seconds:.1} s)",
                        exercise.id, mistake.name,
                    ),
                    Err(err) => {
                        println!(
                            "FAIL  {} mistake `{}`{round_words}: {err:#} ({seconds:.1} s)",
                            exercise.id, mistake.name
                        );
                        failed.push(format!("{} `{}`", exercise.id, mistake.name));
                        break;
                    }
                }
            }
        }
    }

    // The other correct solutions, one of each exercise at once.
    let rounds = selected
        .iter()
        .map(|e| e.alternatives.len())
        .max()
        .unwrap_or(0);
    for round in 0..rounds {
        let members: Vec<(&Exercise, &Variant, &Selection)> = selected
            .iter()
            .zip(&selections)
            .filter_map(|(e, s)| e.alternatives.get(round).map(|a| (*e, a, s)))
            .collect();
        let clock = Instant::now();
        let together = alternatives_must_pass(&copy, &members);
        let seconds = timed("alternatives", clock);
        let names = members
            .iter()
            .map(|(e, a, _)| format!("{} `{}`", e.id, a.name))
            .collect::<Vec<_>>()
            .join(", ");
        if together.is_ok() {
            println!("ok    alternatives {names}: pass ({seconds:.1} s)");
            continue;
        }
        // Say which: one at a time.
        for member in &members {
            let clock = Instant::now();
            let result = alternatives_must_pass(&copy, std::slice::from_ref(member));
            let seconds = timed("alternatives", clock);
            let (exercise, alternative, _) = member;
            match result {
                Ok(()) => println!(
                    "ok    {} alternative `{}`: passes ({seconds:.1} s)",
                    exercise.id, alternative.name
                ),
                Err(err) => {
                    println!(
                        "FAIL  {} alternative `{}`: {err:#} ({seconds:.1} s)",
                        exercise.id, alternative.name
                    );
                    failed.push(format!("{} `{}`", exercise.id, alternative.name));
                }
            }
        }
    }

    let summary: Vec<String> = times
        .iter()
        .map(|(kind, (count, seconds))| {
            format!(
                "{count} {kind} in {seconds:.0} s ({:.1} s each)",
                seconds / *count as f64
            )
        })
        .collect();
    println!(
        "verify: {} exercise(s) in {:.0} s: {}",
        selected.len(),
        started.elapsed().as_secs_f64(),
        summary.join(", ")
    );
    if failed.is_empty() {
        println!("{} passed, 0 failed", selected.len() + 1);
        Ok(())
    } else {
        bail!("verify failed for: {}", failed.join(", "))
    }
}

/// Every test ran and none failed: how many passed.
fn passes(outcome: &Outcome) -> anyhow::Result<usize> {
    if let Some(error) = &outcome.build_error {
        bail!("it does not compile:\n{}", last_lines(error, 30));
    }
    if let Some(test) = &outcome.first_failure {
        bail!(
            "{}:{}:{} fails:\n{}",
            test.package,
            test.target,
            test.name,
            outcome.messages.get(test).cloned().unwrap_or_default()
        );
    }
    Ok(outcome.count(Verdict::Passed))
}

/// Puts each variant's code in its exercise's regions in the copy (`None`:
/// the blank), runs `selection`, and puts the reference back, byte for byte.
fn with_variants(
    copy: &Copy,
    variants: &[(&Exercise, Option<&Variant>)],
    selection: &Selection,
    stop: Stop,
) -> anyhow::Result<Outcome> {
    with_variants_and_lints(copy, variants, selection, stop, false).map(|(outcome, _)| outcome)
}

/// [`with_variants`], and, when `lint` and every test passed, the failing
/// lint in each variant's exercise, before the reference goes back.
fn with_variants_and_lints(
    copy: &Copy,
    variants: &[(&Exercise, Option<&Variant>)],
    selection: &Selection,
    stop: Stop,
    lint: bool,
) -> anyhow::Result<(Outcome, Vec<String>)> {
    let workspace = &copy.workspace;
    let mut originals: Vec<(PathBuf, String)> = Vec::new();
    for (exercise, _) in variants {
        for path in workspace.files_of(&exercise.id)? {
            let full = workspace.root.join(&path);
            if !originals.iter().any(|(p, _)| *p == full) {
                let text = fs::read_to_string(&full)
                    .with_context(|| format!("could not read {}", full.display()))?;
                originals.push((full, text));
            }
        }
    }
    let applied = (|| -> anyhow::Result<()> {
        for (exercise, variant) in variants {
            let files = workspace.load(exercise)?;
            // `rewrite` visits the regions in the order `solution` prints them.
            let number = std::cell::Cell::new(0);
            workspace.rewrite(exercise, &files, |body, region| {
                number.set(number.get() + 1);
                match variant {
                    None => regions::blank_body(body, region, exercise),
                    Some(variant) => variant_or_reference(variant, number.get(), body, region),
                }
            })?;
        }
        Ok(())
    })();
    let outcome = applied.and_then(|()| {
        let outcome = run::run(&copy.place(), selection, stop);
        let mut lints = Vec::new();
        if lint && outcome.build_error.is_none() && outcome.first_failure.is_none() {
            for (exercise, _) in variants {
                match lints::failing_lint(&copy.place(), workspace, exercise) {
                    Ok(Some(message)) => lints.push(message),
                    Ok(None) => {}
                    Err(error) => bail!("clippy could not run: {error}"),
                }
            }
        }
        Ok((outcome, lints))
    });
    for (path, text) in &originals {
        fs::write(path, text).with_context(|| format!("could not restore {}", path.display()))?;
    }
    for (path, text) in &originals {
        if fs::read_to_string(path).ok().as_deref() != Some(text.as_str()) {
            bail!("{} did not read back as the reference", path.display());
        }
    }
    for (path, bytes) in &copy.snapshots {
        if fs::read(workspace.root.join(path)).ok().as_ref() != Some(bytes) {
            fs::write(workspace.root.join(path), bytes)?;
            bail!(
                "{} changed while its tests ran: snapshots must never be written",
                path.display()
            );
        }
    }
    outcome
}

/// Blanks `exercise` in the copy: it must compile, and every listed test
/// must fail with its `todo!` message.
fn blank_must_fail(copy: &Copy, exercise: &Exercise) -> anyhow::Result<()> {
    let outcome = with_variants(
        copy,
        &[(exercise, None)],
        &Selection::listed(&exercise.tests),
        Stop::Never,
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
/// does), and the check must fail, its first failure's message naming the
/// behaviour the mistake breaks: a test's, or, when every test passes, a
/// lint's. Returns what caught it.
fn mistake_must_fail(
    copy: &Copy,
    exercise: &Exercise,
    mistake: &Variant,
    selection: &Selection,
) -> anyhow::Result<String> {
    let (outcome, lints) = with_variants_and_lints(
        copy,
        &[(exercise, Some(mistake))],
        selection,
        Stop::AtFirstFailure,
        true,
    )?;
    if let Some(error) = outcome.build_error {
        bail!(
            "it does not compile, so it proves nothing about the tests:\n{}",
            last_lines(&error, 30)
        );
    }
    let (by, message) = match &outcome.first_failure {
        Some(first) => (
            format!("{} ({}:{})", first.sentence(), first.package, first.target),
            outcome.messages.get(first).cloned().unwrap_or_default(),
        ),
        None => {
            // Every test passes: only a lint can still catch it.
            match lints.into_iter().next() {
                Some(message) => ("clippy".to_string(), message),
                None => bail!(
                    "all {} tests pass with it, and no lint sees it: the check lets this mistake through",
                    outcome.count(Verdict::Passed)
                ),
            }
        }
    };
    if !names(&message, &mistake.breaks) {
        bail!(
            "caught by {by}, but its message does not say `{}`:\n{}",
            mistake.breaks,
            message
        );
    }
    Ok(by)
}

/// Puts correct solutions written differently in the copy, each in its
/// exercise: every test that sees those exercises must pass, and no lint
/// may fire in their regions.
fn alternatives_must_pass(
    copy: &Copy,
    members: &[(&Exercise, &Variant, &Selection)],
) -> anyhow::Result<()> {
    let variants: Vec<(&Exercise, Option<&Variant>)> =
        members.iter().map(|(e, a, _)| (*e, Some(*a))).collect();
    let selections: Vec<Selection> = members.iter().map(|(_, _, s)| (*s).clone()).collect();
    let selection = Selection::merge(&selections);
    let (outcome, lints) =
        with_variants_and_lints(copy, &variants, &selection, Stop::AtFirstFailure, true)?;
    passes(&outcome).context("the check rejects this correct code")?;
    if let Some(message) = lints.first() {
        bail!("a lint fails it:\n{message}");
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

/// The verbs an exercise's `behaviour` may start with. The learner reads it
/// after "Your code must", so it reads as a sentence only if its first word
/// is a verb in the bare form; a list, not a guess, because a function name
/// (`get`, `check_path`) can look like one. A new statement that starts
/// with another verb adds it here.
const STATEMENT_VERBS: &[&str] = &[
    "accept", "answer", "ask", "close", "collect", "create", "give", "hash", "look", "read",
    "refuse", "relay", "return", "send", "serve", "set", "take", "try", "turn", "write",
];

/// Why `behaviour` does not read as a sentence after "Your code must", if
/// it does not: the common ways to get it wrong are named, so that the fix
/// is plain.
fn statement_problem(behaviour: &str) -> Option<String> {
    let first = behaviour.split_whitespace().next().unwrap_or("");
    if STATEMENT_VERBS.contains(&first) {
        return None;
    }
    let why = if first.is_empty() || !first.bytes().all(|byte| byte.is_ascii_lowercase()) {
        "not a verb (a name in code, a capital, a mark?)"
    } else if first.ends_with("ing") {
        "the -ing form"
    } else if first.ends_with('s') && !first.ends_with("ss") {
        "the -s form"
    } else {
        "not in STATEMENT_VERBS (tools/exercise/src/verify.rs): add it there if it is a verb in the bare form"
    };
    let start: String = behaviour.chars().take(40).collect();
    Some(format!(
        "its behaviour is shown as \"Your code must {start}...\", so it must start with a verb in \
         the bare form (`read`, `refuse`, ...); `{first}` is {why}"
    ))
}

/// What is wrong before anything runs.
pub fn static_problems(
    workspace: &Workspace,
    blanks: Blanks,
    minimum: bool,
) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    let packages = package_dirs(&workspace.root)?;
    // The workspace's Chinese edition, when it has one.
    let translation = workspace.root.join(lang::CATALOGUE);
    let chinese =
        match translation.exists() {
            true => Some(lang::read(&translation).map_err(|err| {
                anyhow::anyhow!("could not read {}: {err}", translation.display())
            })?),
            false => None,
        };

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
        if let Some(problem) = statement_problem(&exercise.behaviour) {
            problems.push(format!("exercise {id}: {problem}"));
        }
        if exercise.hints.len() < 2 || exercise.hints.iter().any(|h| h.trim().is_empty()) {
            problems.push(format!(
                "exercise {id} needs two or three hints, none empty"
            ));
        }
        if exercise.tests.is_empty() {
            problems.push(format!("exercise {id} names no test that proves it"));
        }
        if minimum
            && (exercise.mistakes.len() < MIN_MISTAKES
                || exercise.alternatives.len() < MIN_ALTERNATIVES)
        {
            problems.push(format!(
                "exercise {id} has {} known mistake(s) and {} other correct solution(s); it needs at \
                 least {MIN_MISTAKES} `[[exercise.mistake]]` and {MIN_ALTERNATIVES} \
                 `[[exercise.alternative]]` in {}",
                exercise.mistakes.len(),
                exercise.alternatives.len(),
                exercise.catalogue.display()
            ));
        }
        let bodies = workspace.bodies_of(id).unwrap_or_default();
        if exercise.digests.is_empty() {
            problems.push(format!(
                "exercise {id} has no `digests` of its reference in {}: `cargo exercise digests` \
                 writes them",
                exercise.catalogue.display()
            ));
        } else if blanks == Blanks::AreProblems {
            let now: Vec<String> = bodies.iter().map(|(_, _, b)| regions::digest(b)).collect();
            if now != exercise.digests {
                let at = bodies
                    .iter()
                    .zip(&exercise.digests)
                    .position(|((_, _, body), digest)| regions::digest(body) != *digest)
                    .and_then(|at| bodies.get(at))
                    .map(|(path, region, _)| {
                        format!(" (first at {}:{})", path.display(), region.first_line())
                    })
                    .unwrap_or_default();
                problems.push(format!(
                    "exercise {id}: its code is not the reference its `digests` in {} name{at}; \
                     after changing the reference, `cargo exercise digests` writes them again",
                    exercise.catalogue.display()
                ));
            }
        }
        for variant in exercise.mistakes.iter().chain(&exercise.alternatives) {
            let regions = bodies.len();
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
                let section = book::plain(&exercise.section);
                match book::sections(&text)
                    .into_iter()
                    .find(|(title, _)| *title == section)
                {
                    None => problems.push(format!(
                        "exercise {id}: its section `{}` is not a heading of docs/src/{}",
                        exercise.section, exercise.chapter
                    )),
                    // The Chinese book's heading has other words: only the
                    // id leads to it from `cargo exercise` in Chinese.
                    Some((_, None)) if chinese.is_some() => problems.push(format!(
                        "exercise {id}: its section `{}` in docs/src/{} has no id ({{#...}}), \
                         so the Chinese book's section cannot be found",
                        exercise.section, exercise.chapter
                    )),
                    Some(_) => {}
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
        // `cargo exercise` in Chinese says every field of the exercise in
        // Chinese: each must have its translation (a hint each, so both
        // languages have as many).
        if let Some(words) = &chinese {
            let fields = [
                ("title", &exercise.title),
                ("behaviour", &exercise.behaviour),
                ("section", &exercise.section),
            ];
            let hints = exercise
                .hints
                .iter()
                .enumerate()
                .map(|(at, hint)| (at, hint.trim()));
            for (field, text) in fields {
                if !words.contains_key(text.trim()) {
                    problems.push(format!(
                        "exercise {id}: its {field} has no Chinese in {} (.ci/i18n update, then translate it)",
                        lang::CATALOGUE
                    ));
                }
            }
            for (at, hint) in hints {
                if !words.contains_key(hint) {
                    problems.push(format!(
                        "exercise {id}: hint {} of {} has no Chinese in {} (.ci/i18n update, then translate it)",
                        at + 1,
                        exercise.hints.len(),
                        lang::CATALOGUE
                    ));
                }
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
        regions::rust_files(&dir.join("src"), &mut found);
        found
    } else {
        let mut found = vec![dir.join("tests").join(format!("{}.rs", test.target))];
        regions::rust_files(&dir.join("tests").join(&test.target), &mut found);
        regions::rust_files(&dir.join("tests/support"), &mut found);
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

/// Copies the workspace's files (what git tracks, and new files it does not
/// ignore) into `to`, and nothing else.
pub fn copy_workspace(root: &Path, to: &Path) -> anyhow::Result<()> {
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
    // Only what differs is written, and what is gone is removed, so that
    // the copy's files keep their times and its build stays warm.
    let mut wanted = BTreeSet::new();
    for name in output.stdout.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let relative = PathBuf::from(String::from_utf8_lossy(name).into_owned());
        let from = root.join(&relative);
        if !from.is_file() {
            continue; // deleted in the working tree
        }
        let dest = to.join(&relative);
        wanted.insert(dest.clone());
        let bytes =
            fs::read(&from).with_context(|| format!("could not read {}", from.display()))?;
        if fs::read(&dest).ok().as_ref() == Some(&bytes) {
            continue;
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&dest, &bytes).with_context(|| format!("could not write {}", dest.display()))?;
    }
    let mut present = Vec::new();
    collect_all(to, &mut present);
    for path in present {
        if !wanted.contains(&path) {
            fs::remove_file(&path)
                .with_context(|| format!("could not remove {}", path.display()))?;
        }
    }
    Ok(())
}

/// Starts a new target folder for the copy from the workspace's own: the
/// compiled dependencies only (every unit whose fingerprint is not a
/// workspace member's), copied, never linked. The members' units are left
/// out, so the copy compiles them itself: a test executable bakes in the
/// path of its package's binaries (`CARGO_BIN_EXE_*`), and one copied from
/// the workspace would start the workspace's binaries, not the copy's.
/// Does nothing when the copy's folder exists. Returns how many units.
fn seed(from: &Path, to: &Path, members: &[select::Member]) -> anyhow::Result<usize> {
    let debug = from.join("debug");
    if to.exists() || !debug.join(".fingerprint").is_dir() {
        return Ok(0);
    }
    let mut member_names: BTreeSet<String> = members.iter().map(|m| m.name.clone()).collect();
    member_names.insert("exercise".to_string());
    // A unit is `NAME-HASH`; keep the hashes of the dependencies' units.
    let split = |name: &str| -> Option<(String, String)> {
        let (stem, hash) = name.rsplit_once('-')?;
        (hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()))
            .then(|| (stem.to_string(), hash.to_string()))
    };
    let mut hashes = BTreeSet::new();
    let mut units = 0;
    for entry in fs::read_dir(debug.join(".fingerprint"))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some((package, hash)) = split(&name)
            && !member_names.contains(&package)
        {
            hashes.insert(hash);
            units += 1;
        }
    }
    let staging = to.with_extension("seeding");
    if staging.exists() {
        fs::remove_dir_all(&staging)?;
    }
    for folder in [".fingerprint", "build", "deps"] {
        let Ok(entries) = fs::read_dir(debug.join(folder)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stem = name.split('.').next().unwrap_or(&name);
            let stem = stem.strip_prefix("lib").unwrap_or(stem);
            let keep = split(stem).is_some_and(|(_, hash)| hashes.contains(&hash))
                || split(&name).is_some_and(|(_, hash)| hashes.contains(&hash));
            if keep {
                copy_tree(
                    &entry.path(),
                    &staging.join("debug").join(folder).join(&name),
                )?;
            }
        }
    }
    fs::rename(&staging, to)
        .with_context(|| format!("could not move {} to {}", staging.display(), to.display()))?;
    Ok(units)
}

/// Copies a file, or a folder and everything in it, keeping modification
/// times (Cargo compares them).
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    if from.is_dir() {
        fs::create_dir_all(to)?;
        for entry in fs::read_dir(from)?.flatten() {
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        return Ok(());
    }
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::copy(from, to).with_context(|| format!("could not copy {}", from.display()))?;
    if let Ok(modified) = fs::metadata(from).and_then(|m| m.modified()) {
        let file = fs::File::options().write(true).open(to)?;
        file.set_modified(modified)?;
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
        let problems = static_problems(&workspace, Blanks::AreFine, REQUIRE_MINIMUM).unwrap();
        assert!(
            problems.is_empty(),
            "the exercises and the code disagree:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn a_statement_starts_with_a_verb_in_the_bare_form() {
        for good in [
            "read a line",
            "refuse in check_path an empty path",
            "try each address",
        ] {
            assert_eq!(statement_problem(good), None, "{good}");
        }
        for (bad, why) in [
            ("check_path refuses an empty path", "not a verb"),
            ("get asks `GET <path>`", "not in STATEMENT_VERBS"),
            ("reads a line", "the -s form"),
            ("reading a line", "the -ing form"),
            ("Read a line", "not a verb"),
            ("`parse_reply` reads", "not a verb"),
            (
                "on the first signal close the listener",
                "not in STATEMENT_VERBS",
            ),
            ("", "not a verb"),
        ] {
            let problem = statement_problem(bad).unwrap_or_default();
            assert!(problem.contains(why), "{bad:?}: {problem}");
        }
        // The list itself holds only bare forms.
        for verb in STATEMENT_VERBS {
            assert!(
                verb.bytes().all(|byte| byte.is_ascii_lowercase())
                    && !verb.ends_with("ing")
                    && (!verb.ends_with('s') || verb.ends_with("ss")),
                "{verb}"
            );
        }
    }
}
