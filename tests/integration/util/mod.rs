//! Helpers shared by the integration tests.
pub mod bao;
pub mod tokenreview;
