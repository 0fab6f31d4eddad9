//! Paths: from the text of a request to an open file, in three stages,
//! each a function that answers with a path, a file, or a refusal.

use std::fs::{File, Metadata};
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

// ANCHOR: outside
/// The message for every path that leaves the folder through a link. It is
/// the same whether or not the target exists (the walk below never even
/// looks outside), so that it tells nothing about the machine outside.
const OUTSIDE: &str = "the path leads outside the served folder, or through a broken link";

/// How many links one request may pass through. A link may point at a
/// link, or at its own folder: without a count, `a -> a/a` would be walked
/// forever. 40 is Linux's own limit for one path (path_resolution(7)).
pub const MAX_LINKS: usize = 40;
// ANCHOR_END: outside

// ANCHOR: open_inside
/// Opens the file the checked `relative` path names from `root`, a handle
/// on the served folder, never leaving it: a name at a time, each folder
/// opened from the one before with O_NOFOLLOW, links walked by hand
/// ([`follow_link`]). No name is looked up twice, so no rename slips in.
#[cfg(unix)]
pub fn open_inside(root: &File, relative: &Path, hidden: bool) -> Result<File, Refusal> {
    use rustix::fs::{Mode, OFlags, openat};
    use std::collections::VecDeque;
    use std::ffi::{OsStr, OsString};
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;

    // The folders we stand in below `root`, each opened from the one before.
    let mut folders: Vec<OwnedFd> = Vec::new();
    // The names still to walk: the request's, then those of link targets.
    let mut names: VecDeque<OsString> = relative.iter().map(OsStr::to_os_string).collect();
    let mut links = 0;
    while let Some(name) = names.pop_front() {
        let here = folders.last().map_or(root.as_fd(), |folder| folder.as_fd());
        match name.as_bytes() {
            // Only a link's target can hold these; check_path refuses them.
            b"" | b"." => continue,
            b".." => {
                // Back to the handle we came from; above `root` is outside.
                if folders.pop().is_none() {
                    return Err(Refusal::new(Code::Forbidden, OUTSIDE));
                }
                continue;
            }
            // Every name walked passes the dotfile rule, a link's too: a
            // link `notes` to `.git/config` is refused like the file.
            bytes if bytes.starts_with(b".") && !hidden => {
                return Err(Refusal::new(Code::Forbidden, DOTFILE));
            }
            _ => {}
        }
        let last = names.is_empty();
        // O_NONBLOCK: opening a fifo would otherwise wait for a writer,
        // maybe forever; it changes nothing for files and folders.
        let mut flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        if !last {
            flags |= OFlags::DIRECTORY;
        }
        let err = match openat(here, name.as_os_str(), flags, Mode::empty()) {
            Ok(opened) if last => return Ok(File::from(opened)),
            Ok(opened) => {
                folders.push(opened);
                continue;
            }
            Err(err) => err,
        };
        // It failed: a link (O_NOFOLLOW refused it), or really a failure.
        follow_link(here, &name, err, &mut links, &mut names)?;
    }
    // check_path never gives an empty path; a link to `.` can lead here.
    Err(Refusal::new(
        Code::NotAFile,
        "that is a folder; LIST shows the files",
    ))
}
// ANCHOR_END: open_inside

// ANCHOR: follow_link
/// `name` in the folder `here` could not be opened (`err`): if it is a
/// link (O_NOFOLLOW refused it), puts the names of its target in front of
/// the `names` still to walk, and counts it in `links`; if it is not, the
/// failure was real, and is refused.
#[cfg(unix)]
fn follow_link(
    here: std::os::fd::BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    err: rustix::io::Errno,
    links: &mut usize,
    names: &mut std::collections::VecDeque<std::ffi::OsString>,
) -> Result<(), Refusal> {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    // readlinkat answers only for a link.
    let Ok(target) = rustix::fs::readlinkat(here, name, Vec::new()) else {
        return Err(refusal_for(err, *links > 0));
    };
    *links += 1;
    let target = target.as_bytes();
    if *links > MAX_LINKS || target.starts_with(b"/") {
        return Err(Refusal::new(Code::Forbidden, OUTSIDE));
    }
    for part in target.split(|&byte| byte == b'/').rev() {
        names.push_front(OsStr::from_bytes(part).to_os_string());
    }
    Ok(())
}
// ANCHOR_END: follow_link

// ANCHOR: list_folder
/// What a folder entry is, without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Folder,
    Link,
    Other,
}

