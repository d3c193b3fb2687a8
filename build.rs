//! Records the git commit this binary is built from, for `--version` and
//! `pki_sidecar_build_info{commit}`. No date or path goes in: two builds of one commit stay
//! byte for byte the same.
//!
//! Where it comes from, first found wins:
//! 1. `PKI_SIDECAR_GIT_COMMIT` in the build's environment (the Containerfile's build argument:
//!    `.git` is not in the image's build context);
//! 2. `git rev-parse HEAD` in a git checkout;
//! 3. `unknown` (a source tarball).

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=PKI_SIDECAR_GIT_COMMIT");
    let commit = std::env::var("PKI_SIDECAR_GIT_COMMIT")
        .ok()
        .map(|value| value.trim().to_string())
        .filter(|value| !value.is_empty())
        .or_else(from_git)
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=PKI_SIDECAR_GIT_COMMIT={commit}");
}

/// HEAD's commit, watching the files that change when HEAD moves (a commit, a checkout).
fn from_git() -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let output = Command::new("git").args(args).output().ok()?;
        if !output.status.success() {
            return None;
        }
        Some(String::from_utf8(output.stdout).ok()?.trim().to_string())
    };
    let commit = git(&["rev-parse", "--verify", "HEAD"])?;
    if commit.len() != 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // `--git-path` resolves each file in a worktree or the main checkout alike.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name])
            && Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    Some(commit)
}
