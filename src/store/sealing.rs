//! Sealing the personal data an older navbat left in plain text (schema 9, [`crate::pii`]).
//!
//! [`ready`] runs after the schema migrations, both at every start of the store and in
//! `navbat migrate`: it checks the key file against the database (`pii_keys`), then seals every
//! plain value still in the database and fills in the lookup hashes. A value already sealed is
//! left as it is, so running it again changes nothing and counts nothing. The journal's plain
//! entries are sealed by [`seal_journal`] (`navbat migrate`, with the router stopped) and, for
//! the database, as the store reads them ([`super::record::seal_entry`]).

use super::db::Db;
use super::journal;
use super::record::{seal_entry, JournalEntry};
use super::StoreError;
use crate::pii::{field, is_sealed, CheckError, Pii, PREFIX};
use sqlx::Row;
use std::path::Path;

/// Rows per transaction while sealing.
const CHUNK: usize = 1000;

/// How many values [`ready`] and [`seal_journal`] sealed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sealed {
    /// Call records whose number was sealed (or whose lookup hash was filled in).
    pub call_records: u64,
    /// Dispositions whose caller name, organisation or STIR was sealed.
    pub dispositions: u64,
    /// SMS whose number was sealed (or whose lookup hash was filled in).
    pub sms: u64,
    /// Callback requests whose number was sealed (or whose lookup hash was filled in).
    pub callbacks: u64,
    /// Requests whose requester was sealed or whose intake key was hashed.
    pub requests: u64,
    /// Request messages whose text or address was sealed.
    pub request_messages: u64,
    /// Journal entries rewritten with the number sealed.
    pub journal_entries: u64,
}

impl Sealed {
    /// Everything sealed.
    pub fn total(&self) -> u64 {
        self.call_records
            + self.dispositions
            + self.sms
            + self.callbacks
            + self.requests
            + self.request_messages
            + self.journal_entries
    }
}

/// Checks the keys against the database and seals what is still plain in it.
pub async fn ready(db: &Db, pii: &Pii) -> Result<Sealed, StoreError> {
    pii.check(db.pool(), super::db::now_ms())
        .await
        .map_err(|e| match e {
            CheckError::Key(e) => StoreError::Pii(e),
            CheckError::Database(e) => db.err(e),
        })?;
    let mut sealed = Sealed {
        call_records: seal_call_records(db, pii).await?,
        ..Sealed::default()
    };
    sealed.dispositions = seal_dispositions(db, pii).await?;
    sealed.sms = seal_numbers(db, pii, &SMS_NUMBERS).await?;
    sealed.callbacks = seal_numbers(db, pii, &CALLBACK_NUMBERS).await?;
    sealed.requests = seal_requests(db, pii).await?;
    sealed.request_messages = seal_request_messages(db, pii).await?;
    if sealed.total() > 0 {
        scrub(db).await?;
    }
    Ok(sealed)
}

/// Rewrites the tables just sealed, so the plain values the rows held before are not left
/// behind in free space: SQLite `VACUUM` (the whole file, through the WAL, which is then
/// checkpointed and truncated), Postgres `VACUUM FULL` of the tables sealed (the old row
/// versions). Postgres WAL segments and backups made before the migration still hold them:
/// they age out with the server's WAL retention and the backup rotation.
async fn scrub(db: &Db) -> Result<(), StoreError> {
    use sqlx::Executor;
    let statements: &[&str] = if db.is_postgres() {
        &[
            "VACUUM FULL call_records",
            "VACUUM FULL dispositions",
            "VACUUM FULL sms_messages",
            "VACUUM FULL callback_requests",
            "VACUUM FULL requests",
            "VACUUM FULL request_steps",
            "VACUUM FULL request_messages",
        ]
    } else {
        &["VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"]
    };
    for sql in statements {
        db.pool().execute(*sql).await.map_err(|e| db.err(e))?;
    }
    Ok(())
}

