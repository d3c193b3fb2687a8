//! The certificate the proxy serves, and how it is replaced; the admission webhook serves its
//! own through the same [`CertStore`] and [`Reloader`] (with its own [`ReloadMetrics`]).
//!
//! [`CertStore`] holds the current [`CertifiedKey`] behind an `ArcSwap`: a handshake takes it
//! with one atomic load, no lock and no I/O ([`CertResolver`]). [`Reloader`] watches the files
//! and publishes a new pair only after reading both files, parsing the chain, checking that the
//! key matches the certificate and that the certificate is within its validity window — on any
//! failure the last good pair stays, the cause is counted, and it is logged once per distinct
//! cause. Triggers: inotify on the parent directories (which survives the agent's
//! temp-file-and-rename and Kubernetes' `..data` symlink swap, where a watch on the file itself
//! would die at the first rename), a periodic poll that compares file metadata first, and
//! SIGHUP. A key/cert mismatch is retried after a short delay, since the agent writes the key
//! before the certificate and a reader can see the new key with the old certificate for an
//! instant.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use notify::Watcher as _;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::CertificateDer;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use super::metrics::ReloadMetrics;
use crate::certs::{self, CertInfo, PairError};
use crate::telemetry::Readiness;
use crate::tls::pem;

/// The readiness condition this module owns.
pub(crate) const READY_CONDITION: &str = "certificate";
/// How soon a mismatched pair is read again.
const MISMATCH_RETRY: Duration = Duration::from_millis(200);
/// File events arrive in bursts (temp file created, written, renamed): wait this long after
/// the first before reading.
const DEBOUNCE: Duration = Duration::from_millis(20);

/// Why a pair was not loaded; the `reason` label of the reload counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReloadError {
    /// A file does not exist.
    Missing(String),
    /// A file exists but cannot be read.
    Unreadable(String),
    /// The certificate file holds no valid certificate.
    CertInvalid(String),
    /// The key file holds no usable key.
    KeyInvalid(String),
    /// The key does not belong to the certificate.
    Mismatch(String),
    /// The certificate's NotAfter is past.
    Expired(String),
    /// The certificate's NotBefore is in the future.
    NotYetValid(String),
    /// The client CA bundle (mutual TLS) holds no usable CA; the previous bundle stays.
    ClientCaInvalid(String),
}

impl ReloadError {
    /// Every reason, for exporting zeros up front.
    pub(crate) const REASONS: &'static [&'static str] = &[
        "missing",
        "unreadable",
        "cert_invalid",
        "key_invalid",
        "mismatch",
        "expired",
        "not_yet_valid",
        "client_ca_invalid",
    ];

    /// The metric label.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            ReloadError::Missing(_) => "missing",
            ReloadError::Unreadable(_) => "unreadable",
            ReloadError::CertInvalid(_) => "cert_invalid",
            ReloadError::KeyInvalid(_) => "key_invalid",
            ReloadError::Mismatch(_) => "mismatch",
            ReloadError::Expired(_) => "expired",
            ReloadError::NotYetValid(_) => "not_yet_valid",
            ReloadError::ClientCaInvalid(_) => "client_ca_invalid",
        }
    }
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (ReloadError::Missing(m)
        | ReloadError::Unreadable(m)
        | ReloadError::CertInvalid(m)
        | ReloadError::KeyInvalid(m)
        | ReloadError::Mismatch(m)
        | ReloadError::Expired(m)
        | ReloadError::NotYetValid(m)
        | ReloadError::ClientCaInvalid(m)) = self;
        f.write_str(m)
    }
}

/// A validated pair, ready to serve.
pub(crate) struct LoadedPair {
    /// What rustls serves.
    pub certified: Arc<CertifiedKey>,
    /// The leaf's facts, for metrics and logs.
    pub info: CertInfo,
    /// The files' bytes, to notice when nothing changed.
    pub fingerprint: u64,
}

