//! `cargo exercise` against a tiny workspace of its own: a lesson with two
//! exercises in one file, in a git repository, as a learner's clone is.
//! Each test says what the tool promises a learner.

// Helpers outside #[test] functions fail the way tests do: by panicking.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use testkit::TempDir;

const LIB: &str = r#"//! A tiny lesson.

/// Adds.
pub fn add(a: u32, b: u32) -> u32 {
    // exercise 2.1: begin
    a + b
    // exercise 2.1: end
}

/// Doubles.
pub fn double(a: u32) -> u32 {
    // exercise 2.2: begin
    //~ let twice: u32 = todo!();
    let twice = a * 2;
    // exercise 2.2: end
    twice
}

#[cfg(test)]
mod tests {
    #[test]
    fn adds_two_numbers() {
        assert_eq!(super::add(2, 3), 5, "2 + 3 should be 5");
    }

    #[test]
    fn doubles_a_number() {
        assert_eq!(super::double(4), 8);
    }

    /// The tool must run tests with snapshots locked, whatever the caller set.
    #[test]
    fn snapshots_cannot_be_written() {
        assert_eq!(std::env::var("INSTA_UPDATE").as_deref(), Ok("no"));
        assert!(std::env::var("INSTA_FORCE_PASS").is_err());
    }
}
"#;

const CATALOGUE: &str = r#"lesson = 2
chapter = "02-x.md"

[[exercise]]
id = "2.1"
title = "Add"
behaviour = "return the sum of `a` and `b`"
section = "Adding"
hints = ["Use +.", "a + b"]
tests = ["x:lib:tests::adds_two_numbers", "x:lib:tests::snapshots_cannot_be_written"]

[[exercise]]
id = "2.2"
title = "Double"
behaviour = "return twice `a`"
section = "Doubling"
hints = ["Multiply.", "a * 2"]
tests = ["x:lib:tests::doubles_a_number"]
"#;

/// A workspace with one lesson, committed to git.
fn workspace() -> TempDir {
    let dir = TempDir::new();
    dir.write(
        "Cargo.toml",
        b"[workspace]\nmembers = [\"crates/*\"]\nresolver = \"3\"\n",
    );
    dir.write(
        "crates/02-x/Cargo.toml",
        b"[package]\nname = \"x\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
    );
    dir.write("crates/02-x/src/lib.rs", LIB.as_bytes());
    dir.write("crates/02-x/exercises.toml", CATALOGUE.as_bytes());
    dir.write("crates/02-x/tests/snapshots/out.snap", b"expected\n");
    dir.write(
        "docs/src/02-x.md",
        b"# Lesson 2\n\n## Adding\n\n## Doubling\n",
    );
    dir.write(".gitignore", b"/target\n/.exercise\n");
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "-A"]);
    git(
        dir.path(),
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "lesson",
        ],
    );
    dir
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?} failed");
}

fn exercise(dir: &TempDir, args: &[&str]) -> Output {
    exercise_with(dir, args, &[])
}

