//! The book pulls its code and its expected output from the crates, so prose
//! and code cannot drift apart. mdBook itself only warns about a broken
//! `{{#include}}` and silently includes nothing for a missing anchor, so
//! this test checks every include of every chapter.

// Helpers outside #[test] functions fail the way tests do: by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

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
