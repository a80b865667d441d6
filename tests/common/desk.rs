//! The web desk in tests: a second tenant, the accounts of every role, logging in with a
//! cookie, and plain HTTP requests that carry cookies, forms and headers.

pub use super::http_raw as request;
use super::{HttpResponse, TestConfig};
use std::net::SocketAddr;

/// The second tenant's DID (support line).
pub const SUPPORT_DID: &str = "712038872";

/// Where the support tenant's editor sends formal letters (D15).
pub const CHANCELLERY: &str = "devonxona@support.example.uz";

/// `(username, role, tenants, ext)`; each password is `demo-<username>`.
pub const ACCOUNTS: &[(&str, &str, &str, Option<&str>)] = &[
    ("admin", "admin", "\"*\"", None),
    (
        "supervisor",
        "supervisor",
        "\"dtm\", \"support\"",
        Some("1901"),
    ),
    ("sup-dtm", "supervisor", "\"dtm\"", None),
    ("editor", "editor", "\"dtm\", \"support\"", None),
    ("op1001", "operator", "\"dtm\", \"support\"", Some("1001")),
    ("op1002", "operator", "\"dtm\", \"support\"", Some("1002")),
    ("officer-dtm", "officer", "\"dtm\"", None),
    ("officer-support", "officer", "\"support\"", None),
];

/// The password of a test account.
pub fn password(username: &str) -> String {
    format!("demo-{username}")
}

/// Adds the `support` tenant (24/7 here, caller details required as in the demo), its
/// queues and every account to `config`. `desk` is extra `[desk]` keys.
pub fn with_desk(config: TestConfig, desk: &str) -> TestConfig {
    let mut toml = format!(
        r#"
[desk]
{desk}

[[tenant]]
id = "support"
name = {{ uz = "Qo'llab-quvvatlash", ru = "Поддержка" }}
dids = ["{SUPPORT_DID}"]
timezone = "Asia/Tashkent"
hours = "24/7"
holidays = []
service_level_secs = 20

[tenant.ivr]
digit_timeout_secs = 6
max_retries = 2
on_no_input = "default"
default_language = "uz"
languages = [ {{ digit = "1", language = "uz", queue = "support-uz" }}, {{ digit = "2", language = "ru", queue = "support-ru" }} ]

[tenant.desk]
require_caller_details = true
classifier = [ {{ topic = "marking-codes", label = {{ uz = "Markirovka kodlari", ru = "Коды маркировки" }} }} ]

[tenant.requests]
chancellery = "{CHANCELLERY}"
from_calls = ["closed", "abandoned"]
"#
    );
    for (id, lang) in [("support-uz", "uz"), ("support-ru", "ru")] {
        toml.push_str(&format!(
            "\n[[queue]]\nid = \"{id}\"\ntenant = \"support\"\nlanguage = \"{lang}\"\ntopics = []\nmax_wait_secs = 60\nring_timeout_secs = 5\nwrap_up_secs = 2\n"
        ));
    }
    for (user, role, tenants, ext) in ACCOUNTS {
        let hash = navbat::accounts::hash_password(&password(user));
        toml.push_str(&format!(
            "\n[[account]]\nusername = \"{user}\"\nname = \"{user}\"\nrole = \"{role}\"\ntenants = [{tenants}]\n{}password_hash = \"{hash}\"\n",
            ext.map(|e| format!("ext = \"{e}\"\n")).unwrap_or_default()
        ));
    }
    config.extra_toml(&toml)
}

/// `text` percent-encoded for a query string or form.
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `a=1&b=2` with each value percent-encoded.
pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A cookie's value from a response's `Set-Cookie` headers.
pub fn set_cookie(resp: &HttpResponse, name: &str) -> Option<String> {
    resp.headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .filter_map(|(_, v)| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The value of the first `name="csrf" value="..."` in a page.
pub fn csrf_in(page: &str) -> Option<String> {
    let i = page.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(page[i..].split('"').next()?.to_owned())
}

/// A logged-in browser session over plain HTTP.
pub struct Session {
    pub addr: SocketAddr,
    pub cookie: String,
    pub csrf: String,
}

impl Session {
    pub fn cookie_header(&self) -> String {
        format!("navbat_session={}", self.cookie)
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        request(
            self.addr,
            "GET",
            path,
            &[("Cookie", &self.cookie_header())],
            None,
        )
    }

    /// A form POST with the session's CSRF token added.
    pub fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> HttpResponse {
        let mut all = fields.to_vec();
        all.push(("csrf", &self.csrf));
        let body = form(&all);
        request(
            self.addr,
            "POST",
            path,
            &[("Cookie", &self.cookie_header())],
            Some(("application/x-www-form-urlencoded", &body)),
        )
    }
}

/// Logs in: fetches the form (for its CSRF cookie and field), posts it. `Err` carries the
/// answer when the login was refused.
pub fn try_login(addr: SocketAddr, user: &str, pass: &str) -> Result<Session, HttpResponse> {
    let page = request(addr, "GET", "/login", &[], None);
    assert_eq!(page.status, 200, "GET /login: {page:?}");
    let login_csrf = set_cookie(&page, "navbat_login_csrf").expect("login CSRF cookie");
    let field = csrf_in(&page.body).expect("CSRF field on the login page");
    let body = form(&[
        ("csrf", &field),
        ("username", user),
        ("password", pass),
        ("next", ""),
    ]);
    let resp = request(
        addr,
        "POST",
        "/login",
        &[("Cookie", &format!("navbat_login_csrf={login_csrf}"))],
        Some(("application/x-www-form-urlencoded", &body)),
    );
    if resp.status != 303 {
        return Err(resp);
    }
    let cookie = set_cookie(&resp, "navbat_session").expect("session cookie");
    let mut s = Session {
        addr,
        cookie,
        csrf: String::new(),
    };
    let account = s.get("/account");
    assert_eq!(account.status, 200, "GET /account after login: {account:?}");
    s.csrf = csrf_in(&account.body).expect("CSRF field on /account");
    Ok(s)
}

/// [`try_login`] that must succeed.
pub fn login(addr: SocketAddr, user: &str) -> Session {
    try_login(addr, user, &password(user))
        .unwrap_or_else(|r| panic!("login as {user} refused: {} {}", r.status, r.body))
}