fn exercise_with(dir: &TempDir, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_exercise"));
    command.arg("--root").arg(dir.path()).args(args);
    // The tiny lesson builds into a target folder of its own.
    command.env("CARGO_TARGET_DIR", dir.path().join("target"));
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn lib(dir: &TempDir) -> String {
    fs::read_to_string(dir.join("crates/02-x/src/lib.rs")).unwrap()
}

fn lib_path(dir: &TempDir) -> PathBuf {
    dir.join("crates/02-x/src/lib.rs")
}

#[test]
fn start_blanks_the_exercise_and_a_second_one_in_the_same_file_works() {
    let dir = workspace();
    let started = exercise(&dir, &["start", "2.1"]);
    assert!(started.status.success(), "{}", text(&started));
    assert!(
        lib(&dir).contains(
            "    todo!(\"exercise 2.1: return the sum of `a` and `b` (cargo exercise hint 2.1)\");"
        ),
        "2.1's region should hold its todo! message:\n{}",
        lib(&dir)
    );
    let second = exercise(&dir, &["start", "2.2"]);
    assert!(second.status.success(), "{}", text(&second));
    assert!(lib(&dir).contains(
        "    let twice: u32 = todo!(\"exercise 2.2: return twice `a` (cargo exercise hint 2.2)\");"
    ));
    let list = text(&exercise(&dir, &[]));
    assert!(list.contains("2.1   started (blank)"), "{list}");
    assert!(list.contains("Next: finish 2.1 Add."), "{list}");
}

#[test]
fn start_refuses_a_file_with_an_edit_outside_the_regions_and_changes_nothing() {
    let dir = workspace();
    let edited = lib(&dir).replace("/// Adds.", "/// Adds two numbers.");
    fs::write(lib_path(&dir), &edited).unwrap();
    let refused = exercise(&dir, &["start", "2.1"]);
    assert!(!refused.status.success());
    let said = text(&refused);
    assert!(
        said.contains("has changes outside the exercise regions"),
        "{said}"
    );
    assert!(
        said.contains("/// Adds two numbers."),
        "it should name the line: {said}"
    );
    assert_eq!(lib(&dir), edited, "a refused start must change nothing");

    let forced = exercise(&dir, &["start", "2.1", "--force"]);
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(
        lib(&dir).contains("/// Adds two numbers."),
        "--force keeps the edit"
    );
}

#[test]
fn work_inside_a_region_is_never_lost_and_does_not_block_the_next_start() {
    let dir = workspace();
    exercise(&dir, &["start", "2.1"]);
    let mine = lib(&dir).replace(
        "    todo!(\"exercise 2.1: return the sum of `a` and `b` (cargo exercise hint 2.1)\");",
        "    b + a // mine",
    );
    fs::write(lib_path(&dir), &mine).unwrap();
    assert!(exercise(&dir, &["start", "2.2"]).status.success());
    assert!(lib(&dir).contains("b + a // mine"));

    let again = exercise(&dir, &["start", "2.1"]);
    assert!(!again.status.success(), "start must not overwrite work");
    assert!(exercise(&dir, &["reset", "2.1", "--yes"]).status.success());
    assert!(!lib(&dir).contains("b + a // mine"));
    let saved: Vec<String> = fs::read_dir(dir.join(".exercise/saved"))
        .unwrap()
        .map(|entry| fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    assert!(
        saved.iter().any(|text| text.contains("b + a // mine")),
        "reset keeps the learner's code in .exercise/saved"
    );

    assert!(exercise(&dir, &["restore", "2.1"]).status.success());
    assert!(
        lib(&dir).contains("    a + b\n"),
        "restore puts the reference back"
    );
}

#[test]
fn check_names_the_behaviour_when_blank_and_passes_once_written() {
    let dir = workspace();
    exercise(&dir, &["start", "2.1"]);
    let failing = exercise_with(
        &dir,
        &["check", "2.1"],
        &[("INSTA_UPDATE", "always"), ("INSTA_FORCE_PASS", "1")],
    );
    let said = text(&failing);
    assert!(!failing.status.success(), "{said}");
    assert!(said.contains("FAIL  adds two numbers"), "{said}");
    assert!(
        said.contains("exercise 2.1: return the sum of `a` and `b` (cargo exercise hint 2.1)"),
        "{said}"
    );
    assert!(said.contains("Read: docs/src/02-x.md § Adding"), "{said}");
    assert!(
        said.contains("ok    snapshots cannot be written"),
        "INSTA_UPDATE=always and INSTA_FORCE_PASS must not reach the tests: {said}"
    );

    let written = lib(&dir).replace(
        "    todo!(\"exercise 2.1: return the sum of `a` and `b` (cargo exercise hint 2.1)\");",
        "    a + b",
    );
    fs::write(lib_path(&dir), written).unwrap();
    let passing = exercise(&dir, &["check", "2.1"]);
    assert!(passing.status.success(), "{}", text(&passing));
    let list = text(&exercise(&dir, &[]));
    assert!(list.contains("2.1   passing"), "{list}");
}

#[test]
fn check_refuses_while_a_committed_snapshot_is_changed() {
    let dir = workspace();
    fs::write(dir.join("crates/02-x/tests/snapshots/out.snap"), "mine\n").unwrap();
    let refused = exercise(&dir, &["check", "2.1"]);
    let said = text(&refused);
    assert!(!refused.status.success());
    assert!(
        said.contains("crates/02-x/tests/snapshots/out.snap"),
        "{said}"
    );
    assert!(said.contains("not yours to change"), "{said}");
}

#[test]
fn hints_come_one_at_a_time_and_unknown_progress_is_reported_once() {
    let dir = workspace();
    assert!(text(&exercise(&dir, &["hint", "2.2"])).contains("hint 1 of 2:\n\n  Multiply."));
    assert!(text(&exercise(&dir, &["hint", "2.2"])).contains("hint 2 of 2:\n\n  a * 2"));
    fs::write(
        dir.join(".exercise/progress"),
        "passed 9.9 1\nhints 2.2 2\n",
    )
    .unwrap();
    let first = text(&exercise(&dir, &[]));
    assert!(first.contains("forgot your progress on 9.9"), "{first}");
    let second = text(&exercise(&dir, &[]));
    assert!(!second.contains("9.9"), "reported once: {second}");
}

#[test]
fn verify_proves_each_exercise_and_rejects_a_test_that_passes_blank() {
    let dir = workspace();
    // The snapshot-lock test passes blank too, so it cannot prove 2.1.
    let honest = CATALOGUE.replace(", \"x:lib:tests::snapshots_cannot_be_written\"", "");
    fs::write(dir.join("crates/02-x/exercises.toml"), &honest).unwrap();
    assert!(exercise(&dir, &["book"]).status.success());
    let good = exercise(&dir, &["verify"]);
    assert!(good.status.success(), "{}", text(&good));
    assert_eq!(lib(&dir), LIB, "verify works on a copy, never the tree");

    // Nor its build: after verify, a blank exercise must still fail its
    // check (the copy's artifacts once overwrote the tree's, and the check
    // ran the copy's reference binary).
    assert!(exercise(&dir, &["start", "2.1"]).status.success());
    let checked = exercise(&dir, &["check", "2.1"]);
    assert!(
        !checked.status.success(),
        "a blank 2.1 passed its check after verify: {}",
        text(&checked)
    );
    assert!(exercise(&dir, &["restore", "2.1"]).status.success());

    // 2.2 claims a test that does not depend on it.
    let catalogue = honest.replace(
        "tests = [\"x:lib:tests::doubles_a_number\"]",
        "tests = [\"x:lib:tests::adds_two_numbers\"]",
    );
    fs::write(dir.join("crates/02-x/exercises.toml"), catalogue).unwrap();
    assert!(exercise(&dir, &["book"]).status.success());
    let bad = exercise(&dir, &["verify"]);
    let said = text(&bad);
    assert!(!bad.status.success(), "{said}");
    assert!(
        said.contains("FAIL  2.2 Double: blank, these tests did not fail"),
        "{said}"
    );
}

#[test]
fn a_pulled_new_version_of_the_lesson_replaces_the_kept_reference() {
    let dir = workspace();
    // The tool keeps the reference the first time it changes the file.
    assert!(exercise(&dir, &["start", "2.1"]).status.success());
    assert!(exercise(&dir, &["restore", "2.1"]).status.success());
    assert_eq!(lib(&dir), LIB);

    // A `git pull` brings a new version of the lesson.
    let pulled = LIB.replace("/// Adds.", "/// Adds, in a newer version of the lesson.");
    fs::write(lib_path(&dir), &pulled).unwrap();
    git(
        dir.path(),
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qam",
            "pull",
        ],
    );

    let started = exercise(&dir, &["start", "2.2"]);
    assert!(
        started.status.success(),
        "the new committed version is the reference now, not an edit of the learner's: {}",
        text(&started)
    );
    assert!(exercise(&dir, &["restore", "2.2"]).status.success());
    assert_eq!(lib(&dir), pulled, "restore puts back the new version");
}
