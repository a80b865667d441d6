//! ACD core (placeholder until filled).
