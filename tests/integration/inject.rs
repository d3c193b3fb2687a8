//! `pki-sidecar inject`: annotated workloads in, the same objects with the sidecars out.
