//! Callers' personal data sealed at rest (D18): numbers, names, organisations and STIRs are
//! kept in the journal and the database only as AES-256-GCM ciphertext, and found again by a
//! keyed hash, never by the value itself.
//!
//! # Keys
//! The keys come from the recording key file (`[recordings] key_file`, outside the data
//! directory; `navbat keygen`), not from a second file: one secret to back up, to keep off the
//! data disk and to check at start-up, already refused inside a data directory by the
//! configuration check. Each purpose has its own sub-key, derived by HKDF-SHA-256 with a label
//! of its own ([`crate::keyfile::Keys::derive`]), so the recordings' key, the data key
//! and the lookup key are never the same bytes:
//! * **data**: `navbat pii data v1`, one per key id; the last key of the file seals new values,
//!   the others still open the values sealed with them (rotation = `navbat keygen`).
//! * **lookup**: `navbat pii lookup v1` of the file's *first* key, which never changes, since
//!   every stored lookup hash was made with it.
//!
//! # Sealed value (text, format version 1)
//! `pii1.<key id>.<hex(nonce 12 bytes || ciphertext || tag 16 bytes)>`; the associated data
//! is the field's name (`caller_number`, `caller_name`, ...), so a value copied into another
//! column does not open. A random nonce per value: the same number sealed twice gives two
//! different texts, which is why equality goes through the lookup hash.
//!
//! # Lookup hash
//! HMAC-SHA-256 under the lookup key of the normalised number (its digits; a leading
//! international `00` dropped; an identity without digits: trimmed and lower-cased), the first
//! 16 bytes in hex. Indexes hold it instead of the number: repeat calls, the caller's history,
//! request intake keys and the report's count of distinct callers compare hashes.
//!
//! # Start-up check
//! The table `pii_keys` holds, per key id ever used, a known text sealed with its data key,
//! and the lookup hash of a known text: a key file without a key the database needs, or with
//! a different one, stops navbat with [`PiiError::UnknownKey`] / [`PiiError::WrongKey`] naming
//! the file and the fix, before anything is read or written. There is no plain-text fallback.

use crate::keyfile::{KeyError, Keys};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The first characters of a sealed value.
pub const PREFIX: &str = "pii1.";
/// HKDF label of the data sub-keys.
const DATA_LABEL: &[u8] = b"navbat pii data v1";
/// HKDF label of the lookup sub-key.
const LOOKUP_LABEL: &[u8] = b"navbat pii lookup v1";
/// What `pii_keys` seals per key, and hashes for the lookup key.
const CHECK_TEXT: &str = "navbat personal data key check v1";
/// The field label of the key check.
const CHECK_FIELD: &str = "pii_keys";
/// Bytes of HMAC kept as the lookup hash (128 bits).
const LOOKUP_BYTES: usize = 16;

/// Field names: the associated data of each sealed value (a value opens only as its field).
pub mod field {
    /// `call_records.caller_number` and the journal's `caller`.
    pub const CALLER_NUMBER: &str = "caller_number";
    /// A disposition's caller name (C8).
    pub const CALLER_NAME: &str = "caller_name";
    /// A disposition's organisation (C8).
    pub const ORGANISATION: &str = "organisation";
    /// A disposition's STIR, the taxpayer number (C8).
    pub const STIR: &str = "stir";
    /// A request's requester: name, phone, e-mail, Telegram (the whole contact).
    pub const REQUESTER: &str = "requester";
    /// `sms_messages.to_number` and a queued SMS's number in the journal.
    pub const SMS_TO: &str = "sms_to_number";
    /// `callback_requests.caller_number` and a booked callback's number in the journal.
    pub const CALLBACK_NUMBER: &str = "callback_number";
    /// A request's requester's name (`requests.head`).
    pub const REQUESTER_NAME: &str = "requester_name";
    /// A request's requester's e-mail address.
    pub const REQUESTER_EMAIL: &str = "requester_email";
    /// A request's requester's phone number.
    pub const REQUESTER_PHONE: &str = "requester_phone";
    /// A request's requester's organisation.
    pub const REQUESTER_ORGANISATION: &str = "requester_organisation";
    /// A request's requester's STIR.
    pub const REQUESTER_STIR: &str = "requester_stir";
    /// `request_messages.body`: the text of a request's message.
    pub const MESSAGE_BODY: &str = "message_body";
    /// `request_messages.to_addr`: where an outbound message or letter goes.
    pub const MESSAGE_TO: &str = "message_to";
}

