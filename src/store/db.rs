//! The database side: SQLite or Postgres through sqlx's `Any` driver, with runtime queries,
//! plus a Postgres-native pool for the bulk write path.
//!
//! Both back ends take the same statements: placeholders are written `$n` (Postgres' form,
//! which SQLite also reads as numbered parameters), upserts use `ON CONFLICT`, and the schema
//! uses types both know. Each back end has its own migration files so that they can diverge
//! when one needs something the other lacks.
//!
//! The batch writer ([`Db::write`]) is where the throughput goes, so each back end has its
//! own: on Postgres every table of a batch is one `INSERT ... SELECT FROM UNNEST(arrays)`
//! (one bind per column instead of one per value, and one plan for any batch size), which
//! the `Any` driver cannot express (it has no arrays); on SQLite short multi-row `VALUES`
//! statements. Both use the same `ON CONFLICT` clauses, so a replay inserts nothing twice and
//! call records merge by the same column rules.

use super::record::{CallPatch, EventRow, Merge, Param, Rows, CALL_COLUMNS};
use super::StoreError;
use crate::config::DatabaseUrl;
use crate::pii::{field, Pii, PiiError};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{AnyPool, AssertSqlSafe, Executor, Row};
use std::sync::Arc;
use std::time::Duration;

/// One migration: its number, name and the SQL per back end.
struct Migration {
    version: i64,
    name: &'static str,
    postgres: &'static str,
    sqlite: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        postgres: include_str!("migrations/0001_init.postgres.sql"),
        sqlite: include_str!("migrations/0001_init.sqlite.sql"),
    },
    Migration {
        version: 2,
        name: "sms_outbox_and_callbacks",
        postgres: include_str!("migrations/0002_outbox_callbacks.postgres.sql"),
        sqlite: include_str!("migrations/0002_outbox_callbacks.sqlite.sql"),
    },
    Migration {
        version: 3,
        name: "accounts_audit_dispositions_kb",
        postgres: include_str!("migrations/0003_people.postgres.sql"),
        sqlite: include_str!("migrations/0003_people.sqlite.sql"),
    },
    Migration {
        version: 4,
        name: "requests",
        postgres: include_str!("migrations/0004_requests.postgres.sql"),
        sqlite: include_str!("migrations/0004_requests.sqlite.sql"),
    },
    Migration {
        version: 5,
        name: "notices",
        postgres: include_str!("migrations/0005_notices.postgres.sql"),
        sqlite: include_str!("migrations/0005_notices.sqlite.sql"),
    },
    Migration {
        version: 6,
        name: "report",
        postgres: include_str!("migrations/0006_report.postgres.sql"),
        sqlite: include_str!("migrations/0006_report.sqlite.sql"),
    },
    Migration {
        version: 7,
        name: "recordings_index",
        postgres: include_str!("migrations/0007_recordings.postgres.sql"),
        sqlite: include_str!("migrations/0007_recordings.sqlite.sql"),
    },
    Migration {
        version: 8,
        name: "qa",
        postgres: include_str!("migrations/0008_qa.postgres.sql"),
        sqlite: include_str!("migrations/0008_qa.sqlite.sql"),
    },
    Migration {
        version: 9,
        name: "sealed_personal_data",
        postgres: include_str!("migrations/0009_sealed_pii.postgres.sql"),
        sqlite: include_str!("migrations/0009_sealed_pii.sqlite.sql"),
    },
    Migration {
        version: 10,
        name: "sip_listeners",
        postgres: include_str!("migrations/0010_sip_listeners.postgres.sql"),
        sqlite: include_str!("migrations/0010_sip_listeners.sqlite.sql"),
    },
    Migration {
        version: 11,
        name: "sealed_outbox_and_requests",
        postgres: include_str!("migrations/0011_sealed_outbox_requests.postgres.sql"),
        sqlite: include_str!("migrations/0011_sealed_outbox_requests.sqlite.sql"),
    },
];

/// The newest schema version this build knows.
pub fn schema_version() -> i64 {
    MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0)
}

/// How many migrations this build knows (versions need not be contiguous: branches take
/// numbers as they start, and independent migrations land in either order).
pub fn migration_count() -> usize {
    MIGRATIONS.len()
}

