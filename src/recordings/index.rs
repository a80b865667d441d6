//! The recordings index in the database: one row per recorded call (schema 7), written by the
//! store's writer from the journal (`recording_started`, `recording`), read here.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

/// A recording as the index knows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct IndexRow {
    /// The row's key: the call's store name (older rows: the event's).
    pub recording_uid: String,
    /// The call recorded (`node:boot:call`).
    pub call_uid: String,
    /// The call's tenant.
    pub tenant: Option<String>,
    /// The operator who had the call.
    pub operator: Option<String>,
    /// The node whose disk holds the file.
    pub node: Option<String>,
    /// Where other nodes fetch it from.
    #[serde(skip)]
    pub node_url: Option<String>,
    /// The file on that node.
    #[serde(skip)]
    pub location: String,
    /// When recording began, ms since the epoch.
    pub started_at_ms: Option<i64>,
    /// Length; `None` while the call goes on.
    pub duration_ms: Option<i64>,
    /// File size; `None` while the call goes on.
    pub bytes: Option<i64>,
    /// SHA-256 of the file as stored.
    pub sha256: Option<String>,
    /// The key the file is encrypted with; `None`: a plain WAV.
    pub key_id: Option<String>,
}

const COLUMNS: &str = "recording_uid, call_uid, tenant, operator, node, node_url, location, \
     COALESCE(started_at_ms, at_ms - COALESCE(duration_ms, 0)), duration_ms, bytes, sha256, key_id";

fn row(r: &AnyRow) -> Result<IndexRow, sqlx::Error> {
    Ok(IndexRow {
        recording_uid: r.try_get(0)?,
        call_uid: r.try_get(1)?,
        tenant: r.try_get(2)?,
        operator: r.try_get(3)?,
        node: r.try_get(4)?,
        node_url: r.try_get(5)?,
        location: r.try_get(6)?,
        started_at_ms: r.try_get(7)?,
        duration_ms: r.try_get(8)?,
        bytes: r.try_get(9)?,
        sha256: r.try_get(10)?,
        key_id: r.try_get(11)?,
    })
}

/// The recording of `call_uid` (the newest, should a call have been recorded twice).
pub async fn for_call(pool: &AnyPool, call_uid: &str) -> Result<Option<IndexRow>, sqlx::Error> {
    let sql =
        format!("SELECT {COLUMNS} FROM recordings WHERE call_uid = $1 ORDER BY at_ms DESC LIMIT 1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(call_uid.to_owned())
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(row)
        .transpose()
}

/// A tenant's recordings started in `[from_ms, to_ms)`, oldest first, at most `limit`.
pub async fn for_tenant(
    pool: &AnyPool,
    tenant: &str,
    from_ms: i64,
    to_ms: i64,
    limit: i64,
) -> Result<Vec<IndexRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM recordings WHERE tenant = $1 \
         AND COALESCE(started_at_ms, at_ms) >= $2 AND COALESCE(started_at_ms, at_ms) < $3 \
         ORDER BY COALESCE(started_at_ms, at_ms) LIMIT $4"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant.to_owned())
        .bind(from_ms)
        .bind(to_ms)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.iter().map(row).collect()
}

/// Recordings held by `node` that started before `before_ms`, oldest first, at most `limit`.
pub async fn held_before(
    pool: &AnyPool,
    node: &str,
    before_ms: i64,
    limit: i64,
) -> Result<Vec<IndexRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM recordings WHERE node = $1 \
         AND COALESCE(started_at_ms, at_ms) < $2 ORDER BY COALESCE(started_at_ms, at_ms) LIMIT $3"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(node.to_owned())
        .bind(before_ms)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.iter().map(row).collect()
}

/// Removes a row and writes, in the same transaction, the audit line saying so.
pub async fn delete_audited(
    pool: &AnyPool,
    recording_uid: &str,
    audit: &crate::store::people::AuditEntry,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM recordings WHERE recording_uid = $1")
        .bind(recording_uid.to_owned())
        .execute(&mut *tx)
        .await?;
    let uid = format!("retention:{now_ms}:{recording_uid}");
    crate::store::people::insert_direct(&mut *tx, &uid, now_ms, audit).await?;
    tx.commit().await
}
