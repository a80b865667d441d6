//! The score of one evaluation: each criterion gets a mark from 0 (failed) to [`MAX_MARK`]
//! (fully met); the total is the weighted share of the best possible marks, in tenths of a
//! per cent (0 to 1000), and 0 whenever a critical criterion is failed.

use crate::config::qa::Scorecard;
use std::collections::BTreeMap;

/// The best mark of one criterion.
pub const MAX_MARK: u8 = 5;

/// Why marks do not make a score.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScoreError {
    /// A criterion of the scorecard has no mark.
    #[error("the criterion {0} has no mark")]
    Missing(String),
    /// A mark names no criterion of the scorecard.
    #[error("there is no criterion {0} on this scorecard")]
    Unknown(String),
    /// A criterion is marked twice.
    #[error("the criterion {0} is marked twice")]
    Twice(String),
    /// A mark above [`MAX_MARK`].
    #[error("the mark {mark} of {criterion} is above {MAX_MARK}")]
    OutOfRange {
        /// The criterion.
        criterion: String,
        /// The mark given.
        mark: u8,
    },
}

/// A computed score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Total {
    /// Tenths of a per cent, 0 to 1000.
    pub tenths: u32,
    /// Whether a failed critical criterion zeroed it.
    pub zeroed: bool,
}

/// The total of `marks` (criterion id, mark) on `card`: every criterion marked once, marks
/// 0 to [`MAX_MARK`]. Rounded half up to a tenth of a per cent.
pub fn total(card: &Scorecard, marks: &[(String, u8)]) -> Result<Total, ScoreError> {
    let mut given: BTreeMap<&str, u8> = BTreeMap::new();
    for (id, mark) in marks {
        if card.criterion(id).is_none() {
            return Err(ScoreError::Unknown(id.clone()));
        }
        if *mark > MAX_MARK {
            return Err(ScoreError::OutOfRange {
                criterion: id.clone(),
                mark: *mark,
            });
        }
        if given.insert(id, *mark).is_some() {
            return Err(ScoreError::Twice(id.clone()));
        }
    }
    let mut got: u64 = 0;
    let mut best: u64 = 0;
    let mut zeroed = false;
    for c in &card.criteria {
        let mark = *given
            .get(c.id.as_str())
            .ok_or_else(|| ScoreError::Missing(c.id.clone()))?;
        zeroed |= c.critical && mark == 0;
        got += u64::from(c.weight) * u64::from(mark);
        best += u64::from(c.weight) * u64::from(MAX_MARK);
    }
    if zeroed || best == 0 {
        return Ok(Total { tenths: 0, zeroed });
    }
    // got / best * 1000, rounded half up, in integers.
    let tenths = (got * 2000 + best) / (2 * best);
    Ok(Total {
        tenths: tenths as u32,
        zeroed,
    })
}

/// `875` tenths as `87.5`.
pub fn percent_text(tenths: i64) -> String {
    format!("{}.{}", tenths / 10, (tenths % 10).abs())
}

/// A comment's place in the recording as written (`75`, `1:15`, `0:01:15`) in seconds;
/// `None` for anything else.
pub fn parse_offset(text: &str) -> Option<u32> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() > 3 || parts.iter().any(|p| p.is_empty() || p.len() > 5) {
        return None;
    }
    let mut secs: u32 = 0;
    for (k, p) in parts.iter().enumerate() {
        let n: u32 = p.parse().ok()?;
        // Minutes and seconds after the first part stay below 60.
        if k > 0 && n >= 60 {
            return None;
        }
        secs = secs.checked_mul(60)?.checked_add(n)?;
    }
    Some(secs)
}

