//! The single-node guard for SQLite: one Delego process per database file.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::{Result, StoreError};

/// An exclusive lock on `<database>.lock`, held for as long as the store lives. The
/// operating system releases it when the process dies, so a crash never leaves it stuck.
#[derive(Debug)]
pub struct ProcessLock {
    _file: File,
}

impl ProcessLock {
    pub fn acquire(database: &Path) -> Result<Self> {
        let path = lock_path(database);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StoreError::Locked(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    "another process".to_owned()
                } else {
                    format!("process {holder}")
                };
                return Err(StoreError::Locked(format!(
                    "the SQLite database {} is in use by {who}. SQLite runs one Delego node; \
                     stop the other one, or run several nodes on PostgreSQL (--database-url postgres://…)",
                    database.display()
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(StoreError::Locked(format!(
                    "cannot lock {}: {e}",
                    path.display()
                )));
            }
        }
        // The pid is only a hint for the message above; failing to write it is harmless.
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "{}", std::process::id());
        let _ = file.flush();
        Ok(Self { _file: file })
    }
}

fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}