/// The columns of a recordings row as both back ends insert them.
const RECORDING_COLUMNS: &str = "recording_uid, call_uid, location, duration_ms, bytes, sha256, \
     at_ms, tenant, operator, node, node_url, started_at_ms, key_id";
/// How a recording's end merges into the row its start made (and a replay into either):
/// known values win, the end's length, size and checksum fill in.
const RECORDING_MERGE: &str = "ON CONFLICT (recording_uid) DO UPDATE SET \
     location = excluded.location, \
     duration_ms = COALESCE(excluded.duration_ms, recordings.duration_ms), \
     bytes = COALESCE(excluded.bytes, recordings.bytes), \
     sha256 = COALESCE(excluded.sha256, recordings.sha256), \
     at_ms = CASE WHEN excluded.at_ms > recordings.at_ms THEN excluded.at_ms ELSE recordings.at_ms END, \
     tenant = COALESCE(recordings.tenant, excluded.tenant), \
     operator = COALESCE(excluded.operator, recordings.operator), \
     node = COALESCE(recordings.node, excluded.node), \
     node_url = COALESCE(recordings.node_url, excluded.node_url), \
     started_at_ms = COALESCE(recordings.started_at_ms, excluded.started_at_ms), \
     key_id = COALESCE(excluded.key_id, recordings.key_id)";

/// Rows per multi-row INSERT: far below both back ends' bind-parameter limits.
const CALL_ROWS_PER_STATEMENT: usize = 500;
const EVENT_ROWS_PER_STATEMENT: usize = 2000;
/// On SQLite the statements use anonymous `?` parameters: sqlx looks every numbered
/// parameter (`$N`) up by name, and SQLite's name lookup walks a list, so numbered
/// parameters cost time quadratic in the parameters of one statement (seen in perf:
/// `sqlite3_bind_parameter_name` + `strncmp`). Full chunks all have the same SQL text, so
/// the prepared statement is reused from sqlx's cache; SQLite has no round trip to amortise.
const SQLITE_ROWS_PER_STATEMENT: usize = 128;

/// A connection pool on one database.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    /// Postgres only: the native driver, for array binds in [`Db::write`].
    pg: Option<PgPool>,
    url: DatabaseUrl,
    /// The keys of callers' personal data (sealed columns); `None`: reading one is an error
    /// ([`crate::pii::PiiError::NoKey`]), never plain text.
    pii: Option<Arc<Pii>>,
}

/// A call record as the history view shows it (number masked by the caller of this API;
/// `Debug` masks it too, so a `{:?}` never prints it in full).
#[derive(Clone, PartialEq, Eq)]
pub struct CallSummary {
    /// The store's name of the call.
    pub call_uid: String,
    /// The caller's full number (mask it before showing it).
    pub caller_number: Option<String>,
    /// Tenant.
    pub tenant: Option<String>,
    /// Arrival, ms since the epoch.
    pub arrived_at_ms: Option<i64>,
    /// Outcome, if ended.
    pub outcome: Option<String>,
    /// Topic chosen.
    pub topic: Option<String>,
    /// Operator who took it.
    pub operator: Option<String>,
    /// Talk time.
    pub talk_ms: Option<i64>,
    /// The earlier call it repeats.
    pub repeat_of: Option<String>,
    /// The recording.
    pub recording_ref: Option<String>,
}

impl std::fmt::Debug for CallSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallSummary")
            .field("call_uid", &self.call_uid)
            .field(
                "caller_number",
                &self
                    .caller_number
                    .as_deref()
                    .map(crate::privacy::PhoneNumber::new),
            )
            .field("tenant", &self.tenant)
            .field("arrived_at_ms", &self.arrived_at_ms)
            .field("outcome", &self.outcome)
            .field("topic", &self.topic)
            .field("operator", &self.operator)
            .field("talk_ms", &self.talk_ms)
            .field("repeat_of", &self.repeat_of)
            .field("recording_ref", &self.recording_ref)
            .finish()
    }
}

const SUMMARY_COLUMNS: &str = "call_uid, caller_number, tenant, arrived_at_ms, outcome, topic, \
                               operator, talk_ms, repeat_of, recording_ref";

