//! The marked regions of the reference code, and their blank version.
//!
//! ```text
//!     // exercise 2.1: begin
//!     //~ let listener: TcpListener = todo!();     <- stub line, blank only
//!     let listener = open_listener(listen_addr)?;  <- the reference
//!     // exercise 2.1: end
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::catalogue::Exercise;

/// A source file, split into lines, remembering its last newline and its
/// line endings. The lines never hold the `\r` of a CRLF ending, so a file
/// checked out with Windows line endings (`core.autocrlf=true`) reads the
/// same as the committed one, and is written back with CRLF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub lines: Vec<String>,
    pub final_newline: bool,
    /// Its lines end with CRLF (most of them, in a file that mixes both).
    pub crlf: bool,
}

impl Source {
    pub fn parse(text: &str) -> Source {
        let final_newline = text.ends_with('\n');
        let body = text.strip_suffix('\n').unwrap_or(text);
        let lines: Vec<String> = if text.is_empty() {
            Vec::new()
        } else {
            body.split('\n')
                .map(|line| line.strip_suffix('\r').unwrap_or(line).to_string())
                .collect()
        };
        let crlf = text.matches("\r\n").count() * 2 > text.matches('\n').count();
        Source {
            lines,
            final_newline,
            crlf,
        }
    }

    pub fn read(path: &Path) -> anyhow::Result<Source> {
        let text = fs::read_to_string(path)
            .with_context(|| format!("could not read {}", path.display()))?;
        Ok(Source::parse(&text))
    }

    pub fn text(&self) -> String {
        let ending = if self.crlf { "\r\n" } else { "\n" };
        let mut text = self.lines.join(ending);
        if self.final_newline {
            text.push_str(ending);
        }
        text
    }
}

/// One region: the lines strictly between its two marker lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub id: String,
    /// The index of the begin marker's line (0-based).
    pub begin: usize,
    /// The index of the end marker's line.
    pub end: usize,
    /// The begin marker's indentation, for the blank `todo!`.
    pub indent: String,
}

impl Region {
    pub fn body<'a>(&self, source: &'a Source) -> &'a [String] {
        &source.lines[self.begin + 1..self.end]
    }

    /// The number of the body's first line, counted from 1 as editors and
    /// compilers count (`begin` counts from 0 and is the marker's line):
    /// where the tool tells the learner to write.
    pub fn first_line(&self) -> usize {
        self.begin + 2
    }
}

/// What a marker line says, if it is one.
fn marker(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim_start().strip_prefix("// exercise ")?;
    let (id, what) = rest.split_once(": ")?;
    let what = what.trim_end();
    (what == "begin" || what == "end").then_some((id, what))
}

/// The regions of a source, in order, or the problems with its markers
/// (each as `line N: what is wrong`).
pub fn regions(source: &Source) -> Result<Vec<Region>, Vec<String>> {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    let mut open: Option<Region> = None;
    for (index, line) in source.lines.iter().enumerate() {
        let number = index + 1;
        if open.is_some() && line.contains("// ANCHOR") {
            problems.push(format!(
                "line {number}: an ANCHOR marker inside an exercise region (the book's includes must stay outside them)"
            ));
        }
        match (marker(line), open.take()) {
            (Some((id, "begin")), None) => {
                let indent = line[..line.len() - line.trim_start().len()].to_string();
                open = Some(Region {
                    id: id.to_string(),
                    begin: index,
                    end: index,
                    indent,
                });
            }
            (Some((id, "begin")), Some(region)) => {
                problems.push(format!(
                    "line {number}: exercise {id} begins inside exercise {} (line {}); regions do not nest",
                    region.id,
                    region.begin + 1
                ));
                open = Some(region);
            }
            (Some((id, _)), None) => {
                problems.push(format!("line {number}: exercise {id} ends but never began"));
            }
            (Some((id, _)), Some(mut region)) => {
                if id == region.id {
                    region.end = index;
                    found.push(region);
                } else {
                    problems.push(format!(
                        "line {number}: exercise {id} ends inside exercise {} (line {})",
                        region.id,
                        region.begin + 1
                    ));
                    open = Some(region);
                }
            }
            (None, region) => open = region,
        }
    }
    if let Some(region) = open {
        problems.push(format!(
            "line {}: exercise {} begins and never ends",
            region.begin + 1,
            region.id
        ));
    }
    if problems.is_empty() {
        Ok(found)
    } else {
        Err(problems)
    }
}

/// The text a blank region panics with: the behaviour, and where to get
/// help, in the learner's language (`lang`).
pub fn todo_message(exercise: &Exercise) -> String {
    crate::lang::say(
        "exercise {id}: {behaviour} (cargo exercise hint {id})",
        &[
            ("id", &exercise.id),
            ("behaviour", &crate::lang::tr(&exercise.behaviour)),
        ],
    )
}

