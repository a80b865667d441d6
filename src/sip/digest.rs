//! HTTP Digest authentication for REGISTER (RFC 3261 §22, RFC 2617 MD5, RFC 7616 SHA-256).
//!
//! Pure functions: nonces are stateless (a timestamp signed with a per-process
//! secret), so a restart invalidates them and every node can check its own.
//! Unknown users and wrong passwords get the same challenge, built the same
//! way, so a scanner cannot tell which extensions exist.

use md5::{Digest, Md5};

/// `md5(user:realm:password)` as lowercase hex: what the config stores.
pub fn ha1(user: &str, realm: &str, password: &str) -> String {
    md5_hex(&format!("{user}:{realm}:{password}"))
}

/// `sha256(user:realm:password)` as lowercase hex (RFC 7616 §3.4.2).
pub fn ha1_sha256(user: &str, realm: &str, password: &str) -> String {
    sha256_hex(&format!("{user}:{realm}:{password}"))
}

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

/// A digest algorithm navbat accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5 (RFC 2617; the default when a response names none).
    Md5,
    /// SHA-256 (RFC 7616).
    Sha256,
}

impl Algorithm {
    /// The algorithm a response names (`None`: MD5); `None` for one navbat does not accept
    /// (the `-sess` variants among them).
    pub fn of(c: &DigestCredentials) -> Option<Algorithm> {
        match c.algorithm.as_deref() {
            None => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("md5") => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("sha-256") => Some(Algorithm::Sha256),
            Some(_) => None,
        }
    }

    /// The token in challenges.
    pub fn token(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    fn hex(self, s: &str) -> String {
        match self {
            Algorithm::Md5 => md5_hex(s),
            Algorithm::Sha256 => sha256_hex(s),
        }
    }
}

/// Issues and checks stateless nonces.
#[derive(Clone)]
pub struct NonceSigner {
    secret: [u8; 16],
    ttl_secs: u64,
}

/// The verdict on a nonce presented by a client.
#[derive(Debug, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours and fresh.
    Valid,
    /// Ours but older than the TTL: challenge again with `stale=true`.
    Stale,
    /// Not ours (forged, from another process, or garbled).
    Invalid,
}

impl NonceSigner {
    /// A signer with this secret and nonce lifetime.
    pub fn new(secret: [u8; 16], ttl_secs: u64) -> NonceSigner {
        NonceSigner { secret, ttl_secs }
    }

    fn sign(&self, issued: u64, salt: &str, source: Option<std::net::IpAddr>) -> String {
        let mut h = Md5::new();
        h.update(self.secret);
        h.update(issued.to_be_bytes());
        h.update(salt.as_bytes());
        if let Some(ip) = source {
            h.update(ip.to_string().as_bytes());
        }
        hex::encode(&h.finalize()[..10])
    }

    /// A fresh nonce issued at `now_secs`: `<issued>.<salt>.<signature>`. The random salt
    /// makes every nonce unique, even two issued in the same second: each is tracked with
    /// its own nonce counts (a replayed count is refused, see `sip::auth`).
    /// The nonce is also bound to `source`, the address the challenge goes to: an answer from
    /// elsewhere is [`NonceCheck::Invalid`].
    pub fn issue(&self, now_secs: u64, source: Option<std::net::IpAddr>) -> String {
        let salt = format!("{:016x}", rand::random::<u64>());
        format!("{now_secs:x}.{salt}.{}", self.sign(now_secs, &salt, source))
    }

    fn parts(nonce: &str) -> Option<(u64, &str, &str)> {
        let mut parts = nonce.splitn(3, '.');
        let issued = u64::from_str_radix(parts.next()?, 16).ok()?;
        Some((issued, parts.next()?, parts.next()?))
    }

    /// When a nonce of ours stops being valid (seconds); `None` if it does not parse.
    pub fn expires_at(&self, nonce: &str) -> Option<u64> {
        let (issued, _, _) = NonceSigner::parts(nonce)?;
        Some(issued.saturating_add(self.ttl_secs))
    }