/// Reads and validates the pair at `cert_file` and `key_file` as of `now`.
pub(crate) fn load_pair(
    cert_file: &Path,
    key_file: &Path,
    now: SystemTime,
) -> Result<LoadedPair, ReloadError> {
    // Both texts are wiped when dropped: the key's, and the certificate file's, which may
    // hold the key too.
    let read = |path: &Path| -> Result<Zeroizing<String>, ReloadError> {
        std::fs::read_to_string(path)
            .map(Zeroizing::new)
            .map_err(|err| match err.kind() {
                std::io::ErrorKind::NotFound => {
                    ReloadError::Missing(format!("{} does not exist", path.display()))
                }
                _ => ReloadError::Unreadable(format!("cannot read {}: {err}", path.display())),
            })
    };
    let cert_text = read(cert_file)?;
    let key_text = read(key_file)?;
    pair_from_pem(&cert_text, &key_text, cert_file, key_file, now)
}

/// Validates a pair already read: `cert_text` as read from `cert_file`, `key_text` from
/// `key_file` (the paths only name the files in errors). [`load_pair`]'s checks, without I/O.
pub(crate) fn pair_from_pem(
    cert_text: &str,
    key_text: &str,
    cert_file: &Path,
    key_file: &Path,
    now: SystemTime,
) -> Result<LoadedPair, ReloadError> {
    let chain: Vec<CertificateDer<'static>> = pem::certificates(cert_text.as_bytes())
        .map_err(|err| ReloadError::CertInvalid(format!("{}: {err}", cert_file.display())))?;
    let Some(leaf) = chain.first() else {
        return Err(ReloadError::CertInvalid(format!(
            "{}: no certificate",
            cert_file.display()
        )));
    };
    let info = CertInfo::parse(leaf)
        .map_err(|err| ReloadError::CertInvalid(format!("{}: {err}", cert_file.display())))?;
    let (key, _) = pem::first_private_key(key_text.as_bytes())
        .map_err(|err| ReloadError::KeyInvalid(format!("{}: {err}", key_file.display())))?;
    let certified = certs::certified_key(chain, key).map_err(|err| match err {
        PairError::Mismatch => ReloadError::Mismatch(format!(
            "{} does not hold the key of the certificate in {}",
            key_file.display(),
            cert_file.display()
        )),
        other => ReloadError::KeyInvalid(format!("{}: {other}", key_file.display())),
    })?;
    if now < info.not_before {
        return Err(ReloadError::NotYetValid(format!(
            "the certificate in {} is not valid before {}",
            cert_file.display(),
            crate::timefmt::rfc3339(info.not_before)
        )));
    }
    if now >= info.not_after {
        return Err(ReloadError::Expired(format!(
            "the certificate in {} expired at {}",
            cert_file.display(),
            crate::timefmt::rfc3339(info.not_after)
        )));
    }
    Ok(LoadedPair {
        certified: Arc::new(certified),
        info,
        fingerprint: fingerprint(cert_text, key_text),
    })
}

fn fingerprint(cert: &str, key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    cert.hash(&mut hasher);
    key.hash(&mut hasher);
    hasher.finish()
}

/// The pair being served.
#[derive(Default)]
pub(crate) struct CertStore {
    current: ArcSwapOption<CertifiedKey>,
}

impl CertStore {
    /// What a handshake gets now; `None` before the first valid pair.
    pub(crate) fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current.load_full()
    }

    fn publish(&self, certified: Arc<CertifiedKey>) {
        self.current.store(Some(certified));
    }
}

/// rustls's hook: the current pair, or none (the handshake fails) before the first.
#[derive(Debug)]
pub(crate) struct CertResolver(pub Arc<CertStore>);

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.current.load().is_some() {
            "CertStore(serving)"
        } else {
            "CertStore(empty)"
        })
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.current()
    }
}

/// Keeps the store in step with the files.
pub(crate) struct Reloader {
    /// Where the pair is read from.
    pub cert_file: PathBuf,
    /// The key.
    pub key_file: PathBuf,
    /// The store to publish into.
    pub store: Arc<CertStore>,
    /// Counters and certificate gauges.
    pub metrics: ReloadMetrics,
    /// Marked ready at the first valid pair.
    pub readiness: Readiness,
    /// How often files are checked without an event.
    pub poll_interval: Duration,
}

