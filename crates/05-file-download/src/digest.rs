//! The digests: the SHA-256 of each version of each file served, computed
//! once while the bytes go, and shared by every request that waits for it.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{self, BufReader, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use common::{describe, lock};
use sha2::{Digest, Sha256};

use crate::BUFFER_SIZE;

// ANCHOR: digests
/// The SHA-256 of everything `reader` gives, as 64 hex digits, and how many
/// bytes that was. Reads [`BUFFER_SIZE`] bytes at a time.
pub fn sha256_of(reader: impl Read) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    // Sha256 is a Write: io::copy feeds it the file a buffer at a time.
    let count = io::copy(
        &mut BufReader::with_capacity(BUFFER_SIZE, reader),
        &mut hasher,
    )?;
    Ok((format!("{:x}", hasher.finalize()), count))
}

/// What identifies one version of one file: its device and inode number
/// (the same whatever names lead to it; the walk that opened it gives no
/// path to key on), and what changes when its content is replaced.
///
/// Size and modification time alone are not enough: `cp -p`, `rsync -a`
/// and `tar` give a new content the old time, and a file of the same size
/// then looked unchanged. The change time (ctime) cannot be set by any
/// program: the kernel moves it on every write and every change of the
/// other times. A replacement by rename is a new inode.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct Version {
    pub(crate) device: u64,
    pub(crate) inode: u64,
    size: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

#[cfg(unix)]
pub(crate) fn version(meta: &Metadata) -> Version {
    use std::os::unix::fs::MetadataExt;
    Version {
        device: meta.dev(),
        inode: meta.ino(),
        size: meta.len(),
        modified: (meta.mtime(), meta.mtime_nsec()),
        changed: (meta.ctime(), meta.ctime_nsec()),
    }
}

/// Elsewhere nothing is served (see `open_inside`).
#[cfg(not(unix))]
pub(crate) fn version(meta: &Metadata) -> Version {
    Version {
        device: 0,
        inode: 0,
        size: meta.len(),
        modified: (0, 0),
        changed: (0, 0),
    }
}
// ANCHOR_END: digests

// ANCHOR: digests_shared
/// The digests computed so far, one per file (the newest), and the hashes
/// running now, shared by every client's thread. The lock is held to look
/// up, to join a hash, to leave it and to store a digest, never while
/// hashing, so a client hashing a big file does not hold up the others.
#[derive(Default, Clone)]
pub(crate) struct Digests(Arc<Mutex<HashMap<(u64, u64), Entry>>>);

enum Entry {
    /// The digest of this version of the file.
    Known(Version, String),
    /// A hash of this version is running, on a thread of its own.
    Hashing(Arc<Hash>),
}

/// One hash of one version of a file, shared by every request waiting for
/// its digest.
struct Hash {
    version: Version,
    /// Bytes hashed so far: every waiter's `HASHING` progress.
    hashed: AtomicU64,
    /// How many requests wait for the digest. Changed only under the
    /// `Digests` lock, so that no one joins a hash the last waiter has just
    /// left.
    wanted_by: AtomicUsize,
    /// Set when the last waiter leaves: the hashing stops within a buffer.
    stop: AtomicBool,
    /// The digest, or why there is none (in words), once the hash ended.
    outcome: Mutex<Option<Result<String, String>>>,
    ended: Condvar,
    /// The hashing thread, for the last waiter to wait for when it leaves.
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// What a request gets from [`Digests::want`].
pub(crate) enum Wanted {
    Known(String),
    /// A hash to wait for; `started` when this request started it.
    Hashing {
        hash: Waiting,
        started: bool,
    },
}
// ANCHOR_END: digests_shared

impl Digests {
    // ANCHOR: want
    /// The digest of `file` (open, with metadata `meta`) if it is known for
    /// this very version of the file; else a place among those waiting for
    /// its hash, which is started if none is running. At most one hash runs
    /// per file version.
    pub(crate) fn want(&self, file: &File, meta: &Metadata) -> io::Result<Wanted> {
        let now = version(meta);
        let key = (now.device, now.inode);
        let mut entries = lock(&self.0);
        match entries.get(&key) {
            Some(Entry::Known(version, sha256)) if *version == now => {
                return Ok(Wanted::Known(sha256.clone()));
            }
            Some(Entry::Hashing(hash)) if hash.version == now => {
                hash.wanted_by.fetch_add(1, Ordering::Relaxed);
                let hash = Arc::clone(hash);
                return Ok(Wanted::Hashing {
                    hash: Waiting::new(self, key, hash),
                    started: false,
                });
            }
            _ => {}
        }
        let hash = Arc::new(Hash {
            version: now,
            hashed: AtomicU64::new(0),
            wanted_by: AtomicUsize::new(1),
            stop: AtomicBool::new(false),
            outcome: Mutex::new(None),
            ended: Condvar::new(),
            thread: Mutex::new(None),
        });
        // A handle of its own (the same open file), for a thread that may
        // outlive this request: it runs as long as anyone waits.
        let file = file.try_clone()?;
        let (digests, running) = (self.clone(), Arc::clone(&hash));
        let thread = thread::Builder::new()
            .name("sha256".to_string())
            .spawn(move || digests.compute(&file, &running, key))?;
        *lock(&hash.thread) = Some(thread);
        entries.insert(key, Entry::Hashing(Arc::clone(&hash)));
        Ok(Wanted::Hashing {
            hash: Waiting::new(self, key, hash),
            started: true,
        })
    }
    // ANCHOR_END: want

