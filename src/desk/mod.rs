//! The web desk: the operator's screen (state, screen pop, after-call work, knowledge base),
//! the supervisor's and officer's floor view, the knowledge base editor, the audit log and
//! personal API tokens. Server-rendered pages (askama templates, compiled and checked with
//! the binary) with htmx (vendored, `static/`), and live updates by Server-Sent Events from
//! the event bus ([`live`]).
//!
//! Every page and message is in Uzbek (Latin) and Russian ([`i18n`]); each account has its
//! language and can switch it. Times are shown in the desk's time zone (the first tenant's,
//! Asia/Tashkent in the demo).

/// The value of a `Result<T, HttpResponse>`, or the handler answers with the response (a
/// refusal: 401, 403, 404, CSRF).
macro_rules! or_answer {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(response) => return response,
        }
    };
}
pub(crate) use or_answer;

// The handlers' errors are the HTTP responses themselves, built once per refused request;
// boxing them would only add an allocation.
#[allow(clippy::result_large_err)]
pub mod auth;
pub mod disposition;
pub mod form;
pub mod i18n;
pub use crate::actors::live;
#[allow(clippy::result_large_err)]
pub mod pages;
#[allow(clippy::result_large_err)]
pub mod qa;
pub mod qtexts;
#[allow(clippy::result_large_err)]
pub mod recordings;
#[allow(clippy::result_large_err)]
pub mod reports;
#[allow(clippy::result_large_err)]
pub mod requests;
pub mod rtexts;

use crate::actors::Router;
// The state lives with the router's `Shared` (below the desk); named here as the desk's.
pub use crate::actors::desk_state::DeskState;

/// Runs `f` with the store's pool (and whether it is Postgres) on the store's runtime; the
/// error in words when there is no store or it fails.
pub(crate) async fn with_db<T: Send + 'static, F, Fut>(router: &Router, f: F) -> Result<T, String>
where
    F: FnOnce(sqlx::AnyPool, bool) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>> + Send + 'static,
{
    let store = router
        .shared
        .store
        .as_ref()
        .ok_or_else(|| "this router runs without a store".to_owned())?;
    let pool = store.db().pool().clone();
    let pg = store.db().is_postgres();
    store
        .run(async move { f(pool, pg).await })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// The keys that open callers' personal data in the database ([`crate::pii`]); `None`
/// without a store, where a sealed value read is an error naming the fix.
pub(crate) fn pii(router: &Router) -> Option<std::sync::Arc<crate::pii::Pii>> {
    router
        .shared
        .store
        .as_ref()
        .and_then(|s| s.db().pii().cloned())
}

/// The tenant of a call and the operator who had it, given as this run's name (`c17`) or a
/// store name: from the desk's live table for a call of this run, else from its call record.
/// `Ok(None)`: no such call (or its record has no tenant yet).
pub(crate) async fn call_owner(
    router: &Router,
    call: &str,
) -> Result<Option<(String, Option<String>)>, String> {
    let local = call.rsplit(':').next().unwrap_or(call);
    let store = router.shared.store.as_ref();
    if store.is_none_or(|s| s.store_name(call) == s.call_uid(local)) {
        if let Some(live) = router.shared.desk.live.get(local) {
            return Ok(Some((live.tenant, live.operator)));
        }
    }
    let Some(store) = store else {
        return Ok(None);
    };
    let uid = store.store_name(call);
    let pii = pii(router);
    let view = with_db(router, move |pool, _| async move {
        crate::accounts::db::call_view(&pool, pii.as_deref(), &uid).await
    })
    .await?;
    Ok(view.and_then(|v| Some((v.tenant?, v.operator))))
}

/// Creates the accounts of `[[account]]` that the store does not have yet (never changes an
/// existing one). Returns how many were created.
pub async fn seed_accounts(
    pool: &sqlx::AnyPool,
    seeds: &[crate::config::desk::SeedAccount],
) -> Result<usize, sqlx::Error> {
    let now = auth::now_ms();
    let mut created = 0;
    for s in seeds {
        let new = crate::accounts::db::NewAccount {
            account: crate::accounts::Account {
                username: s.username.clone(),
                display_name: s.name.clone(),
                role: s.role,
                tenants: s.tenants.clone(),
                operator_ext: s.ext.clone(),
                language: s.language,
                disabled: false,
            },
            password_hash: s.password_hash.clone(),
        };
        if crate::accounts::db::add(pool, &new, now).await? {
            created += 1;
            let entry = crate::store::people::AuditEntry {
                actor: "config".into(),
                role: None,
                tenant: None,
                action: "account_added".into(),
                target: Some(s.username.clone()),
                source: None,
                detail: Some(format!("role {} from [[account]]", s.role)),
            };
            crate::accounts::db::audit_direct(pool, &entry, now).await?;
        }
    }
    Ok(created)
}
