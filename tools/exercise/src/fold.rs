//! `cargo exercise mdbook-preprocessor`: the book shows each exercise as
//! `start` leaves it, and folds the reference below it.
//!
//! The chapters include the real code by anchor, so a listing that holds an
//! exercise region would hand the learner the answer they are about to
//! write. mdBook runs this after it has expanded the includes
//! (`docs/book.toml`); in every listing, each region's lines become what
//! `cargo exercise start` writes there (the stub or the `todo!()`, between
//! the markers), and the reference follows the listing in a `<details>`
//! block, closed. The reference comes from the workspace, not from the
//! listing: a learner who has started an exercise and serves the book sees
//! the lesson, not their own attempt.
//!
//! The protocol (mdBook 0.5): `COMMAND supports RENDERER` exits 0 when the
//! renderer is supported; then `COMMAND` reads `[context, book]` as JSON on
//! standard input and prints the book, changed, as JSON. Only the chapters'
//! `content` is touched, so the rest of the JSON passes through as it came.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Read, Write};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::catalogue::Exercise;
use crate::regions::{self, Source};
use crate::workspace::Workspace;

/// One exercise region as a listing of the book shows it, with the lines
/// around it that say which region of the code it is.
pub struct Listed<'a> {
    pub id: &'a str,
    /// The listing's line before the begin marker, if any.
    pub before: Option<&'a str>,
    pub body: &'a [String],
    /// The listing's line after the end marker, if any.
    pub after: Option<&'a str>,
    /// The begin marker's indentation in the listing.
    pub indent: &'a str,
}

/// What the book shows for one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// What `start` leaves between the markers, indented for the listing.
    pub stub: Vec<String>,
    /// The reference, without stub lines, unindented.
    pub solution: Vec<String>,
    /// The fold's title.
    pub summary: String,
}

/// Runs the preprocessor: folds the book read from standard input (main.rs
/// answers `supports`).
pub fn serve(workspace: &Workspace) -> anyhow::Result<()> {
    if io::stdin().is_terminal() {
        bail!(
            "`cargo exercise mdbook-preprocessor` is run by mdBook (`mdbook build docs`, see \
             docs/book.toml): it reads the book as JSON on standard input"
        );
    }
    let mut input = String::new();
    io::stdin()
        .read_to_string(&mut input)
        .context("could not read the book mdBook sends on standard input")?;
    let mut references = References {
        workspace,
        loaded: BTreeMap::new(),
        chinese: book_language(&input).starts_with("zh"),
    };
    let book = fold_book(&input, &mut |listed| references.shown(listed))?;
    let mut out = io::stdout().lock();
    out.write_all(book.as_bytes())
        .and_then(|()| out.flush())
        .context("could not write the book back to mdBook")?;
    Ok(())
}