    /// Checks a nonce presented from `source` at `now_secs`.
    pub fn check(
        &self,
        nonce: &str,
        now_secs: u64,
        source: Option<std::net::IpAddr>,
    ) -> NonceCheck {
        let Some((issued, salt, sig)) = NonceSigner::parts(nonce) else {
            return NonceCheck::Invalid;
        };
        if !constant_time_eq(sig.as_bytes(), self.sign(issued, salt, source).as_bytes()) {
            return NonceCheck::Invalid;
        }
        if now_secs.saturating_sub(issued) > self.ttl_secs || issued > now_secs + 5 {
            return NonceCheck::Stale;
        }
        NonceCheck::Valid
    }
}

/// The `WWW-Authenticate` value for an MD5 challenge.
pub fn challenge(realm: &str, nonce: &str, stale: bool) -> String {
    challenge_with(Algorithm::Md5, realm, nonce, stale)
}

/// The `WWW-Authenticate` value for a challenge with `algorithm`.
pub fn challenge_with(algorithm: Algorithm, realm: &str, nonce: &str, stale: bool) -> String {
    let mut v = format!(
        "Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"",
        algorithm.token()
    );
    if stale {
        v.push_str(", stale=true");
    }
    v
}

/// The fields of an `Authorization: Digest ...` header we use.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    /// `username`
    pub username: String,
    /// `realm`
    pub realm: String,
    /// `nonce`
    pub nonce: String,
    /// `uri` (digest-uri)
    pub uri: String,
    /// `response`
    pub response: String,
    /// `algorithm`, if given
    pub algorithm: Option<String>,
    /// `qop`, if given
    pub qop: Option<String>,
    /// `nc`, with qop
    pub nc: Option<String>,
    /// `cnonce`, with qop
    pub cnonce: Option<String>,
}

/// Parses an `Authorization` header value; `None` if it is not a usable Digest.
pub fn parse_authorization(value: &str) -> Option<DigestCredentials> {
    let value = value.trim();
    let rest = value
        .get(..6)
        .filter(|s| s.eq_ignore_ascii_case("digest"))
        .map(|_| &value[6..])?;
    let mut c = DigestCredentials::default();
    for (k, v) in split_params(rest) {
        match k.to_ascii_lowercase().as_str() {
            "username" => c.username = v,
            "realm" => c.realm = v,
            "nonce" => c.nonce = v,
            "uri" => c.uri = v,
            "response" => c.response = v.to_ascii_lowercase(),
            "algorithm" => c.algorithm = Some(v),
            "qop" => c.qop = Some(v),
            "nc" => c.nc = Some(v),
            "cnonce" => c.cnonce = Some(v),
            _ => {}
        }
    }
    if c.username.is_empty() || c.nonce.is_empty() || c.response.is_empty() || c.uri.is_empty() {
        return None;
    }
    Some(c)
}

/// Splits `a="x, y", b=z` into pairs, honouring quotes and backslash escapes.
fn split_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.trim().is_empty() {
            break;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            while matches!(chars.peek(), Some(c) if c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                val.push(n);
                            }
                        }
                        '"' => break,
                        _ => val.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    val.push(c);
                    chars.next();
                }
            }
        }
        out.push((key.trim().to_string(), val.trim().to_string()));
    }
    out
}

/// The response a client holding `ha1` (of the response's algorithm) should have computed for
/// `method`.
pub fn expected_response(ha1: &str, method: &str, c: &DigestCredentials) -> String {
    let alg = Algorithm::of(c).unwrap_or(Algorithm::Md5);
    let ha2 = alg.hex(&format!("{method}:{}", c.uri));
    match c.qop.as_deref() {
        Some(q) if q.eq_ignore_ascii_case("auth") => alg.hex(&format!(
            "{ha1}:{}:{}:{}:auth:{ha2}",
            c.nonce,
            c.nc.as_deref().unwrap_or(""),
            c.cnonce.as_deref().unwrap_or("")
        )),
        _ => alg.hex(&format!("{ha1}:{}:{ha2}", c.nonce)),
    }
}

