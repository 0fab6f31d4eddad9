//! The book's Exercises sections, made from the catalogues so the two can
//! never drift: `cargo exercise book` writes `docs/src/exercises/NN-name.md`,
//! each chapter includes its page, and `verify` (and this crate's tests)
//! fail while a page is out of date.

use std::fs;
use std::path::{Path, PathBuf};

use crate::catalogue::Exercise;
use crate::workspace::Workspace;

/// Each heading of a chapter (outside code blocks), as a reader sees it
/// (backticks dropped), with its explicit id: `## Step 4: accept
/// {#step-4-accept}` gives ("Step 4: accept", Some("step-4-accept")). Every
/// heading of the book carries one, because the Chinese edition translates
/// the headings, and the ids mdBook would make from them would differ: with
/// the id written down, `#step-4-accept` leads to the same section in both.
pub fn sections(chapter: &str) -> Vec<(String, Option<String>)> {
    let mut in_code = false;
    let mut found = Vec::new();
    for line in chapter.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
            let heading = line[hashes..].trim();
            let (title, id) = match heading.strip_suffix('}').and_then(|h| h.rsplit_once(" {#")) {
                Some((title, id)) => (title.trim_end(), Some(id.to_string())),
                None => (heading, None),
            };
            found.push((plain(title), id));
        }
    }
    found
}

/// The id a link to `section` of `chapter` uses: its explicit one, or the
/// one mdBook makes from the words.
pub fn section_id(chapter: &str, section: &str) -> String {
    let title = plain(section);
    sections(chapter)
        .into_iter()
        .find(|(found, _)| *found == title)
        .and_then(|(_, id)| id)
        .unwrap_or_else(|| anchor(section))
}

/// A heading without Markdown's code marks.
pub fn plain(heading: &str) -> String {
    heading.replace('`', "")
}

/// The id mdBook gives a heading: lower case, spaces to `-`, and only
/// letters, digits, `-` and `_` kept.
pub fn anchor(heading: &str) -> String {
    plain(heading)
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                Some(c.to_ascii_lowercase())
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// Where to read before an exercise: `docs/src/CHAPTER § SECTION`. In
/// Chinese, the Chinese book's page and the section's Chinese title, with
/// the English after it: the tests' failure messages name the English one.
pub fn read_first(workspace: &Workspace, exercise: &Exercise) -> String {
    let english = format!(
        "docs/src/{} § {}",
        exercise.chapter,
        plain(&exercise.section)
    );
    if !crate::lang::chinese() {
        return english;
    }
    let chapter = fs::read_to_string(workspace.root.join("docs/src").join(&exercise.chapter))
        .unwrap_or_default();
    format!(
        "docs/book/zh-CN/{}#{} § {} ({english})",
        Path::new(&exercise.chapter)
            .with_extension("html")
            .display(),
        section_id(&chapter, &exercise.section),
        plain(crate::lang::tr(&exercise.section)),
    )
}

/// Where a chapter's exercise page goes, relative to the root.
pub fn page_path(chapter: &str) -> PathBuf {
    Path::new("docs/src/exercises").join(chapter)
}

/// Every lesson's page: (path relative to the root, text).
pub fn pages(workspace: &Workspace) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut chapters: Vec<&str> = workspace
        .exercises
        .iter()
        .map(|e| e.chapter.as_str())
        .collect();
    chapters.dedup();
    let mut out = Vec::new();
    for chapter in chapters {
        let exercises: Vec<&Exercise> = workspace
            .exercises
            .iter()
            .filter(|e| e.chapter == chapter)
            .collect();
        out.push((page_path(chapter), page(workspace, &exercises)?));
    }
    Ok(out)
}

