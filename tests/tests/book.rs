//! The book pulls its code and its expected output from the crates, so prose
//! and code cannot drift apart. mdBook itself only warns about a broken
//! `{{#include}}` and silently includes nothing for a missing anchor, so
//! this test checks every include of every chapter.

// Helpers outside #[test] functions fail the way tests do: by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn book_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/src")
}

/// Every `{{#include PATH}}` / `{{#include PATH:ANCHOR}}` / `{{#include PATH:N:}}`
/// in `text`, as (path, what follows the first colon).
fn includes(text: &str) -> Vec<(String, Option<String>)> {
    text.match_indices("{{#include ")
        .filter_map(|(at, _)| {
            let rest = &text[at + "{{#include ".len()..];
            let inner = rest[..rest.find("}}")?].trim();
            Some(match inner.split_once(':') {
                Some((path, selector)) => (path.to_string(), Some(selector.to_string())),
                None => (inner.to_string(), None),
            })
        })
        .collect()
}

fn chapters() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(book_src())
        .expect("docs/src should exist")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    found.sort();
    found
}

#[test]
fn every_chapter_in_the_summary_exists() {
    let summary = fs::read_to_string(book_src().join("SUMMARY.md")).unwrap();
    for (at, _) in summary.match_indices("](") {
        let rest = &summary[at + 2..];
        let file = &rest[..rest.find(')').unwrap()];
        assert!(
            book_src().join(file).is_file(),
            "SUMMARY.md lists {file}, which does not exist"
        );
    }
}

