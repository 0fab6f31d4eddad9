//! Outside programs (`nc`, `python3`, `script`) and the Python stand-ins
//! for the original lesson's programs: found, or a clear skip (never in CI).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The path of an outside program such as `nc` or `python3`, or `None` after
/// printing why the test is skipped. In CI (`CI` is set) a missing tool fails
/// the test instead: `.ci/run` installs them, so CI skips nothing.
///
/// `nc` counts only if it is the OpenBSD netcat: the tests use its `-N`.
/// A test that calls this for `nc` or `python3` must also be marked ignored
/// when the tool is missing, `#[cfg_attr(not(has_nc), ignore = "...")]`
/// (the cfg comes from `tests/build.rs`, which this package and the lessons
/// with such tests run), so that the test result says it did not run.
#[track_caller]
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = on_path(name).filter(|path| name != "nc" || is_openbsd_nc(path));
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "`{name}` is not installed (for nc: the OpenBSD one), and CI must skip nothing: .ci/run should install it"
        );
        eprintln!(
            "skipped: `{name}` is not installed (for nc: the OpenBSD one; install it, or run .ci/run, to run this test)"
        );
    }
    found
}

/// The first program called `name` in the folders of `PATH`, if any.
pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// The path of `tests/interop/NAME`: the Python programs that stand in for
/// the original lesson's (and the `nc` scripts), which tests and benchmarks
/// run against the lessons.
pub fn interop_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("interop")
        .join(name)
}

/// Whether `nc` is the OpenBSD netcat, whose help says so.
fn is_openbsd_nc(path: &Path) -> bool {
    Command::new(path).arg("-h").output().is_ok_and(|out| {
        String::from_utf8_lossy(&[out.stdout, out.stderr].concat()).contains("OpenBSD")
    })
}
