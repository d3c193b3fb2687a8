//! The container image `scripts/build-image.sh` builds from the `Containerfile` (an OCI archive
//! at `target/image/pki-sidecar.oci.tar`, or `PKI_SIDECAR_IMAGE_ARCHIVE`): its config, and its
//! root filesystem run without a container runtime.
//!
//! The image's layers are unpacked with `umoci` into a temporary directory and its entrypoint is
//! run there as its config says (`User` through `chroot --userspec`, `Env`, nothing else): only
//! the image's files are visible, so a binary needing a libc, a loader or a shell would fail.
//! What a runtime adds (namespaces, cgroups, seccomp) is not reproduced here; `pod`
//! (`pod/runner.rs`) runs the rendered Pod that way, with the host's binary.
//!
//! Building the image takes minutes, so the tests do not build it: without an archive they skip
//! with a message, unless `PKI_SIDECAR_REQUIRE_IMAGE` is set (`.ci/run` sets it after running
//! the script), in which case a missing archive, tool or root is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::util;

const UID: u32 = 65532;

/// The OCI archive, or `None` (the test skips) when it is absent and not required.
fn archive() -> Option<PathBuf> {
    let required = std::env::var_os("PKI_SIDECAR_REQUIRE_IMAGE").is_some();
    let path = std::env::var_os("PKI_SIDECAR_IMAGE_ARCHIVE")
        .map(PathBuf::from)
        .unwrap_or_else(|| util::repo().join("target/image/pki-sidecar.oci.tar"));
    let root = nix::unistd::geteuid().is_root();
    if path.exists() && root {
        return Some(path);
    }
    let why = if path.exists() {
        "the image test must run as root (umoci unpack keeps the layers' owners; chroot)"
            .to_string()
    } else {
        format!("no image at {}: run scripts/build-image.sh", path.display())
    };
    assert!(!required, "PKI_SIDECAR_REQUIRE_IMAGE is set: {why}");
    eprintln!("skipped: {why}");
    None
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("run {command:?} (scripts/install-test-deps.sh): {e}"));
    assert!(
        output.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The image's config (`skopeo inspect --config`): User, Entrypoint, Labels...
fn image_config(archive: &Path) -> Value {
    let output = run(Command::new("skopeo")
        .args(["inspect", "--config"])
        .arg(format!("oci-archive:{}", archive.display())));
    serde_json::from_slice(&output.stdout).expect("image config JSON")
}

/// The image's layers unpacked (as root, owners kept) under a temporary directory, and its
/// config: what a container runtime starts a container from.
struct Rootfs {
    dir: tempfile::TempDir,
    config: Value,
}

impl Rootfs {
    fn unpack(archive: &Path) -> Rootfs {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("layout");
        run(Command::new("skopeo")
            .args(["copy", "-q"])
            .arg(format!("oci-archive:{}", archive.display()))
            .arg(format!("oci:{}:image", layout.display())));
        run(Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:image", layout.display()))
            .arg(dir.path().join("bundle")));
        Rootfs {
            dir,
            config: image_config(archive)["config"].clone(),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("bundle/rootfs")
    }

    /// The container's command as a runtime builds it: the image's `Entrypoint` followed by
    /// `args`, run from the image's root filesystem as the image's `User` (`chroot
    /// --userspec`), with the image's `Env` plus `env` and nothing of this process's.
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let user = self.config["User"]
            .as_str()
            .expect("the image names a user");
        let mut command = Command::new("/usr/sbin/chroot");
        command.arg(format!("--userspec={user}")).arg(self.path());
        for part in self.config["Entrypoint"].as_array().expect("an entrypoint") {
            command.arg(part.as_str().unwrap());
        }
        command.args(args).env_clear();
        for pair in self.config["Env"].as_array().into_iter().flatten() {
            let (name, value) = pair.as_str().unwrap().split_once('=').unwrap();
            command.env(name, value);
        }
        command.envs(env.iter().copied());
        command
    }
}

/// Every regular file under `dir` with an execute bit, relative to `dir`.
fn executables(dir: &Path, under: &Path, found: &mut Vec<PathBuf>) {
    use std::os::unix::fs::PermissionsExt as _;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            executables(&entry.path(), under, found);
        } else if kind.is_file() && entry.metadata().unwrap().permissions().mode() & 0o111 != 0 {
            found.push(entry.path().strip_prefix(under).unwrap().to_path_buf());
        }
    }
}