#[test]
fn every_include_names_a_file_and_an_anchor_that_exist() {
    let mut problems = Vec::new();
    for chapter in chapters() {
        let text = fs::read_to_string(&chapter).unwrap();
        let name = chapter.file_name().unwrap().to_string_lossy().into_owned();
        for (path, selector) in includes(&text) {
            let file = book_src().join(&path);
            let Ok(source) = fs::read_to_string(&file) else {
                problems.push(format!("{name}: includes {path}, which does not exist"));
                continue;
            };
            match selector {
                None => {}
                // A line range such as `5:`: used for snapshot files, whose
                // insta header is exactly four lines.
                Some(range) if range.starts_with(|c: char| c.is_ascii_digit()) => {
                    let header_ok =
                        !path.ends_with(".snap") || source.lines().nth(3) == Some("---");
                    if !header_ok {
                        problems.push(format!(
                            "{name}: {path} should have a four-line insta header (keep the snapshot expression on one line)"
                        ));
                    }
                }
                Some(anchor) => {
                    let start = format!("ANCHOR: {anchor}");
                    let end = format!("ANCHOR_END: {anchor}");
                    let has = |marker: &str| source.lines().any(|l| l.trim_end().ends_with(marker));
                    if !has(&start) || !has(&end) {
                        problems.push(format!(
                            "{name}: includes {path}:{anchor}, but that file has no `// {start}` ... `// {end}`"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "broken includes in the book:\n{}",
        problems.join("\n")
    );
}

#[test]
fn rust_code_in_the_book_comes_from_the_crates() {
    let mut problems = Vec::new();
    for chapter in chapters() {
        let text = fs::read_to_string(&chapter).unwrap();
        let name = chapter.file_name().unwrap().to_string_lossy().into_owned();
        let mut in_rust_block = false;
        for (number, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if let Some(fence) = trimmed.strip_prefix("```") {
                in_rust_block = !in_rust_block && fence.starts_with("rust");
                continue;
            }
            if in_rust_block && !trimmed.is_empty() && !trimmed.starts_with("{{#include") {
                problems.push(format!("{name}:{}: {trimmed}", number + 1));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "Rust code blocks in the book must only {{{{#include}}}} code from the crates, \
         so it cannot drift from what is tested; pasted lines:\n{}",
        problems.join("\n")
    );
}

/// A heading line as (the text a reader sees, with code marks dropped, and
/// its explicit id): `## Step 4: accept {#step-4-accept}`.
fn heading(line: &str) -> Option<(String, Option<String>)> {
    let hashes = line.chars().take_while(|&c| c == '#').count();
    if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
        return None;
    }
    let text = line[hashes..].trim();
    let (title, id) = match text.strip_suffix('}').and_then(|t| t.rsplit_once(" {#")) {
        Some((title, id)) => (title, Some(id.to_string())),
        None => (text, None),
    };
    Some((title.trim_end().replace('`', ""), id))
}

/// The headings of a chapter (outside code blocks), with their ids.
fn sections(chapter: &str) -> Vec<(String, Option<String>)> {
    let mut in_code = false;
    let mut found = Vec::new();
    for line in chapter.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code && let Some(heading) = heading(line) {
            found.push(heading);
        }
    }
    found
}

fn headings(chapter: &str) -> Vec<String> {
    sections(chapter)
        .into_iter()
        .map(|(title, _)| title)
        .collect()
}

/// The text of a chapter with its generated exercise page put in place of
/// its `{{#include exercises/...}}`, as mdBook shows it.
fn with_exercise_page(text: &str) -> String {
    let mut whole = String::new();
    for line in text.lines() {
        match line
            .strip_prefix("{{#include ")
            .and_then(|rest| rest.strip_suffix("}}"))
        {
            Some(path) if path.starts_with("exercises/") => {
                whole.push_str(&fs::read_to_string(book_src().join(path)).unwrap());
            }
            _ => whole.push_str(line),
        }
        whole.push('\n');
    }
    whole
}

/// The Chinese edition translates the headings, and mdBook would make other
/// ids of the translated words: every heading names its id (`{#...}`), so
/// that a link such as `02-server.md#step-4-accept` leads to the same section
/// in both books. And every link to a section leads to one that exists.
#[test]
fn every_heading_has_an_id_and_every_link_to_a_section_leads_to_one() {
    let mut problems = Vec::new();
    let mut ids = std::collections::HashMap::new();
    for chapter in chapters() {
        let name = chapter.file_name().unwrap().to_string_lossy().into_owned();
        if name == "SUMMARY.md" {
            continue;
        }
        let text = with_exercise_page(&fs::read_to_string(&chapter).unwrap());
        let mut seen = Vec::new();
        for (title, id) in sections(&text) {
            match id {
                None => problems.push(format!(
                    "docs/src/{name}: the heading `{title}` has no id: end it with {{#an-id}}"
                )),
                Some(id) if seen.contains(&id) => {
                    problems.push(format!("docs/src/{name}: two headings have the id `{id}`"))
                }
                Some(id) => seen.push(id),
            }
        }
        ids.insert(name, (seen, text));
    }
    let mut links = 0;
    for (name, (own, text)) in &ids {
        for (at, _) in text.match_indices("](") {
            let rest = &text[at + 2..];
            let Some(target) = rest.find(')').map(|end| &rest[..end]) else {
                continue;
            };
            let Some((file, id)) = target.split_once('#') else {
                continue;
            };
            if file.contains("://") {
                continue;
            }
            links += 1;
            let found = if file.is_empty() {
                own.iter().any(|known| known == id)
            } else {
                ids.get(file)
                    .is_some_and(|(theirs, _)| theirs.iter().any(|known| known == id))
            };
            if !found {
                problems.push(format!(
                    "docs/src/{name}: the link to `{target}` leads nowhere"
                ));
            }
        }
    }
    assert!(links > 0, "no link to a section was found at all");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() && !path.ends_with("target") {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// A failing test sends the learner to the book as `(book: FILE § HEADING)`;
/// every such reference in the lessons' code and tests must lead somewhere.
#[test]
fn every_book_reference_in_the_code_names_a_real_section() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    let mut problems = Vec::new();
    let mut seen = 0;
    // This file, which spells the pattern out, is not a reference.
    files.retain(|file| !file.ends_with("tests/tests/book.rs"));
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            for (at, _) in line.match_indices("(book: ") {
                let rest = &line[at + "(book: ".len()..];
                let place = format!("{}:{}", file.display(), number + 1);
                let Some((chapter, rest)) = rest.split_once(" § ") else {
                    problems.push(format!("{place}: write it as `(book: FILE § HEADING)`"));
                    continue;
                };
                let Some(end) = rest.find(')') else {
                    problems.push(format!("{place}: keep the reference on one line"));
                    continue;
                };
                let heading = rest[..end].replace('`', "");
                if heading.contains('{') || heading == "HEADING" {
                    continue; // a template, filled in by a helper checked below
                }
                seen += 1;
                match fs::read_to_string(book_src().join(chapter)) {
                    Ok(text) if headings(&text).contains(&heading) => {}
                    Ok(_) => problems.push(format!(
                        "{place}: docs/src/{chapter} has no heading `{heading}`"
                    )),
                    Err(_) => problems.push(format!("{place}: there is no docs/src/{chapter}")),
                }
            }
        }
    }
    assert!(
        seen > 0,
        "no `(book: FILE § HEADING)` reference was found at all"
    );
    assert!(
        problems.is_empty(),
        "references to the book that lead nowhere:\n{}",
        problems.join("\n")
    );
}

/// Each lesson that has exercises shows them at the end of its chapter,
/// from the page `cargo exercise book` makes of its catalogue.
#[test]
fn every_chapter_with_exercises_includes_its_exercise_page() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut problems = Vec::new();
    for entry in fs::read_dir(root.join("crates")).unwrap() {
        let catalogue = entry.unwrap().path().join("exercises.toml");
        let Ok(text) = fs::read_to_string(&catalogue) else {
            continue;
        };
        let chapter = text
            .lines()
            .find_map(|line| line.strip_prefix("chapter = \""))
            .map(|rest| rest.trim_end_matches('"').to_string())
            .unwrap_or_else(|| panic!("{} names no chapter", catalogue.display()));
        let include = format!("{{{{#include exercises/{chapter}}}}}");
        let body = fs::read_to_string(book_src().join(&chapter)).unwrap_or_default();
        let section = body
            .split("\n## Exercises {#exercises}\n")
            .nth(1)
            .unwrap_or("");
        if !section.contains(&include) {
            problems.push(format!(
                "docs/src/{chapter} should end with a `## Exercises {{#exercises}}` section that has {include}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `docs/README.md`, where the repository's README sends a reader, lists
/// every chapter of the book.
#[test]
fn the_books_landing_page_lists_every_chapter() {
    let summary = fs::read_to_string(book_src().join("SUMMARY.md")).unwrap();
    let landing = fs::read_to_string(book_src().join("../README.md")).unwrap();
    let missing: Vec<&str> = summary
        .match_indices("](")
        .map(|(at, _)| {
            let rest = &summary[at + 2..];
            &rest[..rest.find(')').unwrap()]
        })
        .filter(|file| !landing.contains(&format!("`src/{file}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/README.md should list these chapters of SUMMARY.md: {missing:?}"
    );
}

/// The rustc the errors in `tests/book/rust_for_python/*.txt` were printed
/// by. With another version only each error's first line must match: the
/// drawings around it change between releases, the error does not.
const ERRORS_PRINTED_BY: &str = "rustc 1.95.";

/// "Rust for a Python programmer" shows compiler errors as rustc prints
/// them. Each example must still fail to compile, with that error.
#[test]
fn the_compiler_errors_the_book_shows_are_the_ones_rustc_prints() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/rust_for_python");
    let version = Command::new("rustc")
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_default();
    let whole = version.starts_with(ERRORS_PRINTED_BY);
    let mut examples: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    examples.sort();
    assert!(
        examples.len() >= 3,
        "the examples are missing from {}",
        dir.display()
    );
    for example in examples {
        // Compiled as `src/lib.rs` in a scratch folder, so the error names
        // the path a learner's own errors name.
        let scratch = tempfile_dir(&example);
        fs::create_dir_all(scratch.join("src")).unwrap();
        fs::copy(&example, scratch.join("src/lib.rs")).unwrap();
        let output = Command::new("rustc")
            .args([
                "--edition",
                "2024",
                "--crate-type",
                "lib",
                "--crate-name",
                "example",
            ])
            .args(["--error-format", "human", "--color", "never", "src/lib.rs"])
            .arg("--out-dir")
            .arg(scratch.join("out"))
            .current_dir(&scratch)
            .output()
            .unwrap();
        let _ = fs::remove_dir_all(&scratch);
        let printed = String::from_utf8_lossy(&output.stderr).into_owned();
        let shown = fs::read_to_string(example.with_extension("txt")).unwrap();
        let name = example.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !output.status.success(),
            "{name} must not compile: the book shows the error it gives"
        );
        let first = |text: &str| text.lines().next().unwrap_or_default().to_string();
        assert_eq!(
            first(&printed),
            first(&shown),
            "{name}: rustc ({version}) now gives another error than the book shows"
        );
        if whole {
            assert_eq!(
                printed, shown,
                "{name}: rustc prints this error differently from the book's copy; \
                 the book shows it as printed (regenerate the .txt with this test's command)"
            );
        }
    }
}

/// A scratch folder of its own for one example, under the system temp dir.
fn tempfile_dir(example: &Path) -> PathBuf {
    let stem = example.file_stem().unwrap().to_string_lossy().into_owned();
    std::env::temp_dir().join(format!("tcp-lessons-book-{}-{stem}", std::process::id()))
}

/// The exercise regions in `code`, as (id, the lines between the markers),
/// from the `// exercise ID: begin` / `// exercise ID: end` lines
/// (tools/exercise/FORMAT.md), and every line outside them.
fn split_regions(code: &str) -> (Vec<(String, Vec<String>)>, Vec<String>) {
    let mut regions = Vec::new();
    let mut outside = Vec::new();
    let mut open: Option<(String, Vec<String>)> = None;
    for line in code.lines() {
        let marker = line.trim().strip_prefix("// exercise ");
        match (marker.and_then(|m| m.strip_suffix(": begin")), open.take()) {
            (Some(id), None) => open = Some((id.to_string(), Vec::new())),
            (_, Some((id, body))) if marker == Some(&format!("{id}: end")) => {
                regions.push((id, body));
            }
            (_, Some((id, mut body))) => {
                body.push(line.to_string());
                open = Some((id, body));
            }
            (None, None) => outside.push(line.to_string()),
        }
    }
    (regions, outside)
}

/// `text` without its `<details>` ... `</details>` folds, and the folds.
fn unfolded(text: &str) -> (String, Vec<String>) {
    let mut visible = String::new();
    let mut folds = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<details") {
        visible.push_str(&rest[..start]);
        let end = rest[start..]
            .find("</details>")
            .map_or(rest.len(), |end| start + end + "</details>".len());
        folds.push(rest[start..end].to_string());
        rest = &rest[end..];
    }
    visible.push_str(rest);
    (visible, folds)
}

/// The code blocks of Markdown `text` (fences of three backticks).
fn code_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut open: Option<String> = None;
    for line in text.lines() {
        let fence = line.trim_start().starts_with("```");
        match (fence, open.take()) {
            (true, None) => open = Some(String::new()),
            (true, Some(block)) => blocks.push(block),
            (false, Some(mut block)) => {
                block.push_str(line);
                block.push('\n');
                open = Some(block);
            }
            (false, None) => {}
        }
    }
    blocks
}

/// Every piece of code Markdown `text` shows: each line of its code blocks
/// and each inline code span, trimmed.
fn quoted_code(text: &str) -> std::collections::HashSet<String> {
    let mut found = std::collections::HashSet::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
        } else if in_block {
            found.insert(line.trim().to_string());
        } else {
            found.extend(
                line.split('`')
                    .skip(1)
                    .step_by(2)
                    .map(|span| span.trim().to_string()),
            );
        }
    }
    found
}

/// The chapters as the book's preprocessors leave them: mdBook's markdown
/// renderer, with the exercise preprocessor of docs/book.toml pointed at
/// the tool the kit builds (the real book runs it through `cargo exercise`).
fn preprocessed_chapters() -> Vec<(String, String)> {
    let tool = testkit::binary("exercise", "exercise");
    let dir = testkit::TempDir::new();
    let src = fs::canonicalize(book_src()).unwrap();
    let config = format!(
        "[book]\ntitle = \"folds\"\nsrc = '{}'\n\n[build]\ncreate-missing = false\n\n\
         [preprocessor.exercise]\ncommand = '\"{}\" mdbook-preprocessor'\nafter = [\"links\"]\n\n\
         [output.markdown]\n",
        src.display(),
        tool.display()
    );
    dir.write("book.toml", config.as_bytes());
    let output = Command::new("mdbook")
        .arg("build")
        .arg(dir.path())
        .output()
        .expect("mdbook should run (cargo install --locked mdbook@0.5.4)");
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success() && !log.contains("ERROR") && !log.contains("WARN"),
        "mdbook could not build the book with the exercise preprocessor:\n{log}"
    );
    let mut chapters: Vec<(String, String)> = fs::read_dir(dir.path().join("book"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read_to_string(&path).unwrap())
        })
        .collect();
    chapters.sort();
    chapters
}

/// The book teaches without handing over the code a learner is about to
/// write (issue 18): in every listing, an exercise region shows what
/// `cargo exercise start` leaves there, and its reference follows in a
/// closed fold. Outside the folds, no line of any region's reference that
/// the rest of the code does not also have appears in the book, as a line
/// of a listing or as inline code.
#[test]
#[cfg_attr(
    not(has_mdbook),
    ignore = "needs mdbook: cargo install --locked mdbook@0.5.4 (CI installs it)"
)]
fn the_book_shows_each_exercise_blank_and_folds_its_reference() {
    let config = fs::read_to_string(book_src().join("../book.toml")).unwrap();
    assert!(
        config.contains(
            "[preprocessor.exercise]\ncommand = \"cargo exercise mdbook-preprocessor\"\nafter = [\"links\"]"
        ),
        "docs/book.toml should run `cargo exercise mdbook-preprocessor` after `links`"
    );

    // What the code holds: each region's reference, and every line outside
    // the regions (which the book may show).
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    let mut regions = Vec::new();
    let mut outside = std::collections::HashSet::new();
    for file in files {
        let (found, rest) = split_regions(&fs::read_to_string(&file).unwrap());
        outside.extend(rest.iter().map(|line| line.trim().to_string()));
        regions.extend(found);
    }
    assert!(regions.len() >= 25, "the exercise regions were not found");
    // A reference line that says something of its own: long enough, and
    // not also somewhere outside a region, nor what the blank holds.
    let telling = |id: &str, line: &str| {
        let line = line.trim();
        line.len() >= 20
            && !line.starts_with("//~")
            && !outside.contains(line)
            && !line.contains(&format!("exercise {id}:"))
    };

    let mut problems = Vec::new();
    let mut shown = std::collections::BTreeSet::new();
    for (name, text) in preprocessed_chapters() {
        let (visible, folds) = unfolded(&text);
        for fold in &folds {
            // A closed fold may hold other things (lesson 4 folds a Python
            // program); a solution's fold is closed and says so.
            let solution = fold.contains("<summary>Solution to exercise ");
            let closed = fold.starts_with("<details>\n");
            if !closed
                || (solution && !fold.starts_with("<details>\n<summary>Solution to exercise "))
            {
                problems.push(format!(
                    "{name}: a fold that is open, or a solution's fold not titled `Solution to exercise ID`: {}",
                    fold.lines().take(2).collect::<Vec<_>>().join(" ")
                ));
            }
        }
        for block in code_blocks(&visible) {
            for (id, body) in split_regions(&block).0 {
                let stub = format!("todo!(\"exercise {id}:");
                if !body.iter().any(|line| line.contains(&stub)) {
                    problems.push(format!(
                        "{name}: a listing shows exercise {id} without its blank (`{stub}`)"
                    ));
                }
                let title = format!("<summary>Solution to exercise {id}");
                if !folds.iter().any(|fold| fold.contains(&title)) {
                    problems.push(format!(
                        "{name}: exercise {id} has no fold with its solution"
                    ));
                }
                shown.insert(id);
            }
        }
        let quoted = quoted_code(&visible);
        for (id, body) in &regions {
            for line in body.iter().filter(|line| telling(id, line)) {
                if quoted.contains(line.trim()) {
                    problems.push(format!(
                        "{name}: shows `{}` of exercise {id} outside a fold",
                        line.trim()
                    ));
                }
            }
        }
    }
    for (id, _) in &regions {
        if !shown.contains(id) {
            problems.push(format!("exercise {id} appears in no listing of the book"));
        }
    }
    problems.dedup();
    assert!(
        problems.is_empty(),
        "the book gives exercise code away, or hides it wrongly:\n{}",
        problems.join("\n")
    );
}

/// The longest Rust listing the book includes, in lines of code: a listing
/// shows one idea, as the Rust Book's do (theirs are 1 to 27 lines); a
/// longer one is split, each part with its own sentence.
const LONGEST_LISTING: usize = 60;

#[test]
fn every_rust_listing_in_the_book_is_short() {
    let mut long = Vec::new();
    for chapter in chapters() {
        let text = fs::read_to_string(&chapter).unwrap();
        let name = chapter.file_name().unwrap().to_string_lossy().into_owned();
        for (path, selector) in includes(&text) {
            let Some(anchor) = selector.filter(|_| path.ends_with(".rs")) else {
                continue;
            };
            let Ok(source) = fs::read_to_string(book_src().join(&path)) else {
                continue;
            };
            let start = format!("ANCHOR: {anchor}");
            let end = format!("ANCHOR_END: {anchor}");
            let lines = source
                .lines()
                .skip_while(|l| !l.trim_end().ends_with(&start))
                .skip(1)
                .take_while(|l| !l.trim_end().ends_with(&end))
                // mdBook drops the markers of other anchors from a listing.
                .filter(|l| !l.contains("ANCHOR: ") && !l.contains("ANCHOR_END: "))
                .count();
            if lines > LONGEST_LISTING {
                long.push(format!("{name}: {path}:{anchor} is {lines} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "listings over {LONGEST_LISTING} lines (split each into listings of one idea, each with its own sentence):\n{}",
        long.join("\n")
    );
}