/// `todo!("...")` with `message` as a string literal that is also a valid
/// format string (so braces are doubled).
fn todo_call(message: &str) -> String {
    let mut literal = String::new();
    for ch in message.chars() {
        match ch {
            '\\' => literal.push_str("\\\\"),
            '"' => literal.push_str("\\\""),
            '{' => literal.push_str("{{"),
            '}' => literal.push_str("}}"),
            _ => literal.push(ch),
        }
    }
    format!("todo!(\"{literal}\")")
}

/// The stub lines at the top of a reference region, uncommented.
fn stub_lines(body: &[String]) -> Vec<String> {
    body.iter()
        .take_while(|line| line.trim_start().starts_with("//~"))
        .map(|line| {
            let at = line.find("//~").unwrap_or(0);
            let rest = &line[at + 3..];
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            format!("{}{rest}", &line[..at])
        })
        .collect()
}

/// What a region holds once blanked: its stub lines, with every `todo!()`
/// carrying the exercise's message, or else one `todo!` line.
pub fn blank_body(reference_body: &[String], region: &Region, exercise: &Exercise) -> Vec<String> {
    blank_with(reference_body, region, &todo_message(exercise))
}

/// The blanked region with `message` in its `todo!()`s.
fn blank_with(reference_body: &[String], region: &Region, message: &str) -> Vec<String> {
    let call = todo_call(message);
    let stubs = stub_lines(reference_body);
    if stubs.is_empty() {
        vec![format!("{}{call};", region.indent)]
    } else {
        stubs
            .iter()
            .map(|line| line.replace("todo!()", &call))
            .collect()
    }
}

/// Whether `body` is the region blanked, as `start` writes it in English or
/// in the language the tool speaks now (a learner may start in one and
/// check in the other).
pub fn is_blank(
    body: &[String],
    reference_body: &[String],
    region: &Region,
    exercise: &Exercise,
) -> bool {
    let english = format!(
        "exercise {}: {} (cargo exercise hint {})",
        exercise.id, exercise.behaviour, exercise.id
    );
    let chinese = crate::lang::chinese_of("exercise {id}: {behaviour} (cargo exercise hint {id})")
        .zip(crate::lang::chinese_of(&exercise.behaviour))
        .map(|(sentence, behaviour)| {
            sentence
                .replace("{id}", &exercise.id)
                .replace("{behaviour}", behaviour)
        });
    body == blank_with(reference_body, region, &english).as_slice()
        || chinese
            .is_some_and(|message| body == blank_with(reference_body, region, &message).as_slice())
}

/// A variant's code for a region: unindented as written in the catalogue,
/// then indented like the region's begin marker.
pub fn variant_body(code: &str, region: &Region) -> Vec<String> {
    let lines: Vec<&str> = code.trim_matches('\n').lines().collect();
    let common = lines
        .iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|line| {
            if line.trim().is_empty() {
                String::new()
            } else {
                format!("{}{}", region.indent, &line[common..])
            }
        })
        .collect()
}

/// FNV-1a over `lines`, each with a newline, from `hash`: stable across
/// builds and platforms, and blind to line endings (the lines have none).
pub fn fnv1a(mut hash: u64, lines: &[String]) -> u64 {
    for line in lines {
        for byte in line.bytes().chain([b'\n']) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// The digest of a region's reference code, as the catalogue keeps it: 16
/// hex digits. It covers the whole region, stub lines included.
pub fn digest(body: &[String]) -> String {
    format!("{:016x}", fnv1a(FNV_START, body))
}

/// The reference region without its stub lines: what `solution` shows.
pub fn solution_body(reference_body: &[String]) -> &[String] {
    let stubs = reference_body
        .iter()
        .take_while(|line| line.trim_start().starts_with("//~"))
        .count();
    &reference_body[stubs..]
}

/// The source with every region's body left out: two files with the same
/// skeleton differ only inside exercise regions.
pub fn skeleton(source: &Source, regions: &[Region]) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = 0;
    for region in regions {
        out.extend_from_slice(&source.lines[next..=region.begin]);
        next = region.end;
    }
    out.extend_from_slice(&source.lines[next..]);
    out
}

/// Replaces the bodies of `regions` (of `source`) with `bodies`, in order.
pub fn replace_bodies(source: &Source, regions: &[Region], bodies: &[Vec<String>]) -> Source {
    let mut lines = Vec::new();
    let mut next = 0;
    for (region, body) in regions.iter().zip(bodies) {
        lines.extend_from_slice(&source.lines[next..=region.begin]);
        lines.extend_from_slice(body);
        next = region.end;
    }
    lines.extend_from_slice(&source.lines[next..]);
    Source {
        lines,
        final_newline: source.final_newline,
        crlf: source.crlf,
    }
}

/// Every Rust file that may hold regions: the `src/` of each crate under
/// `crates/`, relative to the workspace root, sorted.
pub fn candidate_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let crates = root.join("crates");
    let entries =
        fs::read_dir(&crates).with_context(|| format!("could not read {}", crates.display()))?;
    for entry in entries.flatten() {
        rust_files(&entry.path().join("src"), &mut found);
    }
    let mut relative: Vec<PathBuf> = found
        .into_iter()
        .filter_map(|path| path.strip_prefix(root).ok().map(Path::to_path_buf))
        .collect();
    relative.sort();
    Ok(relative)
}

