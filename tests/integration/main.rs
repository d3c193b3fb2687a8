//! The integration tests: one binary, so one OpenBao dev server serves them all.
mod util;
mod bed;
