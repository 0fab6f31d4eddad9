//! Building and running the tests that can see an exercise.
//!
//! One `cargo test --no-run --message-format=json` builds every test
//! target needed and says where each executable is; then every test runs in
//! a process of its own (`EXE --exact NAME`), many at once, in the order of
//! the selection. Stopping at the first failure kills the tests that come
//! after it as soon as every test before it is known to pass, so the
//! failure reported is always the first in order, however the runs
//! interleave.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Deserialize;

use crate::catalogue::TestRef;
use crate::select::{self, Member, Selection};

/// The longest one build may take.
pub const BUILD_DEADLINE: Duration = Duration::from_secs(900);
/// The longest one test may take. The lessons' tests wait at most a few
/// seconds for anything; a test past this is stuck.
pub const TEST_DEADLINE: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Failed,
    /// Ignored by the test itself (a tool it needs is missing).
    Ignored,
    /// Not run, or stopped, because an earlier test failed.
    Stopped,
    /// libtest never reported it: the name is wrong, or the run died.
    NotRun,
}

/// Whether a run goes on after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    AtFirstFailure,
    Never,
}

/// A compiler message about a workspace file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// Relative to the workspace root, as rustc names it.
    pub file: String,
    pub line: usize,
    pub level: String,
    /// `unused_variables`, `clippy::unused_io_amount`, ...
    pub code: String,
    pub rendered: String,
}

/// What running some tests found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The compiler's complaint, when the tests did not build.
    pub build_error: Option<String>,
    /// Every test planned, in the order it runs.
    pub order: Vec<TestRef>,
    pub verdicts: BTreeMap<TestRef, Verdict>,
    /// Each failed test's message (what it printed, its panic).
    pub messages: BTreeMap<TestRef, String>,
    /// Everything the failed tests printed, for `verify`'s search.
    pub output: String,
    /// The first test in order that did not pass.
    pub first_failure: Option<TestRef>,
    /// The warnings of the build.
    pub diagnostics: Vec<Diagnostic>,
    pub build_time: Duration,
    pub test_time: Duration,
    /// How long each test that ran took, from its start to its end.
    pub durations: BTreeMap<TestRef, Duration>,
}

impl Outcome {
    pub fn verdict(&self, test: &TestRef) -> Verdict {
        self.verdicts.get(test).copied().unwrap_or(Verdict::NotRun)
    }

    pub fn count(&self, verdict: Verdict) -> usize {
        self.verdicts.values().filter(|v| **v == verdict).count()
    }

    /// The test that took longest, and how long: what a passing verdict
    /// waits for.
    pub fn slowest(&self) -> Option<(&TestRef, Duration)> {
        self.durations
            .iter()
            .max_by_key(|(_, took)| **took)
            .map(|(test, took)| (test, *took))
    }
}

/// Where `cargo` runs and what it builds into.
#[derive(Debug, Clone)]
pub struct Place<'a> {
    pub root: &'a Path,
    /// None: the workspace's own.
    pub target_dir: Option<&'a Path>,
    /// Extra environment for cargo and the tests.
    pub env: &'a [(&'a str, &'a str)],
    /// Build the lessons' other tests, and the cross-lesson ones, while the
    /// tests before them run (what a learner waits for), rather than only
    /// once those have passed (what `verify` wants: most mistakes fail
    /// among the listed tests, and never need the rest).
    pub overlap: bool,
}

/// Set by Ctrl-C (SIGINT) or SIGTERM once [`stop_on_signals`] was called.
/// Each test runs in a process group of its own, which the terminal's
/// Ctrl-C does not reach: the run kills the tests (and the servers they
/// started) itself, and ends, rather than leave them running behind it.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Makes Ctrl-C and SIGTERM end a run cleanly (see [`interrupted`]); a
/// second one ends the program at once, should that hang.
pub fn stop_on_signals() -> std::io::Result<()> {
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, &INTERRUPTED)?;
        signal_hook::flag::register(signal, &INTERRUPTED)?;
    }
    Ok(())
}

