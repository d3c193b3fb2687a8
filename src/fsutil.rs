//! Atomic file replacement: a reader sees the old file or the new one, never a mix or nothing.
//!
//! The new contents go to a temporary file in the destination's directory (a rename is atomic
//! only within one filesystem), which is written, given its mode (and owner), fsynced, renamed
//! over the destination, and then the directory is fsynced so the rename survives a crash. On
//! any error the temporary file is removed and the destination is left as it was. Files that
//! belong together are [`Staged`] first and renamed only once all of them are written.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Who owns a written file; `None` keeps the writing process's user or group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ownership {
    /// Numeric user id.
    pub uid: Option<u32>,
    /// Numeric group id.
    pub gid: Option<u32>,
}

/// Replaces `path` with `contents`, mode `mode` (exactly: the umask does not apply).
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32, owner: Ownership) -> io::Result<()> {
    Staged::write(path, contents, mode, owner)?.commit()
}

/// A file written in full next to its destination, not yet renamed over it: the first half of
/// [`write_atomic`]. Files that must change together (a key and its certificate) are all staged
/// before any is committed, so that running out of space (or any write error) leaves every old
/// file in place instead of a new key next to an old certificate. Dropping it uncommitted
/// removes the temporary file.
#[derive(Debug)]
pub struct Staged {
    temporary: PathBuf,
    path: PathBuf,
    committed: bool,
}

impl Staged {
    /// Writes `contents` with `mode` (and `owner`) to a temporary file beside `path`, synced.
    pub fn write(path: &Path, contents: &[u8], mode: u32, owner: Ownership) -> io::Result<Staged> {
        let directory = parent_directory(path);
        let staged = Staged {
            temporary: temporary_path(path, &directory),
            path: path.to_path_buf(),
            committed: false,
        };
        // On error, dropping `staged` removes whatever was written.
        write_synced(&staged.temporary, contents, mode, owner)?;
        Ok(staged)
    }

    /// The destination.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the file over its destination and syncs the directory.
    pub fn commit(mut self) -> io::Result<()> {
        fs::rename(&self.temporary, &self.path)?;
        self.committed = true;
        // Without this the rename may be lost by a crash even though the data was synced.
        File::open(parent_directory(&self.path))?.sync_all()
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temporary);
        }
    }
}

fn write_synced(temporary: &Path, contents: &[u8], mode: u32, owner: Ownership) -> io::Result<()> {
    // Created owner-only so the contents are never readable under a wider mode, even briefly.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(temporary)?;
    file.write_all(contents)?;
    if owner.uid.is_some() || owner.gid.is_some() {
        std::os::unix::fs::fchown(&file, owner.uid, owner.gid)?;
    }
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.sync_all()
}

fn parent_directory(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A name no other writer uses: hidden, with the destination's name, the pid and a counter.
fn temporary_path(path: &Path, directory: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy());
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    directory.join(format!(".{name}.{}.{unique}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn replaces_the_file_with_the_exact_mode_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        fs::write(&path, "old").unwrap();
        write_atomic(&path, b"new", 0o640, Ownership::default()).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o640);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("token")]);
    }

    #[test]
    fn an_uncommitted_stage_leaves_the_destination_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tls.key");
        fs::write(&path, "old").unwrap();
        let staged = Staged::write(&path, b"new", 0o600, Ownership::default()).unwrap();
        drop(staged);
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("token");
        assert!(write_atomic(&path, b"new", 0o600, Ownership::default()).is_err());
        assert!(!path.exists());
    }
}