/// `call_records.caller_number` sealed and `caller_lookup` filled in.
async fn seal_call_records(db: &Db, pii: &Pii) -> Result<u64, StoreError> {
    seal_numbers(db, pii, &CALL_NUMBERS).await
}

/// The dispositions' caller name, organisation and STIR sealed (C8).
async fn seal_dispositions(db: &Db, pii: &Pii) -> Result<u64, StoreError> {
    let like = format!("{PREFIX}%");
    let mut done = 0;
    loop {
        let rows = sqlx::query(
            "SELECT disposition_uid, caller_name, organisation, stir FROM dispositions WHERE \
             (caller_name IS NOT NULL AND caller_name NOT LIKE $1) OR \
             (organisation IS NOT NULL AND organisation NOT LIKE $1) OR \
             (stir IS NOT NULL AND stir NOT LIKE $1) LIMIT $2",
        )
        .bind(like.clone())
        .bind(CHUNK as i64)
        .fetch_all(db.pool())
        .await
        .map_err(|e| db.err(e))?;
        if rows.is_empty() {
            return Ok(done);
        }
        let mut tx = db.pool().begin().await.map_err(|e| db.err(e))?;
        for row in &rows {
            let uid: String = row.try_get(0).map_err(|e| db.err(e))?;
            let seal = |i: usize, f: &'static str| -> Result<Option<String>, StoreError> {
                let v: Option<String> = row.try_get(i).map_err(|e| db.err(e))?;
                Ok(v.map(|v| pii.seal_if_plain(f, &v)))
            };
            sqlx::query(
                "UPDATE dispositions SET caller_name = $1, organisation = $2, stir = $3 \
                 WHERE disposition_uid = $4",
            )
            .bind(seal(1, field::CALLER_NAME)?)
            .bind(seal(2, field::ORGANISATION)?)
            .bind(seal(3, field::STIR)?)
            .bind(uid)
            .execute(&mut *tx)
            .await
            .map_err(|e| db.err(e))?;
        }
        tx.commit().await.map_err(|e| db.err(e))?;
        done += rows.len() as u64;
    }
}

/// A table whose number column is sealed with a lookup hash beside it.
struct Numbers {
    table: &'static str,
    id: &'static str,
    number: &'static str,
    lookup: &'static str,
    field: &'static str,
}

const CALL_NUMBERS: Numbers = Numbers {
    table: "call_records",
    id: "call_uid",
    number: "caller_number",
    lookup: "caller_lookup",
    field: field::CALLER_NUMBER,
};

const SMS_NUMBERS: Numbers = Numbers {
    table: "sms_messages",
    id: "id",
    number: "to_number",
    lookup: "to_lookup",
    field: field::SMS_TO,
};

const CALLBACK_NUMBERS: Numbers = Numbers {
    table: "callback_requests",
    id: "id",
    number: "caller_number",
    lookup: "caller_lookup",
    field: field::CALLBACK_NUMBER,
};

/// The numbers of `t` sealed and their lookup hashes filled in (schemas 9 and 11).
async fn seal_numbers(db: &Db, pii: &Pii, t: &Numbers) -> Result<u64, StoreError> {
    let like = format!("{PREFIX}%");
    let select = format!(
        "SELECT {id}, {number} FROM {table} WHERE {number} IS NOT NULL \
         AND ({lookup} IS NULL OR {number} NOT LIKE $1) LIMIT $2",
        id = t.id,
        number = t.number,
        lookup = t.lookup,
        table = t.table
    );
    let update = format!(
        "UPDATE {table} SET {number} = $1, {lookup} = $2 WHERE {id} = $3",
        id = t.id,
        number = t.number,
        lookup = t.lookup,
        table = t.table
    );
    let mut done = 0;
    loop {
        let rows = sqlx::query(sqlx::AssertSqlSafe(select.clone()))
            .bind(like.clone())
            .bind(CHUNK as i64)
            .fetch_all(db.pool())
            .await
            .map_err(|e| db.err(e))?;
        if rows.is_empty() {
            return Ok(done);
        }
        let mut tx = db.pool().begin().await.map_err(|e| db.err(e))?;
        for row in &rows {
            let id: String = row.try_get(0).map_err(|e| db.err(e))?;
            let value: String = row.try_get(1).map_err(|e| db.err(e))?;
            let plain = if is_sealed(&value) {
                pii.open(t.field, &value)?
            } else {
                value.clone()
            };
            sqlx::query(sqlx::AssertSqlSafe(update.clone()))
                .bind(pii.seal_if_plain(t.field, &value))
                .bind(pii.lookup(&plain))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(|e| db.err(e))?;
        }
        tx.commit().await.map_err(|e| db.err(e))?;
        done += rows.len() as u64;
    }
}

