//! The weekly QA sample (C9, D17): per operator, `n` calls of the tenant's local ISO week
//! drawn at random, plus every call whose disposition is a complaint, unresolved or
//! disputed.
//!
//! The draw is a pure function of (seed, calls, n) ([`draw`]): calls are taken in the order
//! of their store names whatever order they come in, and each operator's calls are shuffled
//! by a generator seeded from the seed and the operator alone, so one operator's calls do
//! not change another's draw. The seed is recorded with the sample, with the number of
//! candidate calls and a digest of their names ([`digest`]), so anyone can re-derive the
//! sample from the calls and check it.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// An ISO week (Monday to Sunday) as a tenant's zone counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Week {
    /// The ISO week-numbering year.
    pub year: i16,
    /// 1 to 53.
    pub week: i8,
}

/// A week that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a week; write YYYY-Www, e.g. 2026-W49")]
pub struct BadWeek(pub String);

impl Week {
    /// Reads `2026-W49`.
    pub fn parse(text: &str) -> Result<Week, BadWeek> {
        let bad = || BadWeek(text.to_owned());
        let (y, w) = text.trim().split_once("-W").ok_or_else(bad)?;
        if y.len() != 4 || w.len() != 2 {
            return Err(bad());
        }
        let year: i16 = y.parse().map_err(|_| bad())?;
        let week: i8 = w.parse().map_err(|_| bad())?;
        jiff::civil::ISOWeekDate::new(year, week, jiff::civil::Weekday::Monday)
            .map_err(|_| bad())?;
        Ok(Week { year, week })
    }

    /// The week `now` falls in, in zone `tz`.
    pub fn containing(now: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> Week {
        let iso = tz.to_datetime(now).date().iso_week_date();
        Week {
            year: iso.year(),
            week: iso.week(),
        }
    }

    /// Its Monday.
    pub fn monday(self) -> jiff::civil::Date {
        jiff::civil::ISOWeekDate::new(self.year, self.week, jiff::civil::Weekday::Monday)
            .map(|d| d.date())
            .unwrap_or_default()
    }

    /// The week before.
    pub fn previous(self) -> Week {
        let monday = self.monday();
        let before = monday
            .checked_sub(jiff::Span::new().days(7))
            .unwrap_or(monday)
            .iso_week_date();
        Week {
            year: before.year(),
            week: before.week(),
        }
    }

    /// Its first and after-last instants in `tz`, Unix ms (local midnight of Monday to local
    /// midnight of the next Monday).
    pub fn range_ms(self, tz: &jiff::tz::TimeZone) -> (i64, i64) {
        let at = |d: jiff::civil::Date| {
            d.to_zoned_datetime(tz.clone())
                .map(|z| z.timestamp().as_millisecond())
                .unwrap_or(0)
        };
        let monday = self.monday();
        let next = monday
            .checked_add(jiff::Span::new().days(7))
            .unwrap_or(monday);
        (at(monday), at(next))
    }
}

impl fmt::Display for Week {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-W{:02}", self.year, self.week)
    }
}

/// A call of the week that may be sampled: answered by an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its store name.
    pub call_uid: String,
    /// The operator's extension.
    pub operator: String,
    /// The disposition's category (`complaint`, ...), if any.
    pub category: Option<String>,
    /// The disposition's outcome (`resolved`, `unresolved`, `disputed`), if any.
    pub outcome: Option<String>,
}

/// Why a call is in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// The disposition is a complaint.
    Complaint,
    /// The call was left unresolved.
    Unresolved,
    /// The caller disputed the answer.
    Disputed,
    /// Drawn at random.
    Random,
}

impl Reason {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Complaint => "complaint",
            Reason::Unresolved => "unresolved",
            Reason::Disputed => "disputed",
            Reason::Random => "random",
        }
    }

    /// The reason a call must be reviewed, if any.
    pub fn mandatory(c: &Candidate) -> Option<Reason> {
        if c.category.as_deref() == Some("complaint") {
            Some(Reason::Complaint)
        } else {
            match c.outcome.as_deref() {
                Some("unresolved") => Some(Reason::Unresolved),
                Some("disputed") => Some(Reason::Disputed),
                _ => None,
            }
        }
    }
}