/// Whether Ctrl-C or SIGTERM came: what was running has been stopped, and
/// what the run says is not a verdict.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// How many tests run at once. They mostly wait on sockets and timers, so
/// many more than the cores; `EXERCISE_JOBS` overrides it.
pub fn jobs() -> usize {
    std::env::var("EXERCISE_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(12)
}

/// Builds what `selection` needs and runs its tests in order. Snapshots can
/// never be written: every `INSTA_*` setting of the caller is removed and
/// `INSTA_UPDATE=no` set, so a wrong program cannot pass by rewriting the
/// lesson's expected output.
pub fn run(place: &Place, selection: &Selection, stop: Stop) -> Outcome {
    let mut outcome = Outcome::default();
    let members = select::members(place.root);
    let mut executables: Vec<Executable> = Vec::new();
    let mut plan: Vec<Job> = Vec::new();
    let mut runner = Runner {
        took_before: durations::load(place),
        ..Runner::default()
    };
    let started = Instant::now();
    let mut building = Duration::ZERO;

    // Each stage builds only what it runs, so a failure among the listed
    // tests never waits for the other test targets to compile. Every build
    // is `cargo test --no-run -p PACKAGE`, one package at a time, as
    // `cargo test -p PACKAGE` builds it: the same features, so the check
    // and the learner's own `cargo test` share their artifacts.
    let mut later: Vec<Stage> = Vec::new();
    if !selection.packages.is_empty() {
        later.push(Stage::Lessons);
    }
    if !selection.cross.is_empty() {
        later.push(Stage::Cross);
    }
    let mut later = later.into_iter();
    let mut built = Some(Stage::Listed.build(place, selection, &members));
    let mut stage = Stage::Listed;
    building += started.elapsed();
    let mut builder: Option<(Stage, mpsc::Receiver<Result<Built, String>>)> = None;
    let mut waiting_since: Option<Instant> = None;
    loop {
        if interrupted() {
            for mut run in runner.running.drain(..) {
                kill(&mut run.child);
            }
            break;
        }
        if let Some(result) = built.take() {
            match result {
                Ok(built) => {
                    if stage == Stage::Cross {
                        // Built just now: the tests that start them need
                        // not ask Cargo again, each, one at a time.
                        runner.fresh = selection
                            .binaries
                            .iter()
                            .map(|(_, bin)| bin.clone())
                            .collect();
                    }
                    for diagnostic in built.diagnostics {
                        if !outcome.diagnostics.contains(&diagnostic) {
                            outcome.diagnostics.push(diagnostic);
                        }
                    }
                    for executable in built.executables {
                        if !executables.iter().any(|e| {
                            e.package == executable.package && e.target == executable.target
                        }) {
                            executables.push(executable);
                        }
                    }
                    stage.plan(selection, &executables, &mut plan);
                }
                // The tests already started still finish: a failure among
                // them comes first.
                Err(error) => {
                    outcome.build_error = Some(error);
                    later.by_ref().for_each(drop);
                }
            }
        }
        let stopping = stop == Stop::AtFirstFailure && runner.first_failure.is_some();
        // The next stage builds while the tests run (`overlap`, what a
        // learner waits for), or once every test so far has passed (what
        // `verify` wants: most mistakes fail among the listed tests, and
        // never need the rest). Its tests start as soon as it is built,
        // beside the ones still running: the verdict waits for the slowest
        // test, not for the slowest of each stage in turn.
        if builder.is_none()
            && !stopping
            && outcome.build_error.is_none()
            && (place.overlap || runner.idle(&plan, stop))
            && let Some(next) = later.next()
        {
            builder = Some((next, build_in_background(place, selection, &members, next)));
        }
        if let Some((next, receiver)) = &builder {
            match receiver.try_recv() {
                Ok(result) => {
                    stage = *next;
                    built = Some(result);
                    builder = None;
                }
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => {
                    stage = *next;
                    built = Some(Err("the build of the tests stopped".to_string()));
                    builder = None;
                }
            }
        }
        if built.is_some() {
            continue;
        }
        runner.step(place, &plan, stop, &mut outcome);
        // Time in which nothing ran, waiting for a build, counts as
        // building.
        let idle = runner.idle(&plan, stop) && builder.is_some();
        match (idle, waiting_since) {
            (true, None) => waiting_since = Some(Instant::now()),
            (false, Some(since)) => {
                building += since.elapsed();
                waiting_since = None;
            }
            _ => {}
        }
        if runner.idle(&plan, stop) && builder.is_none() && (stopping || later.len() == 0) {
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    if let Some(since) = waiting_since {
        building += since.elapsed();
    }
    // A build error counts only if every test before it passed.
    if runner.first_failure.is_some() {
        outcome.build_error = None;
    }
    outcome.order = plan.iter().map(|job| job.test.clone()).collect();
    for (index, job) in plan.iter().enumerate() {
        if !outcome.verdicts.contains_key(&job.test) {
            outcome.verdicts.insert(job.test.clone(), Verdict::Stopped);
        }
        if runner.first_failure == Some(index) {
            outcome.first_failure = Some(job.test.clone());
        }
    }
    outcome.build_time = building;
    outcome.test_time = started.elapsed().saturating_sub(building);
    durations::save(place, runner.took_before, &outcome);
    outcome
}

/// How long each test took when it last passed, kept in the target folder
/// (`exercise-durations.tsv`: package, target, name, milliseconds), so
/// that the next run starts the slowest tests first.
mod durations {
    use std::collections::BTreeMap;
    use std::fs;
    use std::io::Write;
    use std::path::PathBuf;
    use std::time::Duration;

    use super::{Outcome, Place, Verdict};
    use crate::catalogue::TestRef;

    fn path(place: &Place) -> PathBuf {
        place
            .target_dir
            .map(PathBuf::from)
            .unwrap_or_else(|| place.root.join("target"))
            .join("exercise-durations.tsv")
    }

    pub fn load(place: &Place) -> BTreeMap<TestRef, Duration> {
        let text = fs::read_to_string(path(place)).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut fields = line.split('\t');
                let test = TestRef {
                    package: fields.next()?.to_string(),
                    target: fields.next()?.to_string(),
                    name: fields.next()?.to_string(),
                };
                let millis = fields.next()?.parse().ok()?;
                Some((test, Duration::from_millis(millis)))
            })
            .collect()
    }

    /// Adds the tests that passed in `outcome`, and writes the file again,
    /// atomically (a temporary file beside it, then a rename). A file that
    /// cannot be written costs only the order of the next run.
    pub fn save(place: &Place, mut took: BTreeMap<TestRef, Duration>, outcome: &Outcome) {
        for (test, duration) in &outcome.durations {
            if outcome.verdicts.get(test) == Some(&Verdict::Passed) {
                took.insert(test.clone(), *duration);
            }
        }
        let mut rows: Vec<String> = took
            .iter()
            .map(|(test, duration)| {
                format!(
                    "{}\t{}\t{}\t{}\n",
                    test.package,
                    test.target,
                    test.name,
                    duration.as_millis()
                )
            })
            .collect();
        rows.sort();
        let path = path(place);
        let temporary = path.with_extension(format!("tsv.{}", std::process::id()));
        let written = fs::File::create(&temporary).and_then(|mut file| {
            file.write_all(rows.concat().as_bytes())?;
            file.sync_all()
        });
        if written
            .and_then(|()| fs::rename(&temporary, &path))
            .is_err()
        {
            let _ = fs::remove_file(&temporary);
        }
    }
}

/// Builds one stage in the background; the result comes through the
/// channel. Left running when the run ends sooner, it finishes on its own,
/// and the next build finds its work done.
fn build_in_background(
    place: &Place,
    selection: &Selection,
    members: &[Member],
    stage: Stage,
) -> mpsc::Receiver<Result<Built, String>> {
    let (sender, receiver) = mpsc::channel();
    let root = place.root.to_path_buf();
    let target_dir = place.target_dir.map(Path::to_path_buf);
    let env: Vec<(String, String)> = place
        .env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let selection = selection.clone();
    let members = members.to_vec();
    thread::spawn(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let place = Place {
            root: &root,
            target_dir: target_dir.as_deref(),
            env: &env,
            overlap: false,
        };
        let _ = sender.send(stage.build(&place, &selection, &members));
    });
    receiver
}

