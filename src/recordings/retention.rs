//! Retention (default 12 months per tenant, `[tenant.recordings] retention_months`): which
//! recordings have expired is decided here from the index rows and `now`; [`sweep`] deletes
//! the files and rows of this node's expired recordings and audits each deletion
//! (`recording_expired`, actor `retention`, the call, its tenant, start and the rule).

use super::index::IndexRow;
use crate::config::recordings::DEFAULT_RETENTION_MONTHS;
use jiff::{tz::TimeZone, Timestamp, ToSpan};

/// Rows read per pass of [`sweep`]; the job comes back for the rest at once.
const BATCH: i64 = 500;

/// The instant before which a recording kept `months` months has expired at `now_ms`
/// (calendar months, UTC: a recording of 31 March kept one month expires on 30 April).
pub fn cutoff_ms(now_ms: i64, months: u32) -> i64 {
    let now = Timestamp::from_millisecond(now_ms).unwrap_or(Timestamp::UNIX_EPOCH);
    TimeZone::UTC
        .to_datetime(now)
        .checked_sub(i64::from(months).months())
        .ok()
        .and_then(|dt| TimeZone::UTC.to_timestamp(dt).ok())
        .map(|t| t.as_millisecond())
        .unwrap_or(i64::MIN)
}

/// The rows of `rows` that have expired at `now_ms`, each tenant's rule from `months_of`
/// (`None`: a tenant no longer configured, kept the default 12 months).
pub fn expired<'a>(
    rows: &'a [IndexRow],
    months_of: &dyn Fn(&str) -> Option<u32>,
    now_ms: i64,
) -> Vec<&'a IndexRow> {
    rows.iter()
        .filter(|r| {
            let months = r
                .tenant
                .as_deref()
                .and_then(months_of)
                .unwrap_or(DEFAULT_RETENTION_MONTHS);
            r.started_at_ms
                .is_some_and(|start| start < cutoff_ms(now_ms, months))
        })
        .collect()
}

/// What one sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Calls whose recordings were deleted.
    pub deleted: Vec<String>,
    /// Files that could not be deleted (kept, with their rows, for the next sweep).
    pub failed: usize,
}

/// Deletes this node's (`node`) expired recordings at `now_ms`: the file (already gone is
/// fine), then the row together with its audit line. A file that cannot be deleted keeps its
/// row, so it is tried again and never orphaned.
pub async fn sweep(
    pool: &sqlx::AnyPool,
    node: &str,
    months_of: &(dyn Fn(&str) -> Option<u32> + Sync),
    shortest_months: u32,
    now_ms: i64,
) -> Result<Swept, sqlx::Error> {
    let mut swept = Swept::default();
    // Nothing younger than the shortest rule can have expired: read only what might have.
    let before = cutoff_ms(now_ms, shortest_months);
    let mut skipped = std::collections::HashSet::new();
    loop {
        let rows =
            super::index::held_before(pool, node, before, BATCH + skipped.len() as i64).await?;
        let candidates: Vec<IndexRow> = rows
            .into_iter()
            .filter(|r| !skipped.contains(&r.recording_uid))
            .collect();
        let full = candidates.len() as i64 >= BATCH;
        let gone = expired(&candidates, months_of, now_ms);
        if gone.is_empty() {
            return Ok(swept);
        }
        for r in &candidates {
            if !gone.iter().any(|g| g.recording_uid == r.recording_uid) {
                skipped.insert(r.recording_uid.clone());
            }
        }
        for r in gone {
            match std::fs::remove_file(&r.location) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %r.location, error = %e, "cannot delete an expired recording; kept for the next sweep");
                    swept.failed += 1;
                    skipped.insert(r.recording_uid.clone());
                    continue;
                }
            }
            let months = r
                .tenant
                .as_deref()
                .and_then(months_of)
                .unwrap_or(DEFAULT_RETENTION_MONTHS);
            let audit = crate::store::people::AuditEntry {
                actor: "retention".into(),
                role: None,
                tenant: r.tenant.clone(),
                action: "recording_expired".into(),
                target: Some(r.call_uid.clone()),
                source: None,
                detail: Some(format!(
                    "started {} ms, {} ms long, {} bytes, kept {months} months",
                    r.started_at_ms.unwrap_or(0),
                    r.duration_ms.unwrap_or(0),
                    r.bytes.unwrap_or(0),
                )),
            };
            super::index::delete_audited(pool, &r.recording_uid, &audit, now_ms).await?;
            swept.deleted.push(r.call_uid.clone());
        }
        if !full {
            return Ok(swept);
        }
    }
}

