//! Paths: from the text of a request to an open file, in three stages,
//! each a function that answers with a path or a refusal.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::{Code, Refusal};

// ANCHOR: check_path
// What each rule of `check_path` answers, word for word: the client sees
// it after `ERR forbidden ` (or `ERR bad-request `), and the log too.
const EMPTY: &str = "the path is empty";
const CONTROL: &str = "a path may not contain control characters";
const BACKSLASH: &str = "a path may not contain backslashes; use / between folders";
const ABSOLUTE: &str = "a path must be relative to the served folder";
const DRIVE: &str = "a path may not start with a drive such as C:";
const EMPTY_PART: &str = "a path may not have empty components, as in a//b or a/";
const DOTS: &str = "a path may not have . or .. components";
const DOTFILE: &str = "dotfiles such as .env are not served";

/// Checks a requested path by its text alone, before the file system is
/// asked anything, and turns it into a relative path. Pure.
///
/// Each rule closes a way out of the served folder that real file servers
/// have been caught by; the chapter tells the stories.
pub fn check_path(path: &str, hidden: bool) -> Result<PathBuf, Refusal> {
    // exercise 5.2: begin
    let forbidden = |message: &str| Err(Refusal::new(Code::Forbidden, message));
    if path.is_empty() {
        return Err(Refusal::new(Code::BadRequest, EMPTY));
    }
    // NUL ends a string for the C functions beneath us (`a.txt\0.png` is
    // `a.txt` to them); the other control characters are never part of an
    // honest name and make logs lie.
    if path.chars().any(char::is_control) {
        return forbidden(CONTROL);
    }
    // On Windows `\` separates folders, so `..\secret` climbs out there.
    if path.contains('\\') {
        return forbidden(BACKSLASH);
    }
    // `/etc/passwd` would replace the folder: Path::join keeps only the
    // absolute part.
    if path.starts_with('/') {
        return forbidden(ABSOLUTE);
    }
    // `C:` and `C:\...` name a drive on Windows: another absolute path.
    if matches!(path.as_bytes(), [letter, b':', ..] if letter.is_ascii_alphabetic()) {
        return forbidden(DRIVE);
    }
    let mut relative = PathBuf::new();
    for component in path.split('/') {
        match component {
            // `a//b`, `a/` or `/`: harmless here, but a path has one
            // spelling, so that checks and logs see the same name.
            "" => return forbidden(EMPTY_PART),
            // `..` climbs out of the folder; `.` is refused with it, so
            // there is no second way to write a name.
            "." | ".." => return forbidden(DOTS),
            // Dotfiles hold secrets by custom: .env, .git/config, .ssh/.
            name if name.starts_with('.') && !hidden => return forbidden(DOTFILE),
            name => relative.push(name),
        }
    }
    Ok(relative)
    // exercise 5.2: end
}
// ANCHOR_END: check_path

// ANCHOR: resolve_inside
/// The message for every path that leaves the folder through a link. It is
/// the same whether or not the target exists, so that it tells nothing
/// about the machine outside the folder.
const OUTSIDE: &str = "the path leads outside the served folder, or through a broken link";

/// Finds the real file behind a checked `relative` path, following links,
/// and refuses it unless it lies inside `root` (an absolute, canonical path).
pub fn resolve_inside(root: &Path, relative: &Path, hidden: bool) -> Result<PathBuf, Refusal> {
    // canonicalize asks the kernel for the real path: every link followed,
    // every `..` applied. Text checks cannot see where a link leads.
    let real = match fs::canonicalize(root.join(relative)) {
        Ok(real) => real,
        // A link to /etc/nothing fails here and a link to /etc/passwd does
        // not: answering `not-found` for one and `forbidden` for the other
        // would let a client probe what exists outside. Behind a link, every
        // failure is `forbidden`.
        Err(_) if passes_through_link(root, relative) => {
            return Err(Refusal::new(Code::Forbidden, OUTSIDE));
        }
        Err(_) => return Err(Refusal::new(Code::NotFound, "no such file")),
    };
    // strip_prefix compares whole components: /srv/files2/x is not inside
    // /srv/files, as a comparison of strings would say it is.
    let Ok(inside) = real.strip_prefix(root) else {
        return Err(Refusal::new(Code::Forbidden, OUTSIDE));
    };
    // The real path must pass the dotfile rule too: a link `notes` that
    // points at `.git/config` inside the folder is still refused.
    let hidden_part = inside
        .components()
        .any(|part| part.as_os_str().as_encoded_bytes().starts_with(b"."));
    if hidden_part && !hidden {
        return Err(Refusal::new(Code::Forbidden, DOTFILE));
    }
    Ok(real)
}