/// The requests' requester sealed inside `head` and a missed call's intake key hashed, in
/// the row and in its head (schema 11). A head is JSON written by navbat (`"name":"..."`,
/// no spaces), so a plain value is a key followed by a quote that does not open `pii1.`.
async fn seal_requests(db: &Db, pii: &Pii) -> Result<u64, StoreError> {
    let mut plain = String::new();
    for key in ["name", "email", "phone", "organisation", "stir"] {
        plain.push_str(&format!(
            "(head LIKE '%\"{key}\":\"%' AND head NOT LIKE '%\"{key}\":\"{PREFIX}%') OR "
        ));
    }
    // A hashed key's number part is the 32 hex digits of the lookup hash; a number is shorter.
    let hashed = format!("phone:%:{}:%", "_".repeat(32));
    let select = format!(
        "SELECT id, head FROM requests WHERE {plain} \
         (intake_key LIKE 'phone:%' AND intake_key NOT LIKE $1) LIMIT $2"
    );
    let mut done = 0;
    loop {
        let rows = sqlx::query(sqlx::AssertSqlSafe(select.clone()))
            .bind(hashed.clone())
            .bind(CHUNK as i64)
            .fetch_all(db.pool())
            .await
            .map_err(|e| db.err(e))?;
        if rows.is_empty() {
            return Ok(done);
        }
        let mut tx = db.pool().begin().await.map_err(|e| db.err(e))?;
        let mut updated = 0;
        for row in &rows {
            let id: String = row.try_get(0).map_err(|e| db.err(e))?;
            let json: String = row.try_get(1).map_err(|e| db.err(e))?;
            let Ok(mut head) = serde_json::from_str::<crate::request_model::Head>(&json) else {
                tracing::error!(request = %id, "a request's head does not parse; left as it is");
                continue;
            };
            let old_key = head.intake_key.clone();
            let sealed = super::seal::seal_head(&mut head, pii);
            // Whatever the key (an unusual one is dropped), the row leaves the selection.
            let key = head
                .intake_key
                .clone()
                .filter(|k| !k.starts_with("phone:") || hashed_key(k));
            if !sealed && key == old_key {
                // Nothing to seal after all (a value that only looked plain): left as it is.
                continue;
            }
            updated += 1;
            let json = serde_json::to_string(&head).map_err(|e| {
                StoreError::journal(
                    Path::new("requests.head"),
                    "encode",
                    std::io::Error::other(e),
                )
            })?;
            sqlx::query("UPDATE requests SET head = $1, intake_key = $2 WHERE id = $3")
                .bind(json)
                .bind(key)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(|e| db.err(e))?;
        }
        tx.commit().await.map_err(|e| db.err(e))?;
        done += updated;
        if updated == 0 {
            // Only heads that do not parse or hold nothing to seal are left.
            return Ok(done);
        }
    }
}

