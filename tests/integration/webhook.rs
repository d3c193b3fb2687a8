//! `pki-sidecar webhook`: AdmissionReview over HTTPS, its JSONPatch, metrics and readiness.
