//! `cargo exercise` against a tiny workspace of its own: a lesson with two
//! exercises in one file, in a git repository, as a learner's clone is.
//! Each test says what the tool promises a learner.

// Helpers outside #[test] functions fail the way tests do: by panicking.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use testkit::{Process, TempDir, WAIT};

const LIB: &str = r#"//! A tiny lesson.

use std::io::{self, Write};

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

/// Sends one line.
pub fn send(out: &mut impl Write, line: &str) -> io::Result<()> {
    // exercise 2.3: begin
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")?;
    // exercise 2.3: end
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn adds_two_numbers() {
        // Slower than the unlisted test below: the verdict must still
        // report this one, which the catalogue lists first.
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert_eq!(super::add(2, 3), 5, "2 + 3 should be 5");
    }

    #[test]
    fn a_sum_is_unlisted() {
        assert_eq!(super::add(1, 1), 2, "an unlisted test failed");
    }

    #[test]
    fn doubles_a_number() {
        assert_eq!(super::double(4), 8);
    }

    #[test]
    fn sends_the_line_and_one_newline() {
        let mut out = Vec::new();
        super::send(&mut out, "hi").unwrap();
        assert_eq!(out, b"hi\n", "a line must end with one newline");
    }

    /// The tool must run tests with snapshots locked, whatever the caller set.
    #[test]
    fn snapshots_cannot_be_written() {
        assert_eq!(std::env::var("INSTA_UPDATE").as_deref(), Ok("no"));
        assert!(std::env::var("INSTA_FORCE_PASS").is_err());
    }
}
"#;

