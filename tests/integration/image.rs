//! The container image `scripts/build-image.sh` builds from the `Containerfile` (an OCI archive
//! at `target/image/pki-sidecar.oci.tar`, or `PKI_SIDECAR_IMAGE_ARCHIVE`): an image index of
//! linux/amd64 and linux/arm64, each platform's config and root filesystem, and the amd64 one run
//! without a container runtime. The arm64 binary is run under qemu by
//! `scripts/run-foreign-arch.sh` (`.ci/run`), not here.
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

/// The image's platforms (OCI `architecture` names) and their binaries' ELF `e_machine`.
const PLATFORMS: [(&str, u16); 2] = [("amd64", EM_X86_64), ("arm64", EM_AARCH64)];
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

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

/// One platform's image config (`skopeo inspect --config`, which picks the index's manifest
/// for `arch` as a node of that architecture would): User, Entrypoint, Labels...
fn image_config(archive: &Path, arch: &str) -> Value {
    let output = run(Command::new("skopeo")
        .args([
            "--override-os",
            "linux",
            "--override-arch",
            arch,
            "inspect",
            "--config",
        ])
        .arg(format!("oci-archive:{}", archive.display())));
    serde_json::from_slice(&output.stdout).expect("image config JSON")
}

/// The archive unpacked as an OCI layout (`tar -x`), to read its index and blobs as they are.
struct Layout(tempfile::TempDir);

impl Layout {
    const INDEX: &'static str = "application/vnd.oci.image.index.v1+json";
    const MANIFEST: &'static str = "application/vnd.oci.image.manifest.v1+json";

    fn unpack(archive: &Path) -> Layout {
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("tar")
            .arg("-xf")
            .arg(archive)
            .arg("-C")
            .arg(dir.path()));
        Layout(dir)
    }

    fn blob(&self, digest: &str) -> Vec<u8> {
        let (algorithm, hex) = digest.split_once(':').expect("a digest");
        std::fs::read(self.0.path().join("blobs").join(algorithm).join(hex))
            .unwrap_or_else(|e| panic!("blob {digest}: {e}"))
    }

    fn json(&self, digest: &str) -> Value {
        serde_json::from_slice(&self.blob(digest)).expect("a JSON blob")
    }

    /// `index.json`'s one entry: the manifest list (image index) named by the image's tag.
    fn image_index(&self) -> Value {
        let top: Value =
            serde_json::from_slice(&std::fs::read(self.0.path().join("index.json")).unwrap())
                .unwrap();
        let entries = top["manifests"]
            .as_array()
            .expect("index.json lists manifests");
        assert_eq!(entries.len(), 1, "index.json names one image: {top}");
        assert_eq!(
            entries[0]["mediaType"].as_str(),
            Some(Self::INDEX),
            "the image is a manifest list (an OCI image index), not one platform's image: {top}"
        );
        self.json(entries[0]["digest"].as_str().unwrap())
    }
}

/// The image's layers unpacked (as root, owners kept) under a temporary directory, and its
/// config: what a container runtime starts a container from.
struct Rootfs {
    dir: tempfile::TempDir,
    config: Value,
}