/// The three stages of a run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The listed tests.
    Listed,
    /// The other tests of the lessons.
    Lessons,
    /// The cross-lesson tests of the test kit.
    Cross,
}

impl Stage {
    fn build(
        self,
        place: &Place,
        selection: &Selection,
        members: &[Member],
    ) -> Result<Built, String> {
        let mut all = Built {
            executables: Vec::new(),
            diagnostics: Vec::new(),
        };
        let mut add = |built: Built| {
            all.executables.extend(built.executables);
            all.diagnostics.extend(built.diagnostics);
        };
        match self {
            Stage::Listed => {
                // A listed cross-lesson test needs its binaries now.
                if selection.listed.iter().any(|t| t.package == select::KIT) {
                    build_binaries(place, selection, members)?;
                }
                let mut packages: Vec<&str> = Vec::new();
                for test in &selection.listed {
                    if !packages.contains(&test.package.as_str()) {
                        packages.push(&test.package);
                    }
                }
                for package in packages {
                    let mut targets: Vec<&str> = Vec::new();
                    for test in selection.listed.iter().filter(|t| t.package == package) {
                        if !targets.contains(&test.target.as_str()) {
                            targets.push(&test.target);
                        }
                    }
                    add(build(place, package, Some(&targets), members)?);
                }
            }
            Stage::Lessons => {
                for package in &selection.packages {
                    add(build(place, package, None, members)?);
                }
            }
            Stage::Cross => {
                if selection.cross.is_empty() {
                    return Ok(all);
                }
                // The binaries the cross-lesson tests start, built exactly
                // as the test kit's `binary()` builds them, so that its call
                // at run time finds them fresh. This may run beside lesson
                // tests that start the same programs: `cargo build` and
                // `cargo test` build them with the same features (see
                // crates/common/Cargo.toml), so the file is the same one,
                // and Cargo leaves it in place.
                build_binaries(place, selection, members)?;
                add(build(place, select::KIT, None, members)?);
            }
        }
        Ok(all)
    }