/// One call of the sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    /// Its store name.
    pub call_uid: String,
    /// The operator.
    pub operator: String,
    /// Why.
    pub reason: Reason,
}

/// The sample of `calls` with `seed`: for each operator (in order of extension), their
/// mandatory calls, then `per_operator` of the others drawn at random (all of them if fewer).
pub fn draw(seed: u64, calls: &[Candidate], per_operator: u32) -> Vec<Pick> {
    let mut by_operator: BTreeMap<&str, Vec<&Candidate>> = BTreeMap::new();
    for c in calls {
        by_operator.entry(&c.operator).or_default().push(c);
    }
    let mut picks = Vec::new();
    for (operator, mut own) in by_operator {
        own.sort_by(|a, b| a.call_uid.cmp(&b.call_uid));
        own.dedup_by(|a, b| a.call_uid == b.call_uid);
        let mut pool = Vec::new();
        for c in own {
            match Reason::mandatory(c) {
                Some(reason) => picks.push(Pick {
                    call_uid: c.call_uid.clone(),
                    operator: operator.to_owned(),
                    reason,
                }),
                None => pool.push(c),
            }
        }
        let mut rng = SplitMix64(seed ^ fnv1a(operator.as_bytes()));
        let take = (per_operator as usize).min(pool.len());
        // A partial Fisher-Yates shuffle: the first `take` places are the draw.
        for i in 0..take {
            let span = (pool.len() - i) as u64;
            let j = i + (rng.next() % span) as usize;
            pool.swap(i, j);
        }
        let mut drawn: Vec<&Candidate> = pool[..take].to_vec();
        drawn.sort_by(|a, b| a.call_uid.cmp(&b.call_uid));
        picks.extend(drawn.into_iter().map(|c| Pick {
            call_uid: c.call_uid.clone(),
            operator: operator.to_owned(),
            reason: Reason::Random,
        }));
    }
    picks
}