fn page(workspace: &Workspace, exercises: &[&Exercise]) -> anyhow::Result<String> {
    let Some(first) = exercises.first() else {
        return Ok(String::new());
    };
    let chapter = fs::read_to_string(workspace.root.join("docs/src").join(&first.chapter))
        .unwrap_or_default();
    let mut text = format!(
        "<!-- Made by `cargo exercise book` from {}: edit that file and run the command again. -->\n\n",
        first.catalogue.display()
    );
    text.push_str("| exercise | what your code must do | read first |\n|---|---|---|\n");
    for exercise in exercises {
        text.push_str(&format!(
            "| {} {} | {} | [{}](#{}) |\n",
            exercise.id,
            exercise.title,
            exercise.behaviour,
            plain(&exercise.section),
            section_id(&chapter, &exercise.section)
        ));
    }
    for exercise in exercises {
        let files = workspace
            .files_of(&exercise.id)?
            .iter()
            .map(|path| format!("`{}`", path.display()))
            .collect::<Vec<_>>()
            .join(", ");
        let tests = exercise
            .tests
            .iter()
            .map(|test| format!("- {}", test.sentence()))
            .collect::<Vec<_>>()
            .join("\n");
        text.push_str(&format!(
            "\n### Exercise {id}: {title} {{#exercise-{slug}}}\n\n\
             **Your code must** {behaviour}.\n\n\
             It lives in {files}; read [{section}](#{anchor}) first.\n\n\
             ```console\n\
             $ cargo exercise start {id}\n\
             $ cargo exercise check {id}\n\
             $ cargo exercise hint {id}\n\
             ```\n\n\
             `start` blanks the code (your other changes are kept), `check` builds and runs \
             only its tests, `hint` gives one hint at a time.\n\n\
             The check passes when these hold:\n\n{tests}\n",
            id = exercise.id,
            slug = exercise.id.replace('.', "-"),
            title = exercise.title,
            behaviour = exercise.behaviour.trim_end_matches('.'),
            section = plain(&exercise.section),
            anchor = section_id(&chapter, &exercise.section),
        ));
    }
    Ok(text)
}

/// Writes every page; returns the paths written.
pub fn write_pages(workspace: &Workspace) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (path, text) in pages(workspace)? {
        crate::workspace::write(&workspace.root.join(&path), &text)?;
        written.push(path);
    }
    Ok(written)
}

/// The pages that differ from what the catalogues make.
pub fn stale_pages(workspace: &Workspace) -> anyhow::Result<Vec<PathBuf>> {
    let mut stale = Vec::new();
    for (path, text) in pages(workspace)? {
        if fs::read_to_string(workspace.root.join(&path))
            .ok()
            .as_deref()
            != Some(text.as_str())
        {
            stale.push(path);
        }
    }
    Ok(stale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headings(chapter: &str) -> Vec<String> {
        sections(chapter)
            .into_iter()
            .map(|(title, _)| title)
            .collect()
    }

    #[test]
    fn anchors_are_what_mdbook_makes() {
        assert_eq!(
            anchor("Steps 1 to 3: socket, bind, listen"),
            "steps-1-to-3-socket-bind-listen"
        );
        assert_eq!(anchor("The `WHERE` trap"), "the-where-trap");
    }

    #[test]
    fn headings_skip_code_blocks() {
        let text = "# One\n\n```console\n# not a heading\n```\n## Two `x`\n";
        assert_eq!(headings(text), ["One", "Two x"]);
    }
}

/// The compiler errors "Rust for a Python programmer" explains, with the
/// heading of their entry. A learner's socket code meets these most.
const EXPLAINED_ERRORS: [(&str, &str); 3] = [
    ("E0382", "E0382: borrow of moved value: `stream`"),
    ("E0596", "E0596: cannot borrow `stream` as mutable"),
    (
        "E0597",
        "E0597: `slot` does not live long enough, and the guard that lives too short",
    ),
];

/// The entries of "Rust for a Python programmer" that explain an error in
/// `compiler_output`, as (code, heading), each once.
pub fn explained_errors(compiler_output: &str) -> Vec<(&'static str, &'static str)> {
    EXPLAINED_ERRORS
        .iter()
        .filter(|(code, _)| compiler_output.contains(&format!("error[{code}]")))
        .copied()
        .collect()
}

#[cfg(test)]
mod explained {
    use super::*;

    /// Each entry names a heading the chapter really has, and a build
    /// failing with its code is pointed to it.
    #[test]
    fn the_errors_the_python_chapter_explains_are_found_and_their_headings_exist() {
        let chapter =
            std::fs::read_to_string(crate::default_root().join("docs/src/rust-for-python.md"))
                .unwrap();
        for (code, heading) in EXPLAINED_ERRORS {
            assert!(
                sections(&chapter)
                    .iter()
                    .any(|(title, _)| *title == plain(heading)),
                "rust-for-python.md has no heading `{heading}` for {code}"
            );
        }
        let output = "error[E0596]: cannot borrow `stream` as mutable\nerror[E0382]: x";
        let found: Vec<&str> = explained_errors(output).iter().map(|e| e.0).collect();
        assert_eq!(found, ["E0382", "E0596"]);
        assert!(explained_errors("error[E0308]: mismatched types").is_empty());
    }
}
