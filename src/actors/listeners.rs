//! The SIP identities of accounts that may listen to live calls by feature code from a
//! softphone (officers, D19; supervisor accounts, D17), as the SIP layer's synchronous
//! credential lookup needs them: a copy of the store's `account_sip` rows with each account's
//! role, tenants and state, refreshed every [`REFRESH`] from the database, so `navbat user
//! sip`, `navbat user disable` and a changed role reach the running router without a restart.
//!
//! An identity is usable when its account is enabled, its HA1s were made for the configured
//! realm and its extension is not a configured operator's (the configuration wins; `navbat
//! user sip` refuses such an extension, this guards against one configured later).

use crate::accounts::db::SipIdentity;
use crate::config::Config;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How often the identities are read again from the database.
pub const REFRESH: Duration = Duration::from_secs(2);

/// The usable identities by extension.
#[derive(Default)]
pub struct Listeners {
    by_ext: RwLock<HashMap<String, SipIdentity>>,
}

impl Listeners {
    /// The usable identity on extension `ext`.
    pub fn get(&self, ext: &str) -> Option<SipIdentity> {
        self.read().get(ext).cloned()
    }

    /// The md5 HA1 of the usable identity on `ext`.
    pub fn ha1(&self, ext: &str) -> Option<String> {
        self.read().get(ext).map(|i| i.ha1_md5.clone())
    }

    /// How many identities are usable.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces the identities with the usable ones of `rows`; returns the unusable ones
    /// with why (for the log: the account and the fix, never a hash).
    pub fn replace(&self, rows: Vec<SipIdentity>, config: &Config) -> Vec<(String, &'static str)> {
        let mut usable = HashMap::new();
        let mut unusable = Vec::new();
        for row in rows {
            let why = if row.disabled {
                None // disabled on purpose: not worth a warning
            } else if row.realm != config.sip.realm {
                Some(
                    "its SIP password was set for another sip.realm; fix: navbat user sip \
                      <login> --ext <ext> again",
                )
            } else if config.operator(&row.ext).is_some() {
                Some(
                    "its extension is a configured operator's; fix: navbat user sip <login> \
                      --ext <another ext>",
                )
            } else {
                usable.insert(row.ext.clone(), row);
                continue;
            };
            if let Some(why) = why {
                unusable.push((row.username, why));
            }
        }
        *self.by_ext.write().unwrap_or_else(|e| e.into_inner()) = usable;
        unusable
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, SipIdentity>> {
        self.by_ext.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// Reads the identities from the store now and every [`REFRESH`]; a failed read keeps the
/// last ones (and is logged once until a read succeeds again).
pub async fn refresh(listeners: Arc<Listeners>, store: crate::store::Store, config: Arc<Config>) {
    let mut failing = false;
    let mut last: Option<(usize, Vec<(String, &'static str)>)> = None;
    loop {
        let pool = store.db().pool().clone();
        let read = store
            .run(async move { crate::accounts::db::sip_identities(&pool).await })
            .await;
        match read {
            Ok(Ok(rows)) => {
                failing = false;
                let unusable = listeners.replace(rows, &config);
                let n = listeners.len();
                metrics::gauge!(crate::metrics::SIP_LISTENER_IDENTITIES).set(n as f64);
                let now = Some((n, unusable));
                if now != last {
                    if let Some((_, unusable)) = &now {
                        for (account, why) in unusable {
                            tracing::warn!(account = %account, "SIP identity not used: {why}");
                        }
                    }
                    tracing::info!(usable = n, "SIP identities of listening accounts");
                    last = now;
                }
            }
            Ok(Err(e)) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "cannot read the accounts' SIP identities; keeping the last ones");
            }
            Ok(Err(_)) => {}
            Err(_) => return,
        }
        tokio::time::sleep(REFRESH).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::{Role, Tenants};

    fn row(user: &str, ext: &str) -> SipIdentity {
        SipIdentity {
            username: user.into(),
            ext: ext.into(),
            role: Role::Officer,
            tenants: Tenants::parse("dtm"),
            disabled: false,
            realm: Config::embedded_default().sip.realm.clone(),
            ha1_md5: format!("md5-of-{ext}"),
            ha1_sha256: format!("sha-of-{ext}"),
        }
    }

    #[test]
    fn only_enabled_identities_of_the_realm_off_operator_extensions_are_used() {
        let config = Config::embedded_default();
        let operator = config.operators[0].ext.clone();
        let listeners = Listeners::default();
        let disabled = SipIdentity {
            disabled: true,
            ..row("gone", "1961")
        };
        let other_realm = SipIdentity {
            realm: "elsewhere".into(),
            ..row("moved", "1962")
        };
        let unusable = listeners.replace(
            vec![
                row("officer-dtm", "1950"),
                disabled,
                other_realm,
                row("clash", &operator),
            ],
            &config,
        );
        assert_eq!(listeners.len(), 1);
        assert_eq!(listeners.ha1("1950").as_deref(), Some("md5-of-1950"));
        assert_eq!(listeners.get("1950").unwrap().username, "officer-dtm");
        for ext in ["1961", "1962", operator.as_str()] {
            assert!(listeners.ha1(ext).is_none(), "{ext} used");
        }
        let names: Vec<&str> = unusable.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(
            names,
            ["moved", "clash"],
            "a disabled account is no warning"
        );
        // A later read replaces the earlier one: a removed identity stops at once.
        listeners.replace(Vec::new(), &config);
        assert!(listeners.is_empty() && listeners.ha1("1950").is_none());
    }
}
