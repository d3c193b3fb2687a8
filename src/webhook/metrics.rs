//! The webhook's metrics, registered in its role's registry. The counters of every result are
//! resolved once here, so answering a review costs an atomic increment, not a label lookup.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

use super::review::Verdict;
use crate::inject::Outcome;
use crate::proxy::metrics::ReloadMetrics;

/// Counters, histogram and certificate gauges of the webhook role.
#[derive(Clone)]
pub(crate) struct WebhookMetrics {
    /// The serving certificate and its reloads, as the proxy exports them (`role="webhook"`).
    pub reload: ReloadMetrics,
    injected: IntCounter,
    already_injected: IntCounter,
    not_requested: IntCounter,
    refused: IntCounter,
    ignored: IntCounter,
    /// Requests refused before any review was read (bad body, content type, method, path).
    pub invalid: IntCounter,
    /// Time from request headers to the answer built.
    pub duration: Histogram,
}

impl WebhookMetrics {
    /// The `result` label values.
    #[cfg(test)]
    pub(crate) const RESULTS: [&'static str; 6] = [
        "injected",
        "already_injected",
        "not_requested",
        "refused",
        "invalid",
        "ignored",
    ];

    /// Registers the webhook's metrics in `registry`, every result at 0.
    /// `cert` labels the serving certificate.
    pub(crate) fn register(registry: &Registry, cert: &str) -> prometheus::Result<WebhookMetrics> {
        let requests = IntCounterVec::new(
            Opts::new(
                "pki_sidecar_webhook_requests_total",
                "Admission requests answered, by result (injected, already_injected, \
                 not_requested, refused, invalid, ignored).",
            ),
            &["result"],
        )?;
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "pki_sidecar_webhook_request_duration_seconds",
                "Time from request headers received to the admission answer built.",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0,
            ]),
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        let counter = |result: &str| requests.with_label_values(&[result]);
        Ok(WebhookMetrics {
            reload: ReloadMetrics::register(registry, "webhook", cert)?,
            injected: counter(Outcome::Injected.label()),
            already_injected: counter(Outcome::AlreadyInjected.label()),
            not_requested: counter(Outcome::NotRequested.label()),
            refused: counter(Verdict::Refused.label()),
            invalid: counter("invalid"),
            ignored: counter(Verdict::Ignored.label()),
            duration,
        })
    }

    /// Counts one answered review.
    pub(crate) fn answered(&self, verdict: Verdict) {
        match verdict {
            Verdict::Transformed(Outcome::Injected) => &self.injected,
            Verdict::Transformed(Outcome::AlreadyInjected) => &self.already_injected,
            Verdict::Transformed(Outcome::NotRequested) => &self.not_requested,
            Verdict::Refused => &self.refused,
            Verdict::Ignored => &self.ignored,
        }
        .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_result_is_exported_at_zero() {
        let registry = Registry::new();
        WebhookMetrics::register(&registry, "tls.crt").unwrap();
        let families = registry.gather();
        let requests = families
            .iter()
            .find(|family| family.name() == "pki_sidecar_webhook_requests_total")
            .unwrap();
        let mut labels: Vec<String> = requests
            .get_metric()
            .iter()
            .map(|metric| metric.get_label()[0].value().to_string())
            .collect();
        labels.sort();
        let mut expected = WebhookMetrics::RESULTS.map(str::to_string).to_vec();
        expected.sort();
        assert_eq!(labels, expected);
    }
}
