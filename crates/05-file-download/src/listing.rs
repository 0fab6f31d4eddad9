//! `LIST`'s listing: the walk of the served folder, and the listing kept
//! for the `LIST`s after it while no folder it walked has changed.

use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::digest::{Version, version};
use crate::{EntryKind, LIST_KEPT_FOR, check_opened, check_path, list_folder, open_inside};
use common::lock;

// ANCHOR: listings
/// A reply to `LIST`, kept for the `LIST`s after it.
pub(crate) struct Listing {
    /// `OK <count>`, then `<size> <path>` per file.
    pub(crate) reply: Vec<u8>,
    pub(crate) count: usize,
    /// Every folder walked, and its version before its names were read
    /// (None: it could not be opened). Adding, removing or renaming a name
    /// in a folder gives it a new version.
    folders: Vec<(String, Option<Version>)>,
    walked: Instant,
}

/// The listing kept, shared by every `LIST`.
#[derive(Default)]
pub(crate) struct Listings {
    /// How many checks of the kept listing have begun.
    begun: AtomicU64,
    /// The number of the last check, and the listing it kept or walked.
    kept: Mutex<(u64, Option<Arc<Listing>>)>,
}
// ANCHOR_END: listings

impl Listings {
    // ANCHOR: listing
    /// The listing to send: the one kept, while no folder it walked has
    /// changed and it is younger than LIST_KEPT_FOR; else a new walk.
    ///
    /// The lock is held while the folders are checked or walked: one walk
    /// runs at a time, and the LISTs that come meanwhile wait for it
    /// instead of walking too. A check that began after a request came saw
    /// the folder as it was after the request came: its listing will do.
    pub(crate) fn listing(&self, served: &File, hidden: bool) -> (Arc<Listing>, &'static str) {
        let came = self.begun.load(Ordering::SeqCst);
        let mut kept = lock(&self.kept);
        if let (last, Some(listing)) = &*kept
            && *last > came
        {
            return (Arc::clone(listing), "listing shared");
        }
        let check = self.begun.fetch_add(1, Ordering::SeqCst) + 1;
        if let (_, Some(listing)) = &*kept
            && listing.walked.elapsed() < LIST_KEPT_FOR
            && listing
                .folders
                .iter()
                .all(|(path, then)| folder_version(served, path, hidden) == *then)
        {
            let listing = Arc::clone(listing);
            kept.0 = check;
            return (listing, "listing kept");
        }
        let listing = Arc::new(walk(served, hidden));
        *kept = (check, Some(Arc::clone(&listing)));
        (listing, "folders walked")
    }
    // ANCHOR_END: listing
}

// ANCHOR: folder_version
/// The version of the folder `path` now, None if it cannot be opened.
fn folder_version(served: &File, path: &str, hidden: bool) -> Option<Version> {
    let meta = if path.is_empty() {
        served.metadata()
    } else {
        let folder = open_inside(served, Path::new(path), hidden).ok()?;
        folder.metadata()
    };
    meta.ok().map(|meta| version(&meta))
}
// ANCHOR_END: folder_version

// ANCHOR: walk
/// Walks the served folder for every file `GET` would serve, and makes
/// the reply: `OK <count>`, then `<size> <path>` per file, sorted by
/// path, each file once.
///
/// It asks the same questions `GET` asks, name by name, from the same
/// folder handle, so the list cannot offer what `GET` refuses, and it
/// follows the folder if it is renamed. Folders are walked; links to
/// folders are not (a link can loop back to its own folder). A file
/// with several names (links, hard links) is listed once, under its
/// real name where it has one that can be listed: names that are not
/// links come first, then the first in path order.
fn walk(served: &File, hidden: bool) -> Listing {
    let walked = Instant::now();
    // (is a link, path, size, which file: device and inode)
    let mut names = Vec::new();
    let mut folders = Vec::new();
    let mut to_walk = vec![String::new()];
    while let Some(folder) = to_walk.pop() {
        let Some((meta, entries)) = list_folder(served, &folder, hidden) else {
            folders.push((folder, None));
            continue;
        };
        for (name, kind) in entries {
            let path = if folder.is_empty() {
                name
            } else {
                format!("{folder}/{name}")
            };
            let Ok(relative) = check_path(&path, hidden) else {
                continue;
            };
            if kind == EntryKind::Folder {
                to_walk.push(path);
                continue;
            }
            let opened = open_inside(served, &relative, hidden);
            if let Ok((_, meta)) = opened.and_then(check_opened) {
                let version = version(&meta);
                let file = (version.device, version.inode);
                names.push((kind == EntryKind::Link, path, meta.len(), file));
            }
        }
        folders.push((folder, Some(version(&meta))));
    }
    let (reply, count) = reply_listing(names);
    Listing {
        reply,
        count,
        folders,
        walked,
    }
}
// ANCHOR_END: walk

// ANCHOR: reply_listing
/// The reply to `LIST` for the `names` a walk found, (is a link, path,
/// size, which file), and how many files it lists: each file once, under
/// a name that is not a link where it has one, then the first in path
/// order; the lines sorted by path.
fn reply_listing(mut names: Vec<(bool, String, u64, (u64, u64))>) -> (Vec<u8>, usize) {
    names.sort();
    let mut listed = std::collections::HashSet::new();
    let mut files: Vec<(String, u64)> = names
        .into_iter()
        .filter(|(_, _, _, file)| listed.insert(*file))
        .map(|(_, path, size, _)| (path, size))
        .collect();
    files.sort_unstable();
    let mut reply = format!("OK {}\n", files.len());
    for (path, size) in &files {
        // Writing to a String cannot fail.
        let _ = writeln!(reply, "{size} {path}");
    }
    (reply.into_bytes(), files.len())
}
// ANCHOR_END: reply_listing