fn summary(row: &AnyRow, pii: Option<&Pii>) -> Result<CallSummary, SummaryError> {
    Ok(CallSummary {
        call_uid: row.try_get(0)?,
        caller_number: crate::pii::open_opt(pii, field::CALLER_NUMBER, row.try_get(1)?)?,
        tenant: row.try_get(2)?,
        arrived_at_ms: row.try_get(3)?,
        outcome: row.try_get(4)?,
        topic: row.try_get(5)?,
        operator: row.try_get(6)?,
        talk_ms: row.try_get(7)?,
        repeat_of: row.try_get(8)?,
        recording_ref: row.try_get(9)?,
    })
}

/// A call record that cannot be read: the driver, or its sealed number.
#[derive(Debug, thiserror::Error)]
enum SummaryError {
    #[error(transparent)]
    Driver(#[from] sqlx::Error),
    #[error(transparent)]
    Pii(#[from] PiiError),
}

impl Db {
    /// A lazy pool: nothing connects until the first query, so navbat starts (and keeps
    /// journaling) while the database is down. Call it inside the tokio runtime that will
    /// use the pool.
    pub fn connect_lazy(url: &DatabaseUrl) -> Result<Db, StoreError> {
        sqlx::any::install_default_drivers();
        let mut text = url.expose().to_owned();
        if let DatabaseUrl::Sqlite(_) = url {
            if let Some(path) = sqlite_path(&text) {
                if let Some(parent) = std::path::Path::new(&path).parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent).map_err(|e| {
                            StoreError::journal(parent, "create the database directory", e)
                        })?;
                    }
                }
            }
            if !text.contains('?') {
                text.push_str("?mode=rwc");
            }
        }
        let max = match url {
            DatabaseUrl::Sqlite(_) => 1,
            DatabaseUrl::Postgres(_) => 4,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(3))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
                        conn.execute(
                            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
                             PRAGMA busy_timeout=5000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_lazy(&text)
            .map_err(|source| StoreError::Database {
                url: url.to_string(),
                source,
            })?;
        let pg = match url {
            DatabaseUrl::Postgres(text) => Some(
                PgPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(Duration::from_secs(3))
                    .connect_lazy(text)
                    .map_err(|source| StoreError::Database {
                        url: url.to_string(),
                        source,
                    })?,
            ),
            DatabaseUrl::Sqlite(_) => None,
        };
        Ok(Db {
            pool,
            pg,
            url: url.clone(),
            pii: None,
        })
    }

    /// This handle with the personal data keys: sealed columns open with them.
    pub fn with_pii(mut self, pii: Arc<Pii>) -> Db {
        self.pii = Some(pii);
        self
    }

    /// The personal data keys, if this handle has them.
    pub fn pii(&self) -> Option<&Arc<Pii>> {
        self.pii.as_ref()
    }

    /// A read of personal data failed: as a [`StoreError`].
    fn summary_err(&self, e: SummaryError) -> StoreError {
        match e {
            SummaryError::Driver(e) => self.err(e),
            SummaryError::Pii(e) => StoreError::Pii(e),
        }
    }

    /// The URL (print it with `{}`: the password is hidden).
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// The pool (queries of other modules: accounts, desk, knowledge base).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Whether this is Postgres (the few statements that differ ask).
    pub fn is_postgres(&self) -> bool {
        matches!(self.url, DatabaseUrl::Postgres(_))
    }

    /// A driver error as a [`StoreError`] naming this database.
    pub fn err(&self, source: sqlx::Error) -> StoreError {
        StoreError::Database {
            url: self.url.to_string(),
            source,
        }
    }

