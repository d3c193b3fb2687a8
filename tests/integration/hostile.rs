//! The agent's files in a shared directory that another container can write to: whatever is
//! found at a destination, a sink or a credential path (a symlink out of the directory, a
//! FIFO, a directory, a huge file) is never followed or read, a write that cannot be done is
//! named, counted and retried (or, with `exit_after_auth`, ends the agent with an error), and
//! SIGTERM stops the agent within its shutdown grace whatever it is blocked on.

use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use pki_sidecar::certs;
use pki_sidecar::tls::pem;

use crate::util;
use crate::util::bao;
use crate::util::role::{AgentProcess, Launch};

/// An agent file logging in as the seed's role with `token_path`, a sink at `sink`, backoff
/// between 1 s and 2 s, and `extra` (templates, top-level settings).
fn agent_config(dir: &Path, token_path: &Path, sink: &Path, extra: &str) -> PathBuf {
    util::write_file(
        dir,
        "agent.hcl",
        &format!(
            r#"auto_auth {{
  method "kubernetes" {{
    mount_path  = "auth/kubernetes"
    min_backoff = "1s"
    max_backoff = "2s"
    config = {{
      role       = "{role}"
      token_path = "{token_path}"
    }}
  }}
  sink "file" {{
    config = {{
      path = "{sink}"
    }}
  }}
}}
{extra}
"#,
            role = bao::LOGIN_ROLE,
            token_path = token_path.display(),
            sink = sink.display(),
        ),
    )
}

/// The seed's certificate template for `dir`: `tls.crt` with the key written to `tls.key`
/// (owner-only).
fn pair_template(dir: &Path) -> String {
    format!(
        r#"template {{
  destination = "{d}/tls.crt"
  contents = <<EOT
{{{{- with pkiCert "{issue}" "common_name=foo.home" "ttl=1h" -}}}}
{{{{ .Data.Cert }}}}
{{{{ if .Data.Key }}}}{{{{ .Data.Key | writeToFile "{d}/tls.key" "" "" "0600" }}}}{{{{ end }}}}
{{{{- end }}}}
EOT
}}
"#,
        d = dir.display(),
        issue = bao::ISSUE_PATH,
    )
}

/// The ServiceAccount JWT the seed's role accepts, written into `dir`.
fn jwt(dir: &Path) -> PathBuf {
    util::write_file(
        dir,
        "sa-token",
        &bao::service_account_jwt(bao::NAMESPACE, bao::SERVICE_ACCOUNT),
    )
}

fn start(dir: &Path, config: &Path) -> AgentProcess {
    Launch::agent(&[config], bao::bed().addr(), &dir.join("agent.log")).spawn()
}

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
}

fn is_regular(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .map(|m| m.file_type().is_file())
        .unwrap_or(false)
}

/// Bytes the process has read with read(2) and friends so far (`rchar`).
fn bytes_read(pid: i32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).expect("/proc/PID/io");
    io.lines()
        .find_map(|line| line.strip_prefix("rchar: "))
        .and_then(|n| n.trim().parse().ok())
        .expect("rchar in /proc/PID/io")
}

