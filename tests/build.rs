//! Finds the outside programs some tests talk to (OpenBSD `nc`, `python3`),
//! so that a test that cannot run shows as *ignored*, with the reason, in
//! the test result, instead of passing having done nothing. In CI (`CI` is
//! set) a missing program fails the build instead: `.ci/run` installs them,
//! and CI skips nothing.
//!
//! It is the build script of this package and, through `build = ` in their
//! Cargo.toml, of every lesson with such a test (02, 03, 05, 06): each sets
//! cfg `has_nc` / `has_python3`, and a test that needs one is marked
//! `#[cfg_attr(not(has_nc), ignore = "...")]`.
//!
//! The kit alone also looks for `mdbook` (cfg `has_mdbook`): its book test
//! builds the book, and a lesson's tests never need it.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(has_nc, has_python3, has_mdbook)");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=CI");
    // Installing a program changes its folder: look again then.
    let dirs: Vec<PathBuf> = env::var_os("PATH")
        .map(|path| env::split_paths(&path).filter(|dir| dir.is_dir()).collect())
        .unwrap_or_default();
    for dir in &dirs {
        println!("cargo::rerun-if-changed={}", dir.display());
    }

    let in_ci = env::var_os("CI").is_some();
    // The tests use `nc -N` (close the connection at end of input), which
    // only the OpenBSD netcat has; its help says which one it is.
    let nc = found(&dirs, "nc")
        && Command::new("nc").arg("-h").output().is_ok_and(|out| {
            String::from_utf8_lossy(&[out.stdout, out.stderr].concat()).contains("OpenBSD")
        });
    let python = found(&dirs, "python3");
    let kit = env::var("CARGO_PKG_NAME").is_ok_and(|name| name == "testkit");
    let mut needed = vec![
        (nc, "has_nc", "OpenBSD nc (Debian: netcat-openbsd)"),
        (python, "has_python3", "python3"),
    ];
    if kit {
        needed.push((
            found(&dirs, "mdbook"),
            "has_mdbook",
            "mdbook (cargo install --locked mdbook@0.5.4)",
        ));
    }
    for (has, cfg, what) in needed {
        if has {
            println!("cargo::rustc-cfg={cfg}");
        } else if in_ci {
            panic!("{what} is not installed, and CI must skip nothing: .ci/run should install it");
        } else {
            println!(
                "cargo::warning=tests that need {what} are ignored: install it, or run .ci/run"
            );
        }
    }
}

fn found(dirs: &[PathBuf], name: &str) -> bool {
    dirs.iter().any(|dir| dir.join(name).is_file())
}
