//! Atomic file replacement: a reader sees the old file or the new one, never a mix or nothing.
//!
//! The new contents go to a temporary file in the destination's directory (a rename is atomic
//! only within one filesystem), which is written, given its mode (and owner), fsynced, renamed
//! over the destination, and then the directory is fsynced so the rename survives a crash. On
//! any error the temporary file is removed and the destination is left as it was. Files that
//! belong together are [`Staged`] first and renamed only once all of them are written
//! ([`StagedFiles`]); a file whose contents and mode are already right is not rewritten.
//!
//! The destination's directory is often shared with other containers, so whatever is found
//! there is hostile until shown otherwise. Only the final component is guarded (a symlinked
//! directory such as a Kubernetes volume's `..data` is the user's choice): a symlink, FIFO,
//! socket or device at a destination is never followed, opened or read, never decides the new
//! file's mode or owner, and is replaced by the rename like any other file (the rename replaces
//! the link, not what it points to); a directory there is an error naming it. An existing
//! regular file is opened with `O_NOFOLLOW | O_NONBLOCK`, checked again on the open descriptor,
//! and read only when its size equals the new contents' (so never more than those). Temporary
//! files have unpredictable names and are created with `O_CREAT | O_EXCL | O_NOFOLLOW`, owner
//! only: whatever was planted at a name is never written through.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

/// The most read of an existing file whose whole contents are needed (a certificate to reuse,
/// a file appended to): far more than any certificate chain, little enough to hold.
pub(crate) const READ_LIMIT: u64 = 4 << 20;

/// How many fresh temporary names are tried before giving up (each collision is a file
/// someone else put there).
const TEMPORARY_ATTEMPTS: usize = 16;

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
    /// A directory at `path` is an error naming it (no file can be renamed over it).
    pub(crate) fn write(
        path: &Path,
        contents: &[u8],
        mode: u32,
        owner: Ownership,
    ) -> io::Result<Staged> {
        refuse_directory(path)?;
        let directory = parent_directory(path);
        let (temporary, file) = create_temporary(path, &directory)?;
        let staged = Staged {
            temporary,
            path: path.to_path_buf(),
            committed: false,
        };
        // On error, dropping `staged` removes whatever was written.
        write_synced(file, contents, mode, owner)?;
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
        sync_directory(&directory)
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

fn write_synced(mut file: File, contents: &[u8], mode: u32, owner: Ownership) -> io::Result<()> {
    file.write_all(contents)?;
    if owner.uid.is_some() || owner.gid.is_some() {
        std::os::unix::fs::fchown(&file, owner.uid, owner.gid)?;
    }
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.sync_all()
}

/// Creates a temporary file beside `path` under a fresh unpredictable name: created by this
/// call (`O_EXCL`), never through a link (`O_NOFOLLOW`), owner-only so the contents are never
/// readable under a wider mode, even briefly. A name already taken is skipped.
fn create_temporary(path: &Path, directory: &Path) -> io::Result<(PathBuf, File)> {
    for _ in 0..TEMPORARY_ATTEMPTS {
        let temporary = temporary_path(path, directory)?;
        match create_exclusive(&temporary) {
            Ok(file) => return Ok((temporary, file)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "no free temporary name beside {} after {TEMPORARY_ATTEMPTS} tries",
            path.display()
        ),
    ))
}

/// Creates `path`, owner-only, failing with `AlreadyExists` when anything (a link included,
/// dangling or not) is there already.
fn create_exclusive(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits())
        .open(path)
}

/// An error naming `path` when a directory is there: a file cannot be renamed over it.
fn refuse_directory(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            format!(
                "{} is a directory; a file cannot replace it (remove it or choose another \
                 destination)",
                path.display()
            ),
        )),
        _ => Ok(()),
    }
}

/// Syncs a directory, opened as one (`O_DIRECTORY`: never a FIFO swapped in for it).
fn sync_directory(directory: &Path) -> io::Result<()> {
    OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_DIRECTORY | OFlag::O_CLOEXEC).bits())
        .open(directory)?
        .sync_all()
}