/// The language mdBook builds the book in (`[book] language`, which the
/// Chinese edition's build sets to `zh-CN`): the fold's summary line is
/// written by this tool, not by the chapters, so it is not in the
/// translation's messages, and this tool words it in the book's language.
fn book_language(input: &str) -> String {
    serde_json::from_str::<Value>(input)
        .ok()
        .and_then(|value| {
            value
                .get(0)?
                .pointer("/config/book/language")?
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// `[context, book]` as mdBook sends it -> the book's JSON, every chapter
/// folded.
pub fn fold_book(
    input: &str,
    find: &mut dyn FnMut(&Listed) -> anyhow::Result<Shown>,
) -> anyhow::Result<String> {
    let value: Value = serde_json::from_str(input)
        .context("mdBook sent no JSON; this command is run by `mdbook build docs`")?;
    let mut book = match value {
        Value::Array(mut pair) if pair.len() == 2 => pair.remove(1),
        _ => bail!(
            "mdBook sent no [context, book] pair: this preprocessor speaks the protocol of \
             mdBook 0.5 (install it with `cargo install --locked mdbook@0.5.4`)"
        ),
    };
    fold_chapters(&mut book, find)?;
    Ok(serde_json::to_string(&book)?)
}

/// Folds the `content` of every `{"Chapter": {...}}` in `value`, at any depth
/// (sub-chapters sit in their parent's `sub_items`).
fn fold_chapters(
    value: &mut Value,
    find: &mut dyn FnMut(&Listed) -> anyhow::Result<Shown>,
) -> anyhow::Result<()> {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(chapter)) = map.get_mut("Chapter") {
                let path = chapter
                    .get("path")
                    .and_then(Value::as_str)
                    .unwrap_or("a chapter")
                    .to_string();
                if let Some(Value::String(content)) = chapter.get_mut("content") {
                    *content =
                        fold_chapter(content, find).with_context(|| format!("docs/src/{path}"))?;
                }
            }
            for child in map.values_mut() {
                fold_chapters(child, find)?;
            }
        }
        Value::Array(items) => {
            for item in items {
                fold_chapters(item, find)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A fenced code block's opening line: its indentation, its fence (three or
/// more of one of ` or ~), and its info string.
fn opening_fence(line: &str) -> Option<(&str, &str, &str)> {
    let rest = line.trim_start();
    let indent = &line[..line.len() - rest.len()];
    let mark = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let count = rest.chars().take_while(|c| *c == mark).count();
    (count >= 3).then(|| (indent, &rest[..count], rest[count..].trim()))
}

fn closes(line: &str, fence: &str) -> bool {
    let rest = line.trim();
    rest.starts_with(fence) && rest.chars().all(|c| fence.starts_with(c))
}

/// One chapter's Markdown with each exercise region of its listings shown
/// blank and its reference folded below the listing.
pub fn fold_chapter(
    content: &str,
    find: &mut dyn FnMut(&Listed) -> anyhow::Result<Shown>,
) -> anyhow::Result<String> {
    let lines: Vec<&str> = content.split('\n').collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut at = 0;
    while at < lines.len() {
        let line = lines[at];
        let Some((indent, fence, info)) = opening_fence(line) else {
            out.push(line.to_string());
            at += 1;
            continue;
        };
        let Some(close) = (at + 1..lines.len()).find(|&i| closes(lines[i], fence)) else {
            // An unclosed block runs to the end: nothing after it is a listing.
            out.extend(lines[at..].iter().map(|l| l.to_string()));
            break;
        };
        let listing = Source {
            lines: lines[at + 1..close].iter().map(|l| l.to_string()).collect(),
            final_newline: false,
            crlf: false,
        };
        let found = regions::regions(&listing).map_err(|problems| {
            anyhow::anyhow!(
                "the exercise markers of the listing at line {} are broken: {}",
                at + 1,
                problems.join("; ")
            )
        })?;
        let mut shown = Vec::new();
        for region in &found {
            let listed = Listed {
                id: &region.id,
                before: region
                    .begin
                    .checked_sub(1)
                    .map(|i| listing.lines[i].as_str()),
                body: region.body(&listing),
                after: listing.lines.get(region.end + 1).map(String::as_str),
                indent: &region.indent,
            };
            shown.push(find(&listed).with_context(|| {
                format!("the listing at line {} (exercise {})", at + 1, region.id)
            })?);
        }
        let stubs: Vec<Vec<String>> = shown.iter().map(|s| s.stub.clone()).collect();
        out.push(line.to_string());
        out.extend(regions::replace_bodies(&listing, &found, &stubs).lines);
        out.push(lines[close].to_string());
        for region in &shown {
            out.push(String::new());
            out.push(format!("{indent}<details>"));
            out.push(format!(
                "{indent}<summary>{}</summary>",
                escape_html(&region.summary)
            ));
            out.push(String::new());
            out.push(format!("{indent}{fence}{info}"));
            out.extend(region.solution.iter().map(|l| {
                if l.is_empty() {
                    String::new()
                } else {
                    format!("{indent}{l}")
                }
            }));
            out.push(format!("{indent}{fence}"));
            out.push(String::new());
            out.push(format!("{indent}</details>"));
        }
        at = close + 1;
    }
    Ok(out.join("\n"))
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `lines` with the indentation `from` replaced by `to`; a line indented
/// less (a blank line, a raw string's continuation) stays as it is.
fn reindent(lines: &[String], from: &str, to: &str) -> Vec<String> {
    lines
        .iter()
        .map(|line| match line.strip_prefix(from) {
            Some(rest) if !line.trim().is_empty() => format!("{to}{rest}"),
            _ if line.trim().is_empty() => String::new(),
            _ => line.clone(),
        })
        .collect()
}

/// One region of an exercise in the code, as the book needs it.
struct Known {
    /// The line before the begin marker and after the end marker, trimmed,
    /// skipping the `ANCHOR` lines mdBook leaves out of a listing.
    before: Option<String>,
    after: Option<String>,
    /// What the region holds now, trimmed: what mdBook included.
    current: Vec<String>,
    shown: Shown,
    /// The reference region's indentation.
    indent: String,
}

/// The regions of the exercises the book shows, loaded once each.
struct References<'a> {
    workspace: &'a Workspace,
    loaded: BTreeMap<String, Vec<Known>>,
    /// The Chinese edition is being built: the summaries are in Chinese.
    chinese: bool,
}

impl References<'_> {
    fn shown(&mut self, listed: &Listed) -> anyhow::Result<Shown> {
        if !self.loaded.contains_key(listed.id) {
            let exercise = self.workspace.find(listed.id)?;
            let known = self.load(exercise)?;
            self.loaded.insert(listed.id.to_string(), known);
        }
        let candidates = self.loaded.get(listed.id).map(Vec::as_slice).unwrap_or(&[]);
        let known = best_match(candidates, listed).with_context(|| {
            format!(
                "no region of exercise {} in the code has the lines around this one",
                listed.id
            )
        })?;
        let mut shown = known.shown.clone();
        shown.stub = reindent(&shown.stub, &known.indent, listed.indent);
        Ok(shown)
    }

    fn load(&self, exercise: &Exercise) -> anyhow::Result<Vec<Known>> {
        let files = self.workspace.load(exercise)?;
        let count: usize = files.iter().map(|f| f.of(&exercise.id).count()).sum();
        let mut known = Vec::new();
        for file in &files {
            let lines = &file.reference.lines;
            let outside = |index: &usize| !lines[*index].contains("// ANCHOR");
            for pair in file.of(&exercise.id) {
                let region = &pair.reference;
                let body = file.reference_body(pair);
                let number = known.len() + 1;
                let summary = if self.chinese && count == 1 {
                    format!("练习 {} 的参考答案：检查通过之后再打开", exercise.id)
                } else if self.chinese {
                    format!(
                        "练习 {} 的参考答案，第 {number} 部分（共 {count} 部分）：检查通过之后再打开",
                        exercise.id
                    )
                } else if count == 1 {
                    format!(
                        "Solution to exercise {}: open it after your check passes",
                        exercise.id
                    )
                } else {
                    format!(
                        "Solution to exercise {}, part {number} of {count}: open it after your check passes",
                        exercise.id
                    )
                };
                known.push(Known {
                    before: (0..region.begin)
                        .rev()
                        .find(outside)
                        .map(|i| lines[i].trim().to_string()),
                    after: (region.end + 1..lines.len())
                        .find(outside)
                        .map(|i| lines[i].trim().to_string()),
                    current: file
                        .current_body(pair)
                        .iter()
                        .map(|l| l.trim().to_string())
                        .collect(),
                    shown: Shown {
                        stub: regions::blank_body(body, region, exercise),
                        solution: reindent(regions::solution_body(body), &region.indent, ""),
                        summary,
                    },
                    indent: region.indent.clone(),
                });
            }
        }
        Ok(known)
    }
}

/// The region of the code a listed one is: the only one, or the one that
/// agrees with it on most of (the line before, the body, the line after);
/// the first of equals. None when several exist and none agrees.
fn best_match<'k>(candidates: &'k [Known], listed: &Listed) -> Option<&'k Known> {
    if let [only] = candidates {
        return Some(only);
    }
    let body: Vec<&str> = listed.body.iter().map(|l| l.trim()).collect();
    let score = |known: &Known| {
        usize::from(listed.before.map(str::trim) == known.before.as_deref())
            + usize::from(listed.after.map(str::trim) == known.after.as_deref())
            + usize::from(known.current == body)
    };
    let best = candidates.iter().map(score).max().filter(|&s| s > 0)?;
    candidates.iter().find(|known| score(known) == best)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chapter with one listing: exercise 9.1 in it, with a stub line.
    const CHAPTER: &str = "# Nine\n\nRead the length first.\n\n```rust,ignore\nfn length(s: &str) -> usize {\n    // exercise 9.1: begin\n    //~ let n: usize = todo!();\n    let n = s.len();\n    // exercise 9.1: end\n    n\n}\n```\n\nThen the rest.\n\n```console\n$ cargo run\n```\n";

    fn stub_of(listed: &Listed) -> anyhow::Result<Shown> {
        assert_eq!(listed.id, "9.1");
        assert_eq!(listed.before, Some("fn length(s: &str) -> usize {"));
        assert_eq!(listed.after, Some("    n"));
        Ok(Shown {
            stub: vec![format!("{}let n: usize = todo!(\"9.1\");", listed.indent)],
            solution: vec!["let n = s.len();".to_string()],
            summary: "Solution to exercise 9.1: open it after your check passes".to_string(),
        })
    }

    #[test]
    fn the_book_language_comes_from_mdbooks_context() {
        let zh = r#"[{"config":{"book":{"language":"zh-CN"}}},{"items":[]}]"#;
        assert_eq!(book_language(zh), "zh-CN");
        assert_eq!(book_language(r#"[{"config":{}},{}]"#), "");
        assert_eq!(book_language("not json"), "");
    }

    #[test]
    fn a_region_shows_its_stub_and_the_reference_follows_in_a_closed_fold() {
        let folded = fold_chapter(CHAPTER, &mut stub_of).unwrap();
        let expected = "# Nine\n\nRead the length first.\n\n```rust,ignore\nfn length(s: &str) -> usize {\n    // exercise 9.1: begin\n    let n: usize = todo!(\"9.1\");\n    // exercise 9.1: end\n    n\n}\n```\n\n<details>\n<summary>Solution to exercise 9.1: open it after your check passes</summary>\n\n```rust,ignore\nlet n = s.len();\n```\n\n</details>\n\nThen the rest.\n\n```console\n$ cargo run\n```\n";
        assert_eq!(folded, expected);
    }

    #[test]
    fn a_chapter_without_regions_passes_through_unchanged() {
        let text =
            "# Plain\n\n```rust,ignore\nfn main() {}\n```\n\nThe `// exercise ID: begin` line.\n";
        let folded = fold_chapter(text, &mut |_| panic!("no region here")).unwrap();
        assert_eq!(folded, text);
    }

    #[test]
    fn broken_markers_in_a_listing_fail_the_build_with_the_line() {
        let text = "```rust\n// exercise 9.1: begin\nx\n```\n";
        let error = fold_chapter(text, &mut stub_of).unwrap_err();
        assert!(
            format!("{error:#}").contains("listing at line 1 are broken"),
            "{error:#}"
        );
    }

    #[test]
    fn the_book_json_passes_through_with_every_chapter_folded() {
        let chapter = |content: &str, sub: Value| {
            serde_json::json!({"Chapter": {"name": "n", "content": content, "number": [1],
                "sub_items": sub, "path": "09-nine.md", "source_path": "09-nine.md",
                "parent_names": []}})
        };
        let nested = chapter(CHAPTER, serde_json::json!([]));
        let book = serde_json::json!({"items": [chapter(CHAPTER, serde_json::json!([nested])),
            "Separator"]});
        let input = serde_json::json!([{"root": "/x", "renderer": "html"}, book]).to_string();
        let output: Value =
            serde_json::from_str(&fold_book(&input, &mut stub_of).unwrap()).unwrap();
        let folded = fold_chapter(CHAPTER, &mut stub_of).unwrap();
        assert_eq!(output["items"][0]["Chapter"]["content"], folded.as_str());
        assert_eq!(
            output["items"][0]["Chapter"]["sub_items"][0]["Chapter"]["content"],
            folded.as_str()
        );
        assert_eq!(output["items"][1], "Separator");
    }

    /// The stub and the fold come from the workspace's own regions, exactly
    /// as `start` blanks them, whatever the listing now holds.
    #[test]
    fn the_real_stub_is_what_start_writes_and_the_fold_holds_the_reference() {
        let workspace = Workspace::open(&crate::default_root()).unwrap();
        let mut references = References {
            workspace: &workspace,
            loaded: BTreeMap::new(),
            chinese: false,
        };
        let exercise = workspace.find("2.2").unwrap();
        let files = workspace.load(exercise).unwrap();
        let file = &files[0];
        let pair = file.of("2.2").next().unwrap();
        let region = &pair.reference;
        let lines = &file.reference.lines;
        let attempt = vec![format!("{}let x = 1; // the learner's", region.indent)];
        let listed = Listed {
            id: "2.2",
            before: Some(&lines[region.begin - 1]),
            body: &attempt,
            after: Some(&lines[region.end + 1]),
            indent: &region.indent,
        };
        let shown = references.shown(&listed).unwrap();
        assert_eq!(
            shown.stub,
            regions::blank_body(file.reference_body(pair), region, exercise)
        );
        assert!(
            shown
                .stub
                .iter()
                .any(|l| l.contains("todo!(\"exercise 2.2:"))
        );
        let reference = regions::solution_body(file.reference_body(pair));
        assert_eq!(shown.solution.len(), reference.len());
        assert!(
            reference
                .iter()
                .zip(&shown.solution)
                .all(|(r, s)| r.trim() == s.trim())
        );
        assert!(shown.summary.starts_with("Solution to exercise 2.2"));
    }
}