/// What is wrong with sealed personal data or its keys; each message names the fix.
#[derive(Debug, thiserror::Error)]
pub enum PiiError {
    /// The key file (the recording key file) cannot be used.
    #[error("personal data keys: {0}")]
    Keys(#[from] KeyError),
    /// The database holds data sealed with a key the key file lacks.
    #[error("personal data key file {path} has no key {id}, which callers' data in the database is sealed with; fix: put back the key file (or its line for {id}) that was in use when it was written ([recordings] key_file)")]
    UnknownKey {
        /// The key file.
        path: PathBuf,
        /// The key id missing.
        id: String,
    },
    /// The key file's key of an id is not the one the database's data was sealed with.
    #[error("personal data key file {path}: key {id} is not the key callers' data in the database was sealed with (wrong key file?); fix: put back the key file that was in use when it was written ([recordings] key_file)")]
    WrongKey {
        /// The key file.
        path: PathBuf,
        /// The key id.
        id: String,
    },
    /// A value does not open: damaged, or moved from another field.
    #[error("a sealed {field} does not open with key {id} of {path} (damaged, or not this field's value); fix: restore the row from a backup")]
    Damaged {
        /// The field.
        field: &'static str,
        /// Its key id.
        id: String,
        /// The key file.
        path: PathBuf,
    },
    /// A value is in plain text where a sealed one belongs (data of an older navbat).
    #[error("a {field} is stored in plain text (written by an older navbat); fix: run `navbat migrate`, which seals it")]
    Plain {
        /// The field.
        field: &'static str,
    },
    /// Sealed data was read where no key was given (a tool opened the database without one).
    #[error("a sealed {field} was read without the personal data keys; fix: open the database with [recordings] key_file loaded (navbat does; a tool must call Db::with_pii)")]
    NoKey {
        /// The field.
        field: &'static str,
    },
}

/// The personal data keys of a key file.
#[derive(Clone)]
pub struct Pii {
    path: PathBuf,
    current: String,
    data: HashMap<String, Aes256Gcm>,
    lookup: Hmac<Sha256>,
    lookup_id: String,
}

impl std::fmt::Debug for Pii {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys themselves.
        f.debug_struct("Pii")
            .field("path", &self.path)
            .field("current", &self.current)
            .field("lookup_id", &self.lookup_id)
            .finish()
    }
}