/// What the reloader remembers between attempts.
#[derive(Default)]
struct ReloadState {
    fingerprint: Option<u64>,
    /// The serving certificate's serial, to tell a new certificate from the same one re-read.
    serial: Option<String>,
    not_after: Option<SystemTime>,
    last_error: Option<String>,
    metadata: Option<(FileStamp, FileStamp)>,
}

/// The line logged when a pair is published: the first one, a new certificate, or the same
/// certificate re-read (a SIGHUP, or files rewritten with the same certificate).
fn served_message(previous_serial: Option<&str>, serial: &str) -> &'static str {
    match previous_serial {
        None => "serving the certificate",
        Some(previous) if previous == serial => {
            "certificate files re-read; the certificate is unchanged (same serial)"
        }
        Some(_) => "serving a new certificate",
    }
}

/// Cheap identity of a file's current version: size, modification time, inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    // `metadata` follows symlinks, so a `..data` swap changes the inode seen here.
    let metadata = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        len: metadata.len(),
        modified: metadata.modified().ok(),
        inode: metadata.ino(),
    })
}

impl Reloader {
    /// Loads once now (so a valid pair on disk is served from the first connection), then
    /// follows the files until shutdown. `reloads` is the SIGHUP channel.
    pub(crate) async fn run(self, shutdown: CancellationToken, mut reloads: watch::Receiver<u64>) {
        let mut state = ReloadState::default();
        // Watch first, then read: a write between the two is then seen as an event.
        let (event_tx, mut event_rx) = mpsc::channel::<()>(1);
        let _watcher = self.watch(event_tx);
        if self.attempt(&mut state, false, true) == Attempt::Mismatch {
            tokio::time::sleep(MISMATCH_RETRY).await;
            self.attempt(&mut state, false, false);
        }
        let mut poll = tokio::time::interval(self.poll_interval);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.tick().await;
        loop {
            let force = tokio::select! {
                () = shutdown.cancelled() => return,
                Some(()) = event_rx.recv() => {
                    tokio::time::sleep(DEBOUNCE).await;
                    // Coalesce the burst.
                    while event_rx.try_recv().is_ok() {}
                    false
                }
                _ = poll.tick() => {
                    let stamps = stamp(&self.cert_file).zip(stamp(&self.key_file));
                    self.check_expiry(&state);
                    if stamps.is_some() && stamps == state.metadata && state.last_error.is_none() {
                        continue;
                    }
                    false
                }
                changed = reloads.changed() => {
                    if changed.is_err() { return; }
                    tracing::info!("SIGHUP: reloading the certificate");
                    true
                }
            };
            if self.attempt(&mut state, force, true) == Attempt::Mismatch {
                // The agent writes the key, then the certificate: a new key beside the old
                // certificate is normal for an instant. Look again before calling it a failure.
                tokio::time::sleep(MISMATCH_RETRY).await;
                self.attempt(&mut state, force, false);
            }
        }
    }

