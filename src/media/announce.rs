//! What a waiting caller is told (design step 4): the place in the queue and the expected
//! wait, in the caller's language, built from the numbered prompt pieces; and the surge
//! callback offer, which names the key the tenant configured. Pure.

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

/// Prompt names of the callback offer: the invitation, then "press `key`" for the key that
/// accepts it (`[tenant.surge.callback] digit`), so the caller hears the key that works.
pub fn callback_offer(key: char) -> Vec<String> {
    vec!["callback-offer-intro".into(), press_key(key)]
}

/// The prompt saying "press `key`" (`press-0` ... `press-9`, `press-star`, `press-hash`).
pub fn press_key(key: char) -> String {
    match key {
        '*' => "press-star".into(),
        '#' => "press-hash".into(),
        k => format!("press-{k}"),
    }
}

/// Expected wait in seconds of the caller at `position`, `serving` operators serving the
/// queue, `handle_secs` per call: the one estimate of the routing core
/// ([`crate::acd::expected_wait_ms`]), so the caller hears what the surge trigger sees.
pub fn expected_wait_secs(position: usize, serving: usize, handle_secs: u64) -> u64 {
    crate::acd::expected_wait_ms(position, serving, handle_secs.saturating_mul(1000), None)
        .div_ceil(1000)
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
    fn the_callback_offer_names_the_configured_key() {
        assert_eq!(callback_offer('3'), vec!["callback-offer-intro", "press-3"]);
        assert_eq!(press_key('*'), "press-star");
        assert_eq!(press_key('#'), "press-hash");
        // Every key a menu accepts has its prompt in both languages.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prompts");
        let store = crate::media::prompts::PromptStore::new(&dir);
        for lang in crate::config::SUPPORTED_LANGUAGES {
            for key in crate::config::DtmfDigit::KEYS.chars() {
                for name in callback_offer(key) {
                    let clip = store.clip("any", lang, &name).unwrap();
                    assert!(
                        crate::media::g711::rms(&clip) > 100.0,
                        "{lang}/{name} is silent"
                    );
                }
            }
        }
    }

    #[test]
    fn wait_estimate() {
        assert_eq!(expected_wait_secs(1, 4, 180), 45);
        assert_eq!(expected_wait_secs(8, 4, 180), 360);
        assert_eq!(expected_wait_secs(2, 0, 100), 200);
    }
}
