//! The client's `.part` file: its name, opened ours alone and locked, and
//! given the final name only once checked, never over a file that appeared.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail};
use common::describe;

use crate::client::failed;

// ANCHOR: part_name
/// `notes.txt` becomes `notes.txt.part`.
pub(crate) fn part_name(out: &Path) -> PathBuf {
    // exercise 5.4: begin
    let mut name = out.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
    // exercise 5.4: end
}
// ANCHOR_END: part_name

// ANCHOR: part
/// Opens `part` for reading and appending, creating it if needed, and
/// locks it for this download alone.
///
/// Two downloads of the same OUT at once would both append to one .part,
/// each checking only the bytes it received itself, and one of them would
/// rename a file holding both. The lock (flock(2) on Unix) is released
/// when the file is closed, however the program ends, even killed.
///
/// It is never opened through a link (O_NOFOLLOW): a link planted at
/// OUT.part would have the download appended to its target. The handle
/// must be a regular file with no other name (a hard link is another name
/// for someone's file), ours, and writable by no one else: another user's
/// planted OUT.part would let them rewrite the file we call verified. One
/// we create has mode 0600.
pub(crate) fn open_part(part: &Path, out: &Path) -> anyhow::Result<File> {
    let not_ours = || {
        anyhow!(
            "{} is not a plain file of its own (a link, or a file with another name); get never writes through one: remove it, or save elsewhere with -o",
            part.display()
        )
    };
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
        // The mode of a file this open creates; an existing one keeps its own.
        options.mode(0o600);
    }
    let file = match options.open(part) {
        Ok(file) => file,
        Err(_) if fs::symlink_metadata(part).is_ok_and(|meta| meta.is_symlink()) => {
            return Err(not_ours());
        }
        Err(err) => bail!("could not open {}: {}", part.display(), describe(&err)),
    };
    let meta = file
        .metadata()
        .map_err(|err| failed("could not read", part, &err))?;
    if !meta.is_file() || other_names(&meta) {
        return Err(not_ours());
    }
    if !only_ours(&meta) {
        bail!(
            "{} belongs to another user, or others can write to it; get resumes only a .part of yours that no one else can write: remove it, or save elsewhere with -o",
            part.display()
        );
    }
    lock_part(&file, part, out)?;
    Ok(file)
}
// ANCHOR_END: part

// ANCHOR: lock_part
/// Locks the opened `file`, the .part of `out`, for this download alone,
/// and checks that it is still the .part once locked.
fn lock_part(file: &File, part: &Path, out: &Path) -> anyhow::Result<()> {
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => bail!(
            "another download of {} is in progress ({} is locked)",
            out.display(),
            part.display()
        ),
        Err(TryLockError::Error(err)) => {
            bail!("could not lock {}: {}", part.display(), describe(&err))
        }
    }
    // The download that held the lock may have finished just before we
    // got it, and renamed the file we hold: then our handle is no longer
    // the .part.
    let still_part = match (file.metadata(), fs::symlink_metadata(part)) {
        (Ok(held), Ok(named)) => same_file(&held, &named),
        _ => false,
    };
    if !still_part {
        bail!(
            "another download of {} was in progress and has just ended; run the same command again",
            out.display()
        );
    }
    Ok(())
}
// ANCHOR_END: lock_part

// ANCHOR: part_checks
/// Whether the file is ours alone: owned by the user we run as, and
/// writable by neither its group nor others.
#[cfg(unix)]
fn only_ours(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.uid() == rustix::process::geteuid().as_raw() && meta.mode() & 0o022 == 0
}

#[cfg(not(unix))]
fn only_ours(_meta: &fs::Metadata) -> bool {
    true
}

/// Whether the file has names besides the one we opened (hard links).
#[cfg(unix)]
fn other_names(meta: &fs::Metadata) -> bool {
    std::os::unix::fs::MetadataExt::nlink(meta) > 1
}

#[cfg(not(unix))]
fn other_names(_meta: &fs::Metadata) -> bool {
    false
}

