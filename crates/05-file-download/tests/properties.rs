//! Property tests for what lesson 5 parses from the network: every request
//! a client can send reads back as itself, no request line (nor anything
//! that nearly is one) makes the parser panic, and every path the checks
//! accept resolves inside the served folder, whatever links the folder holds.

// Helpers outside #[test] functions fail the way tests do: by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::symlink;
use std::path::Component;

use file_download::{Code, Request, check_path, open_inside, parse_request};
use proptest::prelude::*;
use support::book;
use testkit::TempDir;

/// Path-like text built from the pieces that matter: names, dots, slashes,
/// backslashes, drive letters, control characters, and the links of the
/// test folder.
fn path_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("a"),
        Just("b.txt"),
        Just("."),
        Just(".."),
        Just(".env"),
        Just("/"),
        Just("//"),
        Just("\\"),
        Just("C:"),
        Just("\0"),
        Just("\n"),
        Just(" "),
        Just("你好"),
        Just("out"),
        Just("loop"),
        Just("secret.txt"),
        Just("in"),
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

/// The shapes that have led real file servers out of their folder, built on
/// purpose rather than hoped for from random text: components joined by
/// `/`, each a name, `.` or `..`, empty, a dotfile, a drive, a backslash
/// path, NUL or a newline, an encoded `..`, or one of the test folder's links
/// (`in` to a file inside, `out` to a folder outside, `loop` to the parent);
/// after a start that is nothing, `/`, `//`, `\\` or a drive, and before an
/// end that is nothing, `/` or `\\`.
fn dangerous_path() -> impl Strategy<Value = String> {
    let start = prop_oneof![
        4 => Just(""),
        1 => Just("/"),
        1 => Just("//"),
        1 => Just("\\"),
        1 => Just("C:"),
        1 => Just("C:/"),
        1 => Just("c:\\"),
    ];
    let component = prop_oneof![
        Just(".."),
        Just("."),
        Just(""),
        Just("a"),
        Just("b.txt"),
        Just(".env"),
        Just("in"),
        Just("out"),
        Just("loop"),
        Just("secret.txt"),
        Just("..\\.."),
        Just("a\\..\\..\\secret.txt"),
        Just("a\0"),
        Just("a\n"),
        Just("%2e%2e"),
        Just("..."),
        Just(" .."),
        Just("my notes.txt"),
    ];
    let end = prop_oneof![4 => Just(""), 1 => Just("/"), 1 => Just("\\")];
    (start, proptest::collection::vec(component, 1..6), end)
        .prop_map(|(start, parts, end)| format!("{start}{}{end}", parts.join("/")))
}

/// A path that passes every rule of the text, through the test folder's
/// names and links: `out/secret.txt` and `loop/...` leave the folder unless
/// every link on the way is walked by the server itself, not followed by
/// the kernel (a walk that protects only the last name lets them out).
fn link_walk() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("in"),
        Just("out"),
        Just("loop"),
        Just("a"),
        Just("secret.txt"),
        Just("b.txt"),
    ];
    proptest::collection::vec(name, 1..4).prop_map(|names| names.join("/"))
}

/// A path for a property about paths: the dangerous shapes, walks through
/// the links, and sometimes pieces of text run together with no `/`
/// between them.
fn any_path() -> impl Strategy<Value = String> {
    prop_oneof![2 => dangerous_path(), 2 => link_walk(), 1 => path_text()]
}

/// A path a client may send in a request: any text without a line end,
/// with spaces on purpose (a path is the rest of the line, spaces and all),
/// or empty.
fn request_path() -> impl Strategy<Value = String> {
    prop_oneof![
        "[^\r\n]{0,40}",
        "[a-z.]{0,8}( [^\r\n]{0,12}){1,3}",
        "[ ]{0,3}[a-z]{0,4}[ ]{0,3}",
    ]
}

/// No `.proptest-regressions` file is written next to this one when a
/// property fails: a learner's unfinished exercise is not a regression to
/// keep, and the tree stays as `cargo exercise` left it.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases)
    }
}