    /// Adds this stage's tests to the plan.
    fn plan(self, selection: &Selection, executables: &[Executable], plan: &mut Vec<Job>) {
        let find = |package: &str, target: &str| {
            executables
                .iter()
                .find(|e| e.package == package && e.target == target)
                .cloned()
        };
        let targets: Vec<&Executable> = match self {
            Stage::Listed => {
                for test in &selection.listed {
                    plan.push(Job {
                        test: test.clone(),
                        executable: find(&test.package, &test.target),
                    });
                }
                return;
            }
            Stage::Lessons => {
                let mut targets = Vec::new();
                for package in &selection.packages {
                    let mut own: Vec<&Executable> = executables
                        .iter()
                        .filter(|e| &e.package == package)
                        .collect();
                    own.sort_by_key(|e| (e.target != "lib", e.target.clone()));
                    targets.extend(own);
                }
                targets
            }
            Stage::Cross => executables
                .iter()
                .filter(|e| e.package == select::KIT && selection.cross.contains(&e.target))
                .collect(),
        };
        let listings: Vec<(Executable, JoinHandle<Vec<String>>)> = targets
            .into_iter()
            .map(|e| {
                let path = e.path.clone();
                (e.clone(), thread::spawn(move || list(&path)))
            })
            .collect();
        for (executable, listing) in listings {
            for name in listing.join().unwrap_or_default() {
                let test = TestRef {
                    package: executable.package.clone(),
                    target: executable.target.clone(),
                    name,
                };
                if !plan.iter().any(|job| job.test == test) {
                    plan.push(Job {
                        test,
                        executable: Some(executable.clone()),
                    });
                }
            }
        }
    }
}

/// A built test executable.
#[derive(Debug, Clone)]
struct Executable {
    package: String,
    /// `lib`, a binary's name, or an integration test's file stem.
    target: String,
    path: PathBuf,
    dir: PathBuf,
}

struct Built {
    executables: Vec<Executable>,
    diagnostics: Vec<Diagnostic>,
}

#[derive(Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    manifest_path: Option<PathBuf>,
    #[serde(default)]
    target: Option<Target>,
    #[serde(default)]
    profile: Option<Profile>,
    #[serde(default)]
    executable: Option<PathBuf>,
    #[serde(default)]
    message: Option<CompilerMessage>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
}

#[derive(Deserialize)]
struct Profile {
    test: bool,
}

#[derive(Deserialize)]
struct CompilerMessage {
    level: String,
    #[serde(default)]
    code: Option<Code>,
    #[serde(default)]
    spans: Vec<Span>,
    #[serde(default)]
    rendered: Option<String>,
}

#[derive(Deserialize)]
struct Code {
    code: String,
}

#[derive(Deserialize)]
struct Span {
    file_name: String,
    line_start: usize,
    is_primary: bool,
}

