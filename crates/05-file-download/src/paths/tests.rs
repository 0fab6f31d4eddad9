//! The path rules checked by text alone, without a server: each refused
//! path, the code it gets, and a broken rule's message.

use super::*;

const SECTION: &str = "(book: 05-file-download.md § Stage 1: the text of the path)";

/// Paths check_path must refuse, the code it must answer, and why.
const REFUSED: [(&str, bool, Code, &str); 21] = [
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
        "a/../b",
        true,
        Code::Forbidden,
        "--hidden allows dotfiles, never `..`, anywhere in the path",
    ),
    (
        "a/..",
        true,
        Code::Forbidden,
        "--hidden allows dotfiles, never `..`, anywhere in the path",
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
        "a/./b",
        true,
        Code::Forbidden,
        "`.` is a second spelling of a name, anywhere in the path, even with --hidden",
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

/// Paths check_path must accept, with `hidden`, and why.
const ACCEPTED: [(&str, bool, &str); 11] = [
    ("a", false, "a plain name"),
    ("a/b.txt", false, "a dot inside a name is fine"),
    ("my notes.txt", false, "a space is part of a name"),
    ("données/été.txt", false, "a name in any language"),
    (
        "a..b",
        false,
        "a dot inside a name is fine, two of them too",
    ),
    ("x.", false, "a dot inside a name is fine, at its end too"),
    (
        "%2e%2e",
        false,
        "nothing is decoded: `%2e%2e` is just a name",
    ),
    ("notes:v2.txt", false, "a colon further on is no drive"),
    (".env", true, "--hidden serves dotfiles"),
    (
        "a/.git/config",
        true,
        "--hidden serves dotfiles, in any folder",
    ),
    (
        "...",
        true,
        "`...` is a name, not `..`, and --hidden serves dotfiles",
    ),
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
    for (path, hidden, why) in ACCEPTED {
        if let Err(refusal) = check_path(path, hidden) {
            panic!(
                "check_path({path:?}, hidden: {hidden}) should accept it: it has no rule's \
                 shape ({why}); it refused it with {} ({}) {SECTION}",
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