proptest! {
    #![proptest_config(config(ProptestConfig::default().cases))]

    #[test]
    fn no_request_line_makes_the_parser_panic(line in proptest::collection::vec(any::<u8>(), 0..64)) {
        let answered = std::panic::catch_unwind(|| parse_request(&line));
        prop_assert!(
            answered.is_ok(),
            "parse_request({}) should answer with a request or a bad-request refusal, never \
             panic: these bytes come from anyone on the network {}",
            testkit::show(&line),
            book::PROTOCOL
        );
    }

    #[test]
    fn request_lines_of_the_protocol_parse_back(path in request_path(), offset in any::<u64>()) {
        let get = parse_request(format!("GET {path}").as_bytes());
        let resume = parse_request(format!("RESUME {offset} {path}").as_bytes());
        prop_assert_eq!(
            get,
            Ok(Request::Get { path: path.clone() }),
            "parse_request(\"GET {}\") should read it as GET of {:?}: the path is the rest \
             of the line, spaces and all {}",
            path, path, book::PROTOCOL
        );
        prop_assert_eq!(
            resume,
            Ok(Request::Resume { offset, path: path.clone() }),
            "parse_request(\"RESUME {} {}\") should read it as RESUME of {:?} from byte {}: \
             the whole offset in decimal digits, then the rest of the line as the path {}",
            offset, path, path, offset, book::PROTOCOL
        );
    }

    /// Lines that look almost right, as random bytes almost never do: a
    /// request word, maybe a space, maybe an offset, then anything.
    #[test]
    fn near_misses_never_panic(
        word in "(GET|RESUME|LIST|get|GE|RESUM|LIS)",
        space in "( |  |\t|)",
        offset in "(|[0-9]{1,25}|\\+[0-9]{1,3}|-1|[0-9]+ )",
        rest in "[ -~\u{80}-\u{10ffff}\u{0}]{0,40}",
    ) {
        for line in [
            format!("{word}{space}{rest}"),
            format!("{word}{space}{offset}{rest}"),
            format!("{word}{space}{offset} {rest}"),
        ] {
            let answered = std::panic::catch_unwind(|| parse_request(line.as_bytes()));
            prop_assert!(
                answered.is_ok(),
                "parse_request({:?}) should answer with a request or a bad-request refusal, \
                 never panic: a line that nearly follows the protocol is still anyone's bytes {}",
                line, book::PROTOCOL
            );
            if let Ok(Err(refusal)) = answered {
                prop_assert_eq!(
                    refusal.code,
                    Code::BadRequest,
                    "parse_request({:?}) refused it as {}; a line that is not a request is \
                     refused with bad-request (the path rules come later) {}",
                    line, refusal.code.as_str(), book::PROTOCOL
                );
            }
        }
    }

    #[test]
    fn an_accepted_path_has_only_plain_names(path in any_path(), hidden in any::<bool>()) {
        if let Ok(relative) = check_path(&path, hidden) {
            prop_assert!(
                relative.components().count() > 0,
                "check_path({path:?}, hidden: {hidden}) accepted it as an empty path; an empty \
                 path should be refused {}",
                book::STAGE_1
            );
            let first = relative.iter().next().map(|name| name.as_encoded_bytes().to_vec());
            let drive =
                |name: &[u8]| matches!(name, [letter, b':', ..] if letter.is_ascii_alphabetic());
            prop_assert!(
                !first.is_some_and(|first| drive(&first)),
                "check_path({path:?}, hidden: {hidden}) accepted it as {relative:?}, which starts \
                 with a drive such as C:, an absolute path on Windows {}",
                book::STAGE_1
            );
            for part in relative.components() {
                prop_assert!(
                    matches!(part, Component::Normal(_)),
                    "check_path({path:?}, hidden: {hidden}) accepted it as {relative:?}, which has \
                     a {part:?} component; an accepted path should hold only plain names {}",
                    book::STAGE_1
                );
                let name = part.as_os_str().to_string_lossy();
                prop_assert!(
                    hidden || !name.starts_with('.'),
                    "check_path({path:?}, hidden: false) accepted it as {relative:?}, with the \
                     dotfile {name:?}; dotfiles are served only with --hidden {}",
                    book::STAGE_1
                );
                prop_assert!(
                    !name.contains(['\\', '\0']) && !name.chars().any(char::is_control),
                    "check_path({path:?}, hidden: {hidden}) accepted it as {relative:?}, with the \
                     name {name:?}: a backslash or a control character never passes {}",
                    book::STAGE_1
                );
            }
        }
    }
}

/// The (device, inode) of every file and folder under `root`, links not
/// followed: what a path that stays inside can open.
fn inside(root: &std::path::Path) -> Vec<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut found = vec![];
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let meta = std::fs::symlink_metadata(&folder).unwrap();
        found.push((meta.dev(), meta.ino()));
        for entry in std::fs::read_dir(&folder).unwrap() {
            let entry = entry.unwrap();
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                folders.push(entry.path());
            } else if meta.is_file() {
                found.push((meta.dev(), meta.ino()));
            }
        }
    }
    found
}

#[test]
fn every_accepted_path_resolves_inside_the_folder_whatever_its_links() {
    use std::os::unix::fs::MetadataExt;
    // A served folder with a file, a subfolder, a link inside, a link that
    // leaves the folder, and a link to its own parent.
    let outside = TempDir::new();
    outside.write("secret.txt", b"not for you");
    outside.write("a", b"not this `a` either");
    let served = TempDir::new();
    served.write("a", b"a file");
    served.write("b.txt/a", b"in a folder");
    served.write(".env", b"SECRET=1");
    symlink("a", served.path().join("in")).unwrap();
    symlink(outside.path(), served.path().join("out")).unwrap();
    symlink("..", served.path().join("loop")).unwrap();
    let root = std::fs::File::open(served.path()).unwrap();
    let inside = inside(served.path());

    proptest!(config(2048), |(path in any_path(), hidden in any::<bool>())| {
        if let Ok(relative) = check_path(&path, hidden)
            && let Ok(file) = open_inside(&root, &relative, hidden)
        {
            let meta = file.metadata().unwrap();
            prop_assert!(
                inside.contains(&(meta.dev(), meta.ino())),
                "check_path({path:?}, hidden: {hidden}) accepted it and open_inside opened a \
                 file that is not inside the served folder: whatever the links, a path must \
                 open something inside {}",
                book::STAGE_2
            );
        }
    });
}
