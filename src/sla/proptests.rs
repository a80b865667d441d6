//! Property tests against a minute-by-minute reference.