fn parent_directory(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A hidden name beside `path` no other writer can predict: the destination's name and 64
/// random bits from the operating system (`getrandom(2)` directly: aws-lc's generator would
/// first seed its CPU-jitter entropy source, tens of milliseconds of CPU before the agent's
/// first file, which is the pid file, before its first login).
fn temporary_path(path: &Path, directory: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy());
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|err| {
        io::Error::other(format!("no randomness for a temporary file name: {err}"))
    })?;
    Ok(directory.join(format!(".{name}.{:016x}.tmp", u64::from_ne_bytes(random))))
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
            sync_directory(&directory)?;
        }
        Ok(changed)
    }
}

/// Whether `path` is a regular file with the owner and group asked for (`None` asks for
/// nothing).
fn owner_matches(path: &Path, owner: Ownership) -> bool {
    if owner == Ownership::default() {
        return true;
    }
    match regular_metadata(path) {
        Some(metadata) => {
            owner.uid.is_none_or(|uid| metadata.uid() == uid)
                && owner.gid.is_none_or(|gid| metadata.gid() == gid)
        }
        None => false,
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

/// Whether `path` lacks these contents or this mode: anything but a regular file there does.
pub(crate) fn needs_write(path: &Path, contents: &[u8], perms: Option<u32>) -> bool {
    let current_mode = existing_mode(path);
    let mode = perms
        .or(current_mode)
        .unwrap_or_else(|| default_mode(contents));
    current_mode != Some(mode) || !holds_exactly(path, contents)
}

/// The permission bits of the regular file at `path`; `None` for anything else (a symlink is
/// not followed: its target's mode is not the destination's).
pub(crate) fn existing_mode(path: &Path) -> Option<u32> {
    regular_metadata(path).map(|m| m.permissions().mode() & 0o777)
}

/// The metadata of `path` when it is a regular file itself (not through a symlink).
fn regular_metadata(path: &Path) -> Option<fs::Metadata> {
    fs::symlink_metadata(path)
        .ok()
        .filter(fs::Metadata::is_file)
}

/// Opens the regular file at `path` for reading without following a link at its last
/// component and without blocking (a FIFO swapped in after a check would otherwise wait for
/// a writer); `None` when nothing, or something else than a regular file, is there. What is
/// checked is the opened descriptor, so a swap between the check and the open is caught.
fn open_regular(path: &Path) -> io::Result<Option<(File, fs::Metadata)>> {
    // A device is not even opened (opening some has effects).
    match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_file() => {}
        Ok(_) => return Ok(None),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    }
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
        .open(path)
    {
        Ok(file) => file,
        // Replaced by a link (ELOOP) or removed since the check.
        Err(err) if err.raw_os_error() == Some(nix::libc::ELOOP) => return Ok(None),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let metadata = file.metadata()?;
    Ok(metadata.is_file().then_some((file, metadata)))
}

/// Whether the regular file at `path` holds exactly `contents`. A file of another size is not
/// read at all, so an existing file costs at most `contents.len()` bytes of reading whatever
/// its size.
fn holds_exactly(path: &Path, contents: &[u8]) -> bool {
    let Ok(Some((file, metadata))) = open_regular(path) else {
        return false;
    };
    if metadata.len() != contents.len() as u64 {
        return false;
    }
    let mut existing = zeroize::Zeroizing::new(Vec::with_capacity(contents.len()));
    // One byte more than expected tells a file that grew since the fstat.
    match file
        .take(contents.len() as u64 + 1)
        .read_to_end(&mut existing)
    {
        Ok(_) => existing.as_slice() == contents,
        Err(_) => false,
    }
}

/// The contents of the regular file at `path`, at most `limit` bytes: `Ok(None)` when there is
/// no regular file (nothing, a symlink, a FIFO, a device, a directory), an error when it is
/// larger than `limit` or cannot be read.
pub(crate) fn read_regular(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let Some((file, metadata)) = open_regular(path)? else {
        return Ok(None);
    };
    let too_large = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is larger than {limit} bytes", path.display()),
        )
    };
    if metadata.len() > limit {
        return Err(too_large());
    }
    let mut contents = Vec::with_capacity(metadata.len() as usize);
    file.take(limit + 1).read_to_end(&mut contents)?;
    if contents.len() as u64 > limit {
        zeroize::Zeroize::zeroize(&mut contents);
        return Err(too_large());
    }
    Ok(Some(contents))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn mode_of(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    const KEY: &[u8] = b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";

    #[test]
    fn a_symlink_at_the_destination_is_replaced_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("precious");
        fs::write(&target, KEY).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
        let key = dir.path().join("tls.key");
        std::os::unix::fs::symlink(&target, &key).unwrap();
        // The link's target holds the very contents: still a change, as the link is not ours.
        assert!(needs_write(&key, KEY, None));
        assert_eq!(
            existing_mode(&key),
            None,
            "the target's mode is not the link's"
        );
        assert!(replace_if_changed(&key, KEY, None, Ownership::default()).unwrap());
        assert!(fs::symlink_metadata(&key).unwrap().file_type().is_file());
        assert_eq!(
            mode_of(&key),
            0o600,
            "a key's default, not the target's 0644"
        );
        assert_eq!(fs::read(&key).unwrap(), KEY);
        assert_eq!(fs::read(&target).unwrap(), KEY);
        assert_eq!(mode_of(&target), 0o644);
        // A link to a file outside: its contents never reach an append either.
        let log = dir.path().join("log");
        std::os::unix::fs::symlink(&target, &log).unwrap();
        assert_eq!(read_regular(&log, READ_LIMIT).unwrap(), None);
    }

    #[test]
    fn a_fifo_at_the_destination_is_neither_opened_for_long_nor_read_and_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tls.crt");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        // Opening a FIFO for reading without O_NONBLOCK would wait for a writer forever.
        assert!(needs_write(&path, b"cert", None));
        assert_eq!(read_regular(&path, READ_LIMIT).unwrap(), None);
        assert_eq!(existing_mode(&path), None);
        assert!(replace_if_changed(&path, b"cert", None, Ownership::default()).unwrap());
        assert!(fs::symlink_metadata(&path).unwrap().file_type().is_file());
        assert_eq!(fs::read(&path).unwrap(), b"cert");
        assert_eq!(mode_of(&path), 0o644);
    }

    #[test]
    fn a_directory_at_the_destination_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tls.crt");
        fs::create_dir(&path).unwrap();
        let err = replace_if_changed(&path, b"cert", None, Ownership::default()).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("is a directory"), "{message}");
        assert!(fs::symlink_metadata(&path).unwrap().is_dir());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }

    #[test]
    fn a_huge_existing_file_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tls.crt");
        // 64 GiB, sparse: reading it whole would take minutes and all memory.
        File::create(&path).unwrap().set_len(64 << 30).unwrap();
        assert!(needs_write(&path, b"cert", None));
        let err = read_regular(&path, READ_LIMIT).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
        assert!(replace_if_changed(&path, b"cert", None, Ownership::default()).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"cert");
    }

    #[test]
    fn temporary_names_are_unpredictable_and_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tls.key");
        let first = temporary_path(&path, dir.path()).unwrap();
        let second = temporary_path(&path, dir.path()).unwrap();
        assert_ne!(first, second);
        let name = first.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(".tls.key.") && name.ends_with(".tmp"),
            "{name}"
        );
        assert!(!name.contains(&std::process::id().to_string()), "{name}");
        // Whatever is planted at a name is refused, not written through or opened.
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("target");
        fs::write(&target, "untouched").unwrap();
        let link = dir.path().join(".planted-link.tmp");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let dangling = dir.path().join(".planted-dangling.tmp");
        std::os::unix::fs::symlink(outside.path().join("created?"), &dangling).unwrap();
        let fifo = dir.path().join(".planted-fifo.tmp");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
        for planted in [&link, &dangling, &fifo] {
            let err = create_exclusive(planted).unwrap_err();
            assert_eq!(
                err.kind(),
                io::ErrorKind::AlreadyExists,
                "{}",
                planted.display()
            );
        }
        assert_eq!(fs::read_to_string(&target).unwrap(), "untouched");
        assert!(!outside.path().join("created?").exists());
        // The names the writer used before (pid and counter) are no longer its names.
        for counter in 0..4 {
            let old = dir
                .path()
                .join(format!(".tls.key.{}.{counter}.tmp", std::process::id()));
            std::os::unix::fs::symlink(&target, &old).unwrap();
        }
        write_atomic(&path, KEY, 0o600, Ownership::default()).unwrap();
        assert_eq!(fs::read(&path).unwrap(), KEY);
        assert_eq!(fs::read_to_string(&target).unwrap(), "untouched");
    }
}