/// Reads cargo's JSON messages: the test executables, the diagnostics, and
/// the rendered errors.
fn read_messages(
    stdout: &str,
    members: &[Member],
) -> (Vec<Executable>, Vec<Diagnostic>, Vec<String>) {
    let mut executables = Vec::new();
    let mut diagnostics = Vec::new();
    let mut errors = Vec::new();
    for line in stdout.lines() {
        let Ok(message) = serde_json::from_str::<Message>(line) else {
            continue;
        };
        match message.reason.as_str() {
            "compiler-artifact" => {
                let (Some(target), Some(profile), Some(path), Some(manifest)) = (
                    message.target,
                    message.profile,
                    message.executable,
                    message.manifest_path,
                ) else {
                    continue;
                };
                if !profile.test {
                    continue;
                }
                let dir = manifest.parent().map(Path::to_path_buf).unwrap_or_default();
                let Some(member) = members.iter().find(|m| m.dir == dir) else {
                    continue;
                };
                let target = if target.kind.iter().any(|k| k == "lib") {
                    "lib".to_string()
                } else {
                    target.name
                };
                executables.push(Executable {
                    package: member.name.clone(),
                    target,
                    path,
                    dir,
                });
            }
            "compiler-message" => {
                let Some(message) = message.message else {
                    continue;
                };
                let rendered = message.rendered.unwrap_or_default();
                if message.level == "error" && !errors.contains(&rendered) {
                    errors.push(rendered.clone());
                }
                let Some(span) = message.spans.iter().find(|s| s.is_primary) else {
                    continue;
                };
                let diagnostic = Diagnostic {
                    file: span.file_name.clone(),
                    line: span.line_start,
                    level: message.level,
                    code: message.code.map(|c| c.code).unwrap_or_default(),
                    rendered,
                };
                if !diagnostics.contains(&diagnostic) {
                    diagnostics.push(diagnostic);
                }
            }
            _ => {}
        }
    }
    (executables, diagnostics, errors)
}

/// The diagnostics in cargo's JSON messages.
pub fn diagnostics(stdout: &str) -> Vec<Diagnostic> {
    read_messages(stdout, &[]).1
}

/// Builds the binaries the cross-lesson tests start (each exactly as the
/// test kit's `binary()` builds it, so that its call at run time finds it
/// fresh and never rewrites a binary another test is running), then every
/// test target of the selection's packages, in one cargo run.
fn build_binaries(place: &Place, selection: &Selection, members: &[Member]) -> Result<(), String> {
    for (package, bin) in &selection.binaries {
        let args = [
            "build",
            "-p",
            package,
            "--bin",
            bin,
            "--message-format=json",
        ];
        let (ok, stdout, stderr) = cargo(place, &args);
        if !ok {
            let (_, _, errors) = read_messages(&stdout, members);
            return Err(build_error(&errors, &stderr));
        }
    }
    Ok(())
}

/// Builds `targets` of a package's tests (None: all of them), in one cargo
/// run: the executables and the diagnostics.
fn build(
    place: &Place,
    package: &str,
    targets: Option<&[&str]>,
    members: &[Member],
) -> Result<Built, String> {
    let mut args = vec!["test", "--no-run", "--message-format=json", "-p", package];
    match targets {
        None => args.push("--tests"),
        Some(targets) => {
            for target in targets {
                match *target {
                    "lib" => args.push("--lib"),
                    name if members
                        .iter()
                        .any(|m| m.name == package && m.bins.iter().any(|b| b == name)) =>
                    {
                        args.extend(["--bin", name])
                    }
                    name => args.extend(["--test", name]),
                }
            }
        }
    }
    let (ok, stdout, stderr) = cargo(place, &args);
    let (executables, diagnostics, errors) = read_messages(&stdout, members);
    if !ok {
        return Err(build_error(&errors, &stderr));
    }
    Ok(Built {
        executables,
        diagnostics,
    })
}