/// The retention job: a [`sweep`] at start and then every `[recordings]
/// retention_check_secs`, on the store's runtime. What it deleted is in the audit log; a
/// failing database is logged and tried again at the next turn.
pub async fn job(store: crate::store::Store, config: std::sync::Arc<crate::config::Config>) {
    let months: std::collections::HashMap<String, u32> = config
        .tenants
        .iter()
        .map(|t| (t.id.clone(), t.recordings.retention_months))
        .collect();
    let shortest = months
        .values()
        .copied()
        .min()
        .unwrap_or(DEFAULT_RETENTION_MONTHS)
        .min(DEFAULT_RETENTION_MONTHS);
    let months = std::sync::Arc::new(months);
    loop {
        let pool = store.db().pool().clone();
        let node = config.node.id.clone();
        let m = months.clone();
        let now = jiff::Timestamp::now().as_millisecond();
        let result = store
            .run(async move {
                let months_of = move |t: &str| m.get(t).copied();
                sweep(&pool, &node, &months_of, shortest, now).await
            })
            .await;
        match result {
            Ok(Ok(swept)) if !swept.deleted.is_empty() || swept.failed > 0 => {
                tracing::info!(
                    deleted = swept.deleted.len(),
                    failed = swept.failed,
                    "expired recordings deleted"
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "retention: the database failed; trying again later")
            }
            Err(e) => {
                tracing::warn!(error = %e, "retention: the store is closed");
                return;
            }
        }
        tokio::time::sleep(config.recordings.retention_check).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(uid: &str, tenant: Option<&str>, start: Option<i64>) -> IndexRow {
        IndexRow {
            recording_uid: uid.into(),
            call_uid: uid.into(),
            tenant: tenant.map(str::to_owned),
            operator: None,
            node: Some("a".into()),
            node_url: None,
            location: format!("/nonexistent/{uid}.wav"),
            started_at_ms: start,
            duration_ms: Some(1000),
            bytes: Some(100),
            sha256: None,
            key_id: None,
        }
    }

    fn ms(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn calendar_months_in_utc() {
        let now = ms("2026-12-06T08:00:00Z");
        assert_eq!(cutoff_ms(now, 12), ms("2025-12-06T08:00:00Z"));
        assert_eq!(cutoff_ms(now, 1), ms("2026-11-06T08:00:00Z"));
        // Month ends clamp: one month before 31 March is 28 February (2027 is no leap year).
        assert_eq!(
            cutoff_ms(ms("2027-03-31T00:00:00Z"), 1),
            ms("2027-02-28T00:00:00Z")
        );
    }

    #[test]
    fn each_tenant_by_its_own_rule_and_unknown_tenants_by_the_default() {
        let now = ms("2026-12-06T08:00:00Z");
        let rows = [
            row("dtm-13m", Some("dtm"), Some(ms("2025-11-01T00:00:00Z"))),
            row("dtm-11m", Some("dtm"), Some(ms("2026-01-01T00:00:00Z"))),
            row("sup-4m", Some("support"), Some(ms("2026-08-01T00:00:00Z"))),
            row("sup-2m", Some("support"), Some(ms("2026-10-01T00:00:00Z"))),
            row("gone-13m", Some("gone"), Some(ms("2025-11-01T00:00:00Z"))),
            row("gone-11m", Some("gone"), Some(ms("2026-01-01T00:00:00Z"))),
            row("none-13m", None, Some(ms("2025-11-01T00:00:00Z"))),
            row("no-start", Some("support"), None),
            // Exactly at the cutoff is kept: only what is older has expired.
            row("dtm-edge", Some("dtm"), Some(ms("2025-12-06T08:00:00Z"))),
        ];
        let months = |t: &str| match t {
            "dtm" => Some(12),
            "support" => Some(3),
            _ => None,
        };
        let gone: Vec<&str> = expired(&rows, &months, now)
            .iter()
            .map(|r| r.recording_uid.as_str())
            .collect();
        assert_eq!(gone, ["dtm-13m", "sup-4m", "gone-13m", "none-13m"]);
    }

    /// The sweep on a real SQLite database: deletes exactly the expired recordings of this
    /// node (files and rows), leaves other nodes' and young ones, and audits each deletion.
    #[tokio::test]
    async fn sweep_deletes_exactly_the_expired_files_and_rows_and_audits_them() {
        let dir = tempfile::tempdir().unwrap();
        let url = crate::config::DatabaseUrl::Sqlite(format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("navbat.db").display()
        ));
        let db = crate::store::db::Db::connect_lazy(&url).unwrap();
        db.migrate().await.unwrap();
        let pool = db.pool().clone();
        let now = ms("2026-12-06T08:00:00Z");
        let rows = [
            ("a:b:old", "dtm", "a", "2025-11-01T00:00:00Z"),
            ("a:b:young", "dtm", "a", "2026-11-01T00:00:00Z"),
            ("a:b:sup-old", "support", "a", "2026-08-01T00:00:00Z"),
            ("z:b:other-node", "dtm", "z", "2024-01-01T00:00:00Z"),
        ];
        for (uid, tenant, node, start) in rows {
            let file = dir.path().join(format!("{uid}.wav"));
            std::fs::write(&file, b"RIFF").unwrap();
            sqlx::query(
                "INSERT INTO recordings (recording_uid, call_uid, location, duration_ms, bytes, \
                 sha256, at_ms, tenant, node, started_at_ms) VALUES ($1, $1, $2, 1000, 4, NULL, \
                 $3, $4, $5, $3)",
            )
            .bind(uid)
            .bind(file.display().to_string())
            .bind(ms(start))
            .bind(tenant)
            .bind(node)
            .execute(&pool)
            .await
            .unwrap();
        }
        let months = |t: &str| match t {
            "dtm" => Some(12),
            "support" => Some(3),
            _ => None,
        };
        let swept = sweep(&pool, "a", &months, 3, now).await.unwrap();
        assert_eq!(swept.deleted, ["a:b:old", "a:b:sup-old"]);
        assert_eq!(swept.failed, 0);
        let left: Vec<String> = sqlx::query("SELECT recording_uid FROM recordings ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| sqlx::Row::get(r, 0))
            .collect();
        assert_eq!(left, ["a:b:young", "z:b:other-node"]);
        for (uid, ..) in rows {
            let kept = left.iter().any(|l| l == uid);
            assert_eq!(
                dir.path().join(format!("{uid}.wav")).exists(),
                kept,
                "{uid}"
            );
        }
        let audited: Vec<(String, String, String)> = sqlx::query(
            "SELECT actor, action, target FROM audit_log WHERE action = 'recording_expired' \
             ORDER BY target",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                sqlx::Row::get(r, 0),
                sqlx::Row::get(r, 1),
                sqlx::Row::get(r, 2),
            )
        })
        .collect();
        assert_eq!(
            audited,
            [
                (
                    "retention".into(),
                    "recording_expired".into(),
                    "a:b:old".into()
                ),
                (
                    "retention".into(),
                    "recording_expired".into(),
                    "a:b:sup-old".into()
                )
            ]
        );
        // A second sweep finds nothing more.
        assert!(sweep(&pool, "a", &months, 3, now)
            .await
            .unwrap()
            .deleted
            .is_empty());
        db.close().await;
    }
}