    // ANCHOR: compute
    /// Computes the digest of `file`, its first `hash.version.size` bytes,
    /// counting them in `hash.hashed`, until `hash.stop`; keeps it for the
    /// next request, and hands it to every waiter.
    fn compute(&self, file: &File, hash: &Hash, key: (u64, u64)) {
        let size = hash.version.size;
        let reader = ReadAt {
            file,
            position: 0,
            end: size,
            hashed: &hash.hashed,
            stop: &hash.stop,
        };
        let outcome = match sha256_of(reader) {
            Ok((sha256, count)) if count == size => Ok(sha256),
            Ok(_) => Err("the file got shorter while it was read".to_string()),
            Err(err) => Err(describe(&err)),
        };
        if hash.stop.load(Ordering::Relaxed) {
            // Everyone left, and took the entry out on the way.
            return;
        }
        // Kept only if the file did not change while it was read: a digest
        // of half old, half new bytes must not outlive this request, or a
        // retry would get it again.
        let unchanged = file
            .metadata()
            .is_ok_and(|after| version(&after) == hash.version);
        {
            let mut entries = lock(&self.0);
            let ours = matches!(entries.get(&key),
                Some(Entry::Hashing(running)) if std::ptr::eq(Arc::as_ptr(running), hash));
            if ours {
                match &outcome {
                    Ok(sha256) if unchanged => {
                        let known = Entry::Known(hash.version.clone(), sha256.clone());
                        entries.insert(key, known);
                    }
                    // The next request hashes again.
                    _ => {
                        entries.remove(&key);
                    }
                }
            }
        }
        *lock(&hash.outcome) = Some(outcome);
        hash.ended.notify_all();
    }
}
// ANCHOR_END: compute

// ANCHOR: waiting
/// One request's place among those waiting for a hash. Leaving (dropped,
/// or [`Waiting::leave`]) as the last one stops the hashing, and waits for
/// its thread to stop.
pub(crate) struct Waiting {
    digests: Digests,
    key: (u64, u64),
    hash: Arc<Hash>,
    left: bool,
}

impl Waiting {
    fn new(digests: &Digests, key: (u64, u64), hash: Arc<Hash>) -> Waiting {
        Waiting {
            digests: digests.clone(),
            key,
            hash,
            left: false,
        }
    }

    /// How many bytes are hashed so far.
    pub(crate) fn hashed(&self) -> u64 {
        self.hash.hashed.load(Ordering::Relaxed)
    }

    /// The digest (or why there is none) once the hash has ended, waiting
    /// for it at most `wait`.
    pub(crate) fn outcome(&self, wait: Duration) -> Option<Result<String, String>> {
        let outcome = lock(&self.hash.outcome);
        let (outcome, _) = self
            .hash
            .ended
            .wait_timeout_while(outcome, wait, |outcome| outcome.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        outcome.clone()
    }

    /// Gives up waiting; says what became of the hashing, for the log.
    pub(crate) fn leave(mut self) -> &'static str {
        let ended = lock(&self.hash.outcome).is_some();
        match self.quit() {
            _ if ended => "the hashing had ended",
            true => "hashing stopped",
            false => "the hashing goes on for the others waiting",
        }
    }
    // ANCHOR_END: waiting

    // ANCHOR: quit
    /// Whether this was the last waiter: then the hashing has stopped.
    fn quit(&mut self) -> bool {
        self.left = true;
        let last = {
            let mut entries = lock(&self.digests.0);
            let last = self.hash.wanted_by.fetch_sub(1, Ordering::Relaxed) == 1;
            if last {
                self.hash.stop.store(true, Ordering::Relaxed);
                let ours = matches!(entries.get(&self.key),
                    Some(Entry::Hashing(running)) if Arc::ptr_eq(running, &self.hash));
                if ours {
                    entries.remove(&self.key);
                }
            }
            last
        };
        if last {
            // Outside the lock: the hashing thread takes it when it ends.
            let thread = lock(&self.hash.thread).take();
            if let Some(thread) = thread {
                let _ = thread.join();
            }
        }
        last
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.left {
            self.quit();
        }
    }
}
// ANCHOR_END: quit

// ANCHOR: read_at
/// Reads `file` from `position` to `end` at its own offsets (pread), never
/// moving the file's shared position, counting in `hashed`, until `stop`.
struct ReadAt<'a> {
    file: &'a File,
    position: u64,
    end: u64,
    hashed: &'a AtomicU64,
    stop: &'a AtomicBool,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(io::Error::other("the transfer stopped"));
        }
        let left = usize::try_from(self.end - self.position).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        #[cfg(unix)]
        let count =
            std::os::unix::fs::FileExt::read_at(self.file, &mut buf[..want], self.position)?;
        #[cfg(windows)]
        let count =
            std::os::windows::fs::FileExt::seek_read(self.file, &mut buf[..want], self.position)?;
        self.position += count as u64;
        self.hashed.store(self.position, Ordering::Relaxed);
        Ok(count)
    }
}
// ANCHOR_END: read_at