/// Whether a `phone:` intake key holds a lookup hash (32 hex digits) as its number.
fn hashed_key(key: &str) -> bool {
    key.rsplit(':')
        .nth(1)
        .is_some_and(|n| n.len() == 32 && n.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The request messages' text and address sealed (schema 11).
async fn seal_request_messages(db: &Db, pii: &Pii) -> Result<u64, StoreError> {
    let like = format!("{PREFIX}%");
    let mut done = 0;
    loop {
        let rows = sqlx::query(
            "SELECT message_uid, body, to_addr FROM request_messages WHERE body NOT LIKE $1 \
             OR (to_addr IS NOT NULL AND to_addr NOT LIKE $1) LIMIT $2",
        )
        .bind(like.clone())
        .bind(CHUNK as i64)
        .fetch_all(db.pool())
        .await
        .map_err(|e| db.err(e))?;
        if rows.is_empty() {
            return Ok(done);
        }
        let mut tx = db.pool().begin().await.map_err(|e| db.err(e))?;
        for row in &rows {
            let uid: String = row.try_get(0).map_err(|e| db.err(e))?;
            let body: String = row.try_get(1).map_err(|e| db.err(e))?;
            let to: Option<String> = row.try_get(2).map_err(|e| db.err(e))?;
            sqlx::query(
                "UPDATE request_messages SET body = $1, to_addr = $2 WHERE message_uid = $3",
            )
            .bind(pii.seal_if_plain(field::MESSAGE_BODY, &body))
            .bind(to.map(|t| pii.seal_if_plain(field::MESSAGE_TO, &t)))
            .bind(uid)
            .execute(&mut *tx)
            .await
            .map_err(|e| db.err(e))?;
        }
        tx.commit().await.map_err(|e| db.err(e))?;
        done += rows.len() as u64;
    }
}

/// Rewrites every journal segment in `dir` that holds a plain caller number or plain caller
/// details with them sealed; returns how many entries changed. The router must not be running
/// (the caller holds the directory's lock). Each segment is written to a temporary file,
/// fsynced and renamed over the old one, so a crash leaves the old or the new segment, never
/// half of one; the cursor, a byte offset, is moved to the same entry in the new segment.
pub fn seal_journal(dir: &Path, pii: &Pii) -> Result<u64, StoreError> {
    let cursor = journal::load_cursor(dir);
    let mut changed = 0;
    for n in journal::segments(dir)? {
        let segment = journal::segment_path(dir, n);
        let text = std::fs::read(&segment).map_err(|e| StoreError::journal(&segment, "read", e))?;
        let mut out = Vec::with_capacity(text.len() + text.len() / 4);
        let mut here = 0;
        let mut old_offset = 0u64;
        let mut new_cursor = None;
        for line in text.split_inclusive(|b| *b == b'\n') {
            if n == cursor.segment && old_offset == cursor.offset {
                new_cursor = Some(out.len() as u64);
            }
            old_offset += line.len() as u64;
            let body = line.strip_suffix(b"\n").unwrap_or(line);
            // A torn last line (crash mid-write) is kept as it is: the reader skips it.
            let Ok(mut entry) = serde_json::from_slice::<JournalEntry>(body) else {
                out.extend_from_slice(line);
                continue;
            };
            let mut touched = seal_entry(&mut entry, pii);
            touched |= super::seal::seal_entry_record(&mut entry, pii);
            if !touched {
                out.extend_from_slice(line);
                continue;
            }
            here += 1;
            let json = serde_json::to_vec(&entry)
                .map_err(|e| StoreError::journal(&segment, "encode", std::io::Error::other(e)))?;
            out.extend_from_slice(&json);
            if line.ends_with(b"\n") {
                out.push(b'\n');
            }
        }
        if n == cursor.segment && old_offset == cursor.offset {
            new_cursor = Some(out.len() as u64);
        }
        if here > 0 {
            journal::replace_segment(&segment, &out)?;
            if let Some(offset) = new_cursor {
                journal::save_cursor(dir, journal::Position { segment: n, offset })?;
            }
            changed += here;
        }
    }
    Ok(changed)
}
