//! Atomic file replacement: a reader sees the old file or the new one, never a mix or nothing.
//!
//! The new contents go to a temporary file in the destination's directory (a rename is atomic
//! only within one filesystem), which is written, given its mode (and owner), fsynced, renamed
//! over the destination, and then the directory is fsynced so the rename survives a crash. On
//! any error the temporary file is removed and the destination is left as it was. Files that
//! belong together are [`Staged`] first and renamed only once all of them are written
//! ([`StagedFiles`]); a file whose contents and mode are already right is not rewritten.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Who owns a written file; `None` keeps the writing process's user or group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Ownership {
    /// Numeric user id.
    pub uid: Option<u32>,
    /// Numeric group id.
    pub gid: Option<u32>,
}

/// Replaces `path` with `contents`, mode `mode` (exactly: the umask does not apply).
pub(crate) fn write_atomic(
    path: &Path,
    contents: &[u8],
    mode: u32,
    owner: Ownership,
) -> io::Result<()> {
    Staged::write(path, contents, mode, owner)?.commit()
}

/// A file written in full next to its destination, not yet renamed over it: the first half of
/// [`write_atomic`]. Files that must change together (a key and its certificate) are all staged
/// before any is committed, so that running out of space (or any write error) leaves every old
/// file in place instead of a new key next to an old certificate. Dropping it uncommitted
/// removes the temporary file.
#[derive(Debug)]
pub(crate) struct Staged {
    temporary: PathBuf,
    path: PathBuf,
    committed: bool,
}

impl Staged {
    /// Writes `contents` with `mode` (and `owner`) to a temporary file beside `path`, synced.
    pub(crate) fn write(
        path: &Path,
        contents: &[u8],
        mode: u32,
        owner: Ownership,
    ) -> io::Result<Staged> {
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
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the file over its destination and syncs the directory.
    pub(crate) fn commit(self) -> io::Result<()> {
        let directory = self.rename()?;
        // Without this the rename may be lost by a crash even though the data was synced.
        File::open(directory)?.sync_all()
    }

    /// Renames the file over its destination; returns the directory to sync.
    fn rename(mut self) -> io::Result<PathBuf> {
        fs::rename(&self.temporary, &self.path)?;
        self.committed = true;
        Ok(parent_directory(&self.path))
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

/// Files of one render written beside their destinations, in the order they are to replace
/// them.
#[derive(Debug, Default)]
pub(crate) struct StagedFiles {
    files: Vec<(Vec<u8>, Staged)>,
}

impl Drop for StagedFiles {
    fn drop(&mut self) {
        // What a render stages is often a private key: wiped, not just freed.
        for (contents, _) in &mut self.files {
            zeroize::Zeroize::zeroize(contents);
        }
    }
}

impl StagedFiles {
    /// What `path` will hold once committed, if a file for it is staged.
    pub(crate) fn pending(&self, path: &Path) -> Option<&[u8]> {
        self.files
            .iter()
            .rev()
            .find(|(_, staged)| staged.path() == path)
            .map(|(contents, _)| contents.as_slice())
    }

    /// Adds a staged file; an earlier one for the same path is dropped (and its temporary
    /// removed), as its rename would be overwritten anyway.
    pub(crate) fn push(&mut self, contents: Vec<u8>, staged: Staged) {
        self.files
            .retain(|(_, earlier)| earlier.path() != staged.path());
        self.files.push((contents, staged));
    }

    /// Renames every staged file over its destination, in order, then syncs their
    /// directories; `true` when any was renamed. The renames follow each other with nothing in
    /// between, so a reader sees the old set or the new one for as short a time as can be.
    /// The error names the file whose rename failed.
    pub(crate) fn commit(mut self) -> io::Result<bool> {
        let files = std::mem::take(&mut self.files);
        let changed = !files.is_empty();
        let mut directories: Vec<PathBuf> = Vec::new();
        for (mut contents, staged) in files {
            zeroize::Zeroize::zeroize(&mut contents);
            let path = staged.path().to_path_buf();
            let directory = staged.rename().map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!("cannot replace {}: {err}", path.display()),
                )
            })?;
            if !directories.contains(&directory) {
                directories.push(directory);
            }
        }
        // Without this the renames may be lost by a crash even though the data was synced.
        for directory in directories {
            File::open(&directory)?.sync_all()?;
        }
        Ok(changed)
    }
}

