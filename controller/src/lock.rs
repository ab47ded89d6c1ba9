//! One controller per inventory at a time.
//!
//! Two controllers patching the same estate could take two back ends of one pool down
//! together, which the plan's rules exist to prevent. The lock is an advisory lock
//! (`File::try_lock`) on a file next to the inventory, `.<inventory name>.poolpatch.lock`,
//! so it holds whatever run directory each controller uses. The holder writes who it is into
//! the file; a refused controller reads that back and names the holder. The operating system
//! drops the lock when the holder dies, so a crash never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct InventoryLock {
    file: File,
    path: PathBuf,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another controller holds it.
    #[error(
        "another poolpatch is working on this inventory ({holder}); lock file {path}. Wait for it to finish, or check it with `poolpatch status --run <its run dir>`"
    )]
    Held {
        /// The lock file.
        path: String,
        /// What the holder wrote about itself.
        holder: String,
    },
    /// The lock file could not be created or locked.
    #[error("cannot use the lock file {path}: {source}")]
    Io {
        /// The lock file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// The lock file for `inventory`.
pub fn lock_path(inventory: &Path) -> PathBuf {
    let name = inventory
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "inventory".to_string());
    let dir = inventory
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join(format!(".{name}.poolpatch.lock"))
}

impl InventoryLock {
    /// Takes the lock for `inventory`, recording `holder` (who, where, which run).
    pub fn acquire(inventory: &Path, holder: &str) -> Result<InventoryLock, LockError> {
        let path = lock_path(inventory);
        let shown = path.display().to_string();
        let io_err = |source| LockError::Io {
            path: shown.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = text.trim();
                return Err(LockError::Held {
                    path: shown,
                    holder: if holder.is_empty() {
                        "holder unknown".to_string()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        file.set_len(0).map_err(io_err)?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        file.write_all(holder.as_bytes()).map_err(io_err)?;
        file.sync_data().map_err(io_err)?;
        Ok(InventoryLock { file, path })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for InventoryLock {
    fn drop(&mut self) {
        // Clear the holder text so a later reader does not name a gone controller; the
        // lock itself goes with the file handle.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// A description of this process for the lock and the journal: `user@host pid N`.
pub fn operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(user_from_passwd)
        .unwrap_or_else(|| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{user}@{host} pid {}", std::process::id())
}

/// The name of this process's user from /etc/passwd (services and CI often have no $USER).
fn user_from_passwd() -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let uid = std::fs::metadata("/proc/self").ok()?.uid().to_string();
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)? == uid).then(|| name.to_string())
        })
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_controller_is_refused_and_told_who_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let inv = dir.path().join("estate.yaml");
        let held = InventoryLock::acquire(&inv, "alice@ops1 pid 42, run runs/1").unwrap();
        assert_eq!(held.path(), dir.path().join(".estate.yaml.poolpatch.lock"));
        let err = InventoryLock::acquire(&inv, "bob").unwrap_err().to_string();
        assert!(err.contains("alice@ops1 pid 42, run runs/1"), "{err}");
        assert!(err.contains(".estate.yaml.poolpatch.lock"), "{err}");
        drop(held);
        assert!(InventoryLock::acquire(&inv, "bob").is_ok());
    }
}
