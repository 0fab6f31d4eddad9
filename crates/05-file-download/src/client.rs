//! The client: `get` into a `.part` file, the digest checked over every
//! byte kept, resume where a transfer stopped; and `list`.

use std::fs::{self, File};
use std::io::{self, BufReader, ErrorKind, IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use common::{Deadline, ReadLine, describe, is_timeout, printable, say};
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::part::{give_name, open_part, part_name, refuse_to_overwrite, remove, sync_folder};
use crate::protocol::parse_number;
use crate::reply::{
    Reader, header_line, not_understood, read_digest, read_line_within, read_reply,
};
use crate::{BUFFER_SIZE, DEFAULT_PORT, HASH_AHEAD, Reply, START_SERVER, parse_reply};

/// What `get` needs to know; the command line fills it in.
pub struct GetOptions {
    pub server: String,
    pub path: String,
    pub output: Option<PathBuf>,
    pub force: bool,
    pub timeout: Duration,
}

// ANCHOR: get
/// Downloads `options.path` into a `.part` file, checks its size and
/// SHA-256, and only then gives it its name. Resumes a `.part` left by an
/// earlier attempt.
pub fn get(options: &GetOptions) -> anyhow::Result<()> {
    let path = &options.path;
    let shown = printable(path.as_bytes());
    if path.contains(['\n', '\r']) {
        bail!("a path cannot contain a line break: {shown}");
    }
    let out = match &options.output {
        Some(out) => out.clone(),
        None => default_name(path)?,
    };
    refuse_to_overwrite(&out, options.force)?;
    let part = part_name(&out);
    // The .part, ours alone until we are done with it (see `open_part`).
    let file = open_part(&part, &out)?;
    let result = download(options, &shown, &out, &part, &file);
    if result.is_err() && file.metadata().is_ok_and(|meta| meta.len() == 0) {
        // Nothing arrived (no server, a refusal): leave no empty .part.
        let _ = fs::remove_file(&part);
    }
    result
}

// ANCHOR_END: get

// ANCHOR: download
/// `get` from the locked .part on: asks, receives, checks, renames.
fn download(
    options: &GetOptions,
    shown: &str,
    out: &Path,
    part: &Path,
    file: &File,
) -> anyhow::Result<()> {
    // Step 1: what an earlier attempt left in the .part. Those bytes are
    // hashed now, read from the file itself, so the digest at the end
    // covers what is on disk.
    let mut hasher = Sha256::new();
    // exercise 5.4: begin
    //~ let mut have: u64 = todo!();
    let mut have = io::copy(
        &mut BufReader::with_capacity(BUFFER_SIZE, file),
        &mut hasher,
    )
    .map_err(|err| failed("could not read", part, &err))?;
    // exercise 5.4: end

    let started = Instant::now();
    let (stream, peer) = request(options, have)?;
    // One BufReader: the header, then the file's bytes read past it.
    let mut reader = BufReader::new(Deadline {
        stream: &stream,
        until: None,
    });
    let size = read_size(&mut reader, peer, options.timeout, have, shown, part)?;

    // Step 4: receive the rest into the .part file, after what it holds
    // (it is open for appending).
    let mut writer = file;
    let resumed_at = have;
    let bar = progress_bar(size, have);
    let cut = receive(&mut reader, &mut writer, &mut hasher, &mut have, size, &bar)
        .map_err(|err| failed("could not write", part, &err))?;
    bar.finish_and_clear();
    if let Some(why) = cut {
        bail!(
            "the transfer of \"{shown}\" from {peer} stopped after {} of {} ({why}); {} keeps what arrived: run the same command again to resume",
            HumanBytes(have),
            HumanBytes(size),
            part.display()
        );
    }
    // The server's digest comes after the bytes (see `read_digest`).
    let sha256 = read_digest(&mut reader, peer, options.timeout, shown, part)?;
    let seconds = started.elapsed().as_secs_f64();

    // Step 5: on disk, checked, and only then under its name. The lock is
    // held until after the rename: no other download of ours wrote a byte
    // into the .part, so the digest of what we read and wrote is the
    // digest of what is on disk; its length must be the size too.
    check_on_disk(file, size, part)?;
    verify_and_rename(options, hasher, &sha256, shown, part, out)?;
    report(out, size, resumed_at, seconds);
    Ok(())
}

// ANCHOR_END: download

// ANCHOR: request
/// Step 2: connects, and asks for the whole file, or for the rest of it
/// when the .part already holds `have` bytes.
fn request(options: &GetOptions, have: u64) -> anyhow::Result<(TcpStream, SocketAddr)> {
    let path = &options.path;
    let stream = common::connect(&options.server, DEFAULT_PORT, options.timeout, START_SERVER)?;
    let peer = stream
        .peer_addr()
        .context("could not read the server's address")?;
    stream.set_read_timeout(Some(options.timeout))?;
    stream.set_write_timeout(Some(options.timeout))?;
    // exercise 5.4: begin
    //~ let request: String = todo!();
    let request = if have == 0 {
        format!("GET {path}\n")
    } else {
        format!("RESUME {have} {path}\n")
    };
    // exercise 5.4: end
    (&stream)
        .write_all(request.as_bytes())
        .map_err(|err| anyhow!("could not send the request to {peer}: {}", describe(&err)))?;
    Ok((stream, peer))
}

/// Step 3: the header, `OK <size>`; the file's size, or the error a person
/// can act on.
fn read_size(
    reader: &mut Reader<'_>,
    peer: SocketAddr,
    timeout: Duration,
    have: u64,
    shown: &str,
    part: &Path,
) -> anyhow::Result<u64> {
    let line = read_reply(reader, peer, timeout)?;
    match parse_reply(&line) {
        Some(Reply::Ok(size)) if size >= have => Ok(size),
        Some(Reply::Refused { code, .. }) if code == "bad-offset" => {
            // Our .part is longer than the file: the file has changed.
            remove(part)?;
            bail!(
                "{} holds more bytes than the server's {shown} has now, so the file has changed; removed {}: run the same command again to download it afresh",
                part.display(),
                part.display()
            );
        }
        Some(Reply::Refused { code, message }) => bail!(
            "the server refused \"{shown}\": {} ({})",
            printable(code.as_bytes()),
            printable(message.as_bytes())
        ),
        _ => Err(not_understood(peer, &line)),
    }
}

// ANCHOR_END: request

// ANCHOR: verify_and_rename
/// The .part on disk, holding `size` bytes; else it is removed.
fn check_on_disk(file: &File, size: u64, part: &Path) -> anyhow::Result<()> {
    file.sync_all()
        .map_err(|err| failed("could not flush to disk", part, &err))?;
    let on_disk = file
        .metadata()
        .map_err(|err| failed("could not read", part, &err))?
        .len();
    if on_disk != size {
        remove(part)?;
        bail!(
            "{} holds {} where {size} were written: another program wrote to it; removed {}: run the same command again",
            part.display(),
            common::count(on_disk, "byte"),
            part.display()
        );
    }
    Ok(())
}

/// The digest of every byte kept, compared with the server's `sha256`;
/// only when they match does the .part get its name, `out`.
fn verify_and_rename(
    options: &GetOptions,
    hasher: Sha256,
    sha256: &str,
    shown: &str,
    part: &Path,
    out: &Path,
) -> anyhow::Result<()> {
    // exercise 5.3: begin
    //~ todo!();
    if format!("{:x}", hasher.finalize()) != sha256 {
        remove(part)?;
        return Err(digest_mismatch(shown, part));
    }
    // exercise 5.3: end
    give_name(part, out, options.force)?;
    sync_folder(out);
    Ok(())
}
/// The last line of a download: what was saved, how fast, and whether it
/// was resumed.
fn report(out: &Path, size: u64, resumed_at: u64, seconds: f64) {
    let received = size - resumed_at;
    let resumed = if resumed_at > 0 {
        format!(", resumed after {}", HumanBytes(resumed_at))
    } else {
        String::new()
    };
    say!(
        "saved {}: {} in {seconds:.2} s ({}/s){resumed}, sha256 ok",
        out.display(),
        HumanBytes(size),
        HumanBytes((received as f64 / seconds.max(1e-6)) as u64)
    );
}
// ANCHOR_END: verify_and_rename

// ANCHOR: receive
/// Receives the bytes of the file up to `size` into `file`, hashing them
/// on the way; `have` counts the bytes of the file we hold. Returns `None`
/// when all arrived, or why they stopped. An error is a failure to write
/// the file (a full disk).
///
/// SHA-256 runs on a second thread, on another core, while this one fills
/// and writes the next buffer. The HASH_AHEAD buffers go round in a circle
/// (`empty` -> filled here -> hashed there -> `empty`), in order.
fn receive(
    reader: &mut impl Read,
    file: &mut impl Write,
    hasher: &mut Sha256,
    have: &mut u64,
    size: u64,
    bar: &ProgressBar,
) -> io::Result<Option<String>> {
    thread::scope(|scope| {
        let (to_hash, filled) = mpsc::sync_channel::<(Vec<u8>, usize)>(HASH_AHEAD);
        let (to_fill, empty) = mpsc::sync_channel::<Vec<u8>>(HASH_AHEAD);
        for _ in 0..HASH_AHEAD {
            let _ = to_fill.send(vec![0; BUFFER_SIZE]);
        }
        // Ends when `to_hash` is dropped, as this closure returns; the
        // scope waits for it, so `hasher` has seen every byte after it.
        scope.spawn(move || {
            for (buffer, count) in filled {
                // exercise 5.3: begin
                //~ todo!();
                hasher.update(&buffer[..count]);
                // exercise 5.3: end
                let _ = to_fill.send(buffer);
            }
        });
        while *have < size {
            let mut buffer = empty
                .recv()
                .map_err(|_| io::Error::other("the hashing thread stopped"))?;
            // Never read past the announced size.
            let want =
                usize::try_from(size - *have).map_or(BUFFER_SIZE, |left| left.min(BUFFER_SIZE));
            let count = match reader.read(&mut buffer[..want]) {
                Ok(0) => return Ok(Some("the connection closed early".to_string())),
                Ok(count) => count,
                Err(err) if err.kind() == ErrorKind::Interrupted => {
                    let _ = to_hash.send((buffer, 0));
                    continue;
                }
                Err(err) if is_timeout(&err) => {
                    return Ok(Some("the server sent nothing more".to_string()));
                }
                Err(err) => return Ok(Some(describe(&err))),
            };
            file.write_all(&buffer[..count])?;
            *have += count as u64;
            bar.inc(count as u64);
            let _ = to_hash.send((buffer, count));
        }
        Ok(None)
    })
}
// ANCHOR_END: receive

// ANCHOR: client_helpers
/// An I/O failure on a file, in one line: `could not write big.bin.part:
/// no space left on device`, without the `(os error 28)`.
pub(crate) fn failed(what: &str, file: &Path, err: &io::Error) -> anyhow::Error {
    anyhow!("{what} {}: {}", file.display(), describe(err))
}

/// The error for a file whose bytes, all there, do not make the SHA-256
/// the server announced. Its `.part` is removed by then: a part of an
/// older version would only fail again.
fn digest_mismatch(shown: &str, part: &Path) -> anyhow::Error {
    anyhow!(
        "\"{shown}\" arrived whole but its SHA-256 does not match the server's (the file changed on the server during the download, or since {} was started); removed {}: run the same command again to download it afresh",
        part.display(),
        part.display()
    )
}

/// The name to save `path` under when `-o` is not given: its last part.
fn default_name(path: &str) -> anyhow::Result<PathBuf> {
    let name = path.rsplit('/').next().unwrap_or_default();
    if name.is_empty() || name == "." || name == ".." || name.contains('\\') {
        bail!(
            "cannot name the saved file after \"{}\"; choose a name with -o NAME",
            printable(path.as_bytes())
        );
    }
    Ok(PathBuf::from(name))
}

/// A progress bar on standard error when that is a terminal; when it is a
/// file or a pipe, nothing (the summary line says it all).
fn progress_bar(size: u64, have: u64) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(size).with_position(have);
    if let Ok(style) =
        ProgressStyle::with_template("{wide_bar} {bytes}/{total_bytes} {bytes_per_sec}, {eta} left")
    {
        bar.set_style(style);
    }
    bar
}
// ANCHOR_END: client_helpers

