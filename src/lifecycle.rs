//! Process lifecycle: one shutdown token for the whole role, and a reload hook for SIGHUP.
//!
//! SIGTERM, SIGINT or SIGQUIT (nginx's graceful stop, the signal of nginx's image and of
//! setups carried over from it) cancels [`Lifecycle::shutdown`]: every listener stops accepting
//! and drains within its grace period, every long wait ends. A second stop signal during the drain
//! cancels [`Lifecycle::abort`] so an impatient operator is not kept waiting. SIGHUP bumps a
//! generation counter on a watch channel; a role that can reload something subscribes with
//! [`Lifecycle::reloads`], and a role that cannot logs that it has nothing to reload. Signals
//! are only ever read here. A role that must be gone within its grace whatever it waits on
//! (the agent) arms [`Lifecycle::exit_after_grace`].

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The shutdown token and the reload channel of one running role.
#[derive(Clone)]
pub struct Lifecycle {
    /// Cancelled at the first stop signal (SIGTERM, SIGINT, SIGQUIT).
    pub shutdown: CancellationToken,
    /// Cancelled at the second: stop draining.
    pub abort: CancellationToken,
    reload_tx: watch::Sender<u64>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle::new()
    }
}

impl Lifecycle {
    /// A lifecycle that no signal drives yet (tests cancel it by hand).
    pub fn new() -> Lifecycle {
        let (reload_tx, _) = watch::channel(0);
        Lifecycle {
            shutdown: CancellationToken::new(),
            abort: CancellationToken::new(),
            reload_tx,
        }
    }

    /// A lifecycle ended by `shutdown` (tests and embedders that already have a token).
    pub fn with_shutdown(shutdown: CancellationToken) -> Lifecycle {
        Lifecycle {
            shutdown,
            ..Lifecycle::new()
        }
    }

    /// Routes SIGTERM, SIGINT, SIGQUIT and SIGHUP to this lifecycle from a background task.
    pub fn listen_for_signals(&self) -> std::io::Result<()> {
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut quit = signal(SignalKind::quit())?;
        let mut hangup = signal(SignalKind::hangup())?;
        let lifecycle = self.clone();
        tokio::spawn(async move {
            loop {
                let name = tokio::select! {
                    Some(()) = terminate.recv() => "SIGTERM",
                    Some(()) = interrupt.recv() => "SIGINT",
                    Some(()) = quit.recv() => "SIGQUIT",
                    Some(()) = hangup.recv() => {
                        lifecycle.request_reload();
                        continue;
                    }
                    else => return,
                };
                if lifecycle.shutdown.is_cancelled() {
                    tracing::warn!(signal = name, "second stop signal: ending the drain now");
                    lifecycle.abort.cancel();
                    return;
                }
                tracing::info!(
                    signal = name,
                    "stopping: no new connections, draining in-flight work"
                );
                lifecycle.shutdown.cancel();
            }
        });
        Ok(())
    }

    /// Ends the process with exit code 1 when it is still running `grace` after shutdown
    /// began, whatever it is blocked on: a watchdog thread outside the runtime, armed by the
    /// first stop signal, so even a call that never returns cannot keep the process alive.
    pub fn exit_after_grace(&self, grace: std::time::Duration) {
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            let armed = std::thread::Builder::new()
                .name("shutdown-watchdog".into())
                .spawn(move || {
                    std::thread::sleep(grace);
                    eprintln!(
                        "pki-sidecar: still running {:.1}s after the stop signal (the shutdown \
                         grace); exiting",
                        grace.as_secs_f64()
                    );
                    std::process::exit(1);
                });
            if let Err(err) = armed {
                tracing::warn!(error = %err, "cannot start the shutdown watchdog");
            }
        });
    }

    /// What SIGHUP does: wakes every reload subscriber.
    pub fn request_reload(&self) {
        tracing::info!("SIGHUP: reload requested");
        self.reload_tx.send_modify(|generation| *generation += 1);
    }

    /// A receiver that changes at every reload request.
    pub(crate) fn reloads(&self) -> watch::Receiver<u64> {
        self.reload_tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reload_requests_reach_subscribers() {
        let lifecycle = Lifecycle::new();
        let mut reloads = lifecycle.reloads();
        lifecycle.request_reload();
        reloads.changed().await.unwrap();
        assert_eq!(*reloads.borrow_and_update(), 1);
    }
}
