//! The bodies of navbat's fuzz targets. `checks.rs` is also compiled into
//! `tests/fuzz_regressions.rs` (through `#[path]`), so the stable test suite replays every
//! seed and crash fixture through exactly these checks.
pub mod checks;