// ANCHOR: list
/// Asks the server for its files and prints them as a table.
pub fn list(server: &str, timeout: Duration) -> anyhow::Result<()> {
    let stream = common::connect(server, DEFAULT_PORT, timeout, START_SERVER)?;
    let peer = stream
        .peer_addr()
        .context("could not read the server's address")?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    (&stream)
        .write_all(b"LIST\n")
        .map_err(|err| anyhow!("could not send the request to {peer}: {}", describe(&err)))?;
    let mut reader = BufReader::new(Deadline {
        stream: &stream,
        until: None,
    });
    let line = read_reply(&mut reader, peer, timeout)?;
    let count = match parse_reply(&line) {
        Some(Reply::Ok(count)) => count,
        Some(Reply::Refused { code, message }) => bail!(
            "the server refused to list its files: {} ({})",
            printable(code.as_bytes()),
            printable(message.as_bytes())
        ),
        _ => return Err(not_understood(peer, &line)),
    };
    say!("{:>12}  {:>10}  path", "bytes", "size");
    let mut total = 0u64;
    for listed in 0..count {
        let line = match read_line_within(&mut reader, timeout) {
            Ok(ReadLine::Closed) => bail!(
                "the server at {peer} announced {} and closed the connection after {listed}",
                common::count(count, "file")
            ),
            read => header_line(read, peer, timeout)?,
        };
        let entry = std::str::from_utf8(&line)
            .ok()
            .and_then(|line| line.split_once(' '))
            .and_then(|(size, path)| Some((parse_number(size)?, path)));
        let Some((size, path)) = entry else {
            return Err(not_understood(peer, &line));
        };
        say!(
            "{size:>12}  {:>10}  {}",
            HumanBytes(size).to_string(),
            printable(path.as_bytes())
        );
        total = total.saturating_add(size);
    }
    say!(
        "{}, {} in all",
        common::count(count, "file"),
        HumanBytes(total)
    );
    Ok(())
}
// ANCHOR_END: list

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_one_line_without_the_os_error_number() {
        // ENOSPC, as a write to a full disk fails on Linux.
        let full = io::Error::from_raw_os_error(28);
        let message = format!(
            "{:#}",
            failed("could not write", Path::new("big.bin.part"), &full)
        );
        assert_eq!(
            message, "could not write big.bin.part: no space left on device",
            "a write that fails because the disk is full should be told in one line, in words, \
             without `(os error 28)` (book: 05-file-download.md § When things go wrong)"
        );
    }
}
