//! `pki-sidecar webhook`: a mutating admission webhook serving `admission.k8s.io/v1`
//! AdmissionReview for Pod CREATE, answering with the JSONPatch of [`crate::inject`]'s transform.