/// SHA-256 (hex) of the candidates' store names, sorted, one per line: what the draw saw.
pub fn digest(calls: &[Candidate]) -> String {
    let mut names: Vec<&str> = calls.iter().map(|c| c.call_uid.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut h = Sha256::new();
    for n in names {
        h.update(n.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// SplitMix64: small, fast, and the same on every platform, which is all a reproducible
/// draw needs (it is not a secret).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(uid: &str, op: &str, category: Option<&str>, outcome: Option<&str>) -> Candidate {
        Candidate {
            call_uid: uid.into(),
            operator: op.into(),
            category: category.map(Into::into),
            outcome: outcome.map(Into::into),
        }
    }

    fn week_of_calls() -> Vec<Candidate> {
        let mut calls = Vec::new();
        for k in 0..40 {
            let op = if k % 3 == 0 { "1002" } else { "1001" };
            calls.push(call(
                &format!("n:b:c{k:02}"),
                op,
                Some("question"),
                Some("resolved"),
            ));
        }
        calls.push(call("n:b:x1", "1001", Some("complaint"), Some("resolved")));
        calls.push(call("n:b:x2", "1001", Some("question"), Some("unresolved")));
        calls.push(call("n:b:x3", "1002", Some("question"), Some("disputed")));
        calls
    }

    fn uids(picks: &[Pick]) -> Vec<&str> {
        picks.iter().map(|p| p.call_uid.as_str()).collect()
    }

    #[test]
    fn the_same_seed_and_calls_give_the_same_sample_in_any_order() {
        let calls = week_of_calls();
        let a = draw(42, &calls, 3);
        let mut shuffled = calls.clone();
        shuffled.reverse();
        shuffled.rotate_left(7);
        let b = draw(42, &shuffled, 3);
        assert_eq!(a, b);
        // Pinned: the draw of this seed must never change between builds, or recorded
        // samples could no longer be re-derived.
        assert_eq!(
            uids(&a),
            vec![
                "n:b:x1", "n:b:x2", "n:b:c05", "n:b:c29", "n:b:c35", // 1001
                "n:b:x3", "n:b:c03", "n:b:c12", "n:b:c24", // 1002
            ]
        );
        let other = draw(43, &calls, 3);
        assert_ne!(uids(&a), uids(&other), "another seed drew the same");
    }

    #[test]
    fn every_mandatory_call_and_n_random_calls_per_operator() {
        let calls = week_of_calls();
        let picks = draw(7, &calls, 3);
        let of = |op: &str, reason: Reason| {
            picks
                .iter()
                .filter(|p| p.operator == op && p.reason == reason)
                .count()
        };
        assert_eq!(of("1001", Reason::Random), 3);
        assert_eq!(of("1002", Reason::Random), 3);
        assert_eq!(of("1001", Reason::Complaint), 1);
        assert_eq!(of("1001", Reason::Unresolved), 1);
        assert_eq!(of("1002", Reason::Disputed), 1);
        assert_eq!(picks.len(), 9);
        // No call twice; a mandatory call is not also a random one.
        let mut seen = uids(&picks);
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), picks.len());
        // Fewer calls than n: all of them.
        let few = vec![call("n:b:a", "1003", None, None)];
        assert_eq!(uids(&draw(1, &few, 3)), vec!["n:b:a"]);
        // n = 0: only the mandatory calls.
        assert_eq!(draw(1, &calls, 0).len(), 3);
    }

    #[test]
    fn one_operators_draw_does_not_depend_on_anothers_calls() {
        let calls = week_of_calls();
        let only_1001: Vec<Candidate> = calls
            .iter()
            .filter(|c| c.operator == "1001")
            .cloned()
            .collect();
        let mine = |picks: Vec<Pick>| -> Vec<String> {
            picks
                .into_iter()
                .filter(|p| p.operator == "1001")
                .map(|p| p.call_uid)
                .collect()
        };
        assert_eq!(mine(draw(9, &calls, 3)), mine(draw(9, &only_1001, 3)));
    }

    #[test]
    fn the_draw_is_spread_over_the_calls() {
        // Over many seeds every call of an operator is drawn sometimes: not always the first.
        let calls: Vec<Candidate> = (0..10)
            .map(|k| call(&format!("c{k}"), "1001", None, None))
            .collect();
        let mut hits = BTreeMap::new();
        for seed in 0..2000 {
            for p in draw(seed, &calls, 1) {
                *hits.entry(p.call_uid).or_insert(0u32) += 1;
            }
        }
        assert_eq!(hits.len(), 10, "{hits:?}");
        assert!(hits.values().all(|n| *n > 100), "{hits:?}");
    }

    #[test]
    fn the_digest_names_the_candidates_whatever_their_order() {
        let calls = week_of_calls();
        let mut other = calls.clone();
        other.reverse();
        assert_eq!(digest(&calls), digest(&other));
        other.pop();
        assert_ne!(digest(&calls), digest(&other));
    }

    #[test]
    fn weeks_in_the_tashkent_zone() {
        let tz = jiff::tz::TimeZone::get("Asia/Tashkent").unwrap();
        let w = Week::parse("2026-W49").unwrap();
        assert_eq!(w.to_string(), "2026-W49");
        assert_eq!(w.monday(), jiff::civil::date(2026, 11, 30));
        let (from, to) = w.range_ms(&tz);
        // Monday 00:00 in Tashkent (+05:00) is Sunday 19:00 UTC.
        let utc: jiff::Timestamp = "2026-11-29T19:00:00Z".parse().unwrap();
        assert_eq!(from, utc.as_millisecond());
        assert_eq!(to - from, 7 * 24 * 3600 * 1000);
        // Sunday 20:00 UTC is already Monday in Tashkent: the next week there.
        let sunday_evening: jiff::Timestamp = "2026-12-06T20:00:00Z".parse().unwrap();
        assert_eq!(
            Week::containing(sunday_evening, &tz).to_string(),
            "2026-W50"
        );
        assert_eq!(
            Week::containing(sunday_evening, &jiff::tz::TimeZone::UTC).to_string(),
            "2026-W49"
        );
        assert_eq!(
            Week::parse("2027-W01").unwrap().previous().to_string(),
            "2026-W53"
        );
        for bad in ["2026-49", "2026-W54", "26-W01", "2026-W1", "x"] {
            assert!(Week::parse(bad).is_err(), "{bad}");
        }
    }
}