/// The names in the folder `relative` below `root` (`""` for `root`
/// itself), each with its kind, and the folder's metadata, taken before
/// its names are read (so that a name added meanwhile shows as a change
/// of the folder next time it is looked at); None if it cannot be opened.
/// The folder is opened from the handle, as [`open_inside`] opens files:
/// if the served folder is renamed or replaced, this still lists the one
/// the server opened.
#[cfg(unix)]
pub fn list_folder(
    root: &File,
    relative: &str,
    hidden: bool,
) -> Option<(Metadata, Vec<(String, EntryKind)>)> {
    let folder = if relative.is_empty() {
        root.try_clone().ok()?
    } else {
        open_inside(root, Path::new(relative), hidden).ok()?
    };
    let meta = folder.metadata().ok()?;
    // read_from opens the folder's `.` afresh, so reading it does not move
    // a position that other requests share.
    let Ok(entries) = rustix::fs::Dir::read_from(&folder) else {
        return Some((meta, Vec::new()));
    };
    let mut names = Vec::new();
    for entry in entries.flatten() {
        // A name that is not UTF-8 cannot be asked for: skip it.
        let Ok(name) = entry.file_name().to_str() else {
            continue;
        };
        if name == "." || name == ".." {
            continue;
        }
        names.push((name.to_string(), entry_kind(&folder, &entry)));
    }
    Some((meta, names))
}
// ANCHOR_END: list_folder

/// What `entry` of `folder` is, without following a link.
#[cfg(unix)]
fn entry_kind(folder: &File, entry: &rustix::fs::DirEntry) -> EntryKind {
    use rustix::fs::{AtFlags, FileType, statat};
    // Some file systems do not say the kind in the entry: ask them,
    // without following a link.
    let kind = match entry.file_type() {
        FileType::Unknown => statat(folder, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)
            .map_or(FileType::Unknown, |stat| {
                FileType::from_raw_mode(stat.st_mode)
            }),
        kind => kind,
    };
    match kind {
        FileType::Directory => EntryKind::Folder,
        FileType::Symlink => EntryKind::Link,
        _ => EntryKind::Other,
    }
}

#[cfg(not(unix))]
pub fn list_folder(
    _root: &File,
    _relative: &str,
    _hidden: bool,
) -> Option<(Metadata, Vec<(String, EntryKind)>)> {
    None
}

// ANCHOR: refusal_for
/// The refusal for an open that failed with `err`; `behind_link` when a
/// link was followed on the way.
#[cfg(unix)]
fn refusal_for(err: rustix::io::Errno, behind_link: bool) -> Refusal {
    use rustix::io::Errno;
    match err {
        // Behind a link, a name that is missing may be outside knowledge
        // (a link to ../nothing): every such failure is `forbidden`.
        Errno::NOENT | Errno::NOTDIR | Errno::NAMETOOLONG if behind_link => {
            Refusal::new(Code::Forbidden, OUTSIDE)
        }
        // `hello.txt/x`: a file where a folder should be is a missing path;
        // so is a name longer than any file system allows (255 bytes).
        Errno::NOENT | Errno::NOTDIR | Errno::NAMETOOLONG => {
            Refusal::new(Code::NotFound, "no such file")
        }
        Errno::ACCESS | Errno::PERM => {
            Refusal::new(Code::Forbidden, "the server may not read this file")
        }
        // A link that became something else between the open and the
        // readlink: a name being swapped under us. Not followed.
        Errno::LOOP => Refusal::new(Code::Forbidden, OUTSIDE),
        // A Unix socket, for example, cannot be opened at all (ENXIO).
        _ => Refusal::new(Code::NotAFile, "only regular files are served"),
    }
}

/// Elsewhere there is no openat(2) with O_NOFOLLOW to walk with, and a
/// walk by names would have the very gap the walk above closes.
#[cfg(not(unix))]
pub fn open_inside(_root: &File, _relative: &Path, _hidden: bool) -> Result<File, Refusal> {
    Err(Refusal::new(
        Code::Forbidden,
        "this server serves files only on Unix, where it can open them safely",
    ))
}
// ANCHOR_END: refusal_for

// ANCHOR: open_file
/// Checks, on the handle [`open_inside`] opened, that it is a regular
/// file, and returns its metadata.
///
/// The handle answers "what is it", the walk answered "where is it": both
/// about the one file we opened, whatever its name points to by now.
/// Everything after this uses the handle: the size, the digest, the bytes
/// sent.
pub fn check_opened(file: File) -> Result<(File, Metadata), Refusal> {
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
mod tests;
