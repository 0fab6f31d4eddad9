//! Which tests can see an exercise: what `check` and `verify` run.
//!
//! 1. The exercise's listed tests, in the catalogue's order (the simplest
//!    failure comes first).
//! 2. Every other test of the lessons its code is in: all test targets of
//!    the package whose `src/` holds a region (unit tests included), of the
//!    packages its listed tests belong to, and, for a region in
//!    `crates/common`, of every lesson whose `src/` calls the function the
//!    region sits in (directly, or through another function of `common`).
//! 3. The cross-lesson tests of the test kit (`tests/tests/*.rs`) that run
//!    one of those lessons' binaries: the file names the binary, as
//!    `"02-server"`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::catalogue::{Exercise, TestRef};
use crate::regions::{self, Source};
use crate::workspace::Workspace;

/// The package of the test kit, whose `tests/` run lessons together.
pub const KIT: &str = "testkit";

/// One workspace member: its package name, folder and binaries.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub dir: PathBuf,
    pub bins: Vec<String>,
}

/// What to build and run for one or more exercises.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Run first, in this order.
    pub listed: Vec<TestRef>,
    /// Every test of these packages runs next, in this order.
    pub packages: Vec<String>,
    /// Then these test targets of the test kit.
    pub cross: Vec<String>,
    /// `(package, binary)` the cross-lesson tests build at run time.
    pub binaries: Vec<(String, String)>,
}

impl Selection {
    /// Only the listed tests (what a blank exercise must fail).
    pub fn listed(tests: &[TestRef]) -> Selection {
        Selection {
            listed: tests.to_vec(),
            ..Selection::default()
        }
    }

    /// Several selections as one: the listed tests of all, then all the
    /// packages, then all the cross-lesson targets.
    pub fn merge(selections: &[Selection]) -> Selection {
        let mut merged = Selection::default();
        for selection in selections {
            for test in &selection.listed {
                if !merged.listed.contains(test) {
                    merged.listed.push(test.clone());
                }
            }
        }
        for selection in selections {
            for package in &selection.packages {
                if !merged.packages.contains(package) {
                    merged.packages.push(package.clone());
                }
            }
            for target in &selection.cross {
                if !merged.cross.contains(target) {
                    merged.cross.push(target.clone());
                }
            }
            for binary in &selection.binaries {
                if !merged.binaries.contains(binary) {
                    merged.binaries.push(binary.clone());
                }
            }
        }
        merged.cross.sort();
        merged
    }
}

/// Every member of the workspace under `crates/`, and the test kit.
pub fn members(root: &Path) -> Vec<Member> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(root.join("crates"))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs.push(root.join("tests"));
    let mut found = Vec::new();
    for dir in dirs {
        let Ok(manifest) = fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        let Ok(value) = manifest.parse::<toml::Table>() else {
            continue;
        };
        let Some(name) = value
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
        else {
            continue;
        };
        let bins = value
            .get("bin")
            .and_then(|b| b.as_array())
            .map(|bins| {
                bins.iter()
                    .filter_map(|b| b.get("name").and_then(|n| n.as_str()))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        found.push(Member {
            name: name.to_string(),
            dir,
            bins,
        });
    }
    found
}

/// The member whose folder holds `path` (relative to the root).
fn member_of<'a>(members: &'a [Member], root: &Path, path: &Path) -> Option<&'a Member> {
    let full = root.join(path);
    members
        .iter()
        .filter(|m| full.starts_with(&m.dir))
        .max_by_key(|m| m.dir.as_os_str().len())
}

/// The tests that can see `exercise`, in the order they run.
pub fn select(workspace: &Workspace, exercise: &Exercise) -> anyhow::Result<Selection> {
    let root = &workspace.root;
    let members = members(root);
    let mut packages: Vec<String> = Vec::new();
    let add = |packages: &mut Vec<String>, name: &str| {
        if !packages.iter().any(|p| p == name) {
            packages.push(name.to_string());
        }
    };
    let files = workspace.files_of(&exercise.id)?;
    let mut common_functions = BTreeSet::new();
    for path in &files {
        let Some(member) = member_of(&members, root, path) else {
            continue;
        };
        add(&mut packages, &member.name);
        if member.name == "common" {
            let source = Source::read(&root.join(path))?;
            if let Ok(found) = regions::regions(&source) {
                for region in found.iter().filter(|r| r.id == exercise.id) {
                    if let Some(name) = enclosing_function(&source.lines, region.begin) {
                        common_functions.insert(name);
                    }
                }
            }
        }
    }
    for test in &exercise.tests {
        add(&mut packages, &test.package);
    }
    if !common_functions.is_empty()
        && let Some(common) = members.iter().find(|m| m.name == "common")
    {
        let used = callers_in_common(&common.dir, common_functions);
        for member in &members {
            if member.name == "common"
                || member.name == KIT
                || !member.dir.starts_with(root.join("crates"))
            {
                continue;
            }
            let mut sources = Vec::new();
            regions::rust_files(&member.dir.join("src"), &mut sources);
            let calls = sources
                .iter()
                .any(|path| fs::read_to_string(path).is_ok_and(|text| calls_any(&text, &used)));
            if calls {
                add(&mut packages, &member.name);
            }
        }
    }
    packages.retain(|p| p != KIT);

    // The cross-lesson tests that run one of these lessons' binaries.
    let bins: Vec<&Member> = members
        .iter()
        .filter(|m| packages.contains(&m.name))
        .collect();
    let mut cross = Vec::new();
    let mut binaries: Vec<(String, String)> = Vec::new();
    let mut kit_files = Vec::new();
    if let Ok(entries) = fs::read_dir(root.join("tests/tests")) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "rs") {
                kit_files.push(path);
            }
        }
    }
    kit_files.sort();
    for path in kit_files {
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let names = |bin: &str| text.contains(&format!("\"{bin}\""));
        if !bins.iter().any(|m| m.bins.iter().any(|b| names(b))) {
            continue;
        }
        if let Some(stem) = path.file_stem() {
            cross.push(stem.to_string_lossy().into_owned());
        }
        // Every lesson binary it names, built before the tests run.
        for member in &members {
            for bin in &member.bins {
                let pair = (member.name.clone(), bin.clone());
                if names(bin) && !binaries.contains(&pair) {
                    binaries.push(pair);
                }
            }
        }
    }
    Ok(Selection {
        listed: exercise.tests.clone(),
        packages,
        cross,
        binaries,
    })
}

