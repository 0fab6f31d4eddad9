//! The workspace as the tool sees it: the catalogues, the regions in the
//! code, the reference they came from, and the learner's progress.
//!
//! Everything the tool keeps lives in `.exercise/` at the workspace root,
//! which git ignores:
//!
//! - `reference/PATH`: a lesson file with every region holding its
//!   reference, kept when the tool changes the file (for a workspace
//!   without git; the catalogue's digests say which code is the reference);
//! - `saved/`: every region of a file, as it was before the tool rewrote
//!   the file, so no work is lost (the files themselves are rewritten
//!   whole or not at all: see [`write`]);
//! - `progress`: which exercises passed their check, and how many hints
//!   were shown.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

use crate::catalogue::{self, Exercise};
use crate::regions::{self, Region, Source};

pub struct Workspace {
    pub root: PathBuf,
    pub exercises: Vec<Exercise>,
}

/// Where one exercise stands in the learner's tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Every region holds the reference solution.
    NotStarted,
    /// Every region is blank, as `start` left it.
    Blank,
    /// The learner has written something in a region.
    Started,
    /// Its check passed with exactly the code that is there now.
    Passing,
    /// Its check passed, with other code than what is there now.
    ChangedSincePassed,
}

impl State {
    pub fn words(self) -> &'static str {
        use crate::lang::tr;
        match self {
            State::NotStarted => tr("not started"),
            State::Blank => tr("started (blank)"),
            State::Started => tr("started"),
            State::Passing => tr("passing"),
            State::ChangedSincePassed => tr("changed since it passed"),
        }
    }
}

/// One region where it is in the file now, and where the same region is
/// in the file's reference (the bodies differ, so the lines do too).
pub struct RegionPair {
    pub current: Region,
    pub reference: Region,
}

/// A file that holds regions of one exercise, now and in the reference.
pub struct FileRegions {
    pub path: PathBuf,
    pub current: Source,
    pub reference: Source,
    /// Every region of the file (every exercise's), in order.
    pub regions: Vec<RegionPair>,
}

impl FileRegions {
    /// `id`'s regions.
    pub fn of<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a RegionPair> {
        self.regions
            .iter()
            .filter(move |pair| pair.current.id == id)
    }

    pub fn current_body(&self, pair: &RegionPair) -> &[String] {
        pair.current.body(&self.current)
    }

    pub fn reference_body(&self, pair: &RegionPair) -> &[String] {
        pair.reference.body(&self.reference)
    }

    /// Every region of the file as it is now.
    pub fn current_regions(&self) -> Vec<Region> {
        self.regions
            .iter()
            .map(|pair| pair.current.clone())
            .collect()
    }
}

impl Workspace {
    pub fn open(root: &Path) -> anyhow::Result<Workspace> {
        let exercises = catalogue::load(root)?;
        Ok(Workspace {
            root: root.to_path_buf(),
            exercises,
        })
    }

    pub fn find(&self, id: &str) -> anyhow::Result<&Exercise> {
        catalogue::find(&self.exercises, id)
    }

    fn store(&self) -> PathBuf {
        self.root.join(".exercise")
    }