fn build_error(errors: &[String], stderr: &str) -> String {
    let mut text = errors.join("");
    for line in stderr.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("Compiling")
            || trimmed.starts_with("Blocking")
            || trimmed.starts_with("Finished")
            || trimmed.starts_with("Checking")
        {
            continue;
        }
        if errors.is_empty() || trimmed.starts_with("error") {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// One test to run.
#[derive(Debug, Clone)]
struct Job {
    test: TestRef,
    executable: Option<Executable>,
}

/// The names of the tests in a test executable, sorted.
fn list(path: &Path) -> Vec<String> {
    let Ok(output) = Command::new(path)
        .args(["--list", "--format", "terse"])
        .stdin(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    let mut names: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

struct Running {
    index: usize,
    child: Child,
    started: Instant,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
}

/// The tests running, and the next one of the plan to start.
#[derive(Default)]
struct Runner {
    running: Vec<Running>,
    /// The tests of the plan not started yet, in the order they start: the
    /// slowest first, by [`Runner::took_before`], so that the verdict waits
    /// for the slowest test rather than for one that started late.
    queue: Vec<usize>,
    /// How many tests of the plan are in the queue or started.
    queued: usize,
    /// How long each test took when it last passed.
    took_before: BTreeMap<TestRef, Duration>,
    /// The index in the plan of the first test in order that did not pass.
    first_failure: Option<usize>,
    /// The lessons' programs built in this run, which the tests started
    /// from now on may use as they are (`TESTKIT_FRESH_BINARIES`).
    fresh: Vec<String>,
}

impl Runner {
    /// Whether every test of the plan so far has finished (or will never
    /// start, after a failure).
    fn idle(&self, plan: &[Job], stop: Stop) -> bool {
        self.running.is_empty()
            && !self
                .queue
                .iter()
                .copied()
                .chain(self.queued..plan.len())
                .any(|index| self.may_start(index, stop))
    }

    /// After a failure, only the tests before it may still start: they
    /// decide whether it is the first.
    fn may_start(&self, index: usize, stop: Stop) -> bool {
        stop == Stop::Never || self.first_failure.is_none_or(|first| index < first)
    }

    fn record(
        &mut self,
        plan: &[Job],
        outcome: &mut Outcome,
        index: usize,
        verdict: Verdict,
        message: Option<String>,
    ) {
        let test = plan[index].test.clone();
        outcome.verdicts.insert(test.clone(), verdict);
        if let Some(message) = message {
            outcome.output.push_str(&message);
            outcome.output.push('\n');
            outcome.messages.insert(test, message);
        }
        if matches!(verdict, Verdict::Failed | Verdict::NotRun)
            && self.first_failure.is_none_or(|first| index < first)
        {
            self.first_failure = Some(index);
        }
    }

    /// Starts tests of the plan, `jobs()` at a time, the slowest first,
    /// and collects those that have finished.
    fn step(&mut self, place: &Place, plan: &[Job], stop: Stop, outcome: &mut Outcome) {
        let limit = jobs();
        if self.queued < plan.len() {
            let mut added: Vec<usize> = (self.queued..plan.len()).collect();
            // Stable: tests never timed keep the plan's order.
            added.sort_by_key(|&index| {
                std::cmp::Reverse(self.took_before.get(&plan[index].test).copied())
            });
            self.queue.extend(added);
            self.queued = plan.len();
        }
        while self.running.len() < limit {
            let Some(at) = self
                .queue
                .iter()
                .position(|&index| self.may_start(index, stop))
            else {
                break;
            };
            let index = self.queue.remove(at);
            let job = &plan[index];
            let Some(executable) = &job.executable else {
                self.record(
                    plan,
                    outcome,
                    index,
                    Verdict::NotRun,
                    Some(format!(
                        "(no test target `{}` in package `{}` was built)",
                        job.test.target, job.test.package
                    )),
                );
                continue;
            };
            match start(place, executable, &job.test.name, &self.fresh) {
                Ok((child, stdout, stderr)) => self.running.push(Running {
                    index,
                    child,
                    started: Instant::now(),
                    stdout,
                    stderr,
                }),
                Err(err) => self.record(
                    plan,
                    outcome,
                    index,
                    Verdict::NotRun,
                    Some(format!(
                        "could not start {}: {err:#}",
                        executable.path.display()
                    )),
                ),
            }
        }
        // Kill what comes after a failure: it can no longer be the first.
        if stop == Stop::AtFirstFailure
            && let Some(first) = self.first_failure
        {
            self.running.retain_mut(|run| {
                if run.index > first {
                    kill(&mut run.child);
                    false
                } else {
                    true
                }
            });
        }
        let mut finished = Vec::new();
        for (at, run) in self.running.iter_mut().enumerate() {
            match run.child.try_wait() {
                Ok(Some(_)) => finished.push(at),
                Ok(None) if run.started.elapsed() > TEST_DEADLINE => {
                    kill(&mut run.child);
                    finished.push(at);
                }
                Ok(None) => {}
                Err(_) => finished.push(at),
            }
        }
        for at in finished.into_iter().rev() {
            let run = self.running.swap_remove(at);
            let took = run.started.elapsed();
            let timed_out = took > TEST_DEADLINE;
            outcome.durations.insert(plan[run.index].test.clone(), took);
            let mut text = run.stdout.join().unwrap_or_default();
            text.push_str(&run.stderr.join().unwrap_or_default());
            let name = &plan[run.index].test.name;
            let (verdicts, messages) = parse(&text);
            // One test a process: its summary says how it went, even when
            // the program's own output broke the `test NAME ... ok` line.
            let verdict = summary(&text).or_else(|| verdicts.get(name).copied());
            let (verdict, message) = match verdict.as_ref() {
                Some(Verdict::Failed) => (
                    Verdict::Failed,
                    Some(messages.get(name).cloned().unwrap_or(text)),
                ),
                Some(verdict) => (*verdict, None),
                None if timed_out => (
                    Verdict::Failed,
                    Some(format!(
                        "{text}\n(stopped: still running after {} s)",
                        TEST_DEADLINE.as_secs()
                    )),
                ),
                None => (
                    Verdict::NotRun,
                    Some(format!("(it did not report; it printed:)\n{text}")),
                ),
            };
            self.record(plan, outcome, run.index, verdict, message);
        }
    }
}

/// Starts one test in a process group of its own (so that killing it also
/// kills the servers it started), as `cargo test` would: in its package's
/// folder, with its package's variables.
fn start(
    place: &Place,
    executable: &Executable,
    name: &str,
    fresh: &[String],
) -> anyhow::Result<(Child, JoinHandle<String>, JoinHandle<String>)> {
    let mut command = Command::new(&executable.path);
    command
        .args([name, "--exact", "--test-threads", "1"])
        .current_dir(&executable.dir)
        .env("CARGO_MANIFEST_DIR", &executable.dir)
        .env("CARGO_PKG_NAME", &executable.package)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    settle_env(&mut command, place);
    if !fresh.is_empty() {
        // The test kit's `binary()` then skips its `cargo build`: a Cargo
        // run for each test that starts another lesson's program, waiting
        // in turn for the lock on the target folder.
        command.env("TESTKIT_FRESH_BINARIES", fresh.join(" "));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    let mut child = command.spawn().context("could not start it")?;
    let (stdout, stderr) = read_output(&mut child);
    Ok((child, stdout, stderr))
}

/// Reads a started child's standard output and error to their ends, each on
/// a thread of its own, so that neither pipe can fill and stop the child.
fn read_output(child: &mut Child) -> (JoinHandle<String>, JoinHandle<String>) {
    let stdout = read_all(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = read_all(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    (stdout, stderr)
}

fn read_all(pipe: Option<Box<dyn Read + Send>>) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Kills a child started in a process group of its own (a test, `watch`'s
/// check) and everything it started, and reaps it.
pub fn kill(child: &mut Child) {
    #[cfg(unix)]
    {
        if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The environment every cargo and test run gets.
fn settle_env(command: &mut Command, place: &Place) {
    command
        .env("CARGO_TERM_COLOR", "never")
        .env("RUST_BACKTRACE", "0")
        .env("INSTA_UPDATE", "no");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("INSTA_") && key != "INSTA_UPDATE" {
            command.env_remove(&key);
        }
    }
    if let Some(dir) = place.target_dir {
        command.env("CARGO_TARGET_DIR", dir);
    }
    for (key, value) in place.env {
        command.env(key, value);
    }
}

/// Runs `cargo ARGS` in the place: whether it succeeded, its standard
/// output and its standard error.
pub fn cargo(place: &Place, args: &[&str]) -> (bool, String, String) {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .args(args)
        .current_dir(place.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    settle_env(&mut command, place);
    match run_with_deadline(&mut command, BUILD_DEADLINE) {
        Ok(result) => result,
        Err(err) => (
            false,
            String::new(),
            format!("cargo {}: {err:#}\n", args.join(" ")),
        ),
    }
}

/// Runs a command to its end or to `deadline`, whichever comes first.
fn run_with_deadline(
    command: &mut Command,
    deadline: Duration,
) -> anyhow::Result<(bool, String, String)> {
    let mut child = command.spawn().context("could not start cargo")?;
    let (stdout, stderr) = read_output(&mut child);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().context("could not wait for cargo")? {
            break Some(status);
        }
        if started.elapsed() > deadline || interrupted() {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout.join().unwrap_or_default();
    let mut stderr = stderr.join().unwrap_or_default();
    let success = match status {
        Some(status) => status.success(),
        None => {
            stderr.push_str(&format!(
                "\n(stopped: still running after {} s)\n",
                deadline.as_secs()
            ));
            false
        }
    };
    Ok((success, stdout, stderr))
}

/// The verdict of a run of one test, from libtest's last line:
/// `test result: ok. 1 passed; 0 failed; 0 ignored; ...`.
fn summary(output: &str) -> Option<Verdict> {
    let line = output
        .lines()
        .rev()
        .find(|line| line.starts_with("test result:"))?;
    let count = |what: &str| {
        line.split(';')
            .find_map(|part| {
                let part = part.trim();
                let number = part.strip_suffix(what)?.trim();
                number.rsplit(' ').next()?.parse::<usize>().ok()
            })
            .unwrap_or(0)
    };
    match (count("passed"), count("failed"), count("ignored")) {
        (_, 1.., _) => Some(Verdict::Failed),
        (1.., _, _) => Some(Verdict::Passed),
        (_, _, 1..) => Some(Verdict::Ignored),
        // Nothing ran: the test is compiled out on this system (lesson 2's
        // kernel-assisted tests are Linux-only). A misspelled name cannot
        // get this far: verify checks every listed name in the sources.
        // Skipped, then, never a failure of correct code elsewhere.
        (0, 0, 0) if line.contains("filtered out") => Some(Verdict::Ignored),
        _ => None,
    }
}

type Parsed = (BTreeMap<String, Verdict>, BTreeMap<String, String>);

/// Reads libtest's plain output: `test NAME ... ok` lines, then a
/// `---- NAME stdout ----` section for each failure.
fn parse(output: &str) -> Parsed {
    let mut verdicts = BTreeMap::new();
    let mut messages = BTreeMap::new();
    let mut section: Option<(String, String)> = None;
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("test ")
            && let Some((name, result)) = rest.rsplit_once(" ... ")
        {
            let result = result.trim();
            let verdict = if result == "ok" {
                Verdict::Passed
            } else if result == "FAILED" {
                Verdict::Failed
            } else if result.starts_with("ignored") {
                Verdict::Ignored
            } else {
                continue;
            };
            verdicts.insert(name.to_string(), verdict);
            continue;
        }
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|rest| rest.strip_suffix(" stdout ----"))
        {
            if let Some((done, text)) = section.take() {
                messages.insert(done, text.trim_end().to_string());
            }
            section = Some((name.to_string(), String::new()));
            continue;
        }
        if line == "failures:" || line.starts_with("test result:") {
            if let Some((done, text)) = section.take() {
                messages.insert(done, text.trim_end().to_string());
            }
            continue;
        }
        if let Some((_, text)) = section.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    if let Some((done, text)) = section.take() {
        messages.insert(done, text.trim_end().to_string());
    }
    (verdicts, messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_output_gives_each_verdict_and_each_failure_message() {
        let output = "\nrunning 3 tests\ntest a_b ... ok\ntest c_d ... FAILED\ntest e ... ignored, needs nc\n\nfailures:\n\n---- c_d stdout ----\n\nthread 'c_d' panicked at x.rs:1:2:\nthe server should reply\n\n\nfailures:\n    c_d\n\ntest result: FAILED. 1 passed; 1 failed\n";
        let (verdicts, messages) = parse(output);
        assert_eq!(verdicts.get("a_b"), Some(&Verdict::Passed));
        assert_eq!(verdicts.get("c_d"), Some(&Verdict::Failed));
        assert_eq!(verdicts.get("e"), Some(&Verdict::Ignored));
        assert_eq!(summary(output), Some(Verdict::Failed));
        assert_eq!(
            summary(
                "test x ... [a] b\nok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 3 filtered out; finished in 0.02s\n"
            ),
            Some(Verdict::Passed)
        );
        assert_eq!(
            summary("test result: ok. 0 passed; 0 failed; 1 ignored; 0 measured"),
            Some(Verdict::Ignored)
        );
        assert_eq!(
            summary(
                "running 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 9 filtered out; finished in 0.00s"
            ),
            Some(Verdict::Ignored),
            "a test compiled out on this system is skipped, not failed"
        );
        assert_eq!(summary("no summary at all"), None);
        assert_eq!(
            messages.get("c_d").map(String::as_str),
            Some("\nthread 'c_d' panicked at x.rs:1:2:\nthe server should reply")
        );
    }
}