/// The name of the function whose body holds line `at`: the nearest line
/// above it, less indented, that declares `fn NAME`.
pub fn enclosing_function(lines: &[String], at: usize) -> Option<String> {
    let indent = |line: &str| line.len() - line.trim_start().len();
    let mut limit = indent(lines.get(at)?);
    for line in lines[..at].iter().rev() {
        if line.trim().is_empty() {
            continue;
        }
        let here = indent(line);
        if here >= limit {
            continue;
        }
        limit = here;
        if let Some(name) = fn_name(line) {
            return Some(name);
        }
    }
    None
}

/// `NAME` of a line that declares `fn NAME`.
fn fn_name(line: &str) -> Option<String> {
    let at = line.find("fn ")?;
    if at > 0 && !line[..at].ends_with(' ') {
        return None;
    }
    let rest = &line[at + 3..];
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// `names`, and every function of `common` that calls one of them, until
/// nothing new is found.
fn callers_in_common(dir: &Path, mut names: BTreeSet<String>) -> BTreeSet<String> {
    let mut sources = Vec::new();
    regions::rust_files(&dir.join("src"), &mut sources);
    // Each function of common, with the text from its `fn` line to the next.
    let mut functions: Vec<(String, String)> = Vec::new();
    for path in sources {
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let mut current: Option<(String, String)> = None;
        for line in text.lines() {
            if let Some(name) = fn_name(line) {
                if let Some(done) = current.take() {
                    functions.push(done);
                }
                current = Some((name, String::new()));
                continue;
            }
            if let Some((_, body)) = current.as_mut() {
                body.push_str(line);
                body.push('\n');
            }
        }
        functions.extend(current);
    }
    loop {
        let before = names.len();
        for (name, body) in &functions {
            if !names.contains(name) && calls_any(body, &names) {
                names.insert(name.clone());
            }
        }
        if names.len() == before {
            return names;
        }
    }
}

/// Whether `text` calls one of `names` (`name(` or `name::<`).
fn calls_any(text: &str, names: &BTreeSet<String>) -> bool {
    names.iter().any(|name| {
        text.match_indices(name.as_str()).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = &text[at + name.len()..];
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                && (after.starts_with('(') || after.starts_with("::<"))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_function_around_a_region_is_found() {
        let lines: Vec<String> = "impl X {\n    pub fn try_take(&self) -> u8 {\n        // exercise 3.5: begin\n        let a = 1;\n"
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(enclosing_function(&lines, 2).as_deref(), Some("try_take"));
        let names: BTreeSet<String> = ["close_gently".to_string()].into();
        assert!(calls_any("common::close_gently(stream, LINGER)", &names));
        assert!(!calls_any("fn close_gently_later()", &names));
    }

    /// The real workspace: 2.3's check runs all of lesson 2 and the
    /// cross-lesson tests that start `02-server`; 2.4's, whose second region
    /// is `close_gently` in common, runs every lesson that closes with it.
    #[test]
    fn the_real_lessons_select_their_own_and_their_users_tests() {
        let workspace = Workspace::open(&crate::default_root()).unwrap();
        let server = select(&workspace, workspace.find("2.3").unwrap()).unwrap();
        assert_eq!(server.packages, ["server"]);
        assert!(
            server.cross.contains(&"client_and_server".to_string()),
            "{server:?}"
        );
        assert!(!server.cross.contains(&"book".to_string()), "{server:?}");
        assert!(
            server
                .binaries
                .contains(&("client".to_string(), "01-client".to_string()))
        );
        let close = select(&workspace, workspace.find("2.4").unwrap()).unwrap();
        assert!(close.packages.contains(&"common".to_string()), "{close:?}");
        assert!(
            close.packages.contains(&"multi-client".to_string()),
            "{close:?}"
        );
    }
}
