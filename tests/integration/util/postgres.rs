//! A throwaway PostgreSQL server (Debian's `postgresql` package), for OpenBao's database
//! secrets engine: the dynamic, renewable credentials Vault Agent templates read.
//!
//! It runs from a fresh `initdb` in a temporary directory, trusting every local connection,
//! on a loopback port of its own. As root it runs as the `postgres` user (PostgreSQL refuses
//! root). It runs under the same watchdog as OpenBao: should the test binary die, its stdin
//! closes and the server is stopped; dropping this stops it at once.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::bao::WATCHDOG;

pub struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
    watchdog: std::process::Child,
}

/// The newest `/usr/lib/postgresql/N/bin`.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect(
            "PostgreSQL is not installed: run scripts/install-test-deps.sh (Debian's \
             `postgresql` package)",
        )
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("postgres").exists())
        .collect();
    versions.sort_by_key(|bin| {
        bin.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions
        .pop()
        .expect("a PostgreSQL server in /usr/lib/postgresql/*/bin")
}

/// The uid and gid to run as: `postgres`'s when this process is root, else its own.
fn identity() -> Option<(u32, u32)> {
    if !nix::unistd::Uid::effective().is_root() {
        return None;
    }
    let user = nix::unistd::User::from_name("postgres")
        .ok()
        .flatten()
        .expect("a `postgres` user (Debian's postgresql package creates it)");
    Some((user.uid.as_raw(), user.gid.as_raw()))
}

impl Postgres {
    pub fn start() -> Postgres {
        let bin = bin_dir();
        let dir = tempfile::tempdir().expect("tempdir");
        let who = identity();
        if let Some((uid, gid)) = who {
            nix::unistd::chown(dir.path(), Some(uid.into()), Some(gid.into())).expect("chown");
        }
        let data = dir.path().join("data");
        let as_user = |command: &mut Command| {
            if let Some((uid, gid)) = who {
                command.uid(uid).gid(gid);
            }
        };
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["--auth=trust", "-U", "postgres"])
            .stdout(Stdio::null());
        as_user(&mut initdb);
        let output = initdb.output().expect("run initdb");
        assert!(
            output.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let port = super::free_port();
        let log = std::fs::File::create(dir.path().join("postgres.log")).expect("log file");
        let mut server = Command::new("sh");
        server
            .arg("-c")
            .arg(WATCHDOG)
            .arg(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir.path())
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(Stdio::null());
        as_user(&mut server);
        let watchdog = server.spawn().expect("start postgres");
        let postgres = Postgres {
            port,
            dir,
            watchdog,
        };
        super::wait_until(
            Duration::from_secs(30),
            "postgres accepts connections",
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
        postgres
    }

    /// The server's log, for a failing assertion.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Immediate shutdown (SIGQUIT): OpenBao's pool may still hold connections, which a
        // smart shutdown would wait for.
        let pid_file = self.dir.path().join("data/postmaster.pid");
        if let Some(pid) = std::fs::read_to_string(pid_file).ok().and_then(|text| {
            text.lines()
                .next()
                .and_then(|l| l.trim().parse::<i32>().ok())
        }) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGQUIT,
            );
        }
        drop(self.watchdog.stdin.take());
        let _ = self.watchdog.wait();
    }
}
