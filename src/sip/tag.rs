//! The `tag` parameter of a From or To value, read without parsing the whole header.
//!
//! Matching a message to its transaction or call leg asks for the From and To tags of every
//! request and response. The stack's typed header parses the display name, the URI and every
//! parameter to answer that; here the value is scanned once for its header parameters
//! (RFC 3261 §25.1: `( name-addr / addr-spec ) *( SEMI to-param )`, with `tag-param = "tag"
//! EQUAL token`). Quoted display names and the URI in angle brackets are stepped over, so a
//! `;tag=` inside them is not taken. In the addr-spec form a URI cannot carry parameters
//! (§20.10: then it must be in angle brackets), so the first `;` starts the header's.

/// The tag of a From or To header value, when it has a non-empty one.
pub(crate) fn header_tag(value: &str) -> Option<&str> {
    let params = &value[params_start(value)?..];
    params.split(';').skip(1).find_map(|param| {
        let (name, tag) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("tag") {
            return None;
        }
        let tag = tag.trim();
        (!tag.is_empty()).then_some(tag)
    })
}

/// Where the header parameters of `value` begin (at a `;`, or the end), or `None` when a
/// quoted string or an angle bracket is not closed.
fn params_start(value: &str) -> Option<usize> {
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                loop {
                    match bytes.get(i)? {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                i += 1;
            }
            b'<' => {
                let close = value[i..].find('>')?;
                let after = i + close + 1;
                return Some(value[after..].find(';').map_or(value.len(), |p| after + p));
            }
            b';' => return Some(i),
            _ => i += 1,
        }
    }
    Some(value.len())
}

#[cfg(test)]
mod tests {
    use super::header_tag;
    use proptest::prelude::*;
    use rsipstack::sip::headers::To;

    #[test]
    fn the_tag_is_read_from_name_addr_and_addr_spec_forms() {
        assert_eq!(
            header_tag("<sip:1001@10.0.0.5>;tag=a6c85cf"),
            Some("a6c85cf")
        );
        assert_eq!(header_tag("sip:1001@10.0.0.5;tag=a6c85cf"), Some("a6c85cf"));
        assert_eq!(
            header_tag("\"Operator\" <sip:1001@h;transport=udp>;x=1;TAG=Ab.9-z"),
            Some("Ab.9-z")
        );
        assert_eq!(header_tag("Bob <sip:b@h> ; tag = 77 ; x"), Some("77"));
        assert_eq!(header_tag("<sip:b@h>"), None);
        assert_eq!(header_tag("<sip:b@h>;tag="), None);
        assert_eq!(header_tag("<sip:b@h>;tagx=1"), None);
    }

    #[test]
    fn a_tag_inside_the_display_name_or_the_uri_is_not_the_header_s() {
        assert_eq!(
            header_tag("\"a;tag=evil <x>\" <sip:b@h>;tag=good"),
            Some("good")
        );
        assert_eq!(header_tag("\"a \\\" ;tag=evil\" <sip:b@h>"), None);
        assert_eq!(header_tag("<sip:b@h;tag=uri-param>"), None);
        assert_eq!(header_tag("<sip:b@h;tag=uri-param>;tag=hdr"), Some("hdr"));
    }

    #[test]
    fn an_unclosed_quote_or_bracket_has_no_tag() {
        assert_eq!(header_tag("\"open <sip:b@h>;tag=1"), None);
        assert_eq!(header_tag("<sip:b@h;tag=1"), None);
        assert_eq!(header_tag("\"ends in a backslash\\"), None);
    }

    proptest! {
        /// The stack's full parse and this scan agree on the tag of well-formed values.
        #[test]
        fn agrees_with_the_stack_s_parse(
            name in prop::option::of("[A-Za-z][A-Za-z0-9 ]{0,12}"),
            quoted in any::<bool>(),
            user in "[a-z0-9]{1,8}",
            uri_params in prop::collection::vec("[a-z]{1,5}=[a-z0-9]{1,5}", 0..3),
            before in prop::collection::vec("[a-z]{1,5}=[a-z0-9]{1,5}", 0..2),
            tag in prop::option::of("[A-Za-z0-9.\\-]{1,16}"),
            after in prop::collection::vec("[a-z]{1,5}=[a-z0-9]{1,5}", 0..2),
        ) {
            let mut uri = format!("sip:{user}@192.0.2.1");
            for p in &uri_params {
                uri.push(';');
                uri.push_str(p);
            }
            let mut value = match &name {
                Some(n) if quoted => format!("\"{n}\" <{uri}>"),
                Some(n) => format!("{} <{uri}>", n.trim()),
                None => format!("<{uri}>"),
            };
            for p in before.iter().filter(|p| !p.starts_with("tag=")) {
                value.push(';');
                value.push_str(p);
            }
            if let Some(t) = &tag {
                value.push_str(";tag=");
                value.push_str(t);
            }
            for p in after.iter().filter(|p| !p.starts_with("tag=")) {
                value.push(';');
                value.push_str(p);
            }
            let stack = To::new(value.clone())
                .tag()
                .ok()
                .flatten()
                .map(|t| t.value().to_owned());
            prop_assert_eq!(header_tag(&value).map(str::to_owned), stack, "value {}", value);
        }
    }
}