    /// A watcher on both parent directories that pings `event_tx` on any change; `None` (with
    /// a warning) when inotify is unavailable — the poll still covers it.
    fn watch(&self, event_tx: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
        let names: Vec<std::ffi::OsString> = [&self.cert_file, &self.key_file]
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_os_string()))
            .collect();
        let handler = move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if event.kind.is_access() {
                return;
            }
            // Only events about our files, or about the `..data` link Kubernetes swaps.
            let relevant = event.paths.iter().any(|path| {
                path.file_name().is_some_and(|name| {
                    names.iter().any(|n| n == name) || name.to_string_lossy().starts_with("..")
                })
            });
            if relevant {
                let _ = event_tx.try_send(());
            }
        };
        let mut watcher = match notify::recommended_watcher(handler) {
            Ok(watcher) => watcher,
            Err(err) => {
                tracing::warn!(error = %err, "cannot watch the certificate directory; polling only");
                return None;
            }
        };
        let mut directories: Vec<PathBuf> = [&self.cert_file, &self.key_file]
            .iter()
            .map(|p| match p.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
                _ => PathBuf::from("."),
            })
            .collect();
        directories.dedup();
        for directory in directories {
            if let Err(err) = watcher.watch(&directory, notify::RecursiveMode::NonRecursive) {
                tracing::warn!(
                    directory = %directory.display(),
                    error = %err,
                    "cannot watch the certificate directory; polling only"
                );
            }
        }
        Some(watcher)
    }

    /// One load attempt; publishes on success. With `tolerate_mismatch`, a key that does not
    /// match is neither counted nor logged: the caller looks again shortly.
    fn attempt(&self, state: &mut ReloadState, force: bool, tolerate_mismatch: bool) -> Attempt {
        let stamps = stamp(&self.cert_file).zip(stamp(&self.key_file));
        match load_pair(&self.cert_file, &self.key_file, SystemTime::now()) {
            Err(ReloadError::Mismatch(_)) if tolerate_mismatch => Attempt::Mismatch,
            Ok(pair) => {
                state.metadata = stamps;
                // "Again" only after a failure that followed a valid pair: on the first load,
                // waiting for the agent's files was no failure of theirs.
                if state.last_error.take().is_some() && state.fingerprint.is_some() {
                    tracing::info!("the certificate files are valid again");
                }
                if state.fingerprint == Some(pair.fingerprint) && !force {
                    return Attempt::Unchanged;
                }
                let serial = pair.info.serial.clone();
                let message = served_message(state.serial.as_deref(), &serial);
                state.serial = Some(serial);
                state.fingerprint = Some(pair.fingerprint);
                state.not_after = Some(pair.info.not_after);
                self.store.publish(pair.certified);
                self.metrics.reload_success(&pair.info);
                self.readiness.ready(READY_CONDITION);
                tracing::info!(
                    serial = %pair.info.serial,
                    subject = %pair.info.subject_cn,
                    not_after = %crate::timefmt::rfc3339(pair.info.not_after),
                    "{message}"
                );
                Attempt::Loaded
            }
            Err(err) => {
                state.metadata = stamps;
                self.metrics.reload_failure(err.reason());
                let text = err.to_string();
                if state.last_error.as_deref() != Some(text.as_str()) {
                    if state.fingerprint.is_some() {
                        tracing::warn!(reason = err.reason(), error = %text, "certificate reload failed; still serving the previous certificate");
                    } else {
                        tracing::warn!(reason = err.reason(), error = %text, "no valid certificate yet; refusing TLS handshakes");
                    }
                    state.last_error = Some(text.clone());
                }
                if state.fingerprint.is_none() {
                    self.readiness
                        .not_ready(READY_CONDITION, format!("no valid certificate: {text}"));
                }
                if matches!(err, ReloadError::Mismatch(_)) {
                    Attempt::Mismatch
                } else {
                    Attempt::Failed
                }
            }
        }
    }

    /// Marks the proxy not ready once the certificate it serves has expired.
    fn check_expiry(&self, state: &ReloadState) {
        if let Some(not_after) = state.not_after
            && SystemTime::now() >= not_after
        {
            self.readiness.not_ready(
                READY_CONDITION,
                format!(
                    "the served certificate expired at {} and no valid replacement is on disk",
                    crate::timefmt::rfc3339(not_after)
                ),
            );
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Loaded,
    Unchanged,
    Mismatch,
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_changed_serial_is_called_a_new_certificate() {
        assert_eq!(served_message(None, "0a:01"), "serving the certificate");
        assert_eq!(
            served_message(Some("0a:01"), "0a:02"),
            "serving a new certificate"
        );
        let same = served_message(Some("0a:01"), "0a:01");
        assert!(
            same.contains("unchanged") && !same.contains("new"),
            "{same}"
        );
    }

    #[test]
    fn every_exported_reason_is_one_a_variant_produces() {
        let text = String::new;
        let variants = [
            ReloadError::Missing(text()),
            ReloadError::Unreadable(text()),
            ReloadError::CertInvalid(text()),
            ReloadError::KeyInvalid(text()),
            ReloadError::Mismatch(text()),
            ReloadError::Expired(text()),
            ReloadError::NotYetValid(text()),
            ReloadError::ClientCaInvalid(text()),
        ];
        let produced: Vec<&str> = variants.iter().map(ReloadError::reason).collect();
        assert_eq!(produced, ReloadError::REASONS);
    }
}