/// Whether a step of `relative` under `root` is a symbolic link (looking
/// at the steps that exist, up to the first that does not).
fn passes_through_link(root: &Path, relative: &Path) -> bool {
    let mut here = root.to_path_buf();
    for step in relative.components() {
        here.push(step);
        match fs::symlink_metadata(&here) {
            Ok(meta) if meta.file_type().is_symlink() => return true,
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
    false
}
// ANCHOR_END: resolve_inside

// ANCHOR: open_file
/// Opens the file at `real` (from [`resolve_inside`]) and checks, on the
/// open handle, that it is a regular file.
///
/// The check comes after the open, not before: what a name points to can
/// change between a check by name and an open by name, while the handle
/// stays the file we opened. Everything after this uses the handle: the
/// size, the digest, the bytes sent.
pub fn open_file(real: &Path) -> Result<(File, Metadata), Refusal> {
    let mut options = OpenOptions::new();
    options.read(true);
    // Opening a fifo waits until something opens its other end, maybe
    // forever. O_NONBLOCK makes open return at once; it changes nothing
    // for regular files.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        rustix::fs::OFlags::NONBLOCK.bits() as i32,
    );
    let file = match options.open(real) {
        Ok(file) => file,
        Err(err) if err.kind() == ErrorKind::NotFound => {
            return Err(Refusal::new(Code::NotFound, "no such file"));
        }
        Err(err) if err.kind() == ErrorKind::PermissionDenied => {
            return Err(Refusal::new(
                Code::Forbidden,
                "the server may not read this file",
            ));
        }
        // A Unix socket, for example, cannot be opened at all.
        Err(_) => {
            return Err(Refusal::new(
                Code::NotAFile,
                "only regular files are served",
            ));
        }
    };
    // fstat (statx on Linux): the metadata of what we opened.
    match file.metadata() {
        Ok(meta) if meta.is_file() => Ok((file, meta)),
        Ok(meta) if meta.is_dir() => Err(Refusal::new(
            Code::NotAFile,
            "that is a folder; LIST shows the files",
        )),
        _ => Err(Refusal::new(
            Code::NotAFile,
            "only regular files are served",
        )),
    }
}
// ANCHOR_END: open_file

#[cfg(test)]
mod tests {
    use super::*;

    const SECTION: &str = "(book: 05-file-download.md § Stage 1: the text of the path)";

    /// Paths check_path must refuse, the code it must answer, and why.
    const REFUSED: [(&str, bool, Code, &str); 18] = [
        ("", false, Code::BadRequest, "an empty path names nothing"),
        (
            "/a",
            false,
            Code::Forbidden,
            "a leading / would replace the served folder",
        ),
        (
            "..",
            false,
            Code::Forbidden,
            "`..` climbs out of the folder",
        ),
        (
            "../a",
            false,
            Code::Forbidden,
            "`..` climbs out of the folder",
        ),
        ("a/../b", false, Code::Forbidden, "`..` is refused anywhere"),
        (
            "../a",
            true,
            Code::Forbidden,
            "--hidden allows dotfiles, never `..`",
        ),
        (
            ".",
            false,
            Code::Forbidden,
            "`.` is a second spelling of a name",
        ),
        (
            "./a",
            false,
            Code::Forbidden,
            "`.` is a second spelling of a name",
        ),
        (
            "a//b",
            false,
            Code::Forbidden,
            "an empty component is a second spelling",
        ),
        (
            "a/",
            false,
            Code::Forbidden,
            "an empty component is a second spelling",
        ),
        (
            "a\\b",
            false,
            Code::Forbidden,
            "`\\` separates folders on Windows",
        ),
        (
            "C:a",
            false,
            Code::Forbidden,
            "a drive like C: is an absolute path on Windows",
        ),
        (
            "c:/a",
            false,
            Code::Forbidden,
            "a drive like c: is an absolute path on Windows",
        ),
        (
            "a\0b",
            false,
            Code::Forbidden,
            "NUL ends a name for the C functions beneath",
        ),
        (
            "a\nb",
            false,
            Code::Forbidden,
            "a control character is never part of an honest name",
        ),
        (
            "a\u{1b}b",
            false,
            Code::Forbidden,
            "a control character is never part of an honest name",
        ),
        (
            ".env",
            false,
            Code::Forbidden,
            "dotfiles hold secrets and are served only with --hidden",
        ),
        (
            "a/.git/config",
            false,
            Code::Forbidden,
            "dotfiles hold secrets and are served only with --hidden",
        ),
    ];

    /// Paths check_path must accept, with `hidden`.
    const ACCEPTED: [(&str, bool); 8] = [
        ("a", false),
        ("a/b.txt", false),
        ("my notes.txt", false),
        ("données/été.txt", false),
        ("a..b", false),
        ("x.", false),
        ("%2e%2e", false),
        (".env", true),
    ];

    /// What is wrong with `got`, check_path's answer for (`path`, `hidden`)
    /// when it should be a refusal with `code` because `why`; None if right.
    fn wrong_refusal(
        path: &str,
        hidden: bool,
        code: Code,
        why: &str,
        got: &Result<PathBuf, Refusal>,
    ) -> Option<String> {
        let should = format!(
            "check_path({path:?}, hidden: {hidden}) should refuse it with {} ({why})",
            code.as_str()
        );
        match got {
            Err(refusal) if refusal.code == code => None,
            Err(refusal) => Some(format!(
                "{should}; it refused it with {} instead {SECTION}",
                refusal.code.as_str()
            )),
            Ok(relative) => Some(format!(
                "{should}; it accepted it as the path {relative:?} {SECTION}"
            )),
        }
    }

    #[test]
    fn path_rules_refuse_by_text_alone() {
        for (path, hidden) in ACCEPTED {
            if let Err(refusal) = check_path(path, hidden) {
                panic!(
                    "check_path({path:?}, hidden: {hidden}) should accept it: it has no rule's \
                     shape (nothing is decoded, and a dot inside a name is fine); it refused it \
                     with {} ({}) {SECTION}",
                    refusal.code.as_str(),
                    refusal.message
                );
            }
        }
        for (path, hidden, code, why) in REFUSED {
            if let Some(wrong) = wrong_refusal(path, hidden, code, why, &check_path(path, hidden)) {
                panic!("{wrong}");
            }
        }
        assert_eq!(
            check_path("a/b c/d", false).ok(),
            Some(Path::new("a").join("b c").join("d")),
            "check_path(\"a/b c/d\", hidden: false) should give the relative path a, b c, d, \
             one component per name between slashes {SECTION}"
        );
    }

    /// The message of a failing check names the rule and the path: a
    /// check_path that accepts `.env` is told so in those words, not with
    /// `called Result::unwrap_err() on an Ok value`.
    #[test]
    fn a_path_rule_broken_says_which_rule_and_which_path() {
        let accepted = Ok(PathBuf::from(".env"));
        let message = wrong_refusal(
            ".env",
            false,
            Code::Forbidden,
            "dotfiles hold secrets and are served only with --hidden",
            &accepted,
        )
        .unwrap_or_default();
        for words in [
            "check_path(\".env\", hidden: false) should refuse it with forbidden",
            "dotfiles",
            "it accepted it as the path \".env\"",
            "(book: 05-file-download.md § Stage 1: the text of the path)",
        ] {
            assert!(
                message.contains(words),
                "the message for a check_path that accepts .env should contain {words:?}; it is {message:?}"
            );
        }
    }
}