impl Rootfs {
    /// `arch`'s image, picked from the index by skopeo as a node of that architecture would.
    fn unpack(archive: &Path, arch: &str) -> Rootfs {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("layout");
        run(Command::new("skopeo")
            .args([
                "--override-os",
                "linux",
                "--override-arch",
                arch,
                "copy",
                "-q",
            ])
            .arg(format!("oci-archive:{}", archive.display()))
            .arg(format!("oci:{}:image", layout.display())));
        run(Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:image", layout.display()))
            .arg(dir.path().join("bundle")));
        Rootfs {
            dir,
            config: image_config(archive, arch)["config"].clone(),
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

/// The ELF header's `e_machine` (62: x86-64, 183: AArch64).
fn elf_machine(binary: &[u8]) -> u16 {
    u16::from_le_bytes(binary[18..20].try_into().unwrap())
}

/// The ELF section names of `binary` (64-bit little-endian), from its section header table.
fn section_names(binary: &[u8]) -> Vec<String> {
    let u16_at = |at: usize| u16::from_le_bytes(binary[at..at + 2].try_into().unwrap()) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(binary[at..at + 4].try_into().unwrap()) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(binary[at..at + 8].try_into().unwrap()) as usize;
    let offset = u64_at(0x28);
    let (size, count, names) = (u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let strings = u64_at(offset + names * size + 0x18);
    (0..count)
        .map(|i| {
            let start = strings + u32_at(offset + i * size);
            let end = start + binary[start..].iter().position(|&b| b == 0).unwrap();
            String::from_utf8_lossy(&binary[start..end]).into_owned()
        })
        .collect()
}

#[test]
fn the_archive_is_an_image_index_of_linux_amd64_and_linux_arm64() {
    let Some(archive) = archive() else { return };
    let layout = Layout::unpack(&archive);
    let index = layout.image_index();
    let manifests = index["manifests"]
        .as_array()
        .expect("the index lists manifests");
    let mut platforms: Vec<String> = manifests
        .iter()
        .map(|m| {
            let field = |name: &str| m["platform"][name].as_str().unwrap_or("?").to_string();
            format!("{}/{}", field("os"), field("architecture"))
        })
        .collect();
    platforms.sort();
    assert_eq!(
        platforms,
        vec!["linux/amd64", "linux/arm64"],
        "one manifest per platform: {index}"
    );
    for entry in manifests {
        let arch = entry["platform"]["architecture"].as_str().unwrap();
        assert_eq!(
            entry["mediaType"].as_str(),
            Some(Layout::MANIFEST),
            "{entry}"
        );
        let manifest = layout.json(entry["digest"].as_str().unwrap());
        let config = layout.json(manifest["config"]["digest"].as_str().unwrap());
        // What a runtime checks before it starts the image on a node of that architecture.
        assert_eq!(
            config["architecture"].as_str(),
            Some(arch),
            "{arch}: {config}"
        );
        assert_eq!(config["os"].as_str(), Some("linux"), "{arch}: {config}");
        assert_eq!(
            config["config"]["User"].as_str(),
            Some("65532:65532"),
            "{arch}"
        );
        assert_eq!(
            config["config"]["Entrypoint"],
            serde_json::json!(["/pki-sidecar"]),
            "{arch}"
        );
        for layer in manifest["layers"].as_array().unwrap() {
            assert_eq!(
                layer["mediaType"].as_str(),
                Some("application/vnd.oci.image.layer.v1.tar+gzip"),
                "{arch}: layers are stored compressed, as a registry holds them: {layer}"
            );
        }
    }
}

#[test]
fn the_image_runs_as_non_root_with_the_binary_as_entrypoint_and_oci_labels() {
    let Some(archive) = archive() else { return };
    for (arch, _) in PLATFORMS {
        let config = image_config(&archive, arch);
        assert_eq!(config["architecture"].as_str(), Some(arch), "{config}");
        let config = &config["config"];
        assert_eq!(
            config["User"].as_str(),
            Some("65532:65532"),
            "{arch}: numeric, so runAsNonRoot can check it"
        );
        assert_eq!(
            config["Entrypoint"],
            serde_json::json!(["/pki-sidecar"]),
            "{arch}"
        );
        for label in [
            "org.opencontainers.image.title",
            "org.opencontainers.image.description",
            "org.opencontainers.image.licenses",
            "org.opencontainers.image.source",
        ] {
            let value = config["Labels"][label].as_str().unwrap_or_default();
            assert!(!value.is_empty(), "{arch}: label {label} missing: {config}");
        }
    }
}

#[test]
fn the_image_holds_one_static_binary_and_no_shell() {
    let Some(archive) = archive() else { return };
    for (arch, machine) in PLATFORMS {
        let rootfs = Rootfs::unpack(&archive, arch);
        let root = rootfs.path();
        let mut found = Vec::new();
        executables(&root, &root, &mut found);
        assert_eq!(
            found,
            vec![PathBuf::from("pki-sidecar")],
            "{arch}: the only executable is the binary: no shell, no loader, no libc"
        );
        for path in [
            "bin/sh",
            "usr/bin/sh",
            "bin/busybox",
            "lib",
            "usr/lib/x86_64-linux-gnu",
            "usr/lib/aarch64-linux-gnu",
        ] {
            assert!(
                std::fs::symlink_metadata(root.join(path)).is_err(),
                "{arch}: {path} is in the image"
            );
        }
        const PT_INTERP: u32 = 3;
        let binary = std::fs::read(root.join("pki-sidecar")).unwrap();
        assert_eq!(
            elf_machine(&binary),
            machine,
            "{arch}: the binary's ELF machine (62: x86-64, 183: AArch64)"
        );
        assert!(
            !program_header_types(&binary).contains(&PT_INTERP),
            "{arch}: the binary names a dynamic loader: it is not static"
        );
        // Static-pie: position-independent (ET_DYN), so the kernel loads it at a random address.
        const ET_DYN: u16 = 3;
        assert_eq!(
            u16::from_le_bytes([binary[16], binary[17]]),
            ET_DYN,
            "{arch}: the binary is not static-pie (ELF type 2 is a fixed-address EXEC)"
        );
        // cargo auditable: the dependency list that `cargo audit bin` and SBOM scanners read.
        assert!(
            section_names(&binary).iter().any(|name| name == ".dep-v0"),
            "{arch}: no .dep-v0 section: the binary was not built with cargo auditable"
        );
        // scripts/build-image.sh's copy for releases is this very file.
        let copy = util::repo().join(format!("target/image/linux-{arch}/pki-sidecar"));
        if archive == util::repo().join("target/image/pki-sidecar.oci.tar") {
            assert!(
                std::fs::read(&copy).unwrap_or_default() == binary,
                "{} is not the binary of the {arch} image",
                copy.display()
            );
        }
        // What distroless/static provides and the binary uses: the CA bundle, the nonroot user.
        let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
        assert!(passwd.contains(":65532:65532:"), "{arch}: {passwd}");
        use std::os::unix::fs::MetadataExt as _;
        let home = std::fs::metadata(root.join("home/nonroot")).unwrap();
        assert_eq!(
            (home.uid(), home.gid()),
            (UID, UID),
            "{arch}: nonroot's home is its own"
        );
        assert!(
            std::fs::metadata(root.join("etc/ssl/certs/ca-certificates.crt"))
                .unwrap()
                .len()
                > 100_000
        );
    }

    // The amd64 image's binary runs here (the arm64 one: scripts/run-foreign-arch.sh, qemu).
    let rootfs = Rootfs::unpack(&archive, "amd64");
    let root = rootfs.path();
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
    let rootfs = Rootfs::unpack(&archive, "amd64");
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