    /// Applies every migration not yet applied, in one transaction each; returns how many
    /// ran. Safe to run from several nodes at once on Postgres (an advisory lock serialises
    /// them).
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let postgres = matches!(self.url, DatabaseUrl::Postgres(_));
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        if postgres {
            tx.execute("SELECT pg_advisory_xact_lock(7361626174)")
                .await
                .map_err(|e| self.err(e))?;
        }
        tx.execute(
            "CREATE TABLE IF NOT EXISTS navbat_migrations (version BIGINT PRIMARY KEY, \
             name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)",
        )
        .await
        .map_err(|e| self.err(e))?;
        let applied: Vec<i64> = sqlx::query("SELECT version FROM navbat_migrations")
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.err(e))?
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))?;
        let mut ran = 0;
        for m in MIGRATIONS {
            if applied.contains(&m.version) {
                continue;
            }
            let sql = if postgres { m.postgres } else { m.sqlite };
            sqlx::raw_sql(sql)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::Migration {
                    version: m.version,
                    name: m.name,
                    source: e,
                })?;
            sqlx::query(
                "INSERT INTO navbat_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)",
            )
            .bind(m.version)
            .bind(m.name)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            ran += 1;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(ran)
    }

    /// Rows per multi-row INSERT on this back end.
    fn rows_per_statement(&self, postgres: usize) -> usize {
        match self.url {
            DatabaseUrl::Sqlite(_) => SQLITE_ROWS_PER_STATEMENT,
            DatabaseUrl::Postgres(_) => postgres,
        }
    }

    /// Writes one folded batch in one transaction; every insert is idempotent.
    pub async fn write(&self, rows: &Rows) -> Result<(), StoreError> {
        match &self.pg {
            Some(pg) => self.write_postgres(pg, rows).await,
            None => self.write_any(rows).await,
        }
    }

    /// The Postgres batch: one `UNNEST` insert per table.
    ///
    /// Events and new calls (whose arrival is in the batch) are first inserted plainly, under
    /// a savepoint: `ON CONFLICT` costs every row a speculative insertion (a quarter of a
    /// timeline insert, measured), and a conflict only happens when a batch is replayed. If
    /// one does (unique violation), the savepoint is rolled back and the rows go in again
    /// with `ON CONFLICT`, so a replay still inserts nothing twice and merges as before.
    async fn write_postgres(&self, pg: &PgPool, rows: &Rows) -> Result<(), StoreError> {
        let mut tx = pg.begin().await.map_err(|e| self.err(e))?;
        if !rows.events.is_empty() {
            fast_then_idempotent(&mut tx, Part::Events(&rows.events))
                .await
                .map_err(|e| self.err(e))?;
        }
        let (new, known): (Vec<&CallPatch>, Vec<&CallPatch>) =
            rows.calls.iter().partition(|c| c.has_arrival());
        if !new.is_empty() {
            fast_then_idempotent(&mut tx, Part::Calls(&new))
                .await
                .map_err(|e| self.err(e))?;
        }
        if !known.is_empty() {
            insert_calls(&mut tx, &known, true)
                .await
                .map_err(|e| self.err(e))?;
        }
        if !rows.operator_states.is_empty() {
            let os = &rows.operator_states;
            sqlx::query(
                "INSERT INTO operator_state_changes (event_uid, node, operator, from_state, to_state, reason, at_ms) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                 $6::text[], $7::int8[]) ON CONFLICT (event_uid) DO NOTHING",
            )
            .bind(os.iter().map(|r| r.event_uid.as_str()).collect::<Vec<_>>())
            .bind(os.iter().map(|r| r.node.as_str()).collect::<Vec<_>>())
            .bind(os.iter().map(|r| r.operator.as_str()).collect::<Vec<_>>())
            .bind(os.iter().map(|r| r.from_state.as_str()).collect::<Vec<_>>())
            .bind(os.iter().map(|r| r.to_state.as_str()).collect::<Vec<_>>())
            .bind(os.iter().map(|r| r.reason.as_str()).collect::<Vec<_>>())
            .bind(os.iter().map(|r| r.at_ms).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        }
        if !rows.recordings.is_empty() {
            let rs = &rows.recordings;
            let sql = format!(
                "INSERT INTO recordings ({RECORDING_COLUMNS}) \
                 SELECT u.uid, u.call, u.location, u.duration_ms, u.bytes, u.sha256, u.at_ms, \
                 COALESCE(u.tenant, c.tenant), c.operator, u.node, u.node_url, u.started_at_ms, u.key_id \
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::text[], \
                 $7::int8[], $8::text[], $9::text[], $10::text[], $11::int8[], $12::text[]) \
                 AS u(uid, call, location, duration_ms, bytes, sha256, at_ms, tenant, node, node_url, \
                 started_at_ms, key_id) LEFT JOIN call_records c ON c.call_uid = u.call {RECORDING_MERGE}"
            );
            sqlx::query(AssertSqlSafe(sql))
                .bind(
                    rs.iter()
                        .map(|r| r.recording_uid.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(rs.iter().map(|r| r.call_uid.as_str()).collect::<Vec<_>>())
                .bind(rs.iter().map(|r| r.location.as_str()).collect::<Vec<_>>())
                .bind(rs.iter().map(|r| r.duration_ms).collect::<Vec<_>>())
                .bind(rs.iter().map(|r| r.bytes).collect::<Vec<_>>())
                .bind(rs.iter().map(|r| r.sha256.as_deref()).collect::<Vec<_>>())
                .bind(rs.iter().map(|r| r.at_ms).collect::<Vec<_>>())
                .bind(rs.iter().map(|r| r.tenant.as_deref()).collect::<Vec<_>>())
                .bind(rs.iter().map(|r| r.node.as_str()).collect::<Vec<_>>())
                .bind(rs.iter().map(|r| r.node_url.as_deref()).collect::<Vec<_>>())
                .bind(rs.iter().map(|r| r.started_at_ms).collect::<Vec<_>>())
                .bind(rs.iter().map(|r| r.key_id.as_deref()).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        if !rows.sms.is_empty() || !rows.callbacks.is_empty() {
            super::outbox::write_postgres(&mut tx, &rows.sms, &rows.callbacks)
                .await
                .map_err(|e| self.err(e))?;
        }
        if !rows.audit.is_empty() || !rows.dispositions.is_empty() {
            super::people::write_postgres(&mut tx, &rows.audit, &rows.dispositions)
                .await
                .map_err(|e| self.err(e))?;
        }
        if !rows.requests.is_empty() {
            super::requests::write_postgres(&mut tx, &rows.requests)
                .await
                .map_err(|e| self.err(e))?;
        }
        if !rows.notices.is_empty() {
            super::notices::write_postgres(&mut tx, &rows.notices)
                .await
                .map_err(|e| self.err(e))?;
        }
        if !rows.qa.is_empty() {
            super::qa::write_postgres(&mut tx, &rows.qa)
                .await
                .map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// The SQLite batch (and any other `Any` back end): short multi-row `VALUES` inserts.
    async fn write_any(&self, rows: &Rows) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        for chunk in rows
            .events
            .chunks(self.rows_per_statement(EVENT_ROWS_PER_STATEMENT))
        {
            let mut sql = String::from(
                "INSERT INTO call_events (event_uid, call_uid, node, boot, seq, at_ms, kind, body) VALUES ",
            );
            push_placeholders(&mut sql, chunk.len(), 8);
            sql.push_str(" ON CONFLICT (event_uid) DO NOTHING");
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for e in chunk {
                q = q
                    .bind(e.event_uid.clone())
                    .bind(e.call_uid.clone())
                    .bind(e.node.clone())
                    .bind(e.boot.clone())
                    .bind(e.seq)
                    .bind(e.at_ms)
                    .bind(e.kind.clone())
                    .bind(e.body.clone());
            }
            q.execute(&mut *tx).await.map_err(|e| self.err(e))?;
        }
        for chunk in rows
            .calls
            .chunks(self.rows_per_statement(CALL_ROWS_PER_STATEMENT))
        {
            let mut sql = String::from("INSERT INTO call_records (call_uid");
            for (name, _) in CALL_COLUMNS {
                sql.push_str(", ");
                sql.push_str(name);
            }
            sql.push_str(") VALUES ");
            push_placeholders(&mut sql, chunk.len(), CALL_COLUMNS.len() + 1);
            push_call_merge(&mut sql);
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for patch in chunk {
                q = q.bind(patch.call_uid.clone());
                for p in patch.params() {
                    q = match p {
                        Param::Text(v) => q.bind(v),
                        Param::Int(v) => q.bind(v),
                        Param::Bool(v) => q.bind(v),
                    };
                }
            }
            q.execute(&mut *tx).await.map_err(|e| self.err(e))?;
        }
        if !rows.operator_states.is_empty() {
            for chunk in rows
                .operator_states
                .chunks(self.rows_per_statement(EVENT_ROWS_PER_STATEMENT))
            {
                let mut sql = String::from(
                    "INSERT INTO operator_state_changes (event_uid, node, operator, from_state, to_state, reason, at_ms) VALUES ",
                );
                push_placeholders(&mut sql, chunk.len(), 7);
                sql.push_str(" ON CONFLICT (event_uid) DO NOTHING");
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for r in chunk {
                    q = q
                        .bind(r.event_uid.clone())
                        .bind(r.node.clone())
                        .bind(r.operator.clone())
                        .bind(r.from_state.clone())
                        .bind(r.to_state.clone())
                        .bind(r.reason.clone())
                        .bind(r.at_ms);
                }
                q.execute(&mut *tx).await.map_err(|e| self.err(e))?;
            }
        }
        // Many recordings a statement, as the other tables: one statement a recording was a
        // round trip to SQLite's worker thread each, about a thousand a second at a thousand
        // calls a second. The batch holds each recording once (`record::fold` merges its
        // start and end), and `call_uid` is `call_records`' key, so the join adds nothing
        // twice. `WHERE true` keeps SQLite from reading the upsert's ON as the join's.
        for chunk in rows
            .recordings
            .chunks(self.rows_per_statement(CALL_ROWS_PER_STATEMENT))
        {
            let mut sql = format!(
                "INSERT INTO recordings ({RECORDING_COLUMNS}) \
                 SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, \
                 v.column7, COALESCE(v.column8, c.tenant), c.operator, v.column9, v.column10, \
                 v.column11, v.column12 FROM (VALUES "
            );
            push_placeholders(&mut sql, chunk.len(), 12);
            sql.push_str(") AS v LEFT JOIN call_records c ON c.call_uid = v.column2 WHERE true ");
            sql.push_str(RECORDING_MERGE);
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for r in chunk {
                q = q
                    .bind(r.recording_uid.clone())
                    .bind(r.call_uid.clone())
                    .bind(r.location.clone())
                    .bind(r.duration_ms)
                    .bind(r.bytes)
                    .bind(r.sha256.clone())
                    .bind(r.at_ms)
                    .bind(r.tenant.clone())
                    .bind(r.node.clone())
                    .bind(r.node_url.clone())
                    .bind(r.started_at_ms)
                    .bind(r.key_id.clone());
            }
            q.execute(&mut *tx).await.map_err(|e| self.err(e))?;
        }
        if !rows.sms.is_empty() || !rows.callbacks.is_empty() {
            super::outbox::write_any(&mut tx, &rows.sms, &rows.callbacks)
                .await
                .map_err(|e| self.err(e))?;
        }
        if !rows.audit.is_empty() || !rows.dispositions.is_empty() {
            super::people::write_any(&mut tx, &rows.audit, &rows.dispositions)
                .await
                .map_err(|e| self.err(e))?;
        }
        if !rows.requests.is_empty() {
            super::requests::write_any(&mut tx, &rows.requests)
                .await
                .map_err(|e| self.err(e))?;
        }
        if !rows.notices.is_empty() {
            super::notices::write_any(&mut tx, &rows.notices)
                .await
                .map_err(|e| self.err(e))?;
        }
        if !rows.qa.is_empty() {
            super::qa::write_any(&mut tx, &rows.qa)
                .await
                .map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// This node's unsent messages and pending callbacks.
    pub async fn pending_work(&self, node: &str) -> Result<super::outbox::PendingWork, StoreError> {
        super::outbox::pending_in_db(&self.pool, self.pii.as_deref(), node)
            .await
            .map_err(|e| match e {
                // A number that does not open: the key file's fault, not the database's.
                sqlx::Error::Decode(inner) if inner.is::<PiiError>() => match inner.downcast() {
                    Ok(pii) => StoreError::Pii(*pii),
                    Err(other) => self.err(sqlx::Error::Decode(other)),
                },
                e => self.err(e),
            })
    }

    /// Calls of earlier boots of `node` that never ended (the process died under them) are
    /// closed as `failed`, ended by `restart`; returns how many.
    pub async fn close_interrupted(&self, node: &str, boot: &str) -> Result<u64, StoreError> {
        sqlx::query(
            "UPDATE call_records SET outcome = 'failed', ended_by = 'restart' \
             WHERE node = $1 AND boot <> $2 AND outcome IS NULL",
        )
        .bind(node.to_owned())
        .bind(boot.to_owned())
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected())
        .map_err(|e| self.err(e))
    }

    /// `(call_uid, caller_lookup, arrived_at_ms)` of calls since `since_ms`, for the repeat
    /// index (the lookup hash, see [`crate::pii`]).
    pub async fn recent_callers(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT call_uid, caller_lookup, arrived_at_ms FROM call_records \
             WHERE arrived_at_ms >= $1 AND caller_lookup IS NOT NULL ORDER BY arrived_at_ms",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))
    }

    /// One call record.
    pub async fn call(&self, call_uid: &str) -> Result<Option<CallSummary>, StoreError> {
        let sql = format!("SELECT {SUMMARY_COLUMNS} FROM call_records WHERE call_uid = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(call_uid.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        row.as_ref()
            .map(|r| summary(r, self.pii.as_deref()))
            .transpose()
            .map_err(|e| self.summary_err(e))
    }

    /// The calls from the caller whose lookup hash is `lookup` ([`crate::pii::Pii::lookup`])
    /// that arrived in `[from_ms, to_ms)`, newest first, their numbers opened.
    pub async fn calls_from(
        &self,
        lookup: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<CallSummary>, StoreError> {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM call_records WHERE caller_lookup = $1 \
             AND arrived_at_ms >= $2 AND arrived_at_ms < $3 ORDER BY arrived_at_ms DESC LIMIT 100"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(lookup.to_owned())
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| summary(r, self.pii.as_deref()))
            .collect::<Result<_, _>>()
            .map_err(|e| self.summary_err(e))
    }

    /// Runs a query returning one integer (tests and reports), e.g. `SELECT COUNT(*) ...`.
    pub async fn scalar(&self, sql: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        row.try_get::<i64, _>(0).map_err(|e| self.err(e))
    }

    /// Runs a query returning one text column (tests and reports).
    pub async fn texts(&self, sql: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(sql.to_owned()))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await.is_ok()
    }

    /// Closes the pools.
    pub async fn close(&self) {
        self.pool.close().await;
        if let Some(pg) = &self.pg {
            pg.close().await;
        }
    }
}

/// The `ON CONFLICT` clause of a call-record upsert: each column merges by its rule, so a
/// replayed or split batch leaves the same row.
fn push_call_merge(sql: &mut String) {
    sql.push_str(" ON CONFLICT (call_uid) DO UPDATE SET ");
    for (i, (name, merge)) in CALL_COLUMNS.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        match merge {
            Merge::First => sql.push_str(&format!(
                "{name} = COALESCE(call_records.{name}, excluded.{name})"
            )),
            Merge::Last => sql.push_str(&format!(
                "{name} = COALESCE(excluded.{name}, call_records.{name})"
            )),
        }
    }
}

/// What [`fast_then_idempotent`] writes.
enum Part<'a> {
    Events(&'a [EventRow]),
    Calls(&'a [&'a CallPatch]),
}

impl Part<'_> {
    async fn write(&self, conn: &mut PgConnection, idempotent: bool) -> Result<(), sqlx::Error> {
        match self {
            Part::Events(rows) => insert_events(conn, rows, idempotent).await,
            Part::Calls(calls) => insert_calls(conn, calls, idempotent).await,
        }
    }
}

/// Writes `part` with plain inserts under a savepoint; on a unique violation (a replayed
/// batch) rolls back to it and writes it again with `ON CONFLICT`.
async fn fast_then_idempotent(conn: &mut PgConnection, part: Part<'_>) -> Result<(), sqlx::Error> {
    conn.execute("SAVEPOINT navbat_fast").await?;
    match part.write(&mut *conn, false).await {
        Ok(()) => {
            conn.execute("RELEASE SAVEPOINT navbat_fast").await?;
            Ok(())
        }
        Err(e)
            if e.as_database_error()
                .is_some_and(|d| d.is_unique_violation()) =>
        {
            conn.execute("ROLLBACK TO SAVEPOINT navbat_fast").await?;
            part.write(&mut *conn, true).await
        }
        Err(e) => Err(e),
    }
}

/// Timeline rows as one `UNNEST` insert; `idempotent` adds `ON CONFLICT DO NOTHING`.
async fn insert_events(
    conn: &mut PgConnection,
    ev: &[EventRow],
    idempotent: bool,
) -> Result<(), sqlx::Error> {
    let sql = if idempotent {
        "INSERT INTO call_events (event_uid, call_uid, node, boot, seq, at_ms, kind, body) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], \
         $5::int8[], $6::int8[], $7::text[], $8::text[]) ON CONFLICT (event_uid) DO NOTHING"
    } else {
        "INSERT INTO call_events (event_uid, call_uid, node, boot, seq, at_ms, kind, body) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], \
         $5::int8[], $6::int8[], $7::text[], $8::text[])"
    };
    sqlx::query(sql)
        .bind(ev.iter().map(|e| e.event_uid.as_str()).collect::<Vec<_>>())
        .bind(ev.iter().map(|e| e.call_uid.as_deref()).collect::<Vec<_>>())
        .bind(ev.iter().map(|e| e.node.as_str()).collect::<Vec<_>>())
        .bind(ev.iter().map(|e| e.boot.as_str()).collect::<Vec<_>>())
        .bind(ev.iter().map(|e| e.seq).collect::<Vec<_>>())
        .bind(ev.iter().map(|e| e.at_ms).collect::<Vec<_>>())
        .bind(ev.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())
        .bind(ev.iter().map(|e| e.body.as_str()).collect::<Vec<_>>())
        .execute(conn)
        .await
        .map(|_| ())
}

/// Call-record patches as one `UNNEST` insert; `upsert` merges into existing rows.
async fn insert_calls(
    conn: &mut PgConnection,
    calls: &[&CallPatch],
    upsert: bool,
) -> Result<(), sqlx::Error> {
    let mut q = sqlx::query(AssertSqlSafe(call_insert_unnest_sql(upsert)));
    for column in call_columns(calls) {
        q = match column {
            Column::Text(v) => q.bind(v),
            Column::Int(v) => q.bind(v),
            Column::Bool(v) => q.bind(v),
        };
    }
    q.execute(conn).await.map(|_| ())
}

/// `INSERT INTO call_records (...) SELECT * FROM UNNEST($1::text[], ...)`, one array per
/// column in [`CALL_COLUMNS`] order after `call_uid`; with `upsert`, the merge clause.
fn call_insert_unnest_sql(upsert: bool) -> String {
    let mut sql = String::from("INSERT INTO call_records (call_uid");
    for (name, _) in CALL_COLUMNS {
        sql.push_str(", ");
        sql.push_str(name);
    }
    sql.push_str(") SELECT * FROM UNNEST($1::text[]");
    for (i, param) in CallPatch::default().params().iter().enumerate() {
        let ty = match param {
            Param::Text(_) => "text",
            Param::Int(_) => "int8",
            Param::Bool(_) => "bool",
        };
        sql.push_str(&format!(", ${}::{ty}[]", i + 2));
    }
    sql.push(')');
    if upsert {
        push_call_merge(&mut sql);
    }
    sql
}

/// One bound array of a call-record upsert.
enum Column {
    Text(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
}

/// The patches turned into columns: `call_uid`, then [`CALL_COLUMNS`] in order.
fn call_columns(calls: &[&CallPatch]) -> Vec<Column> {
    let mut columns = vec![Column::Text(
        calls.iter().map(|c| Some(c.call_uid.clone())).collect(),
    )];
    columns.extend(CallPatch::default().params().iter().map(|p| match p {
        Param::Text(_) => Column::Text(Vec::with_capacity(calls.len())),
        Param::Int(_) => Column::Int(Vec::with_capacity(calls.len())),
        Param::Bool(_) => Column::Bool(Vec::with_capacity(calls.len())),
    }));
    for patch in calls {
        for (column, param) in columns[1..].iter_mut().zip(patch.params()) {
            match (column, param) {
                (Column::Text(v), Param::Text(x)) => v.push(x),
                (Column::Int(v), Param::Int(x)) => v.push(x),
                (Column::Bool(v), Param::Bool(x)) => v.push(x),
                // params() returns the same variant per position for every patch.
                _ => unreachable!("CallPatch::params changed a column's type"),
            }
        }
    }
    columns
}

/// `(?, ?, ...), (...)`: `rows` groups of `cols` anonymous (positional) parameters.
fn push_placeholders(sql: &mut String, rows: usize, cols: usize) {
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('?');
        }
        sql.push(')');
    }
}

fn sqlite_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| path.to_owned())
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::CallSummary;

    #[test]
    fn a_call_summary_debugs_with_the_number_masked() {
        let s = CallSummary {
            call_uid: "n1:c1".into(),
            caller_number: Some("+998901234567".into()),
            tenant: Some("dtm".into()),
            arrived_at_ms: None,
            outcome: None,
            topic: None,
            operator: None,
            talk_ms: None,
            repeat_of: None,
            recording_ref: None,
        };
        let shown = format!("{s:?}");
        assert!(shown.contains("+9989******67"), "{shown}");
        assert!(!shown.contains("901234567"), "{shown}");
    }
}