/// The ELF program header types of `binary` (64-bit little-endian).
fn program_header_types(binary: &[u8]) -> Vec<u32> {
    assert_eq!(
        &binary[..6],
        b"\x7fELF\x02\x01",
        "a 64-bit little-endian ELF file"
    );
    let u16_at = |at: usize| u16::from_le_bytes(binary[at..at + 2].try_into().unwrap()) as usize;
    let offset = u64::from_le_bytes(binary[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count)
        .map(|i| {
            let at = offset + i * size;
            u32::from_le_bytes(binary[at..at + 4].try_into().unwrap())
        })
        .collect()
}

#[test]
fn the_image_runs_as_non_root_with_the_binary_as_entrypoint_and_oci_labels() {
    let Some(archive) = archive() else { return };
    let config = image_config(&archive);
    let config = &config["config"];
    assert_eq!(
        config["User"].as_str(),
        Some("65532:65532"),
        "numeric, so runAsNonRoot can check it"
    );
    assert_eq!(config["Entrypoint"], serde_json::json!(["/pki-sidecar"]));
    for label in [
        "org.opencontainers.image.title",
        "org.opencontainers.image.description",
        "org.opencontainers.image.licenses",
        "org.opencontainers.image.source",
    ] {
        let value = config["Labels"][label].as_str().unwrap_or_default();
        assert!(!value.is_empty(), "label {label} missing: {config}");
    }
}

#[test]
fn the_image_holds_one_static_binary_and_no_shell() {
    let Some(archive) = archive() else { return };
    let rootfs = Rootfs::unpack(&archive);
    let root = rootfs.path();
    let mut found = Vec::new();
    executables(&root, &root, &mut found);
    assert_eq!(
        found,
        vec![PathBuf::from("pki-sidecar")],
        "the only executable is the binary: no shell, no loader, no libc"
    );
    for path in [
        "bin/sh",
        "usr/bin/sh",
        "bin/busybox",
        "lib",
        "usr/lib/x86_64-linux-gnu",
    ] {
        assert!(
            std::fs::symlink_metadata(root.join(path)).is_err(),
            "{path} is in the image"
        );
    }
    const PT_INTERP: u32 = 3;
    let binary = std::fs::read(root.join("pki-sidecar")).unwrap();
    assert!(
        !program_header_types(&binary).contains(&PT_INTERP),
        "the binary names a dynamic loader: it is not static"
    );
    // What distroless/static provides and the binary uses: the CA bundle, the nonroot user.
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.contains(":65532:65532:"), "{passwd}");
    use std::os::unix::fs::MetadataExt as _;
    let home = std::fs::metadata(root.join("home/nonroot")).unwrap();
    assert_eq!(
        (home.uid(), home.gid()),
        (UID, UID),
        "nonroot's home is its own"
    );
    assert!(
        std::fs::metadata(root.join("etc/ssl/certs/ca-certificates.crt"))
            .unwrap()
            .len()
            > 100_000
    );

    // The image carries a commit of this repository (the build argument; `.git` is not in the
    // build context): the checkout's when built and tested together as CI does, an earlier one
    // when the image was built before the last commit.
    let version = run(&mut rootfs.command(&["--version"], &[]));
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let commit = version
        .strip_prefix(&format!(
            "pki-sidecar {} (commit ",
            env!("CARGO_PKG_VERSION")
        ))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("--version names the version and commit: {version:?}"));
    assert!(
        commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
        "the image is built with the checkout's commit, not `unknown`: {version:?}"
    );
    let known = std::process::Command::new("git")
        .args(["merge-base", "--is-ancestor", commit, "HEAD"])
        .current_dir(util::repo())
        .status()
        .expect("git");
    assert!(
        known.success(),
        "the image's commit {commit} is HEAD ({}) or before it",
        env!("PKI_SIDECAR_GIT_COMMIT")
    );
    // The seed's agent file, with the seed's environment for the agent container.
    std::fs::copy(
        util::repo().join("etc/agent.hcl"),
        root.join("tmp/agent.hcl"),
    )
    .unwrap();
    let validate = run(&mut rootfs.command(
        &["validate", "--config", "/tmp/agent.hcl", "--role", "agent"],
        &[
            ("VAULT_ADDR", "https://vault.home"),
            ("VAULT_CACERT", "/etc/ssl/certs/vault.pem"),
        ],
    ));
    let stdout = String::from_utf8_lossy(&validate.stdout);
    assert!(
        stdout.contains("kubernetes at auth/kubernetes: role authkube"),
        "{stdout}"
    );
}

#[test]
fn the_app_role_serves_from_the_image_as_uid_65532() {
    let Some(archive) = archive() else { return };
    let rootfs = Rootfs::unpack(&archive);
    let (port, metrics) = (util::free_port(), util::free_port());
    util::write_file(
        &rootfs.path().join("tmp"),
        "app.hcl",
        &format!(
            "app {{\n  listen = \"127.0.0.1:{port}\"\n  metrics_listen = \"127.0.0.1:{metrics}\"\n}}\n"
        ),
    );
    // chroot execs the binary, so the child is the binary itself.
    let mut app =
        util::ChildGuard::spawn(rootfs.command(&["app", "--config", "/tmp/app.hcl"], &[]));
    let address = format!("127.0.0.1:{port}").parse().unwrap();
    util::wait_for_port(address, Duration::from_secs(10));
    let response = util::http(address, "GET", "/");
    assert_eq!(response.status, 200);
    assert_eq!(response.body.trim(), "hello world");
    let status = std::fs::read_to_string(format!("/proc/{}/status", app.pid())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().skip(1).collect::<Vec<_>>(),
        vec!["65532"; 4],
        "{uid_line}"
    );
    util::signal(app.pid(), Signal::SIGTERM);
    let (code, stderr) = app.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{stderr}");
}