/// Whether two metadata are of the same file (device and inode on Unix).
#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.len() == b.len() && a.modified().ok() == b.modified().ok()
}

// ANCHOR_END: part_checks

// ANCHOR: refuse_to_overwrite
pub(crate) fn refuse_to_overwrite(out: &Path, force: bool) -> anyhow::Result<()> {
    // symlink_metadata: a link there counts too, even a broken one.
    if !force && fs::symlink_metadata(out).is_ok() {
        bail!(
            "{} already exists; add --force to replace it, or save elsewhere with -o",
            out.display()
        );
    }
    Ok(())
}
// ANCHOR_END: refuse_to_overwrite

// ANCHOR: rename
/// Gives the checked `.part` its final name. Without `--force` it never
/// replaces anything: `refuse_to_overwrite` looked before the download,
/// but a file can appear at `out` while it runs, even between a second
/// look and the rename, and rename(2) replaces whatever is there. On Linux,
/// renameat2(2) with RENAME_NOREPLACE looks and renames in one step; where
/// that is missing (another system, or a file system without it) a look
/// just before the rename is the best there is.
pub(crate) fn give_name(part: &Path, out: &Path, force: bool) -> anyhow::Result<()> {
    let failed = |err: io::Error| {
        anyhow!(
            "could not rename {} to {}: {}",
            part.display(),
            out.display(),
            describe(&err)
        )
    };
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if !force {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        use rustix::io::Errno;
        match renameat_with(CWD, part, CWD, out, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(Errno::EXIST) => bail!(
                "{} appeared while downloading; nothing was replaced, and {} holds the checked download: rename it yourself, or run again with --force",
                out.display(),
                part.display()
            ),
            // Not supported here: fall back to a look, then the rename.
            Err(Errno::INVAL | Errno::NOSYS) => {}
            Err(err) => return Err(failed(err.into())),
        }
    }
    refuse_to_overwrite(out, force)?;
    fs::rename(part, out).map_err(failed)
}

pub(crate) fn remove(part: &Path) -> anyhow::Result<()> {
    fs::remove_file(part)
        .map_err(|err| anyhow!("could not remove {}: {}", part.display(), describe(&err)))
}

/// Writes the folder's new entry to disk too. A rename changes the
/// folder, not the file; after a crash the file could otherwise come back
/// under its old name. Best effort: not every system can open a folder.
pub(crate) fn sync_folder(file: &Path) {
    let folder = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if let Ok(folder) = File::open(folder) {
        let _ = folder.sync_all();
    }
}
// ANCHOR_END: rename

#[cfg(test)]
mod tests {
    use super::*;

    /// A file that appears at OUT after every look before the rename (here:
    /// before give_name runs at all) is not replaced: on Linux the rename
    /// itself refuses. The old code looked, then called rename(2), which
    /// replaced it.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn the_rename_never_replaces_a_file_that_appeared_meanwhile() {
        let folder = std::env::temp_dir().join(format!("give-name-{}", std::process::id()));
        fs::create_dir_all(&folder).unwrap();
        let part = folder.join("tool.sh.part");
        let out = folder.join("tool.sh");
        fs::write(&part, b"the checked download\n").unwrap();
        fs::write(&out, b"someone else's file\n").unwrap();
        let named = give_name(&part, &out, false);
        let kept = fs::read(&out).unwrap();
        let part_kept = fs::read(&part).ok();
        let _ = fs::remove_dir_all(&folder);
        assert!(
            named.is_err() && kept == b"someone else's file\n",
            "tool.sh appeared after get looked: without --force the rename must not replace it \
             (renameat2 with RENAME_NOREPLACE looks and renames in one step); got {named:?}, \
             tool.sh now holds {:?} {}",
            String::from_utf8_lossy(&kept),
            "(book: 05-file-download.md § The client: `.part`, the digest, and resuming)"
        );
        assert_eq!(part_kept.as_deref(), Some(&b"the checked download\n"[..]));
        let message = format!("{:#}", named.unwrap_err());
        assert!(message.contains("appeared while downloading"), "{message}");
    }
}
