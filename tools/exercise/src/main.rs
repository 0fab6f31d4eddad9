//! `cargo exercise`: the lessons' exercises, for the learner and for CI.
//!
//! The committed code is the reference solution. Regions of it, marked
//! `// exercise ID: begin` / `// exercise ID: end`, are the exercises; each
//! lesson's `exercises.toml` describes them (FORMAT.md beside this crate).
//! `start` blanks an exercise in place, `check` runs only its tests and
//! prints a verdict, `watch` checks again on every save, `verify` proves
//! in CI that every exercise fails when blank and passes when solved.

mod bench;
mod book;
mod catalogue;
mod commands;
mod fold;
mod lang;
mod lints;
mod regions;
mod run;
mod select;
mod verify;
mod watch;
mod workspace;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::{check, digests, list, show, start};
use workspace::Workspace;

const EXAMPLES: &str = "\
Examples:
  cargo exercise                 every exercise, its state, and what to do next
  cargo exercise start 2.1       blank exercise 2.1 so you can write it
  cargo exercise check 2.1       build and run every test that sees it; a short verdict
  cargo exercise watch 2.1       check it again on every save (Ctrl-C stops)
  cargo exercise watch --poll    the same for the exercise you are on, polling the files
                                 (for WSL2's Windows drives and network folders)
  cargo exercise hint 2.1        the next hint (one at a time)
  cargo exercise diff 2.1        your code against the reference
  cargo exercise solution 2.1    show the reference
  cargo exercise reset 2.1       back to blank (asks first; your code is kept)
  cargo exercise restore 2.1     back to the reference (your code is kept)
  cargo exercise verify          CI: every exercise fails blank and passes solved
  cargo exercise digests         (authors) record the reference's digests after changing it
  cargo exercise bench           how long a check takes after a one-line edit
  cargo exercise mdbook-preprocessor   run by `mdbook build docs` (docs/book.toml)

Plain `cargo test -p server` checks lesson 2 as well. Your replaced code is
always kept in .exercise/saved/ first.

In Chinese (中文): cargo exercise --lang zh-CN, or any command with LANG
(or LC_ALL) starting with zh, e.g. LANG=zh_CN.UTF-8 cargo exercise.";

/// The lessons' exercises: start one, write it, check it.
#[derive(Parser)]
#[command(name = "cargo exercise", version, after_help = EXAMPLES)]
struct Args {
    #[command(subcommand)]
    command: Option<Action>,

    /// The workspace to work on (default: the one this tool belongs to).
    #[arg(long, value_name = "DIR", hide = true, global = true)]
    root: Option<PathBuf>,

    /// The language to speak: `en`, or `zh-CN` for Simplified Chinese
    /// (default: from LC_ALL, LC_MESSAGES or LANG; English unless `zh...`).
    #[arg(long, value_name = "LANG", global = true)]
    lang: Option<String>,
}

#[derive(Subcommand)]
enum Action {
    /// Every exercise, lesson by lesson, with its state and the next one to do.
    List,
    /// Blanks an exercise's code so you can write it yourself.
    Start {
        /// The exercise, e.g. 2.1.
        id: String,
        /// Start even if the files have other changes of yours (they are kept).
        #[arg(long)]
        force: bool,
    },
    /// Builds and runs every test that can see an exercise (its own first),
    /// and says what holds.
    Check {
        /// The exercise (default: the one you are working on).
        id: Option<String>,
    },
    /// Checks an exercise again each time one of its files is saved; after
    /// a pass, offers the next one.
    #[command(after_help = "\
Examples:
  cargo exercise watch 2.1       check 2.1 now and again after every save; Ctrl-C stops
  cargo exercise watch           the same for the exercise you are on
  cargo exercise watch --poll    for saves that go unnoticed (WSL2's /mnt/c, network folders)")]
    Watch {
        /// The exercise (default: the one you are working on).
        id: Option<String>,
        /// Look at the files twice a second instead of waiting for file
        /// events (for folders where saves send none: WSL2's Windows
        /// drives, network folders; such folders are polled anyway).
        #[arg(long)]
        poll: bool,
    },
    /// Shows the next hint for an exercise.
    Hint { id: String },
    /// Shows your code in an exercise against the reference.
    Diff { id: String },
    /// Prints the reference code of an exercise.
    Solution { id: String },
    /// Puts an exercise back to blank (your code is saved first).
    Reset {
        id: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Puts the reference code back (your code is saved first).
    Restore { id: String },
    /// For CI: proves every exercise fails when blank and passes when solved.
    Verify {
        /// Only this exercise.
        #[arg(long, value_name = "ID")]
        only: Option<String>,
        /// Run each known mistake this many times; every run must catch it
        /// (a check that catches a mistake only sometimes is flaky).
        #[arg(long, value_name = "N", default_value_t = 1)]
        repeat: usize,
    },
    /// Writes the book's exercise pages from the catalogues.
    Book,
    /// Run by mdBook (docs/book.toml): shows each exercise in the book's
    /// listings as `start` leaves it, and folds the reference below.
    MdbookPreprocessor {
        #[command(subcommand)]
        query: Option<Query>,
    },
    /// For lesson authors, after changing a reference: writes the digest of
    /// each region's code into its catalogue (`digests = [...]`), which
    /// says what the reference is (verify checks them).
    Digests,
    /// Measures how long a check takes after a one-line edit (2.3, 3.3,
    /// 4.2, 5.4, 6.1), passing and failing, in a scratch copy.
    Bench {
        /// Only this exercise.
        #[arg(long, value_name = "ID")]
        only: Option<String>,
    },
}

/// What mdBook asks a preprocessor before it runs it.
#[derive(Subcommand)]
enum Query {
    /// Exits 0: every renderer is supported (the fold is HTML, which the
    /// markdown renderer keeps as written).
    Supports { renderer: String },
}

fn main() -> ExitCode {
    // `cargo exercise | head`: when the reader goes away, end quietly, as
    // other Unix tools do (SIGPIPE's default action). Rust ignores SIGPIPE,
    // so println! would otherwise panic on the broken pipe.
    #[cfg(unix)]
    {
        let always = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let _ =
            signal_hook::flag::register_conditional_default(signal_hook::consts::SIGPIPE, always);
    }
    let args = Args::parse();
    let root = args.root.unwrap_or_else(default_root);
    // Cargo names files by their absolute paths; so must the tool.
    let root = root.canonicalize().unwrap_or(root);
    // A learner's commands speak the learner's language; CI's and the
    // authors' (verify, digests, the book) speak English.
    let for_a_learner = !matches!(
        args.command,
        Some(
            Action::Verify { .. }
                | Action::Book
                | Action::MdbookPreprocessor { .. }
                | Action::Digests
                | Action::Bench { .. }
        )
    );
    // The Chinese words are read either way: an exercise started in
    // Chinese is still blank when checked in English.
    if for_a_learner {
        let speak = lang::wants_chinese(args.lang.as_deref());
        if let Err(why) = lang::load(&root, speak)
            && speak
        {
            eprintln!("note: {why}; speaking English (没有找到中文翻译，以下是英文)");
        }
    }
    match act(&root, args.command.unwrap_or(Action::List)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace this tool was built in: two folders above its manifest.
fn default_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

fn act(root: &Path, action: Action) -> anyhow::Result<ExitCode> {
    // mdBook takes a failed `supports` for "not this renderer" and builds
    // the book without the preprocessor, every solution in sight: so the
    // answer is yes before anything can fail, and a broken workspace fails
    // the run itself, which fails the build.
    if let Action::MdbookPreprocessor {
        query: Some(Query::Supports { .. }),
    } = &action
    {
        return Ok(ExitCode::SUCCESS);
    }
    let workspace = Workspace::open(root)?;
    match action {
        Action::List => list::list(&workspace),
        Action::Start { id, force } => start::start(&workspace, &id, force),
        Action::Check { id } => check::check(&workspace, id.as_deref()),
        Action::Watch { id, poll } => watch::watch(&workspace, id.as_deref(), poll),
        Action::Hint { id } => show::hint(&workspace, &id),
        Action::Diff { id } => show::diff(&workspace, &id),
        Action::Solution { id } => show::solution(&workspace, &id),
        Action::Reset { id, yes } => start::reset(&workspace, &id, yes),
        Action::Restore { id } => start::restore(&workspace, &id),
        Action::Verify { only, repeat } => {
            verify::verify(&workspace, only.as_deref(), repeat.max(1))?;
            Ok(ExitCode::SUCCESS)
        }
        Action::Bench { only } => {
            bench::bench(&workspace, only.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Action::MdbookPreprocessor { .. } => {
            fold::serve(&workspace)?;
            Ok(ExitCode::SUCCESS)
        }
        Action::Digests => {
            for path in digests::write_digests(&workspace)? {
                println!("wrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Book => {
            for path in book::write_pages(&workspace)? {
                println!("wrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
