//! Just enough SIP for simulated phones: a lenient parser for the parts a UA needs (status
//! or method, Call-ID, CSeq, Vias, From/To and tags, Contact, body) and digest
//! authentication (RFC 2617 MD5 with qop=auth).
//!
//! Parsing never panics; anything unusable is `None` and the phone ignores the datagram.

use md5::{Digest, Md5};

/// The start line of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartLine {
    /// A request: method and Request-URI.
    Request(String, String),
    /// A response: status code.
    Response(u16),
}

/// A parsed message: the start line, the headers in order (names lower-cased, compact forms
/// expanded), and the body.
#[derive(Clone, Debug)]
pub struct Message {
    /// Request or response line.
    pub start: StartLine,
    /// (name, value) pairs in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    #[cfg_attr(not(test), allow(dead_code))]
    pub body: String,
}

fn long_name(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    match lower.as_str() {
        "v" => "via".into(),
        "f" => "from".into(),
        "t" => "to".into(),
        "i" => "call-id".into(),
        "m" => "contact".into(),
        "l" => "content-length".into(),
        "c" => "content-type".into(),
        _ => lower,
    }
}

impl Message {
    /// Parses a datagram.
    pub fn parse(bytes: &[u8]) -> Option<Message> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (head, body) = match text.find("\r\n\r\n") {
            Some(i) => (&text[..i], &text[i + 4..]),
            None => (text, ""),
        };
        let mut lines = head.split("\r\n");
        let first = lines.next()?;
        let start = if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
            StartLine::Response(rest.get(..3)?.parse().ok()?)
        } else {
            let mut parts = first.split(' ');
            let method = parts.next()?.to_string();
            let uri = parts.next()?.to_string();
            if parts.next()? != "SIP/2.0" {
                return None;
            }
            StartLine::Request(method, uri)
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with(' ') || line.starts_with('\t') {
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
                continue;
            }
            let (name, value) = line.split_once(':')?;
            headers.push((long_name(name), value.trim().to_string()));
        }
        Some(Message {
            start,
            headers,
            body: body.to_string(),
        })
    }

    /// The first value of header `name` (lower-case long name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`, split at commas for Via.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Option<&str> {
        self.header("call-id")
    }

    /// CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let (n, m) = self.header("cseq")?.split_once(' ')?;
        Some((n.trim().parse().ok()?, m.trim()))
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response(s) => Some(s),
            StartLine::Request(..) => None,
        }
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request(m, _) => Some(m),
            StartLine::Response(_) => None,
        }
    }

    /// The branch parameter of the top Via.
    pub fn top_branch(&self) -> Option<&str> {
        param(self.header("via")?, "branch")
    }

    /// The tag of the To header.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn to_tag(&self) -> Option<&str> {
        param(self.header("to")?, "tag")
    }

    /// The URI inside the Contact header.
    pub fn contact_uri(&self) -> Option<&str> {
        uri_of(self.header("contact")?)
    }

    /// The user part of the From URI.
    pub fn sender_user(&self) -> Option<&str> {
        let uri = uri_of(self.header("from")?)?;
        let rest = uri
            .strip_prefix("sip:")
            .or_else(|| uri.strip_prefix("sips:"))?;
        rest.split('@').next().filter(|_| rest.contains('@'))
    }
}

/// The URI of a name-addr (`"x" <sip:a@b>;tag=1`) or addr-spec (`sip:a@b;tag=1`).
pub fn uri_of(value: &str) -> Option<&str> {
    if let Some(start) = value.find('<') {
        let end = value[start..].find('>')? + start;
        Some(&value[start + 1..end])
    } else {
        Some(value.split(';').next()?.trim())
    }
}

/// A `;name=value` parameter (after any `<...>` part).
pub fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let after = match value.rfind('>') {
        Some(i) => &value[i..],
        None => value,
    };
    after.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().trim_matches('"'))
    })
}

/// A quoted or bare parameter of a `WWW-Authenticate: Digest ...` challenge.
pub fn challenge_param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let rest = value.trim_start().strip_prefix("Digest").unwrap_or(value);
    let mut s = rest;
    while !s.is_empty() {
        s = s.trim_start_matches([' ', ',']);
        let eq = s.find('=')?;
        let key = s[..eq].trim();
        let after = &s[eq + 1..];
        let (val, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim(), &after[end..])
        };
        if key.eq_ignore_ascii_case(name) {
            return Some(val);
        }
        s = next;
    }
    None
}

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