    /// The files that hold regions of `id`, relative to the root.
    pub fn files_of(&self, id: &str) -> anyhow::Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        for path in regions::candidate_files(&self.root)? {
            let source = Source::read(&self.root.join(&path))?;
            if source
                .lines
                .iter()
                .any(|line| line.trim() == format!("// exercise {id}: begin"))
            {
                files.push(path);
            }
        }
        if files.is_empty() {
            bail!(
                "{}",
                crate::lang::say(
                    "no code is marked for exercise {id}: its `// exercise {id}: begin` line is gone. \
                     Put it back where it was (`git diff crates` shows it); `git checkout` of the \
                     file would also throw away your code in its other exercises",
                    &[("id", &id)]
                )
            );
        }
        Ok(files)
    }

    /// The reference of `path`, which now reads `current`: `current` with
    /// each region holding its exercise's reference code.
    ///
    /// The reference code of a region is the body whose digest is in its
    /// exercise's `digests` (the catalogue's), taken from the first version
    /// of the file that has one: the file itself (an exercise not started),
    /// the copy the tool kept, git's HEAD, then older commits, newest
    /// first. So it is always the lesson's code for the catalogue checked
    /// out: never a learner's commit of an attempt (its digest is not
    /// there), and never code older than a pull (nor is that one's). An
    /// exercise without digests takes the kept copy's code, else HEAD's.
    ///
    /// `id`'s regions must be found; another exercise's region that is not
    /// keeps what it holds now (nothing reads it).
    fn reference(
        &self,
        path: &Path,
        current: &Source,
        current_regions: &[Region],
        id: &str,
    ) -> anyhow::Result<Source> {
        let kept_path = self.store().join("reference").join(path);
        let kept = move || kept_path.is_file().then(|| Source::read(&kept_path).ok())?;
        let head = || {
            self.committed("HEAD", path)
                .map(|text| Source::parse(&text))
        };
        let history = || {
            self.history(path)
                .into_iter()
                .skip(1) // HEAD, already tried
                .filter_map(|commit| self.committed(&commit, path))
                .map(|text| Source::parse(&text))
        };
        // Each version is read once, and only when a region needs it.
        let mut older = std::iter::once_with(kept)
            .chain(std::iter::once_with(head))
            .flatten()
            .chain(std::iter::once_with(history).flatten());
        let mut versions: Vec<(Source, Vec<Region>)> =
            vec![(current.clone(), current_regions.to_vec())];

        let mut bodies = Vec::new();
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for region in current_regions {
            let nth = seen.entry(region.id.as_str()).or_default();
            let digests = self
                .exercises
                .iter()
                .find(|e| e.id == region.id)
                .map(|e| e.digests.as_slice())
                .unwrap_or_default();
            // Without digests, the file itself cannot tell its own code
            // from the learner's, so it is tried last.
            let fits = |at: usize, body: &[String]| {
                if digests.is_empty() {
                    at > 0
                } else {
                    digests.contains(&regions::digest(body))
                }
            };
            let mut found = None;
            let mut at = 0;
            loop {
                if at == versions.len() {
                    match older.next() {
                        Some(source) => {
                            let found = regions::regions(&source).unwrap_or_default();
                            versions.push((source, found));
                        }
                        None => break,
                    }
                }
                let (source, found_regions) = &versions[at];
                let body = found_regions
                    .iter()
                    .filter(|r| r.id == region.id)
                    .nth(*nth)
                    .map(|r| r.body(source));
                if let Some(body) = body
                    && fits(at, body)
                {
                    found = Some(body.to_vec());
                    break;
                }
                at += 1;
            }
            *nth += 1;
            match found {
                Some(body) => bodies.push(body),
                None if region.id == id && !digests.is_empty() => bail!(
                    "the reference of exercise {id} ({}, line {}) is nowhere: no version of the \
                     file (as it is, .exercise/reference/, git's history) has code with the \
                     digests in its catalogue. `git checkout {}` brings back the lesson's \
                     version, and throws away your code in every exercise of the file: copy it \
                     first. If you changed the reference on purpose: `cargo exercise digests`",
                    path.display(),
                    region.first_line(),
                    path.display()
                ),
                None => bodies.push(region.body(current).to_vec()),
            }
        }
        Ok(regions::replace_bodies(current, current_regions, &bodies))
    }

    /// `path` as committed in `commit`, if this is a git checkout.
    fn committed(&self, commit: &str, path: &Path) -> Option<String> {
        // `./` makes the path relative to the root, wherever the
        // repository's top is.
        let spec = format!("{commit}:./{}", path.to_string_lossy().replace('\\', "/"));
        let output = Command::new("git")
            .arg("-C")
            .arg(&self.root)
            .args(["show", &spec])
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The commits that changed `path`, newest first (at most 200: a
    /// reference older than that is not worth the wait).
    fn history(&self, path: &Path) -> Vec<String> {
        let output = Command::new("git")
            .arg("-C")
            .arg(&self.root)
            .args(["log", "--format=%H", "-n", "200", "--"])
            .arg(path)
            .output();
        match output {
            Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout)
                .lines()
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The lines outside the regions that `path` had before the learner's
    /// uncommitted changes: git's HEAD, or without git the copy the tool
    /// kept when it first changed the file. `start` refuses a file whose
    /// lines outside the regions differ from these (none: nothing to say).
    pub fn committed_skeleton(&self, path: &Path) -> Option<Vec<String>> {
        let text = self
            .committed("HEAD", path)
            .or_else(|| fs::read_to_string(self.store().join("reference").join(path)).ok())?;
        let source = Source::parse(&text);
        let found = regions::regions(&source).ok()?;
        Some(regions::skeleton(&source, &found))
    }

    /// Keeps the reference of `path` before the tool changes it, for a
    /// workspace without git (a downloaded copy).
    pub fn keep_reference(&self, path: &Path, reference: &Source) -> anyhow::Result<()> {
        let kept = self.store().join("reference").join(path);
        let text = reference.text();
        if fs::read_to_string(&kept).ok().as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        write(&kept, &text)
    }

    /// The current and the reference regions of `path`, with `id`'s
    /// reference found.
    pub fn load_file(&self, path: &Path, id: &str) -> anyhow::Result<FileRegions> {
        let current = Source::read(&self.root.join(path))?;
        let current_regions = marked(path, &current)?;
        let reference = self.reference(path, &current, &current_regions, id)?;
        // The same regions, where the reference's bodies put them.
        let reference_regions = regions::regions(&reference).map_err(|problems| {
            anyhow::anyhow!(
                "the reference of {} has broken markers: {}",
                path.display(),
                problems.join("; ")
            )
        })?;
        // The reference is the file with other bodies, so its regions are
        // the same, in the same order.
        if reference_regions.len() != current_regions.len() {
            bail!(
                "the reference of {} has {} exercise regions where the file has {}: put the \
                 `// exercise ID: begin/end` lines back as they were (`git diff {}` shows them)",
                path.display(),
                reference_regions.len(),
                current_regions.len(),
                path.display()
            );
        }
        let regions = current_regions
            .into_iter()
            .zip(reference_regions)
            .map(|(current, reference)| RegionPair { current, reference })
            .collect();
        Ok(FileRegions {
            path: path.to_path_buf(),
            current,
            reference,
            regions,
        })
    }

    /// A fingerprint of what `id`'s regions hold now (FNV-1a, stable across
    /// builds), so `passing` means "passed with exactly this code". The
    /// reference's stub lines are comments, left out: the reference that
    /// `restore` puts back has the fingerprint of the same code written
    /// without them. It needs no reference, so a lesson's author can check
    /// a changed reference before writing its digests.
    pub fn fingerprint(&self, id: &str) -> anyhow::Result<u64> {
        let mut hash = regions::FNV_START;
        for (_, _, body) in self.bodies_of(id)? {
            hash = regions::fnv1a(hash, regions::solution_body(&body));
        }
        Ok(hash)
    }

    /// What the regions of `id` hold now, in the order `solution` prints
    /// them: the file, the region, and its lines.
    pub fn bodies_of(&self, id: &str) -> anyhow::Result<Vec<(PathBuf, Region, Vec<String>)>> {
        let mut found = Vec::new();
        for path in self.files_of(id)? {
            let source = Source::read(&self.root.join(&path))?;
            for region in marked(&path, &source)?.into_iter().filter(|r| r.id == id) {
                let body = region.body(&source).to_vec();
                found.push((path.clone(), region, body));
            }
        }
        Ok(found)
    }

    /// Every file of `exercise`, loaded.
    pub fn load(&self, exercise: &Exercise) -> anyhow::Result<Vec<FileRegions>> {
        self.files_of(&exercise.id)?
            .iter()
            .map(|path| self.load_file(path, &exercise.id))
            .collect()
    }

    /// Where `exercise` stands: a fact about its code now, read without
    /// running anything.
    pub fn state(&self, exercise: &Exercise, progress: &Progress) -> anyhow::Result<State> {
        let files = self.load(exercise)?;
        let passed = progress.passed.get(&exercise.id);
        if passed == Some(&self.fingerprint(&exercise.id)?) {
            return Ok(State::Passing);
        }
        let mut all_blank = true;
        for file in &files {
            for pair in file.of(&exercise.id) {
                all_blank &= regions::is_blank(
                    file.current_body(pair),
                    file.reference_body(pair),
                    &pair.reference,
                    exercise,
                );
            }
        }
        Ok(if all_blank {
            State::Blank
        } else if passed.is_some() {
            State::ChangedSincePassed
        } else if holds_reference(&files, &exercise.id) {
            State::NotStarted
        } else {
            State::Started
        })
    }

    /// Writes what every region of `files` holds now into `.exercise/saved/`
    /// (`exercise`'s and any other exercise's in the same files), so that
    /// rewriting those files never loses work, whatever goes wrong on the
    /// way. Returns the file written.
    pub fn save_regions(
        &self,
        exercise: &Exercise,
        files: &[FileRegions],
        why: &str,
    ) -> anyhow::Result<PathBuf> {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let path = self
            .store()
            .join("saved")
            .join(format!("{stamp}-exercise-{}.txt", exercise.id));
        let mut text = format!(
            "# every exercise region of the files of {} before `{why}`\n",
            exercise.id
        );
        for file in files {
            for pair in &file.regions {
                text.push_str(&format!(
                    "\n## exercise {}, {} line {}\n",
                    pair.current.id,
                    file.path.display(),
                    pair.current.first_line()
                ));
                for line in file.current_body(pair) {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
        write(&path, &text)?;
        Ok(path.strip_prefix(&self.root).unwrap_or(&path).to_path_buf())
    }

    /// Replaces `exercise`'s regions in every file with `make(reference body,
    /// reference region)`, and writes the files.
    pub fn rewrite(
        &self,
        exercise: &Exercise,
        files: &[FileRegions],
        make: impl Fn(&[String], &Region) -> Vec<String>,
    ) -> anyhow::Result<()> {
        for file in files {
            let bodies: Vec<Vec<String>> = file
                .regions
                .iter()
                .map(|pair| {
                    if pair.current.id == exercise.id {
                        make(file.reference_body(pair), &pair.reference)
                    } else {
                        file.current_body(pair).to_vec()
                    }
                })
                .collect();
            let source = regions::replace_bodies(&file.current, &file.current_regions(), &bodies);
            write(&self.root.join(&file.path), &source.text())?;
        }
        Ok(())
    }

    pub fn progress(&self) -> Progress {
        Progress::load(&self.store().join("progress"))
    }

    pub fn save_progress(&self, progress: &Progress) -> anyhow::Result<()> {
        write(&self.store().join("progress"), &progress.text())
    }
}

/// The regions of `source`, read from `path`, or what is wrong with its
/// markers and how to mend them without losing code.
fn marked(path: &Path, source: &Source) -> anyhow::Result<Vec<Region>> {
    regions::regions(source).map_err(|problems| {
        anyhow::anyhow!(
            "{}",
            crate::lang::say(
                "the exercise markers in {file} are broken: {problems}. Put the `// exercise ID: begin/end` \
                 lines back as they were (`git diff {file}` shows them); `git checkout` of the file \
                 would also throw away your code in its other exercises",
                &[("file", &path.display()), ("problems", &problems.join("; "))]
            )
        )
    })
}

/// Whether every region of `id` holds the reference.
pub fn holds_reference(files: &[FileRegions], id: &str) -> bool {
    files.iter().all(|file| {
        file.of(id)
            .all(|pair| file.current_body(pair) == file.reference_body(pair))
    })
}

/// The learner's progress, in a small text file:
/// `passed ID FINGERPRINT` and `hints ID SHOWN`, a line each.
#[derive(Debug, Default)]
pub struct Progress {
    pub passed: BTreeMap<String, u64>,
    pub hints: BTreeMap<String, usize>,
}

impl Progress {
    fn load(path: &Path) -> Progress {
        let mut progress = Progress::default();
        let Ok(text) = fs::read_to_string(path) else {
            return progress;
        };
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["passed", id, hash] => {
                    if let Ok(hash) = hash.parse() {
                        progress.passed.insert(id.to_string(), hash);
                    }
                }
                ["hints", id, shown] => {
                    if let Ok(shown) = shown.parse() {
                        progress.hints.insert(id.to_string(), shown);
                    }
                }
                // A line from another version of the tool: ignore it.
                _ => {}
            }
        }
        progress
    }

    fn text(&self) -> String {
        let mut text = String::from("# cargo exercise: your progress (safe to delete)\n");
        for (id, hash) in &self.passed {
            text.push_str(&format!("passed {id} {hash}\n"));
        }
        for (id, shown) in &self.hints {
            text.push_str(&format!("hints {id} {shown}\n"));
        }
        text
    }

    /// Forgets exercises the catalogues no longer have (renamed or removed
    /// after a `git pull`) and returns their ids, to be reported once.
    pub fn forget_unknown(&mut self, exercises: &[Exercise]) -> Vec<String> {
        let known = |id: &String| exercises.iter().any(|e| &e.id == id);
        let mut unknown: Vec<String> = self
            .passed
            .keys()
            .chain(self.hints.keys())
            .filter(|id| !known(id))
            .cloned()
            .collect();
        unknown.sort();
        unknown.dedup();
        self.passed.retain(|id, _| known(id));
        self.hints.retain(|id, _| known(id));
        unknown
    }
}

/// Writes `text` to `path` whole or not at all: into a temporary file in
/// the same folder, flushed to the disk, then renamed over `path` (a rename
/// within a folder is atomic). A full disk, or a crash half way, leaves the
/// old file as it was: a source file cut short would lose the learner's
/// code and the markers that find it. The file keeps its permissions.
pub fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    fs::create_dir_all(parent).with_context(|| format!("could not create {}", parent.display()))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary = parent.join(format!(".{name}.exercise-{}", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(text.as_bytes())?;
        if let Ok(metadata) = fs::metadata(path) {
            file.set_permissions(metadata.permissions())?;
        }
        file.sync_all()?;
        drop(file);
        fs::rename(&temporary, path)?;
        // The rename is in the folder: flushing it makes the new name last.
        #[cfg(unix)]
        fs::File::open(parent)?.sync_all()?;
        Ok(())
    })();
    if let Err(error) = written {
        // Nothing useful is in it, and it must not be mistaken for the file.
        let _ = fs::remove_file(&temporary);
        bail!(
            "{}",
            crate::lang::say(
                "could not write {file} ({error}); it is unchanged. Free some disk space (or fix the \
                 folder's permissions) and run the command again",
                &[("file", &path.display()), ("error", &error)]
            )
        );
    }
    Ok(())
}