#[test]
fn links_fifos_and_huge_files_at_destinations_are_replaced_never_followed_or_read() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A link from the key's path to a file outside the directory, a FIFO at the certificate's
    // path (opening it to read would wait for a writer forever), a sparse 64 GiB file at a
    // third destination, and a FIFO at the sink.
    let precious = outside.path().join("precious");
    std::fs::write(&precious, "not the agent's\n").unwrap();
    std::fs::set_permissions(&precious, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::symlink(&precious, d.join("tls.key")).unwrap();
    mkfifo(&d.join("tls.crt"));
    std::fs::File::create(d.join("big.txt"))
        .unwrap()
        .set_len(64 << 30)
        .unwrap();
    mkfifo(&d.join("token"));
    let extra = format!(
        "{}template {{\n  destination = \"{}/big.txt\"\n  contents = \"small\\n\"\n}}\n",
        pair_template(d),
        d.display()
    );
    let config = agent_config(d, &jwt(d), &d.join("token"), &extra);
    let agent = start(d, &config);
    agent.wait_ready(Duration::from_secs(30));
    util::wait_until(Duration::from_secs(10), "the sink written", || {
        is_regular(&d.join("token"))
    });

    // The link was replaced by the key itself, owner-only; what it pointed to is untouched.
    assert!(is_regular(&d.join("tls.key")), "tls.key is a regular file");
    assert_eq!(
        std::fs::metadata(d.join("tls.key")).unwrap().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_to_string(&precious).unwrap(),
        "not the agent's\n"
    );
    assert_eq!(std::fs::metadata(&precious).unwrap().mode() & 0o777, 0o644);
    // The FIFO was replaced by the certificate matching that key.
    assert!(is_regular(&d.join("tls.crt")), "tls.crt is a regular file");
    let crt = std::fs::read(d.join("tls.crt")).unwrap();
    let leaf = pem::certificates(&crt).unwrap().remove(0);
    let key = std::fs::read(d.join("tls.key")).unwrap();
    let (key, _) = pem::first_private_key(&key).unwrap();
    assert_eq!(certs::key_matches(&leaf, key), Ok(()));
    // The huge file was replaced without being read.
    assert_eq!(
        std::fs::read_to_string(d.join("big.txt")).unwrap(),
        "small\n"
    );
    let read = bytes_read(agent.pid());
    assert!(read < 64 << 20, "the agent read {read} bytes");
    assert!(!std::fs::read_to_string(d.join("token")).unwrap().is_empty());
    assert_eq!(
        agent.metric("pki_sidecar_agent_template_writes_total{result=\"failure\"}"),
        0.0
    );
    let (code, log) = agent.stop();
    assert_eq!(code, Some(0), "{log}");
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn links_and_fifos_planted_at_the_old_predictable_temporary_names_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let d = dir.path();
    let precious = outside.path().join("precious");
    std::fs::write(&precious, "not the agent's\n").unwrap();
    // Temporary files used to be named `.NAME.PID.COUNTER.tmp`. A wrapper that keeps its pid
    // when it execs the agent plants a link out of the directory, or a FIFO, at every such name
    // the agent's files would have used.
    let script = format!(
        r#"for n in 0 1 2 3 4 5 6 7 8 9; do
  ln -s "{precious}" "{d}/.tls.key.$$.$n.tmp"
  ln -s "{precious}" "{d}/.tls.crt.$$.$n.tmp"
  mkfifo "{d}/.token.$$.$n.tmp"
done
exec "$@""#,
        precious = precious.display(),
        d = d.display()
    );
    let wrapper: Vec<String> = ["sh", "-c", script.as_str(), "planter"]
        .map(str::to_owned)
        .to_vec();
    let config = agent_config(d, &jwt(d), &d.join("token"), &pair_template(d));
    let agent = Launch::agent(&[&config], bao::bed().addr(), &d.join("agent.log"))
        .wrapper(&wrapper)
        .spawn();
    agent.wait_ready(Duration::from_secs(30));
    let planted = |name: &str| format!(".{name}.{}.0.tmp", agent.pid());
    assert!(
        std::fs::symlink_metadata(d.join(planted("tls.key")))
            .unwrap()
            .file_type()
            .is_symlink(),
        "planted for this very pid"
    );
    for name in ["tls.key", "tls.crt", "token"] {
        assert!(is_regular(&d.join(name)), "{name} written");
    }
    assert_eq!(
        std::fs::read_to_string(&precious).unwrap(),
        "not the agent's\n"
    );
    assert_eq!(
        agent.metric("pki_sidecar_agent_template_writes_total{result=\"failure\"}"),
        0.0
    );
    assert_eq!(
        agent.metric("pki_sidecar_agent_sink_writes_total{result=\"failure\"}"),
        0.0
    );
    let (code, log) = agent.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn a_directory_at_a_destination_is_named_counted_and_retried_until_it_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("tls.crt")).unwrap();
    let config = agent_config(d, &jwt(d), &d.join("token"), &pair_template(d));
    let agent = start(d, &config);
    util::wait_until(Duration::from_secs(30), "two failed writes", || {
        agent.metric("pki_sidecar_agent_template_writes_total{result=\"failure\"}") >= 2.0
    });
    assert!(
        !agent.ready(),
        "not ready while the certificate cannot be written"
    );
    assert!(agent.metric("pki_sidecar_agent_template_renders_total{result=\"failure\"}") >= 2.0);
    let log = agent.log();
    let named = format!("{} is a directory", d.join("tls.crt").display());
    assert!(log.contains(&named), "{log}");
    // Nothing of the render was written: the key waits for its certificate.
    assert!(!d.join("tls.key").exists());
    std::fs::remove_dir(d.join("tls.crt")).unwrap();
    agent.wait_ready(Duration::from_secs(30));
    assert!(is_regular(&d.join("tls.crt")));
    assert!(is_regular(&d.join("tls.key")));
    assert_eq!(
        agent.metric("pki_sidecar_agent_template_writes_total{result=\"success\"}"),
        1.0
    );
    let (code, log) = agent.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn a_sink_that_cannot_be_written_is_counted_and_retried_until_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sink = d.join("token");
    std::fs::create_dir(&sink).unwrap();
    let config = agent_config(d, &jwt(d), &sink, "");
    let agent = start(d, &config);
    util::wait_until(Duration::from_secs(30), "two failed sink writes", || {
        agent.metric("pki_sidecar_agent_sink_writes_total{result=\"failure\"}") >= 2.0
    });
    let named = format!("{} is a directory", sink.display());
    assert!(agent.log().contains(&named), "{}", agent.log());
    let readyz = util::http(agent.metrics(), "GET", "/readyz");
    assert_eq!(readyz.status, 503);
    assert!(
        readyz
            .body
            .contains(&format!("cannot write the token sink {}", sink.display())),
        "{}",
        readyz.body
    );
    std::fs::remove_dir(&sink).unwrap();
    // Ready means the sink holds the token.
    agent.wait_ready(Duration::from_secs(30));
    assert!(is_regular(&sink));
    let token = std::fs::read_to_string(&sink).unwrap();
    assert!(!token.is_empty());
    assert_eq!(
        agent.metric("pki_sidecar_agent_sink_writes_total{result=\"success\"}"),
        1.0
    );
    let (code, log) = agent.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains(&token), "the token is never logged");
}