/// The `Authorization` header value answering a digest challenge (RFC 2617, MD5, qop=auth
/// when offered).
pub fn digest_authorization(
    challenge: &str,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
) -> Option<String> {
    let realm = challenge_param(challenge, "realm")?;
    let nonce = challenge_param(challenge, "nonce")?;
    let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    let qop_auth =
        challenge_param(challenge, "qop").is_some_and(|q| q.split(',').any(|x| x.trim() == "auth"));
    let opaque = challenge_param(challenge, "opaque")
        .map(|o| format!(", opaque=\"{o}\""))
        .unwrap_or_default();
    if qop_auth {
        let nc = "00000001";
        let response = md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
        Some(format!(
            "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5, cnonce=\"{cnonce}\", qop=auth, nc={nc}{opaque}"
        ))
    } else {
        let response = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
        Some(format!(
            "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5{opaque}"
        ))
    }
}

/// A minimal PCMU/PCMA SDP offer or answer.
pub fn sdp(ip: &str, port: u16, session: u64) -> String {
    format!(
        "v=0\r\no=loadgen {session} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n"
    )
}

/// A response to `req` with `status`, copying Via, From, To (adding `to_tag` if the To has
/// none), Call-ID and CSeq, plus `extra` header lines and `body`.
pub fn response(
    req: &Message,
    status: u16,
    reason: &str,
    to_tag: Option<&str>,
    extra: &str,
    body: &str,
) -> Vec<u8> {
    let mut s = format!("SIP/2.0 {status} {reason}\r\n");
    for v in req.all("via") {
        s.push_str("Via: ");
        s.push_str(v);
        s.push_str("\r\n");
    }
    let to = req.header("to").unwrap_or("");
    let to = match to_tag {
        Some(tag) if param(to, "tag").is_none() => format!("{to};tag={tag}"),
        _ => to.to_string(),
    };
    s.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        req.header("from").unwrap_or(""),
        req.call_id().unwrap_or(""),
        req.header("cseq").unwrap_or(""),
        body.len()
    ));
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:2001@127.0.0.1:6000 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx;rport\r\nv: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKy\r\nf: \"A\" <sip:998000000007@127.0.0.1>;tag=abc\r\nTo: <sip:2001@127.0.0.1>\r\ni: cid-1\r\nCSeq: 5 INVITE\r\nm: <sip:navbat@127.0.0.1:5060;transport=udp>\r\nl: 3\r\n\r\nv=0";

    #[test]
    fn parses_compact_headers_and_parts() {
        let m = Message::parse(INVITE.as_bytes()).unwrap();
        assert_eq!(m.method(), Some("INVITE"));
        assert_eq!(m.call_id(), Some("cid-1"));
        assert_eq!(m.cseq(), Some((5, "INVITE")));
        assert_eq!(m.top_branch(), Some("z9hG4bKx"));
        assert_eq!(m.all("via").len(), 2);
        assert_eq!(m.sender_user(), Some("998000000007"));
        assert_eq!(
            m.contact_uri(),
            Some("sip:navbat@127.0.0.1:5060;transport=udp")
        );
        assert_eq!(m.body, "v=0");
        let r = response(&m, 180, "Ringing", Some("t1"), "", "");
        let r = Message::parse(&r).unwrap();
        assert_eq!(r.status(), Some(180));
        assert_eq!(r.to_tag(), Some("t1"));
        assert_eq!(r.all("via").len(), 2);
    }

    #[test]
    fn garbage_is_none_not_panic() {
        for g in [
            &b""[..],
            b"\xff\xfe",
            b"SIP/2.0 2",
            b"INVITE\r\n\r\n",
            b"FOO x SIP/3.0\r\n",
        ] {
            assert!(Message::parse(g).is_none());
        }
    }

    /// RFC 2617 section 3.5's worked example.
    #[test]
    fn digest_matches_rfc_2617_example() {
        let ch = "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
        let a = digest_authorization(
            ch,
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "0a4f113b",
        )
        .unwrap();
        assert!(
            a.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{a}"
        );
    }
}
