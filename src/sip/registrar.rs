//! REGISTER: digest authentication and contact bindings (RFC 3261 §10).
//!
//! The registrar authenticates and reports bindings to the application; the
//! bindings themselves live with the operators (OperatorActor / presence).

use super::authenticate::{source_of, Authenticator, Checked};
use super::own::Reply;
use super::{ContactBinding, SipApplication, SipCounters, SipSettings};
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, StatusCode};
use rsipstack::transport::SipAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub(super) struct Registrar {
    settings: SipSettings,
    auth: Arc<Authenticator>,
    app: Arc<dyn SipApplication>,
    counters: Arc<SipCounters>,
}

/// The Contact URI and `expires` parameter of a Contact header value.
pub(super) fn parse_contact(value: &str) -> Option<(String, Option<u32>)> {
    let value = value.trim();
    if value == "*" {
        return Some(("*".into(), None));
    }
    let (uri, params) = match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => (value[a + 1..b].to_string(), &value[b + 1..]),
        _ => match value.split_once(';') {
            Some((u, p)) => (u.trim().to_string(), p),
            None => (value.to_string(), ""),
        },
    };
    let expires = params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("expires") {
            v.trim().parse().ok()
        } else {
            None
        }
    });
    Some((uri, expires))
}

impl Registrar {
    pub(super) fn new(
        settings: SipSettings,
        auth: Arc<Authenticator>,
        app: Arc<dyn SipApplication>,
        counters: Arc<SipCounters>,
    ) -> Registrar {
        Registrar {
            settings,
            auth,
            app,
            counters,
        }
    }

    async fn challenge(&self, tx: &mut impl Reply, stale: bool) {
        let offers = self.auth.challenge(tx.request(), stale);
        tx.reply_with(
            StatusCode::Unauthorized,
            offers
                .into_iter()
                .map(|v| Header::WwwAuthenticate(v.into()))
                .collect(),
        )
        .await;
    }

    /// Answers a REGISTER, on navbat's own transaction (UDP) or rsipstack's (TCP).
    pub(super) async fn handle(&self, mut tx: impl Reply) {
        let req = tx.request().clone();
        let aor_user = req
            .to_header()
            .ok()
            .and_then(|t| t.uri().ok())
            .and_then(|u| u.user().map(str::to_string))
            .unwrap_or_default();
        let ext = match self.auth.check(&req, "Authorization", "REGISTER") {
            Checked::Authenticated { user } => user,
            Checked::Challenge { stale } => return self.challenge(&mut tx, stale).await,
            Checked::Failed => return self.challenge(&mut tx, false).await,
            Checked::Banned => {
                tx.reply(StatusCode::Forbidden).await;
                return;
            }
            Checked::Throttled { retry_after_secs } => {
                tx.reply_with(
                    StatusCode::ServiceUnavailable,
                    vec![Header::RetryAfter(retry_after_secs.to_string().into())],
                )
                .await;
                return;
            }
        };
        if ext != aor_user {
            self.auth
                .refused(&req, "REGISTER", &ext, "account differs from To");
            tx.reply(StatusCode::Forbidden).await;
            return;
        }
        let header_expires: Option<u32> = req
            .header_value("Expires")
            .and_then(|v| v.trim().parse().ok());
        let contact_value = req.header_value("Contact");
        let Some(contact_value) = contact_value else {
            // A query: no bindings are listed (they live with the operator).
            tx.reply(StatusCode::OK).await;
            return;
        };
        let Some((uri, contact_expires)) = parse_contact(&contact_value) else {
            tx.reply(StatusCode::BadRequest).await;
            return;
        };
        let expires = contact_expires.or(header_expires).unwrap_or(3600);
        if uri == "*" || expires == 0 {
            self.app.unregistered(&ext);
            tx.reply(StatusCode::OK).await;
            return;
        }
        let min = self.settings.register_min_expires.as_secs() as u32;
        let max = self.settings.register_max_expires.as_secs() as u32;
        if expires < min {
            tx.reply_with(
                StatusCode::IntervalTooBrief,
                vec![Header::MinExpires(min.to_string().into())],
            )
            .await;
            return;
        }
        let granted = expires.min(max);
        let Ok(contact) = rsipstack::sip::Uri::try_from(uri.clone()) else {
            tx.reply(StatusCode::BadRequest).await;
            return;
        };
        let target = source_of(&req).map(|source| choose_target(&contact, source));
        let Some(target) = target else {
            tx.reply(StatusCode::BadRequest).await;
            return;
        };
        let binding = ContactBinding {
            uri: uri.clone(),
            source: target.to_string(),
            target,
            contact,
        };
        self.app.registered(&ext, binding, granted);
        self.counters.registrations.fetch_add(1, Ordering::Relaxed);
        tx.reply_with(
            StatusCode::OK,
            vec![
                Header::Contact(format!("<{uri}>;expires={granted}").into()),
                Header::Expires(granted.to_string().into()),
            ],
        )
        .await;
    }
}

/// Where to send requests for a binding. The Contact is used when its host
/// is the address the REGISTER came from (the phone knows its own port, and a
/// softphone may register from one port and listen on another); otherwise the
/// phone is behind NAT and the source address is the only one that works.
fn choose_target(contact: &rsipstack::sip::Uri, source: SipAddr) -> SipAddr {
    let same_host = contact.host_with_port.host.to_string() == source.addr.host.to_string();
    if same_host {
        let transport = contact
            .params
            .iter()
            .find_map(|p| match p {
                rsipstack::sip::Param::Transport(t) => Some(*t),
                _ => None,
            })
            .or(source.r#type);
        SipAddr {
            r#type: transport,
            addr: contact.host_with_port.clone(),
        }
    } else {
        source
    }
}

#[cfg(test)]
mod tests {
    use super::parse_contact;

    #[test]
    fn contact_forms() {
        assert_eq!(
            parse_contact("<sip:1001@127.0.0.1:5070>;expires=60"),
            Some(("sip:1001@127.0.0.1:5070".into(), Some(60)))
        );
        assert_eq!(
            parse_contact("\"Op\" <sip:1001@h;transport=tcp>"),
            Some(("sip:1001@h;transport=tcp".into(), None))
        );
        assert_eq!(
            parse_contact("sip:1001@h;expires=0"),
            Some(("sip:1001@h".into(), Some(0)))
        );
        assert_eq!(parse_contact("*"), Some(("*".into(), None)));
    }
}