/// Checks the client's response against `ha1` (the HA1 of the response's algorithm) in
/// constant time.
pub fn verify(ha1: &str, method: &str, c: &DigestCredentials) -> bool {
    if Algorithm::of(c).is_none() {
        return false;
    }
    if let Some(q) = &c.qop {
        if !q.eq_ignore_ascii_case("auth") || c.nc.is_none() || c.cnonce.is_none() {
            return false;
        }
    }
    constant_time_eq(
        expected_response(ha1, method, c).as_bytes(),
        c.response.as_bytes(),
    )
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example_response() {
        // RFC 2617 §3.5: Mufasa / Circle Of Life, digest-uri /dir/index.html.
        let h = ha1("Mufasa", "testrealm@host.com", "Circle Of Life");
        let c = DigestCredentials {
            username: "Mufasa".into(),
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            uri: "/dir/index.html".into(),
            response: "6629fae49393a05397450978507c4ef1".into(),
            algorithm: None,
            qop: Some("auth".into()),
            nc: Some("00000001".into()),
            cnonce: Some("0a4f113b".into()),
        };
        assert_eq!(expected_response(&h, "GET", &c), c.response);
        assert!(verify(&h, "GET", &c));
        assert!(!verify(
            &ha1("Mufasa", "testrealm@host.com", "x"),
            "GET",
            &c
        ));
    }

    #[test]
    fn rfc7616_sha256_example_response() {
        // RFC 7616 §3.9.1: Mufasa / Circle of Life, SHA-256.
        let h = ha1_sha256("Mufasa", "http-auth@example.org", "Circle of Life");
        let c = DigestCredentials {
            username: "Mufasa".into(),
            realm: "http-auth@example.org".into(),
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
            uri: "/dir/index.html".into(),
            response: "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1".into(),
            algorithm: Some("SHA-256".into()),
            qop: Some("auth".into()),
            nc: Some("00000001".into()),
            cnonce: Some("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ".into()),
        };
        assert!(verify(&h, "GET", &c));
        // The MD5 HA1 does not answer a SHA-256 response.
        assert!(!verify(
            &ha1("Mufasa", "http-auth@example.org", "Circle of Life"),
            "GET",
            &c
        ));
        let sess = DigestCredentials {
            algorithm: Some("SHA-256-sess".into()),
            ..c
        };
        assert!(!verify(&h, "GET", &sess));
    }

    #[test]
    fn parses_quoted_and_bare_params() {
        let c = parse_authorization(
            r#"Digest username="1001", realm="navbat",nonce="5f.ab", uri="sip:127.0.0.1", response="ABC", algorithm=MD5, qop=auth, nc=00000001, cnonce="x,y""#,
        )
        .unwrap();
        assert_eq!(c.username, "1001");
        assert_eq!(c.response, "abc");
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.cnonce.as_deref(), Some("x,y"));
        assert!(parse_authorization("Basic Zm9vOmJhcg==").is_none());
        assert!(parse_authorization("Digest").is_none());
        assert!(parse_authorization("").is_none());
    }

    #[test]
    fn nonces_expire_and_forgeries_fail() {
        let s = NonceSigner::new([7; 16], 300);
        let n = s.issue(1000, None);
        assert_eq!(s.check(&n, 1000, None), NonceCheck::Valid);
        assert_eq!(s.check(&n, 1300, None), NonceCheck::Valid);
        assert_eq!(s.check(&n, 1301, None), NonceCheck::Stale);
        let other = NonceSigner::new([8; 16], 300);
        assert_eq!(other.check(&n, 1000, None), NonceCheck::Invalid);
        assert_eq!(s.check("zz.00", 1000, None), NonceCheck::Invalid);
        assert_eq!(s.check("nodot", 1000, None), NonceCheck::Invalid);
        assert_ne!(
            s.issue(1000, None),
            s.issue(1000, None),
            "unique within a second"
        );
        assert_eq!(s.expires_at(&n), Some(1300));
        // Another salt with the same signature is a forgery.
        let (ts, rest) = n.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        assert_eq!(
            s.check(&format!("{ts}.0000000000000000.{sig}"), 1000, None),
            NonceCheck::Invalid
        );
        // Bound to the address it was issued to.
        let here: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        let there: std::net::IpAddr = "192.0.2.2".parse().unwrap();
        let bound = s.issue(1000, Some(here));
        assert_eq!(s.check(&bound, 1000, Some(here)), NonceCheck::Valid);
        assert_eq!(s.check(&bound, 1000, Some(there)), NonceCheck::Invalid);
        assert_eq!(s.check(&bound, 1000, None), NonceCheck::Invalid);
    }

    #[test]
    fn challenge_shape_is_fixed() {
        assert_eq!(
            challenge("navbat", "n", false),
            "Digest realm=\"navbat\", nonce=\"n\", algorithm=MD5, qop=\"auth\""
        );
        assert!(challenge("navbat", "n", true).ends_with(", stale=true"));
    }
}
