//! What a waiting caller is told (design step 4): the place in the queue and the expected
//! wait, in the caller's language, built from the numbered prompt pieces. Pure.

/// Prompt names (file stems) of one announcement, in order.
///
/// `position` is 1 for the next caller to be served; `expected_wait_secs` is rounded up to
/// whole minutes (at least one). Numbers above 20 are said as "more than twenty".
pub fn announcement(position: usize, expected_wait_secs: u64) -> Vec<String> {
    let mut names = vec!["place-in-queue".to_string(), number(position as u64)];
    let minutes = expected_wait_secs.div_ceil(60).max(1);
    names.push("expected-wait-minutes".into());
    names.push(number(minutes));
    names
}

fn number(n: u64) -> String {
    if (1..=20).contains(&n) {
        format!("number-{n}")
    } else {
        "over-twenty".into()
    }
}

/// Expected wait of the caller at `position`: the callers ahead are served `serving` at a
/// time, each taking `handle_secs` (talk plus wrap-up) on average. With nobody serving the
/// estimate assumes one operator (the announcement must still say something useful).
pub fn expected_wait_secs(position: usize, serving: usize, handle_secs: u64) -> u64 {
    let ahead = position.saturating_sub(1) as u64 + 1;
    let serving = serving.max(1) as u64;
    (ahead * handle_secs).div_ceil(serving)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcement_pieces() {
        assert_eq!(
            announcement(3, 61),
            vec![
                "place-in-queue",
                "number-3",
                "expected-wait-minutes",
                "number-2"
            ]
        );
        assert_eq!(announcement(25, 0)[1], "over-twenty");
        assert_eq!(announcement(1, 0)[3], "number-1");
    }

    #[test]
    fn wait_estimate() {
        assert_eq!(expected_wait_secs(1, 4, 180), 45);
        assert_eq!(expected_wait_secs(8, 4, 180), 360);
        assert_eq!(expected_wait_secs(2, 0, 100), 200);
    }
}
