//! Property tests for what lesson 5 parses from the network: no request
//! line makes the parser panic, and every path the checks accept resolves
//! inside the served folder, whatever links the folder holds.

// Helpers outside #[test] functions fail the way tests do: by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::symlink;
use std::path::Component;

use file_download::{check_path, open_inside, parse_request};
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
    fn request_lines_of_the_protocol_parse_back(path in "[^\r\n]{1,40}", offset in any::<u64>()) {
        let get = parse_request(format!("GET {path}").as_bytes());
        let resume = parse_request(format!("RESUME {offset} {path}").as_bytes());
        prop_assert!(
            get.is_ok(),
            "parse_request(\"GET {path}\") should read it as GET of {path:?}: the path is the \
             rest of the line, whatever it holds; got {get:?} {}",
            book::PROTOCOL
        );
        prop_assert!(
            resume.is_ok(),
            "parse_request(\"RESUME {offset} {path}\") should read it as RESUME at {offset}; got \
             {resume:?} {}",
            book::PROTOCOL
        );
    }

    #[test]
    fn an_accepted_path_has_only_plain_names(path in path_text(), hidden in any::<bool>()) {
        if let Ok(relative) = check_path(&path, hidden) {
            prop_assert!(
                relative.components().count() > 0,
                "check_path({path:?}, hidden: {hidden}) accepted it as an empty path; an empty \
                 path should be refused {}",
                book::STAGE_1
            );
            for part in relative.components() {
                prop_assert!(
                    matches!(part, Component::Normal(_)),
                    "check_path({path:?}, hidden: {hidden}) accepted it as {relative:?}, which has \
                     a {part:?} component; an accepted path should hold only plain names {}",
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
    let served = TempDir::new();
    served.write("a", b"a file");
    served.write("b.txt/a", b"in a folder");
    served.write(".env", b"SECRET=1");
    symlink("a", served.path().join("in")).unwrap();
    symlink(outside.path(), served.path().join("out")).unwrap();
    symlink("..", served.path().join("loop")).unwrap();
    let root = std::fs::File::open(served.path()).unwrap();
    let inside = inside(served.path());

    proptest!(config(512), |(path in path_text(), hidden in any::<bool>())| {
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