/// Every `.rs` file under `dir`, at any depth, added to `found`; a folder
/// that cannot be read adds nothing.
pub fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Exercise;

    fn exercise(id: &str, behaviour: &str) -> Exercise {
        Exercise {
            id: id.to_string(),
            title: "t".to_string(),
            behaviour: behaviour.to_string(),
            section: "s".to_string(),
            hints: vec![],
            tests: vec![],
            digests: vec![],
            mistakes: vec![],
            alternatives: vec![],
            lesson: 2,
            chapter: "02-server.md".to_string(),
            catalogue: PathBuf::new(),
        }
    }

    const CODE: &str = "fn a() -> u32 {\n    // exercise 2.1: begin\n    //~ let x: u32 = todo!();\n    let x = 1;\n    // exercise 2.1: end\n    x\n}\n\nfn b() {\n    // exercise 2.2: begin\n    println!(\"b\");\n    // exercise 2.2: end\n}\n";

    #[test]
    fn regions_are_found_with_their_indentation() {
        let source = Source::parse(CODE);
        let found = regions(&source).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].id, "2.1");
        assert_eq!((found[0].begin, found[0].end), (1, 4));
        assert_eq!(found[0].indent, "    ");
        assert_eq!(found[1].body(&source), ["    println!(\"b\");"]);
        assert_eq!(source.text(), CODE, "a source reads back byte for byte");
        let windows = CODE.replace('\n', "\r\n");
        let crlf = Source::parse(&windows);
        assert_eq!(crlf.lines, source.lines, "line endings are not content");
        assert_eq!(crlf.text(), windows, "and they are written back");
    }

    #[test]
    fn stub_lines_become_the_blank_and_braces_and_quotes_are_escaped() {
        let source = Source::parse(CODE);
        let found = regions(&source).unwrap();
        let blank = blank_body(
            found[0].body(&source),
            &found[0],
            &exercise("2.1", "say \"hi\" {now}"),
        );
        assert_eq!(
            blank,
            [
                "    let x: u32 = todo!(\"exercise 2.1: say \\\"hi\\\" {{now}} (cargo exercise hint 2.1)\");"
            ]
        );
        let blank = blank_body(found[1].body(&source), &found[1], &exercise("2.2", "b"));
        assert_eq!(
            blank,
            ["    todo!(\"exercise 2.2: b (cargo exercise hint 2.2)\");"]
        );
        assert_eq!(solution_body(found[0].body(&source)), ["    let x = 1;"]);
    }

    #[test]
    fn a_variant_is_indented_like_its_region() {
        let source = Source::parse(CODE);
        let found = regions(&source).unwrap();
        let body = variant_body("\n  if a {\n      b();\n  }\n\n  c();\n", &found[0]);
        assert_eq!(
            body,
            ["    if a {", "        b();", "    }", "", "    c();"]
        );
    }

    #[test]
    fn the_skeleton_ignores_what_is_inside_regions_only() {
        let source = Source::parse(CODE);
        let found = regions(&source).unwrap();
        let edited = replace_bodies(
            &source,
            &found,
            &[vec!["mine".to_string()], vec![String::new(), String::new()]],
        );
        let edited_regions = regions(&edited).unwrap();
        assert_eq!(
            skeleton(&source, &found),
            skeleton(&edited, &edited_regions)
        );
        let mut outside = edited.clone();
        outside.lines[0] = "fn a() -> u64 {".to_string();
        assert_ne!(
            skeleton(&source, &found),
            skeleton(&outside, &regions(&outside).unwrap())
        );
    }

    #[test]
    fn broken_markers_are_reported_with_their_lines() {
        let nested =
            Source::parse("// exercise 1.1: begin\n// exercise 1.2: begin\n// exercise 1.2: end\n");
        let problems = regions(&nested).unwrap_err();
        assert!(problems[0].starts_with("line 2: exercise 1.2 begins inside exercise 1.1"));
        let anchor = Source::parse("// exercise 1.1: begin\n// ANCHOR: x\n// exercise 1.1: end\n");
        assert!(regions(&anchor).unwrap_err()[0].contains("ANCHOR"));
        let unclosed = Source::parse("// exercise 1.1: begin\n");
        assert_eq!(
            regions(&unclosed).unwrap_err(),
            ["line 1: exercise 1.1 begins and never ends"]
        );
    }
}