/// Seconds as `m:ss` (or `h:mm:ss`).
pub fn offset_text(secs: u32) -> String {
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, (secs / 60) % 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::qa::{Criterion, Scorecard};
    use crate::config::Bilingual;

    fn card(criteria: &[(&str, u32, bool)]) -> Scorecard {
        let text = || Bilingual {
            uz: "x".into(),
            ru: "х".into(),
        };
        Scorecard {
            criteria: criteria
                .iter()
                .map(|(id, weight, critical)| Criterion {
                    id: (*id).into(),
                    weight: *weight,
                    title: text(),
                    description: text(),
                    critical: *critical,
                })
                .collect(),
            sample_per_operator_week: 3,
        }
    }

    fn marks(m: &[(&str, u8)]) -> Vec<(String, u8)> {
        m.iter().map(|(id, v)| ((*id).to_owned(), *v)).collect()
    }

    #[test]
    fn the_total_is_the_weighted_share_of_the_best_marks() {
        let c = card(&[("greeting", 10, false), ("accuracy", 30, false)]);
        let all = total(&c, &marks(&[("greeting", 5), ("accuracy", 5)])).unwrap();
        assert_eq!(
            all,
            Total {
                tenths: 1000,
                zeroed: false
            }
        );
        // 10*5 + 30*0 = 50 of 200: 25 %.
        let t = total(&c, &marks(&[("greeting", 5), ("accuracy", 0)])).unwrap();
        assert_eq!(t.tenths, 250);
        // 10*2 + 30*4 = 140 of 200: 70 %. Order of the marks does not matter.
        let t = total(&c, &marks(&[("accuracy", 4), ("greeting", 2)])).unwrap();
        assert_eq!(t.tenths, 700);
        // 10*1 + 30*1 = 40 of 200 = 20 %; 10*1+30*2 = 70/200 = 35 %; 1/3 rounds.
        let c3 = card(&[("a", 1, false), ("b", 2, false)]);
        // (1*1 + 2*0) / 15 = 6.666.. % -> 66.7 tenths rounded half up = 67.
        assert_eq!(
            total(&c3, &marks(&[("a", 1), ("b", 0)])).unwrap().tenths,
            67
        );
        assert_eq!(percent_text(875), "87.5");
        assert_eq!(percent_text(1000), "100.0");
    }

    #[test]
    fn a_failed_critical_criterion_zeroes_the_score() {
        let c = card(&[("greeting", 10, false), ("legal", 30, true)]);
        let t = total(&c, &marks(&[("greeting", 5), ("legal", 0)])).unwrap();
        assert_eq!(
            t,
            Total {
                tenths: 0,
                zeroed: true
            }
        );
        // A low but not failed critical mark counts like any other.
        let t = total(&c, &marks(&[("greeting", 5), ("legal", 1)])).unwrap();
        assert_eq!(t.tenths, 400);
        assert!(!t.zeroed);
        // A failed non-critical criterion does not zero it.
        let t = total(&c, &marks(&[("greeting", 0), ("legal", 5)])).unwrap();
        assert_eq!(t.tenths, 750);
    }

    #[test]
    fn marks_must_cover_the_scorecard_exactly() {
        let c = card(&[("greeting", 10, false), ("legal", 30, true)]);
        assert_eq!(
            total(&c, &marks(&[("greeting", 5)])),
            Err(ScoreError::Missing("legal".into()))
        );
        assert_eq!(
            total(&c, &marks(&[("greeting", 5), ("legal", 5), ("extra", 1)])),
            Err(ScoreError::Unknown("extra".into()))
        );
        assert_eq!(
            total(
                &c,
                &marks(&[("greeting", 5), ("greeting", 4), ("legal", 5)])
            ),
            Err(ScoreError::Twice("greeting".into()))
        );
        assert_eq!(
            total(&c, &marks(&[("greeting", 6), ("legal", 5)])),
            Err(ScoreError::OutOfRange {
                criterion: "greeting".into(),
                mark: 6
            })
        );
    }

    #[test]
    fn offsets_are_read_and_written_as_minutes_and_seconds() {
        assert_eq!(parse_offset("75"), Some(75));
        assert_eq!(parse_offset("1:15"), Some(75));
        assert_eq!(parse_offset(" 0:01:15 "), Some(75));
        assert_eq!(parse_offset("1:75"), None);
        assert_eq!(parse_offset("a:10"), None);
        assert_eq!(parse_offset(""), None);
        assert_eq!(parse_offset("1::2"), None);
        assert_eq!(offset_text(75), "1:15");
        assert_eq!(offset_text(3725), "1:02:05");
    }
}
