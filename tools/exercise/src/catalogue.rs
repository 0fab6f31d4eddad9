//! The catalogues: one `exercises.toml` per lesson crate, listing its
//! exercises smallest first (the format is in FORMAT.md beside this crate).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// One exercise, as its lesson's catalogue describes it.
#[derive(Debug, Clone)]
pub struct Exercise {
    /// `2.1`: the lesson, a dot, and its place in the lesson.
    pub id: String,
    pub title: String,
    /// One sentence: what a correct program does.
    pub behaviour: String,
    /// A heading of the chapter, exactly as written there.
    pub section: String,
    /// Two or three, the last one nearly the answer.
    pub hints: Vec<String>,
    /// The tests that prove it, simplest first.
    pub tests: Vec<TestRef>,
    /// A digest of each region's reference code, in the order `solution`
    /// prints them ([`crate::regions::digest`]); empty when the catalogue
    /// has none yet. The reference is the code that has them, wherever it
    /// is found: in the file, or in git's history.
    pub digests: Vec<String>,
    /// Wrong solutions learners really write: each must fail its check.
    pub mistakes: Vec<Variant>,
    /// Correct solutions written differently: each must pass its check.
    pub alternatives: Vec<Variant>,
    pub lesson: u32,
    /// The chapter's file name under docs/src (`02-server.md`).
    pub chapter: String,
    /// The catalogue it came from, relative to the workspace root.
    pub catalogue: PathBuf,
}

/// Other code for an exercise's regions: a known mistake, or another correct
/// solution. `verify` puts it in the regions of its copy and checks it.
#[derive(Debug, Clone)]
pub struct Variant {
    pub name: String,
    /// A mistake's: the behaviour it breaks, in the words the failing test's
    /// message uses. Empty for an alternative.
    pub breaks: String,
    /// Region number (1-based, in the order `cargo exercise solution`
    /// prints them) -> its code, unindented. A region not named keeps the
    /// reference.
    pub code: BTreeMap<usize, String>,
}

/// One test: `PACKAGE:TARGET:NAME` in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TestRef {
    pub package: String,
    /// A file of the package's `tests/` without `.rs`, or `lib`.
    pub target: String,
    pub name: String,
}