/// Whether `path` already has the owner and group asked for (`None` asks for nothing).
fn owner_matches(path: &Path, owner: Ownership) -> bool {
    use std::os::unix::fs::MetadataExt;
    if owner == Ownership::default() {
        return true;
    }
    match fs::metadata(path) {
        Ok(metadata) => {
            owner.uid.is_none_or(|uid| metadata.uid() == uid)
                && owner.gid.is_none_or(|gid| metadata.gid() == gid)
        }
        Err(_) => false,
    }
}

/// Stages `contents` for `path` unless it already has these contents, mode and owner.
pub(crate) fn stage_if_changed(
    path: &Path,
    mut contents: Vec<u8>,
    perms: Option<u32>,
    owner: Ownership,
    staged: &mut StagedFiles,
) -> io::Result<()> {
    if staged.pending(path).is_none()
        && !needs_write(path, &contents, perms)
        && owner_matches(path, owner)
    {
        // Not needed: wiped (it may be a key) rather than just freed.
        zeroize::Zeroize::zeroize(&mut contents);
        return Ok(());
    }
    let mode = perms
        .or_else(|| existing_mode(path))
        .unwrap_or_else(|| default_mode(&contents));
    match Staged::write(path, &contents, mode, owner) {
        Ok(file) => {
            staged.push(contents, file);
            Ok(())
        }
        Err(err) => {
            zeroize::Zeroize::zeroize(&mut contents);
            Err(err)
        }
    }
}

/// The mode of a new file whose template gives none: 0600 when it holds a private key, else
/// 0644 as in Vault Agent.
pub(crate) fn default_mode(contents: &[u8]) -> u32 {
    if holds_private_key(contents) {
        0o600
    } else {
        0o644
    }
}

/// Whether `contents` hold a PEM private key (of any kind: `PRIVATE KEY`, `RSA PRIVATE KEY`,
/// `EC PRIVATE KEY`...).
pub(crate) fn holds_private_key(contents: &[u8]) -> bool {
    contents
        .windows(b"PRIVATE KEY-----".len())
        .any(|window| window == b"PRIVATE KEY-----")
}

/// Whether `path` lacks these contents or this mode.
pub(crate) fn needs_write(path: &Path, contents: &[u8], perms: Option<u32>) -> bool {
    let current_mode = existing_mode(path);
    let mode = perms
        .or(current_mode)
        .unwrap_or_else(|| default_mode(contents));
    current_mode != Some(mode) || std::fs::read(path).map_or(true, |existing| existing != contents)
}

pub(crate) fn existing_mode(path: &Path) -> Option<u32> {
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Stages and commits one file, as a render does for each of its files.
    fn replace_if_changed(
        path: &Path,
        contents: &[u8],
        perms: Option<u32>,
        owner: Ownership,
    ) -> io::Result<bool> {
        let mut staged = StagedFiles::default();
        stage_if_changed(path, contents.to_vec(), perms, owner, &mut staged)?;
        staged.commit()
    }

    #[test]
    fn a_failed_write_replaces_no_file_of_the_render() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("tls.key");
        std::fs::write(&key, "old key").unwrap();
        let mut staged = StagedFiles::default();
        stage_if_changed(
            &key,
            b"new key".to_vec(),
            None,
            Ownership::default(),
            &mut staged,
        )
        .unwrap();
        // The certificate cannot be written (as on a full disk): the key stays the old one.
        let crt = dir.path().join("missing").join("tls.crt");
        assert!(
            stage_if_changed(
                &crt,
                b"new".to_vec(),
                None,
                Ownership::default(),
                &mut staged
            )
            .is_err()
        );
        drop(staged);
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "old key");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }

    #[test]
    fn files_holding_a_key_default_to_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("tls.key");
        let pem = b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        assert!(replace_if_changed(&key, pem, None, Ownership::default()).unwrap());
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let crt = dir.path().join("tls.crt");
        assert!(
            replace_if_changed(
                &crt,
                b"-----BEGIN CERTIFICATE-----\n",
                None,
                Ownership::default()
            )
            .unwrap()
        );
        assert_eq!(
            std::fs::metadata(&crt).unwrap().permissions().mode() & 0o777,
            0o644
        );
        // Unchanged contents and mode: nothing written.
        assert!(
            !replace_if_changed(
                &crt,
                b"-----BEGIN CERTIFICATE-----\n",
                None,
                Ownership::default()
            )
            .unwrap()
        );
        // An explicit mode wins, and a mode change alone is a change.
        assert!(replace_if_changed(&key, pem, Some(0o644), Ownership::default()).unwrap());
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

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