impl Pii {
    /// The sub-keys of the recording keys `keys`.
    pub fn from_keys(keys: &Keys) -> Pii {
        let mut data = HashMap::new();
        for id in keys.ids() {
            if let Some(key) = keys.derive(id, DATA_LABEL) {
                if let Ok(cipher) = Aes256Gcm::new_from_slice(&key) {
                    data.insert(id.clone(), cipher);
                }
            }
        }
        // `Keys` is never empty and HMAC takes any key length.
        let lookup_id = keys.ids().first().cloned().unwrap_or_default();
        let lookup_key = keys.derive(&lookup_id, LOOKUP_LABEL).unwrap_or([0; 32]);
        let lookup = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&lookup_key)
            .expect("HMAC takes a key of any length");
        Pii {
            path: keys.path().to_path_buf(),
            current: keys.current().to_owned(),
            data,
            lookup,
            lookup_id,
        }
    }

    /// Reads the key file at `path` (the recording key file).
    pub fn load(path: &Path) -> Result<Pii, PiiError> {
        Ok(Pii::from_keys(&Keys::load(path)?))
    }

    /// The key file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The id of the key that seals new values.
    pub fn current(&self) -> &str {
        &self.current
    }

    /// `plain` sealed as `field` with the current key.
    pub fn seal(&self, field: &'static str, plain: &str) -> String {
        let nonce: [u8; 12] = rand::random();
        let Some(cipher) = self.data.get(&self.current) else {
            // `from_keys` derives a cipher for every id, the current one included.
            unreachable!("no data key for the current key id");
        };
        let body = cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: plain.as_bytes(),
                    aad: field.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut bytes = Vec::with_capacity(12 + body.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&body);
        format!("{PREFIX}{}.{}", self.current, hex::encode(bytes))
    }

    /// `plain` sealed, unless it already is (migration of older data).
    pub fn seal_if_plain(&self, field: &'static str, value: &str) -> String {
        if is_sealed(value) {
            value.to_owned()
        } else {
            self.seal(field, value)
        }
    }

    /// The plain text of a value sealed as `field`. A plain value is an error
    /// ([`PiiError::Plain`]): nothing falls back to plain text silently.
    pub fn open(&self, field: &'static str, sealed: &str) -> Result<String, PiiError> {
        let Some(rest) = sealed.strip_prefix(PREFIX) else {
            return Err(PiiError::Plain { field });
        };
        let (id, hex_text) = rest.split_once('.').unwrap_or((rest, ""));
        let Some(cipher) = self.data.get(id) else {
            return Err(PiiError::UnknownKey {
                path: self.path.clone(),
                id: id.to_owned(),
            });
        };
        let damaged = || PiiError::Damaged {
            field,
            id: id.to_owned(),
            path: self.path.clone(),
        };
        let bytes = hex::decode(hex_text).map_err(|_| damaged())?;
        let (nonce, body) = bytes.split_at_checked(12).ok_or_else(damaged)?;
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| damaged())?;
        let plain = cipher
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: body,
                    aad: field.as_bytes(),
                },
            )
            .map_err(|_| damaged())?;
        String::from_utf8(plain).map_err(|_| damaged())
    }

    /// The lookup hash of a number (see the module's "Lookup hash").
    pub fn lookup(&self, number: &str) -> String {
        let mut mac = self.lookup.clone();
        mac.update(normalise(number).as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..LOOKUP_BYTES])
    }

    /// Checks the key file against the database's `pii_keys` (see the module's "Start-up
    /// check") and records the current key there if it is new.
    pub async fn check(&self, pool: &sqlx::AnyPool, now_ms: i64) -> Result<(), CheckError> {
        use sqlx::Row;
        let rows = sqlx::query("SELECT key_id, purpose, sealed FROM pii_keys")
            .fetch_all(pool)
            .await?;
        let mut seen_current = false;
        for row in &rows {
            let id: String = row.try_get(0)?;
            let purpose: String = row.try_get(1)?;
            let sealed: String = row.try_get(2)?;
            let ok = match purpose.as_str() {
                "lookup" => {
                    if id != self.lookup_id {
                        // The lookup key is the first key of the file, always the same.
                        return Err(PiiError::UnknownKey {
                            path: self.path.clone(),
                            id,
                        }
                        .into());
                    }
                    sealed == self.lookup(CHECK_TEXT)
                }
                _ => match self.open(CHECK_FIELD, &sealed) {
                    Ok(text) => text == CHECK_TEXT,
                    Err(PiiError::UnknownKey { .. }) => {
                        return Err(PiiError::UnknownKey {
                            path: self.path.clone(),
                            id,
                        }
                        .into())
                    }
                    Err(_) => false,
                },
            };
            if !ok {
                return Err(PiiError::WrongKey {
                    path: self.path.clone(),
                    id,
                }
                .into());
            }
            seen_current |= purpose == "data" && id == self.current;
        }
        if !rows
            .iter()
            .any(|r| r.try_get::<String, _>(1).ok().as_deref() == Some("lookup"))
        {
            sqlx::query(
                "INSERT INTO pii_keys (key_id, purpose, sealed, created_at_ms) VALUES ($1, 'lookup', $2, $3) \
                 ON CONFLICT (key_id, purpose) DO NOTHING",
            )
            .bind(self.lookup_id.clone())
            .bind(self.lookup(CHECK_TEXT))
            .bind(now_ms)
            .execute(pool)
            .await?;
        }
        if !seen_current {
            sqlx::query(
                "INSERT INTO pii_keys (key_id, purpose, sealed, created_at_ms) VALUES ($1, 'data', $2, $3) \
                 ON CONFLICT (key_id, purpose) DO NOTHING",
            )
            .bind(self.current.clone())
            .bind(self.seal(CHECK_FIELD, CHECK_TEXT))
            .bind(now_ms)
            .execute(pool)
            .await?;
        }
        Ok(())
    }
}

/// The start-up check failed: a key problem, or the database could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The key file does not fit the database.
    #[error(transparent)]
    Key(#[from] PiiError),
    /// The database did not answer.
    #[error("cannot read pii_keys: {0}")]
    Database(#[from] sqlx::Error),
}

/// Whether a stored value is sealed (format version 1).
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(PREFIX)
}