impl TestRef {
    fn parse(text: &str) -> anyhow::Result<TestRef> {
        let mut parts = text.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(package), Some(target), Some(name))
                if !package.is_empty() && !target.is_empty() && !name.is_empty() =>
            {
                Ok(TestRef {
                    package: package.to_string(),
                    target: target.to_string(),
                    name: name.to_string(),
                })
            }
            _ => bail!("`{text}` is not PACKAGE:TARGET:NAME"),
        }
    }

    /// The test's name as a sentence: `replies_ok_to_a_line` reads
    /// "replies ok to a line"; a unit test's module path is left out.
    pub fn sentence(&self) -> String {
        let last = self.name.rsplit("::").next().unwrap_or(&self.name);
        last.replace('_', " ")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    lesson: u32,
    chapter: String,
    #[serde(rename = "exercise", default)]
    exercises: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    title: String,
    behaviour: String,
    section: String,
    hints: Vec<String>,
    tests: Vec<String>,
    #[serde(default)]
    digests: Vec<String>,
    #[serde(rename = "mistake", default)]
    mistakes: Vec<VariantEntry>,
    #[serde(rename = "alternative", default)]
    alternatives: Vec<VariantEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VariantEntry {
    name: String,
    /// Required for a mistake, refused for an alternative.
    breaks: Option<String>,
    code: BTreeMap<String, String>,
}

impl VariantEntry {
    fn parse(self, mistake: bool) -> anyhow::Result<Variant> {
        let name = self.name;
        let breaks = match (mistake, self.breaks) {
            (true, Some(breaks)) if !breaks.trim().is_empty() => breaks,
            (true, _) => bail!("mistake `{name}` needs `breaks`: the behaviour it breaks"),
            (false, None) => String::new(),
            (false, Some(_)) => bail!("alternative `{name}` is correct code: it breaks nothing"),
        };
        if self.code.is_empty() {
            bail!("`{name}` gives no code: a `[exercise.mistake.code]` table with `1 = ...`");
        }
        let mut code = BTreeMap::new();
        for (key, text) in self.code {
            match key.parse::<usize>() {
                Ok(number) if number >= 1 => code.insert(number, text),
                _ => bail!("`{name}`: `{key}` is not a region number (1, 2, ...)"),
            };
        }
        Ok(Variant { name, breaks, code })
    }
}

/// Every lesson's exercises, lesson by lesson, each lesson's in its
/// catalogue's order.
pub fn load(root: &Path) -> anyhow::Result<Vec<Exercise>> {
    let mut exercises = Vec::new();
    for path in catalogue_files(root)? {
        let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        let text = fs::read_to_string(&path)
            .with_context(|| format!("could not read {}", relative.display()))?;
        let file: CatalogueFile = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid catalogue", relative.display()))?;
        for entry in file.exercises {
            let tests = entry
                .tests
                .iter()
                .map(|test| TestRef::parse(test))
                .collect::<anyhow::Result<Vec<_>>>()
                .with_context(|| format!("{}, exercise {}", relative.display(), entry.id))?;
            let variants = |list: Vec<VariantEntry>, mistake: bool| {
                list.into_iter()
                    .map(|variant| variant.parse(mistake))
                    .collect::<anyhow::Result<Vec<_>>>()
                    .with_context(|| format!("{}, exercise {}", relative.display(), entry.id))
            };
            let mistakes = variants(entry.mistakes, true)?;
            let alternatives = variants(entry.alternatives, false)?;
            exercises.push(Exercise {
                id: entry.id,
                title: entry.title,
                behaviour: entry.behaviour,
                section: entry.section,
                hints: entry.hints,
                tests,
                digests: entry.digests,
                mistakes,
                alternatives,
                lesson: file.lesson,
                chapter: file.chapter.clone(),
                catalogue: relative.clone(),
            });
        }
    }
    Ok(exercises)
}

/// `crates/*/exercises.toml`, sorted, so lesson 1 comes first.
pub fn catalogue_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let crates = root.join("crates");
    let mut found = Vec::new();
    let entries =
        fs::read_dir(&crates).with_context(|| format!("could not read {}", crates.display()))?;
    for entry in entries.flatten() {
        let path = entry.path().join("exercises.toml");
        if path.is_file() {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// `text`, a catalogue, with each exercise's `digests = [...]` line set to
/// `digests[id]`: right after its `id = "..."` line, replacing the one
/// there. Only that line changes, so the author's comments and layout stay.
pub fn with_digests(text: &str, digests: &BTreeMap<String, Vec<String>>) -> String {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        out.push(line.to_string());
        let id = line
            .trim()
            .strip_prefix("id = \"")
            .and_then(|rest| rest.strip_suffix('"'));
        let Some(list) = id.and_then(|id| digests.get(id)) else {
            continue;
        };
        if lines
            .peek()
            .is_some_and(|next| next.trim_start().starts_with("digests ="))
        {
            lines.next();
        }
        let quoted: Vec<String> = list.iter().map(|d| format!("\"{d}\"")).collect();
        out.push(format!("digests = [{}]", quoted.join(", ")));
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// The exercise called `id`, or an error that lists what there is.
pub fn find<'a>(exercises: &'a [Exercise], id: &str) -> anyhow::Result<&'a Exercise> {
    match exercises.iter().find(|exercise| exercise.id == id) {
        Some(exercise) => Ok(exercise),
        None => {
            let ids: Vec<&str> = exercises.iter().map(|e| e.id.as_str()).collect();
            bail!(
                "{}",
                crate::lang::say(
                    "there is no exercise {id}; the exercises are {ids} (`cargo exercise` lists them)",
                    &[("id", &id), ("ids", &ids.join(", "))]
                )
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_reference_has_three_parts_and_a_unit_test_keeps_its_path() {
        let test = TestRef::parse("file-download:lib:paths::tests::rejects_dotfiles").unwrap();
        assert_eq!(test.package, "file-download");
        assert_eq!(test.target, "lib");
        assert_eq!(test.name, "paths::tests::rejects_dotfiles");
        assert_eq!(test.sentence(), "rejects dotfiles");
        assert!(TestRef::parse("server:server").is_err());
        assert!(TestRef::parse("server::name").is_err());
    }

    #[test]
    fn digests_go_right_after_the_id_and_replace_the_old_ones() {
        let text = "lesson = 2\n\n[[exercise]]\nid = \"2.1\"\n# kept\ntitle = \"t\"\n\n[[exercise]]\nid = \"2.2\"\ndigests = [\"old\"]\ntitle = \"u\"\n";
        let digests = BTreeMap::from([
            ("2.1".to_string(), vec!["a".to_string(), "b".to_string()]),
            ("2.2".to_string(), vec!["c".to_string()]),
        ]);
        let written = with_digests(text, &digests);
        assert_eq!(
            written,
            "lesson = 2\n\n[[exercise]]\nid = \"2.1\"\ndigests = [\"a\", \"b\"]\n# kept\ntitle = \"t\"\n\n[[exercise]]\nid = \"2.2\"\ndigests = [\"c\"]\ntitle = \"u\"\n"
        );
        assert_eq!(with_digests(&written, &digests), written);
    }
}
