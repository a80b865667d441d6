#![no_main]
//! Fuzz target `rtp`: the body is shared with tests/fuzz_regressions.rs (fuzz/src/checks.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| navbat_fuzz::checks::rtp(data));
