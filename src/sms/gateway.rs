//! SMS providers: the interface, and a generic HTTP gateway configured by URL, method,
//! headers (the auth header among them) and a body template.
//!
//! The HTTP client is `awc`, actix-web's own client: it runs on the same actix runtime as
//! the SMS actor (its futures need not be `Send`), and it reuses the actix-http stack the
//! API already compiles, so it adds little to the build. `https://` gateways go through
//! rustls with the ring provider (the one the design names), trusting the Mozilla roots
//! (`webpki-roots`) plus, when set, the certificates in `ca_file` (a private CA).

use super::{AttemptResult, Message};
pub use crate::config::GatewayConfig;
pub use crate::tls::{tls_config, TlsSetupError};

/// Something that can send one SMS.
#[async_trait::async_trait(?Send)]
pub trait SmsProvider {
    /// One attempt; the message's id is its idempotency key and is the same on every attempt.
    async fn send(&self, message: &Message) -> AttemptResult;
}

/// A generic HTTP SMS gateway. 2xx is accepted; 408, 429 and 5xx and connection errors are
/// retried; other statuses are permanent failures. Every request carries
/// `Idempotency-Key: <message id>`.
pub struct HttpGateway {
    config: GatewayConfig,
    client: awc::Client,
}

impl HttpGateway {
    /// A gateway; the client is created on the current actix thread.
    pub fn new(config: GatewayConfig) -> Result<HttpGateway, TlsSetupError> {
        let tls = tls_config(config.ca_file.as_deref())?;
        let client = awc::Client::builder()
            .connector(awc::Connector::new().rustls_0_23(tls))
            .timeout(config.timeout)
            .finish();
        Ok(HttpGateway { config, client })
    }

    /// The request body for `message`.
    pub fn body(&self, message: &Message) -> String {
        let escape = |v: &str| -> String {
            if self.config.content_type.contains("json") {
                let quoted = serde_json::to_string(v).unwrap_or_default();
                quoted[1..quoted.len().saturating_sub(1).max(1)].to_string()
            } else if self.config.content_type.contains("x-www-form-urlencoded") {
                form_encode(v)
            } else {
                v.to_string()
            }
        };
        self.config
            .body
            .replace("{id}", &escape(&message.id))
            .replace("{to}", &escape(&message.to))
            .replace("{text}", &escape(&message.text))
            .replace("{tenant}", &escape(&message.tenant))
    }
}

fn form_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[async_trait::async_trait(?Send)]
impl SmsProvider for HttpGateway {
    async fn send(&self, message: &Message) -> AttemptResult {
        let method = match awc::http::Method::from_bytes(self.config.method.as_bytes()) {
            Ok(m) => m,
            Err(e) => return AttemptResult::Permanent(format!("method: {e}")),
        };
        let mut request = self
            .client
            .request(method, self.config.url.as_str())
            .insert_header(("Idempotency-Key", message.id.as_str()))
            .insert_header(("Content-Type", self.config.content_type.as_str()));
        for (name, value) in &self.config.headers {
            request = request.insert_header((name.as_str(), value.as_str()));
        }
        match request.send_body(self.body(message)).await {
            Ok(response) => {
                let status = response.status();
                if status.is_success() {
                    AttemptResult::Accepted
                } else if status.is_server_error()
                    || status.as_u16() == 408
                    || status.as_u16() == 429
                {
                    AttemptResult::Transient(format!("HTTP {}", status.as_u16()))
                } else {
                    AttemptResult::Permanent(format!("HTTP {}", status.as_u16()))
                }
            }
            Err(e) => AttemptResult::Transient(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::MessageKind;
    use super::*;
    use std::time::Duration;

    fn gateway(content_type: &str, body: &str) -> HttpGateway {
        HttpGateway {
            config: GatewayConfig {
                url: "http://127.0.0.1:9/sms".into(),
                method: "POST".into(),
                headers: vec![],
                content_type: content_type.into(),
                body: body.into(),
                timeout: Duration::from_secs(1),
                ca_file: None,
            },
            client: awc::Client::default(),
        }
    }

    fn message() -> Message {
        Message {
            id: "m1".into(),
            to: "+998901234567".into(),
            text: "Natijalar: \"dtm.uz\"\nРезультаты & co".into(),
            kind: MessageKind::Deflection,
            tenant: "dtm".into(),
        }
    }

    #[actix_web::test]
    async fn json_body_escapes_values() {
        let g = gateway(
            "application/json",
            r#"{"id":"{id}","to":"{to}","text":"{text}"}"#,
        );
        let body: serde_json::Value = serde_json::from_str(&g.body(&message())).unwrap();
        assert_eq!(body["text"], message().text);
        assert_eq!(body["to"], "+998901234567");
    }

    #[actix_web::test]
    async fn form_body_is_url_encoded() {
        let g = gateway("application/x-www-form-urlencoded", "to={to}&text={text}");
        let body = g.body(&message());
        assert!(
            body.starts_with("to=%2B998901234567&text=Natijalar%3A+"),
            "{body}"
        );
    }
}
