//! A Maildir (the `new/`, `cur/`, `tmp/` layout every MTA can deliver to), watched per
//! engagement. Blocking `std::fs` calls: async callers run them in `spawn_blocking`.
//!
//! Delivery writes to `tmp/` and renames into `new/`, so a reader never sees half a
//! message; taking a message renames it from `new/` to `cur/` with the "seen" flag, so it
//! is read once even if the reader stops half-way through a batch.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::MAX_MESSAGE_SIZE;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Maildir {
    root: PathBuf,
}

impl Maildir {
    /// Opens the maildir at `root`, creating it and its three subdirectories if missing.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        for sub in ["new", "cur", "tmp"] {
            fs::create_dir_all(root.join(sub))?;
        }
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The messages waiting in `new/`, oldest first (delivery names start with the time).
    pub fn new_messages(&self) -> io::Result<Vec<PathBuf>> {
        let mut paths = Vec::new();
        for entry in fs::read_dir(self.root.join("new"))? {
            let entry = entry?;
            // Dot files are not messages (editors' and tools' leftovers).
            if entry.file_name().to_string_lossy().starts_with('.') || !entry.file_type()?.is_file()
            {
                continue;
            }
            paths.push(entry.path());
        }
        paths.sort();
        Ok(paths)
    }

    /// A message's bytes. A file larger than [`MAX_MESSAGE_SIZE`] is read only that far
    /// plus one byte: enough for [`crate::parse`] to refuse it, without holding it all.
    pub fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        fs::File::open(path)?
            .take(MAX_MESSAGE_SIZE as u64 + 1)
            .read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Moves a message from `new/` to `cur/` with the seen flag (`:2,S`) and returns its new
    /// path. One rename: atomic, and a second reader's rename of the same file fails.
    pub fn mark_seen(&self, path: &Path) -> io::Result<PathBuf> {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a message file"))?;
        let in_new = path
            .parent()
            .is_some_and(|dir| same_dir(dir, &self.root.join("new")));
        if !in_new {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not in this maildir's new/", path.display()),
            ));
        }
        let unique = name.split_once(":2,").map_or(name, |(unique, _)| unique);
        let target = self.root.join("cur").join(format!("{unique}:2,S"));
        fs::rename(path, &target)?;
        Ok(target)
    }

    /// Delivers a message the way an MTA does: written and synced in `tmp/`, then renamed
    /// into `new/`. For tests and `delego demo`.
    pub fn deliver(&self, raw: &[u8]) -> io::Result<PathBuf> {
        let name = unique_name();
        let tmp = self.root.join("tmp").join(&name);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        let written = file.write_all(raw).and_then(|()| file.sync_all());
        if let Err(error) = written {
            let _ = fs::remove_file(&tmp);
            return Err(error);
        }
        let target = self.root.join("new").join(&name);
        fs::rename(&tmp, &target)?;
        Ok(target)
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b
        || match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
}

/// `seconds.MmicrosPpidQcounter.host`, the classic Maildir unique name. Fixed-width time
/// fields keep names in delivery order when sorted.
fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:010}.M{:06}P{}Q{count:06}.{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        host_name()
    )
}

/// The host name with the characters Maildir reserves (`/` and `:`) escaped.
fn host_name() -> String {
    let name = fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".into());
    name.replace('/', "\\057").replace(':', "\\072")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivered_messages_are_listed_oldest_first_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let maildir = Maildir::open(dir.path().join("support")).unwrap();
        let first = maildir
            .deliver(b"From: a@example.org\r\n\r\none\r\n")
            .unwrap();
        let second = maildir
            .deliver(b"From: b@example.org\r\n\r\ntwo\r\n")
            .unwrap();
        fs::write(maildir.root().join("new/.DS_Store"), b"junk").unwrap();

        assert_eq!(maildir.new_messages().unwrap(), vec![first.clone(), second]);
        assert_eq!(
            maildir.read(&first).unwrap(),
            b"From: a@example.org\r\n\r\none\r\n"
        );
        assert_eq!(fs::read_dir(maildir.root().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn a_seen_message_moves_to_cur_once() {
        let dir = tempfile::tempdir().unwrap();
        let maildir = Maildir::open(dir.path()).unwrap();
        let path = maildir
            .deliver(b"From: a@example.org\r\n\r\nhi\r\n")
            .unwrap();

        let seen = maildir.mark_seen(&path).unwrap();
        assert!(seen.starts_with(dir.path().join("cur")));
        assert!(seen.to_string_lossy().ends_with(":2,S"));
        assert_eq!(
            fs::read(&seen).unwrap(),
            b"From: a@example.org\r\n\r\nhi\r\n"
        );
        assert!(maildir.new_messages().unwrap().is_empty());
        // A second reader that raced for the same file finds it gone.
        assert!(maildir.mark_seen(&path).is_err());
    }

    #[test]
    fn only_messages_in_new_can_be_marked_seen() {
        let dir = tempfile::tempdir().unwrap();
        let maildir = Maildir::open(dir.path().join("m")).unwrap();
        let outside = dir.path().join("elsewhere");
        fs::write(&outside, b"x").unwrap();
        let error = maildir.mark_seen(&outside).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(outside.exists());
    }

    #[test]
    fn reading_stops_past_the_size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let maildir = Maildir::open(dir.path()).unwrap();
        let path = maildir.root().join("new/big");
        let file = fs::File::create(&path).unwrap();
        file.set_len(MAX_MESSAGE_SIZE as u64 + 1000).unwrap();
        let bytes = maildir.read(&path).unwrap();
        assert_eq!(bytes.len(), MAX_MESSAGE_SIZE + 1);
        assert_eq!(
            crate::parse(&bytes).unwrap_err().reason,
            "larger than the 25 MiB limit"
        );
    }
}