#[test]
fn exit_after_auth_exits_non_zero_when_a_sink_or_a_template_cannot_be_written() {
    // The sink's path is a directory.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("token")).unwrap();
    let config = agent_config(
        d,
        &jwt(d),
        &d.join("token"),
        &format!("exit_after_auth = true\n{}", pair_template(d)),
    );
    let (code, log) = start(d, &config).wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(1), "{log}");
    let named = format!("{} is a directory", d.join("token").display());
    assert!(log.contains(&named), "{log}");
    assert!(log.contains("exit_after_auth"), "{log}");

    // A template's destination is a directory.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("tls.crt")).unwrap();
    let config = agent_config(
        d,
        &jwt(d),
        &d.join("token"),
        &format!("exit_after_auth = true\n{}", pair_template(d)),
    );
    let (code, log) = start(d, &config).wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(1), "{log}");
    let named = format!("{} is a directory", d.join("tls.crt").display());
    assert!(log.contains(&named), "{log}");
    assert!(is_regular(&d.join("token")), "the sink was written");
    assert!(!d.join("tls.key").exists(), "no half of the pair");
}

/// Sends SIGTERM to `agent` and returns its exit code, its log and how long it took to exit.
fn stop_timed(agent: AgentProcess) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    util::signal(agent.pid(), Signal::SIGTERM);
    let (code, log) = agent.wait_exit(Duration::from_secs(60));
    (code, log, started.elapsed())
}

#[test]
fn sigterm_stops_the_agent_within_its_grace_whatever_it_is_blocked_on() {
    let grace = Duration::from_secs(2);
    // The credential file is a FIFO nobody writes: the login's read never returns.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fifo = d.join("sa-token");
    mkfifo(&fifo);
    let config = agent_config(d, &fifo, &d.join("token"), "shutdown_grace = \"2s\"\n");
    let agent = start(d, &config);
    // A writer can open the FIFO without blocking only once a reader is there: the login is
    // then under way. The writer stays open and silent, so the agent's read waits forever.
    let mut writer = None;
    util::wait_until(
        Duration::from_secs(10),
        "the login reading the FIFO",
        || {
            writer = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
                .open(&fifo)
                .ok();
            writer.is_some()
        },
    );
    let (code, log, took) = stop_timed(agent);
    drop(writer);
    eprintln!("SIGTERM with a read blocked on a FIFO: exited {code:?} after {took:?}");
    assert!(took < grace + Duration::from_secs(5), "{took:?}: {log}");
    // A clean stop: the blocked read is left behind, not waited for past the grace.
    assert_eq!(code, Some(0), "{log}");

    // A template's command that never ends.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let extra = format!(
        "shutdown_grace = \"2s\"\ntemplate {{\n  destination = \"{d}/out.txt\"\n  contents = \
         \"x\"\n  command = \"touch {d}/started; exec sleep 600\"\n  command_timeout = \"10m\"\n}}\n",
        d = d.display()
    );
    let config = agent_config(d, &jwt(d), &d.join("token"), &extra);
    let agent = start(d, &config);
    util::wait_until(Duration::from_secs(30), "the command started", || {
        d.join("started").exists()
    });
    let (code, log, took) = stop_timed(agent);
    eprintln!("SIGTERM with a hung template command: exited {code:?} after {took:?}");
    assert!(took < grace + Duration::from_secs(5), "{took:?}: {log}");
    assert_eq!(code, Some(0), "{log}");
}