/// Another test target of the lesson: slow when the sum is wrong, so a
/// check that does not stop at the first failure waits for it.
const SLOW: &str = r#"#[test]
fn waits_a_minute_when_the_sum_is_wrong() {
    if x::add(2, 3) != 5 {
        std::thread::sleep(std::time::Duration::from_secs(60));
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

[[exercise.mistake]]
name = "times"
breaks = "2 + 3 should be 5"
code.1 = "a * b"

[[exercise.mistake]]
name = "twice a"
breaks = "2 + 3 should be 5"
code.1 = "a + a"

[[exercise.mistake]]
name = "twice b"
breaks = "2 + 3 should be 5"
code.1 = "b + b"

[[exercise.mistake]]
name = "one too many"
breaks = "should be 5"
code.1 = "a + b + 1"

[[exercise.alternative]]
name = "the other way round"
code.1 = "b + a"

[[exercise]]
id = "2.2"
title = "Double"
behaviour = "return twice `a`"
section = "Doubling"
hints = ["Multiply.", "a * 2"]
tests = ["x:lib:tests::doubles_a_number"]

[[exercise.mistake]]
name = "plus two"
breaks = "left == right"
code.1 = "let twice = a + 2;"

[[exercise.mistake]]
name = "times three"
breaks = "left == right"
code.1 = "let twice = a * 3;"

[[exercise.mistake]]
name = "squared"
breaks = "left == right"
code.1 = "let twice = a * a;"

[[exercise.mistake]]
name = "itself"
breaks = "left == right"
code.1 = "let twice = a;"

[[exercise.alternative]]
name = "a sum"
code.1 = "let twice = a + a;"

[[exercise]]
id = "2.3"
title = "Send"
behaviour = "send the line and a newline"
section = "Sending"
hints = ["write_all.", "write_all twice"]
tests = ["x:lib:tests::sends_the_line_and_one_newline"]

[[exercise.mistake]]
name = "write ignores its count"
breaks = "a read or write whose count is ignored"
code.1 = """
out.write(line.as_bytes())?;
out.write_all(b"\\n")?;
"""

[[exercise.mistake]]
name = "no newline"
breaks = "must end with one newline"
code.1 = "out.write_all(line.as_bytes())?;"

[[exercise.mistake]]
name = "two newlines"
breaks = "must end with one newline"
code.1 = """
out.write_all(line.as_bytes())?;
out.write_all(b"\\n\\n")?;
"""

[[exercise.mistake]]
name = "newline first"
breaks = "must end with one newline"
code.1 = """
out.write_all(b"\\n")?;
out.write_all(line.as_bytes())?;
"""

[[exercise.alternative]]
name = "one buffer"
code.1 = "out.write_all(format!(\"{line}\\n\").as_bytes())?;"
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
    dir.write("crates/02-x/tests/slow.rs", SLOW.as_bytes());
    dir.write("crates/02-x/exercises.toml", CATALOGUE.as_bytes());
    dir.write("crates/02-x/tests/snapshots/out.snap", b"expected\n");
    dir.write(
        "docs/src/02-x.md",
        b"# Lesson 2\n\n## Adding\n\n## Doubling\n\n## Sending\n",
    );
    dir.write(".gitignore", b"/target\n/.exercise\n");
    digests(&dir);
    git(dir.path(), &["init", "-q"]);
    commit(&dir, "lesson");
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
    // English unless a test asks otherwise, whatever the caller's locale.
    for name in ["LC_ALL", "LC_MESSAGES", "LANG"] {
        command.env_remove(name);
    }
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
    assert!(
        said.contains("Exercise 2.1: read docs/src/02-x.md § Adding"),
        "{said}"
    );

    let written = lib(&dir).replace(
        "    todo!(\"exercise 2.1: return the sum of `a` and `b` (cargo exercise hint 2.1)\");",
        "    a + b",
    );
    fs::write(lib_path(&dir), written).unwrap();
    let passing = exercise_with(
        &dir,
        &["check", "2.1"],
        &[("INSTA_UPDATE", "always"), ("INSTA_FORCE_PASS", "1")],
    );
    let said = text(&passing);
    assert!(passing.status.success(), "{said}");
    assert!(
        said.contains("ok    snapshots cannot be written"),
        "INSTA_UPDATE=always and INSTA_FORCE_PASS must not reach the tests: {said}"
    );
    assert!(
        said.contains("and 4 more tests of x"),
        "the check runs every test of the lesson: {said}"
    );
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
    digests(&dir);
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
    digests(&dir);
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
    commit(&dir, "pull");

    let started = exercise(&dir, &["start", "2.2"]);
    assert!(
        started.status.success(),
        "the new committed version is the reference now, not an edit of the learner's: {}",
        text(&started)
    );
    assert!(exercise(&dir, &["restore", "2.2"]).status.success());
    assert_eq!(lib(&dir), pulled, "restore puts back the new version");
}

/// Writes `code` in place of exercise 2.1's reference `a + b`.
fn write_sum(dir: &TempDir, code: &str) {
    fs::write(
        lib_path(dir),
        LIB.replace("    a + b\n", &format!("    {code}\n")),
    )
    .unwrap();
}

#[test]
fn check_reports_the_first_listed_failure_and_stops_there() {
    let dir = workspace();
    write_sum(&dir, "a * b");
    let clock = std::time::Instant::now();
    let failing = exercise(&dir, &["check", "2.1"]);
    let took = clock.elapsed();
    let said = text(&failing);
    assert!(!failing.status.success(), "{said}");
    // The unlisted test fails sooner, but the listed one comes first.
    assert!(
        said.contains("The first that does not: adds two numbers"),
        "{said}"
    );
    assert!(said.contains("2 + 3 should be 5"), "{said}");
    assert!(!said.contains("an unlisted test failed"), "{said}");
    assert!(
        said.contains("Exercise 2.1: read docs/src/02-x.md § Adding"),
        "{said}"
    );
    // tests/slow.rs waits a minute when the sum is wrong: it was stopped.
    assert!(
        took < std::time::Duration::from_secs(40),
        "the check waited for a test after the first failure ({took:?}): {said}"
    );

    // Listed tests pass, an unlisted one fails: it is the verdict.
    fs::write(
        dir.join("crates/02-x/exercises.toml"),
        CATALOGUE.replace(
            "tests = [\"x:lib:tests::adds_two_numbers\", \"x:lib:tests::snapshots_cannot_be_written\"]",
            "tests = [\"x:lib:tests::snapshots_cannot_be_written\"]",
        ),
    )
    .unwrap();
    let unlisted = exercise(&dir, &["check", "2.1"]);
    let said = text(&unlisted);
    assert!(!unlisted.status.success(), "{said}");
    assert!(
        said.contains("The first that does not: a sum is unlisted"),
        "{said}"
    );
    assert!(said.contains("FAIL  a sum is unlisted (x lib)"), "{said}");
}

#[test]
fn clippy_fails_a_passing_check_that_ignores_a_write_count() {
    let dir = workspace();
    fs::write(
        lib_path(&dir),
        LIB.replace(
            "    out.write_all(line.as_bytes())?;\n    out.write_all(b\"\\n\")?;",
            "    let unused = 1;\n    out.write(line.as_bytes())?;\n    out.write_all(b\"\\n\")?;",
        ),
    )
    .unwrap();
    let checked = exercise(&dir, &["check", "2.3"]);
    let said = text(&checked);
    assert!(!checked.status.success(), "{said}");
    assert!(said.contains("All 6 tests hold, but clippy sees"), "{said}");
    assert!(
        said.contains("clippy::unused_io_amount: a read or write whose count is ignored"),
        "{said}"
    );
    assert!(said.contains("(book: 02-x.md § Sending)"), "{said}");
}

#[test]
fn a_passing_check_shows_the_compilers_warnings_for_the_exercise() {
    let dir = workspace();
    write_sum(&dir, "{ let mut sum = 0; sum = a + b; sum }");
    let checked = exercise(&dir, &["check", "2.1"]);
    let said = text(&checked);
    assert!(checked.status.success(), "{said}");
    assert!(
        said.contains("The compiler warns about your code"),
        "{said}"
    );
    assert!(
        said.contains("value assigned to `sum` is never read"),
        "{said}"
    );
}

#[test]
fn verify_requires_each_mistake_caught_with_its_words_and_each_alternative_passing() {
    let dir = workspace();
    let catalogue = CATALOGUE
        .replace(", \"x:lib:tests::snapshots_cannot_be_written\"", "")
        .replace(
            "name = \"times\"\nbreaks = \"2 + 3 should be 5\"",
            "name = \"times\"\nbreaks = \"words the message never says\"",
        )
        .replace("code.1 = \"a + b + 1\"", "code.1 = \"a + b + 0\"")
        .replace("code.1 = \"b + a\"", "code.1 = \"b * a\"");
    fs::write(dir.join("crates/02-x/exercises.toml"), catalogue).unwrap();
    digests(&dir);
    assert!(exercise(&dir, &["book"]).status.success());
    let bad = exercise(&dir, &["verify", "--only", "2.1"]);
    let said = text(&bad);
    assert!(!bad.status.success(), "{said}");
    assert!(
        said.contains("FAIL  2.1 mistake `times`: caught by adds two numbers (x:lib), but its message does not say `words the message never says`"),
        "{said}"
    );
    assert!(
        said.contains("ok    2.1 mistake `twice a`: caught by adds two numbers"),
        "{said}"
    );
    assert!(
        said.contains(
            "FAIL  2.1 mistake `one too many`: all 6 tests pass with it, and no lint sees it"
        ),
        "{said}"
    );
    assert!(
        said.contains("FAIL  2.1 alternative `the other way round`:"),
        "{said}"
    );
    assert!(
        said.contains("the check rejects this correct code"),
        "{said}"
    );
    assert_eq!(lib(&dir), LIB, "verify works on a copy, never the tree");
}

#[test]
fn verify_repeats_each_mistake_and_a_lint_catches_an_ignored_count() {
    let dir = workspace();
    assert!(exercise(&dir, &["book"]).status.success());
    let good = exercise(&dir, &["verify", "--only", "2.3", "--repeat", "2"]);
    let said = text(&good);
    assert!(good.status.success(), "{said}");
    assert!(
        said.contains("ok    2.3 mistake `write ignores its count`: caught by clippy (run 2 of 2)"),
        "{said}"
    );
    assert!(
        said.contains("ok    2.3 mistake `no newline`: caught by sends the line and one newline (x:lib) (run 2 of 2)"),
        "{said}"
    );
    assert!(
        said.contains("ok    alternatives 2.3 `one buffer`: pass"),
        "{said}"
    );
}

#[test]
fn verify_requires_enough_mistakes_and_alternatives() {
    let dir = workspace();
    let at = CATALOGUE
        .find("[[exercise.mistake]]\nname = \"itself\"")
        .unwrap();
    let end = CATALOGUE[at..].find("[[exercise.alternative]]").unwrap() + at;
    let catalogue = format!("{}{}", &CATALOGUE[..at], &CATALOGUE[end..]);
    fs::write(dir.join("crates/02-x/exercises.toml"), catalogue).unwrap();
    digests(&dir);
    assert!(exercise(&dir, &["book"]).status.success());
    let short = exercise(&dir, &["verify", "--only", "2.1"]);
    let said = text(&short);
    let problem =
        "exercise 2.2 has 3 known mistake(s) and 1 other correct solution(s); it needs at least 4";
    // The minimum can be turned off while the lessons' catalogues grow.
    if include_str!("../src/verify.rs").contains("pub const REQUIRE_MINIMUM: bool = true;") {
        assert!(!short.status.success(), "{said}");
        assert!(said.contains(problem), "{said}");
    } else {
        assert!(!said.contains(problem), "{said}");
    }
}

/// Runs `exercise --root ROOT mdbook-preprocessor ARGS` with `input` on its
/// standard input, as mdBook does.
fn preprocess(root: &Path, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_exercise"))
        .arg("--root")
        .arg(root)
        .arg("mdbook-preprocessor")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A child that fails before reading closes the pipe: that is its answer.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    child.wait_with_output().unwrap()
}

/// `[context, book]` with one chapter that lists `code`, as mdBook sends it
/// once `{{#include}}` has put the code in.
fn book_with_listing(code: &str) -> String {
    let chapter = format!("# Lesson 2\n\n```rust,ignore\n{code}```\n\nThe end.\n");
    serde_json::json!([
        {"root": "docs", "renderer": "html", "mdbook_version": "0.5.4"},
        {"items": [{"Chapter": {"name": "Lesson 2", "content": chapter, "number": [2],
            "sub_items": [], "path": "02-x.md", "source_path": "02-x.md",
            "parent_names": []}}]}
    ])
    .to_string()
}

fn folded_chapter(output: &Output) -> String {
    assert!(output.status.success(), "{}", text(output));
    let book: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    book["items"][0]["Chapter"]["content"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The book's preprocessor shows each region as `start` leaves it and folds
/// the reference below the listing, and it still does once the learner has
/// started an exercise and the listing holds their code.
#[test]
fn the_book_shows_the_blank_and_folds_the_reference_even_while_started() {
    let dir = workspace();
    let folded = folded_chapter(&preprocess(dir.path(), &[], &book_with_listing(LIB)));
    let (listing, folds) = folded.split_once("<details>").unwrap();
    assert!(
        listing.contains(
            "    // exercise 2.2: begin\n    let twice: u32 = todo!(\"exercise 2.2: return twice `a` (cargo exercise hint 2.2)\");\n    // exercise 2.2: end\n    twice\n"
        ),
        "the listing should hold what start writes:\n{folded}"
    );
    assert!(
        !listing.contains("a * 2") && !listing.contains("a + b"),
        "{folded}"
    );
    assert!(
        folds.contains(
            "<summary>Solution to exercise 2.2: open it after your check passes</summary>\n\n```rust,ignore\nlet twice = a * 2;\n```\n\n</details>"
        ),
        "{folded}"
    );
    assert_eq!(folded.matches("<details>").count(), 3, "{folded}");

    assert!(exercise(&dir, &["start", "2.2"]).status.success());
    let started = lib(&dir).replace(
        "let twice: u32 = todo!",
        "let twice: u32 = 0; // mine\n    todo!",
    );
    fs::write(lib_path(&dir), &started).unwrap();
    let again = folded_chapter(&preprocess(dir.path(), &[], &book_with_listing(&started)));
    assert_eq!(
        again, folded,
        "the book must not change with the learner's code"
    );
}

/// mdBook takes a failed `supports` for "not this renderer" and builds the
/// book without the preprocessor, every solution in sight. So `supports`
/// says yes whatever the workspace, and a broken one fails the run, which
/// fails the build.
#[test]
fn the_book_preprocessor_fails_the_build_never_the_supports_question() {
    let broken = TempDir::new();
    let supports = preprocess(broken.path(), &["supports", "html"], "");
    assert!(supports.status.success(), "{}", text(&supports));
    let run = preprocess(broken.path(), &[], &book_with_listing(LIB));
    assert!(!run.status.success(), "{}", text(&run));
    assert!(
        text(&run).contains("error: could not read"),
        "{}",
        text(&run)
    );
}

/// How long a watch test waits for a verdict: a build of the tiny lesson
/// (and clippy, for a pass) on a machine busy with other builds.
const VERDICT: Duration = Duration::from_secs(180);

/// `cargo exercise watch 2.3 EXTRA...` in `dir`, with `env`.
fn start_watch(dir: &TempDir, extra: &[&str], env: &[(&str, &Path)]) -> Process {
    let mut command = Command::new(env!("CARGO_BIN_EXE_exercise"));
    command
        .arg("--root")
        .arg(dir.path())
        .args(["watch", "2.3"])
        .args(extra)
        .env("CARGO_TARGET_DIR", dir.path().join("target"));
    for (key, value) in env {
        command.env(key, value);
    }
    Process::start_command(&mut command)
}

/// Ctrl-C: the watch ends, successfully, and says so.
#[cfg(unix)]
fn interrupt(watch: &mut Process) -> testkit::Finished {
    watch.interrupt();
    let finished = watch.wait_exit();
    finished.assert_success("Ctrl-C ends the watch");
    assert!(
        finished.stdout.contains("Stopped watching exercise 2.3."),
        "{finished}"
    );
    finished
}

/// `cargo exercise watch 2.3`: the learner saves a one-line fix, and a new
/// verdict comes without a command. Prints how long after the write the
/// check started (the target is 2 s; measured here, never asserted).
fn watch_checks_again_after_a_save(extra: &[&str], how: &str) {
    let dir = workspace();
    // The `no newline` mistake: the first verdict fails, and fast.
    let mistake = LIB.replace("    out.write_all(b\"\\n\")?;\n", "");
    assert_ne!(mistake, LIB);
    fs::write(lib_path(&dir), &mistake).unwrap();

    let mut watch = start_watch(&dir, extra, &[]);
    watch.expect_line_within("Checking exercise 2.3", "the first check", VERDICT);
    watch.expect_line_within(
        "The first that does not: sends the line and one newline",
        "the first verdict, of the mistake",
        VERDICT,
    );
    watch.expect_line_within(
        &format!("Watching crates/02-x/src/lib.rs ({how}"),
        "after a verdict, what it watches and how",
        WAIT,
    );

    // The save: the line back, written in place as most editors do.
    let saved = Instant::now();
    fs::write(lib_path(&dir), LIB).unwrap();
    watch.expect_line_within(
        "Checking exercise 2.3",
        "a save should start a check",
        VERDICT,
    );
    eprintln!(
        "watch {extra:?}: the check started {:.2} s after the save",
        saved.elapsed().as_secs_f64()
    );
    watch.expect_line_within(
        "All 6 hold: exercise 2.3 passes",
        "the verdict of the fixed code",
        VERDICT,
    );
    watch.expect_line_within("Watching crates/02-x/src/lib.rs", "", WAIT);
    // stdin is not a terminal: it says the command rather than asking.
    watch.expect_line_within(
        "Next: 2.1 Add: cargo exercise start 2.1, then cargo exercise watch 2.1",
        "after a pass, what is next",
        WAIT,
    );

    #[cfg(unix)]
    interrupt(&mut watch);
}

#[test]
fn watch_checks_again_when_a_file_event_says_it_was_saved() {
    watch_checks_again_after_a_save(&[], "file events");
}

#[test]
fn watch_with_poll_checks_again_when_polling_sees_the_save() {
    watch_checks_again_after_a_save(&["--poll"], "polling every 0.5 s: --poll");
}

/// A test that runs until it is killed, once it has said who it is.
#[cfg(unix)]
const HANG: &str = r#"#[test]
fn runs_until_killed() {
    if let Some(path) = std::env::var_os("EXERCISE_TEST_HANG") {
        std::fs::write(path, std::process::id().to_string()).unwrap();
        std::thread::sleep(std::time::Duration::from_secs(600));
    }
}
"#;

/// The id of the hanging test once it has written it (a new one: the file
/// is removed as it is read).
#[cfg(unix)]
fn hanging_test(pid_file: &Path) -> i32 {
    let clock = Instant::now();
    loop {
        if let Ok(text) = fs::read_to_string(pid_file)
            && let Ok(pid) = text.trim().parse()
        {
            fs::remove_file(pid_file).unwrap();
            return pid;
        }
        assert!(
            clock.elapsed() < VERDICT,
            "the check never started the hanging test"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
fn running(pid: i32) -> bool {
    let pid = rustix::process::Pid::from_raw(pid).unwrap();
    rustix::process::test_kill_process(pid).is_ok()
}

#[cfg(unix)]
#[test]
fn a_save_during_a_check_and_ctrl_c_stop_the_tests_it_was_running() {
    let dir = workspace();
    dir.write("crates/02-x/tests/hang.rs", HANG.as_bytes());
    let pid_file = dir.join("hang.pid");
    let mut watch = start_watch(&dir, &[], &[("EXERCISE_TEST_HANG", &pid_file)]);
    watch.expect_line_within("Checking exercise 2.3", "the first check", VERDICT);
    let first = hanging_test(&pid_file);

    // A save: the check of the old code stops, tests and all.
    fs::write(
        lib_path(&dir),
        LIB.replace("out.write_all(b", "out.write_all( b"),
    )
    .unwrap();
    watch.expect_line_within(
        "Checking exercise 2.3",
        "a save during a check should start it over",
        VERDICT,
    );
    assert!(
        !running(first),
        "the check of the code before the save left its test {first} running"
    );

    let second = hanging_test(&pid_file);
    let finished = interrupt(&mut watch);
    assert!(
        !running(second),
        "Ctrl-C left the test {second} of the check running: {finished}"
    );
}

/// On a terminal (`script` gives it one), a pass offers the next exercise:
/// `y` starts it and watches it, and its first save checks it.
#[cfg(unix)]
#[test]
fn on_a_terminal_a_pass_offers_the_next_exercise_and_y_starts_and_watches_it() {
    let Some(script) = testkit::tool("script") else {
        return;
    };
    let dir = workspace();
    // `exec`: `script` runs the command with `$SHELL -c`, and a shell that
    // stays (dash does) gets the Ctrl-C too and dies of it, so `script`
    // would report 130 whatever the tool did.
    let watch = format!(
        "exec {} --root {} watch 2.3",
        env!("CARGO_BIN_EXE_exercise"),
        dir.path().display()
    );
    let mut command = Command::new(script);
    command
        .args([
            "--quiet",
            "--flush",
            "--return",
            "--command",
            &watch,
            "/dev/null",
        ])
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        // The shell CI has when `SHELL` is not set.
        .env("SHELL", "/bin/sh");
    let mut terminal = Process::start_command(&mut command);
    let first = terminal.expect_line_within("Checking exercise 2.3", "the first check", VERDICT);
    assert!(
        first.contains("\x1b[2J"),
        "on a terminal, the screen is cleared before each check: {first:?}"
    );
    terminal.expect_line_within("exercise 2.3 passes", "the reference passes", VERDICT);
    terminal.expect_line_within("Watching crates/02-x/src/lib.rs", "", WAIT);

    terminal.expect_line_within(
        "Next: 2.1 Add. Start it and watch it? [y/N]",
        "after a pass, the offer of the next exercise",
        WAIT,
    );
    terminal.send("y");
    terminal.expect_line_within("Started exercise 2.1: Add.", "`y` starts it", WAIT);
    terminal.expect_line_within(
        "each save checks exercise 2.1 again",
        "and watches it",
        WAIT,
    );
    assert!(lib(&dir).contains("todo!(\"exercise 2.1"), "{}", lib(&dir));

    write_sum(&dir, "b + a");
    terminal.expect_line_within(
        "Checking exercise 2.1",
        "a save of the new exercise",
        VERDICT,
    );
    terminal.expect_line_within("exercise 2.1 passes", "its verdict", VERDICT);

    // Ctrl-C, typed.
    terminal.send_bytes(b"\x03");
    terminal.expect_line_within("Stopped watching exercise 2.1.", "Ctrl-C", WAIT);
    terminal.wait_exit().assert_success("Ctrl-C ends the watch");
}

/// Commits everything in the workspace, as an upstream change or a
/// learner's own commit would.
fn commit(dir: &TempDir, message: &str) {
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
            message,
        ],
    );
}

/// The saved copies of replaced code, all of them, one string.
fn saved(dir: &TempDir) -> String {
    fs::read_dir(dir.join(".exercise/saved"))
        .unwrap()
        .map(|entry| fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect()
}

/// 2.2's blank, as `start 2.2` leaves it.
const BLANK_2_2: &str =
    "    let twice: u32 = todo!(\"exercise 2.2: return twice `a` (cargo exercise hint 2.2)\");\n";

#[cfg(unix)]
#[test]
fn a_rewrite_that_fails_part_way_leaves_the_file_whole_and_every_region_saved() {
    use std::os::unix::fs::PermissionsExt;

    let dir = workspace();
    assert!(exercise(&dir, &["start", "2.2"]).status.success());
    let mine = lib(&dir).replace(BLANK_2_2, "    let twice = a + a; // mine, in 2.2\n");
    fs::write(lib_path(&dir), &mine).unwrap();
    let before = lib(&dir);
    assert!(
        before.len() > 1024,
        "the lesson must be longer than the limit"
    );

    // A full disk, without root: no file may grow past 1024 bytes (two
    // 512-byte blocks), and a write past it fails (EFBIG) instead of killing
    // the tool. The saved regions fit; the lesson's file does not.
    let failed = Command::new("sh")
        .arg("-c")
        .arg("ulimit -f 2 && trap '' XFSZ && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_exercise"))
        .arg("--root")
        .arg(dir.path())
        .args(["restore", "2.1"])
        .output()
        .unwrap();
    let said = text(&failed);
    assert!(!failed.status.success(), "the write cannot succeed: {said}");
    assert!(said.contains("crates/02-x/src/lib.rs"), "{said}");
    let after = lib(&dir);
    assert!(
        after == before,
        "a write that fails part way must leave the file as it was ({} bytes, now {}): {said}",
        before.len(),
        after.len()
    );
    assert!(
        saved(&dir).contains("let twice = a + a; // mine, in 2.2"),
        "before a rewrite, every region of the file is kept, not only 2.1's"
    );
    let left: Vec<_> = fs::read_dir(dir.join("crates/02-x/src"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(left, ["lib.rs"], "no temporary file is left behind");

    // With room, the rewrite happens, and the file keeps its permissions.
    fs::set_permissions(lib_path(&dir), fs::Permissions::from_mode(0o640)).unwrap();
    let restored = exercise(&dir, &["restore", "2.1"]);
    assert!(restored.status.success(), "{}", text(&restored));
    let mode = fs::metadata(lib_path(&dir)).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o640,
        "a rewrite keeps the file's permissions"
    );
    assert!(lib(&dir).contains("let twice = a + a; // mine, in 2.2"));
}

#[test]
fn windows_line_endings_change_no_state_and_are_written_back() {
    let dir = workspace();
    // Git for Windows' default: files are checked out with CRLF.
    git(dir.path(), &["config", "core.autocrlf", "true"]);
    fs::remove_file(lib_path(&dir)).unwrap();
    git(dir.path(), &["checkout", "--", "crates/02-x/src/lib.rs"]);
    let checked_out = lib(&dir);
    assert!(checked_out.contains("a + b\r\n"), "git wrote CRLF");

    let list = text(&exercise(&dir, &[]));
    for id in ["2.1", "2.2", "2.3"] {
        assert!(list.contains(&format!("{id}   not started")), "{list}");
    }
    let started = exercise(&dir, &["start", "2.1"]);
    assert!(started.status.success(), "{}", text(&started));
    let blank = lib(&dir);
    assert!(
        blank.contains("(cargo exercise hint 2.1)\");\r\n"),
        "{blank}"
    );
    assert_eq!(
        blank.matches('\n').count(),
        blank.matches("\r\n").count(),
        "every line is written back with CRLF"
    );
    let list = text(&exercise(&dir, &[]));
    assert!(list.contains("2.1   started (blank)"), "{list}");
    assert!(list.contains("2.2   not started"), "{list}");
    assert!(exercise(&dir, &["restore", "2.1"]).status.success());
    assert_eq!(lib(&dir), checked_out, "restore puts back the same bytes");
}

#[test]
fn check_records_as_passing_only_the_code_it_built() {
    let dir = workspace();
    // A test of the lesson that plays the learner saving during the check:
    // once the build is done, it writes a wrong sum into 2.1.
    dir.write(
        "crates/02-x/tests/save.rs",
        br#"#[test]
fn the_learner_saves_while_the_tests_run() {
    let lib = concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs");
    let code = std::fs::read_to_string(lib).unwrap();
    std::fs::write(lib, code.replace("    b + a\n", "    a * b // saved during the check\n")).unwrap();
}
"#,
    );
    write_sum(&dir, "b + a");
    let checked = exercise(&dir, &["check", "2.1"]);
    let said = text(&checked);
    assert!(
        lib(&dir).contains("a * b // saved during the check"),
        "{said}"
    );
    assert!(!checked.status.success(), "{said}");
    assert!(said.contains("changed while it was checked"), "{said}");
    let list = text(&exercise(&dir, &[]));
    assert!(
        !list.contains("2.1   passing"),
        "the check built `b + a`, not the `a * b` saved while it ran: {said}\n{list}"
    );
}

#[test]
fn after_restore_the_list_shows_code_that_passed_as_passing_without_a_check() {
    let dir = workspace();
    assert!(exercise(&dir, &["start", "2.2"]).status.success());
    let written = lib(&dir).replace(BLANK_2_2, "    let twice = a * 2;\n");
    fs::write(lib_path(&dir), &written).unwrap();
    let checked = exercise(&dir, &["check", "2.2"]);
    assert!(checked.status.success(), "{}", text(&checked));
    assert!(text(&exercise(&dir, &[])).contains("2.2   passing"));

    // A variant tried, not checked.
    fs::write(lib_path(&dir), written.replace("a * 2;", "a + a;")).unwrap();
    let list = text(&exercise(&dir, &[]));
    assert!(list.contains("2.2   changed since it passed"), "{list}");

    // The passing code back: the reference, which is what passed.
    assert!(exercise(&dir, &["restore", "2.2"]).status.success());
    let list = text(&exercise(&dir, &[]));
    assert!(list.contains("2.2   passing"), "{list}");
}

#[test]
fn an_upstream_change_inside_an_untouched_exercise_is_the_new_reference() {
    let dir = workspace();
    assert!(exercise(&dir, &["start", "2.2"]).status.success());
    let started = lib(&dir);

    // Upstream changes 2.1's reference (and its digest), and the learner
    // pulls it while 2.2 is started.
    let upstream = LIB.replace("    a + b\n", "    a.wrapping_add(b)\n");
    fs::write(lib_path(&dir), &upstream).unwrap();
    digests(&dir);
    commit(&dir, "upstream: 2.1 wraps");
    fs::write(
        lib_path(&dir),
        started.replace("    a + b\n", "    a.wrapping_add(b)\n"),
    )
    .unwrap();

    let list = text(&exercise(&dir, &[]));
    assert!(list.contains("2.1   not started"), "{list}");
    assert!(list.contains("2.2   started (blank)"), "{list}");
    let solution = text(&exercise(&dir, &["solution", "2.1"]));
    assert!(solution.contains("a.wrapping_add(b)"), "{solution}");
    assert!(exercise(&dir, &["restore", "2.1"]).status.success());
    assert!(
        lib(&dir).contains("    a.wrapping_add(b)\n"),
        "restore must not put the old code back:\n{}",
        lib(&dir)
    );
}

#[test]
fn a_learners_commit_of_an_attempt_is_never_the_reference() {
    let dir = workspace();
    assert!(exercise(&dir, &["start", "2.1"]).status.success());
    let attempt = lib(&dir)
        .replace(
            "    todo!(\"exercise 2.1: return the sum of `a` and `b` (cargo exercise hint 2.1)\");\n",
            "    b + a + 0 // my attempt\n",
        )
        .replace("use std::io", "use std::fmt as _;\nuse std::io");
    fs::write(lib_path(&dir), &attempt).unwrap();
    commit(&dir, "my attempt at 2.1");

    let solution = text(&exercise(&dir, &["solution", "2.1"]));
    assert!(solution.contains("    a + b\n"), "{solution}");
    assert!(!solution.contains("my attempt"), "{solution}");
    let diff = text(&exercise(&dir, &["diff", "2.1"]));
    assert!(!diff.contains("the same as the reference"), "{diff}");
    assert!(diff.contains("+    b + a + 0 // my attempt"), "{diff}");
    let list = text(&exercise(&dir, &[]));
    assert!(list.contains("2.1   started"), "{list}");

    // The committed `use` line is the learner's: it blocks no start.
    assert!(exercise(&dir, &["start", "2.2"]).status.success());
    assert!(exercise(&dir, &["restore", "2.1"]).status.success());
    assert!(lib(&dir).contains("    a + b\n"));
}

/// Writes the catalogue's digests of the reference, as a lesson's author
/// does after changing it.
fn digests(dir: &TempDir) {
    let written = exercise(dir, &["digests"]);
    assert!(written.status.success(), "{}", text(&written));
}

#[test]
fn verify_reports_a_reference_changed_without_its_digests_and_digests_refuses_a_blank() {
    let dir = workspace();
    write_sum(&dir, "b + a");
    let stale = exercise(&dir, &["verify", "--only", "2.1"]);
    let said = text(&stale);
    assert!(!stale.status.success(), "{said}");
    assert!(
        said.contains(
            "exercise 2.1: its code is not the reference its `digests` in crates/02-x/exercises.toml name (first at crates/02-x/src/lib.rs:8)"
        ),
        "{said}"
    );
    digests(&dir);
    let list = text(&exercise(&dir, &[]));
    assert!(list.contains("2.1   not started"), "{list}");

    assert!(exercise(&dir, &["start", "2.1"]).status.success());
    let catalogue = fs::read_to_string(dir.join("crates/02-x/exercises.toml")).unwrap();
    let refused = exercise(&dir, &["digests"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("exercise 2.1 is blank"),
        "{}",
        text(&refused)
    );
    assert_eq!(
        fs::read_to_string(dir.join("crates/02-x/exercises.toml")).unwrap(),
        catalogue,
        "a refused `digests` writes nothing"
    );
}

/// `cargo exercise | head -1`: the reader goes after one line, and the tool
/// ends quietly (SIGPIPE's default), never with a panic on the broken pipe.
#[cfg(unix)]
#[test]
fn a_reader_that_goes_away_ends_the_list_quietly() {
    let dir = workspace();
    let mut child = Command::new(env!("CARGO_BIN_EXE_exercise"))
        .args(["--root", dir.path().to_str().unwrap(), "list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Closed before the tool writes a byte: its first println! meets the
    // broken pipe.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("panicked"),
        "`cargo exercise | head` with the reader gone: the tool must end quietly, as Unix tools \
         do on SIGPIPE, not panic; its standard error:\n{stderr}"
    );
}

/// A translation of the tiny lesson, as docs/po/zh-CN.po holds the real one.
const CHINESE: &str = r#"msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"

msgid "Add"
msgstr "加法"

msgid "return the sum of `a` and `b`"
msgstr "返回 `a` 与 `b` 的和"

msgid "Adding"
msgstr "相加"

msgid "Use +."
msgstr "用 +。"

msgid "Started exercise {id}: {title}."
msgstr "已开始练习 {id}：{title}。"

msgid "exercise {id}: {behaviour} (cargo exercise hint {id})"
msgstr "练习 {id}：{behaviour}（cargo exercise hint {id}）"

msgid "Exercise {id}, hint {number} of {total}:"
msgstr "练习 {id}，提示 {number}/{total}："

msgid "started (blank)"
msgstr "已开始（空白）"

msgid "Checking exercise {id}: {title} ..."
msgstr "正在检查练习 {id}：{title} ……"

msgid "Your code must {behaviour}."
msgstr "你的代码必须{behaviour}。"
"#;

/// `--lang zh-CN`, or a LANG that starts with zh, makes the tool speak
/// Chinese from the workspace's translation: the statement, the hints and
/// the `todo!()` it writes. An exercise started in Chinese is still blank
/// to the tool in English, and `--lang en` wins over LANG.
#[test]
fn chinese_is_spoken_when_asked_and_a_chinese_blank_is_blank_in_english() {
    let dir = workspace();
    dir.write("docs/po/zh-CN.po", CHINESE.as_bytes());
    commit(&dir, "the translation");
    let zh = [("LANG", "zh_CN.UTF-8")];

    let started = exercise_with(&dir, &["start", "2.1"], &zh);
    assert!(started.status.success(), "{}", text(&started));
    assert!(
        text(&started).contains("已开始练习 2.1：加法。"),
        "start in Chinese should say so in Chinese:\n{}",
        text(&started)
    );
    assert!(
        lib(&dir).contains("todo!(\"练习 2.1：返回 `a` 与 `b` 的和（cargo exercise hint 2.1）\")"),
        "the blank's todo!() should be in Chinese:\n{}",
        lib(&dir)
    );
    let hint = exercise_with(&dir, &["hint", "2.1"], &zh);
    assert!(
        text(&hint).contains("练习 2.1，提示 1/2：") && text(&hint).contains("用 +。"),
        "the hint should be in Chinese:\n{}",
        text(&hint)
    );
    let checked = exercise_with(&dir, &["check", "2.1"], &zh);
    assert!(
        text(&checked).contains("正在检查练习 2.1：加法 ……")
            && text(&checked).contains("你的代码必须返回 `a` 与 `b` 的和。")
            && text(&checked).contains("not yet implemented: 练习 2.1：返回"),
        "check in Chinese: the verdict in Chinese, and the blank's own todo!() message:\n{}",
        text(&checked)
    );
    let listed = exercise(&dir, &[]);
    assert!(
        text(&listed).contains("started (blank)"),
        "in English, an exercise blanked in Chinese is still blank:\n{}",
        text(&listed)
    );
    let english = exercise_with(&dir, &["--lang", "en"], &zh);
    assert!(
        text(&english).contains("started (blank)") && !text(&english).contains("已开始"),
        "--lang en should win over LANG:\n{}",
        text(&english)
    );
    let flag = exercise(&dir, &["--lang", "zh-CN"]);
    assert!(
        text(&flag).contains("已开始（空白）"),
        "--lang zh-CN should speak Chinese:\n{}",
        text(&flag)
    );
}