/// A number as the lookup hash takes it: its digits, without a leading international `00`;
/// an identity without digits (`anonymous`) trimmed and lower-cased.
pub fn normalise(number: &str) -> String {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return number.trim().to_lowercase();
    }
    match digits.strip_prefix("00") {
        Some(rest) if !rest.is_empty() => rest.to_owned(),
        _ => digits,
    }
}

/// Opens an optional sealed value with optional keys: `None` stays `None`; a value without
/// keys is [`PiiError::NoKey`].
pub fn open_opt(
    pii: Option<&Pii>,
    field: &'static str,
    value: Option<String>,
) -> Result<Option<String>, PiiError> {
    match (value, pii) {
        (None, _) => Ok(None),
        (Some(v), Some(pii)) => pii.open(field, &v).map(Some),
        (Some(_), None) => Err(PiiError::NoKey { field }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pii(dir: &Path, name: &str) -> Pii {
        let path = dir.join(name);
        Keys::generate(&path, 0).unwrap();
        Pii::load(&path).unwrap()
    }

    #[test]
    fn seals_and_opens_bound_to_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = pii(dir.path(), "a.key");
        let sealed = p.seal(field::CALLER_NUMBER, "+998901234567");
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("901234567"), "{sealed}");
        assert_ne!(sealed, p.seal(field::CALLER_NUMBER, "+998901234567"));
        assert_eq!(
            p.open(field::CALLER_NUMBER, &sealed).unwrap(),
            "+998901234567"
        );
        // Moved into another field: does not open.
        assert!(matches!(
            p.open(field::STIR, &sealed),
            Err(PiiError::Damaged { .. })
        ));
        // Plain text is an error, not a fallback.
        assert!(matches!(
            p.open(field::CALLER_NUMBER, "+998901234567"),
            Err(PiiError::Plain { .. })
        ));
        assert_eq!(p.seal_if_plain(field::CALLER_NUMBER, &sealed), sealed);
    }

    #[test]
    fn another_key_file_does_not_open_and_hashes_differently() {
        let dir = tempfile::tempdir().unwrap();
        let a = pii(dir.path(), "a.key");
        let b = pii(dir.path(), "b.key");
        // Same id (both made on day 0), different keys.
        assert_eq!(a.current(), b.current());
        let sealed = a.seal(field::CALLER_NUMBER, "+998901234567");
        assert!(matches!(
            b.open(field::CALLER_NUMBER, &sealed),
            Err(PiiError::Damaged { .. })
        ));
        assert_ne!(a.lookup("+998901234567"), b.lookup("+998901234567"));
    }

    #[test]
    fn lookup_is_stable_across_rotation_and_spellings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        Keys::generate(&path, 0).unwrap();
        let before = Pii::load(&path).unwrap();
        let old = before.seal(field::CALLER_NUMBER, "+998901234567");
        Keys::generate(&path, 86_400_000).unwrap();
        let after = Pii::load(&path).unwrap();
        assert_ne!(before.current(), after.current());
        assert_eq!(before.lookup("+998901234567"), after.lookup("998901234567"));
        assert_eq!(
            after.lookup("+998901234567"),
            after.lookup("00998901234567")
        );
        assert_ne!(after.lookup("+998901234567"), after.lookup("+998901234568"));
        assert_eq!(after.lookup("+998901234567").len(), 32);
        // The older key still opens what it sealed.
        assert_eq!(
            after.open(field::CALLER_NUMBER, &old).unwrap(),
            "+998901234567"
        );
        assert!(after
            .seal(field::CALLER_NUMBER, "1")
            .starts_with(&format!("{PREFIX}{}.", after.current())));
    }

    #[test]
    fn data_and_lookup_keys_differ_from_the_recording_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        Keys::generate(&path, 0).unwrap();
        let keys = Keys::load(&path).unwrap();
        let id = keys.current().to_owned();
        let data = keys.derive(&id, DATA_LABEL).unwrap();
        let lookup = keys.derive(&id, LOOKUP_LABEL).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_ne!(data, lookup);
        assert!(!text.contains(&hex::encode(data)));
        assert!(!text.contains(&hex::encode(lookup)));
    }
}
