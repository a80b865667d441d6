//! The key file: one AES-256 key a line, `<id> <64 hex digits>` (32 bytes); `#` starts a
//! comment. The last key encrypts new data; the others stay for what was sealed with them, so
//! a key is rotated by adding a line (`navbat keygen FILE` appends one). A key id is 1-32
//! characters of `A-Z a-z 0-9 - _`.
//!
//! The recordings ([`crate::recordings::seal`]) use the keys themselves; callers' personal
//! data ([`crate::pii`]) uses sub-keys derived from them ([`Keys::derive`]). This module sits
//! below both (and below the store), so neither needs the other to reach its keys.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Longest key id.
const MAX_ID: usize = 32;
/// What `keycheck` seals per key.
const CHECK_TEXT: &[u8] = b"navbat recording key check v1";

/// What is wrong with the recording keys; each message names the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file cannot be read.
    #[error("recording key file {path} cannot be read: {source}; fix: restore the file, or create one with `navbat keygen {path}` (a lost key's recordings cannot be heard again), or set [recordings] key_file")]
    Missing {
        /// The key file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line of the key file is not `<id> <64 hex digits>`.
    #[error("recording key file {path}, line {line}: {problem}; fix: write each key as `<id> <64 hex digits>` (`navbat keygen {path}` adds one)")]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// The key file holds no key.
    #[error("recording key file {path} holds no key; fix: add one with `navbat keygen {path}`")]
    Empty {
        /// The key file.
        path: PathBuf,
    },
    /// Recordings were made with a key the key file does not hold.
    #[error("recording key file {path} has no key {id}, which recordings in {dir} are encrypted with; fix: put back the key file (or its line for {id}) that was in use when they were recorded")]
    UnknownKey {
        /// The key file.
        path: PathBuf,
        /// The key id missing.
        id: String,
        /// The recordings directory.
        dir: PathBuf,
    },
    /// The key file's key of an id is not the one recordings were made with.
    #[error("recording key file {path}: key {id} is not the key the recordings in {dir} were encrypted with (wrong key file?); fix: put back the key file that was in use when they were recorded")]
    WrongKey {
        /// The key file.
        path: PathBuf,
        /// The key id.
        id: String,
        /// The recordings directory.
        dir: PathBuf,
    },
    /// The key file or the key check cannot be written.
    #[error("cannot write {path}: {source}; fix: check that the directory exists and is writable")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The recording keys of a key file.
#[derive(Clone)]
pub struct Keys {
    pub(crate) path: PathBuf,
    /// In file order; the last encrypts new recordings.
    ids: Vec<String>,
    ciphers: HashMap<String, Aes256Gcm>,
    /// The key file's keys themselves, only for deriving sub-keys ([`Keys::derive`]).
    secrets: HashMap<String, [u8; 32]>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys themselves.
        f.debug_struct("Keys")
            .field("path", &self.path)
            .field("ids", &self.ids)
            .finish()
    }
}

impl Keys {
    /// Reads the key file at `path`.
    pub fn load(path: &Path) -> Result<Keys, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Missing {
            path: path.to_path_buf(),
            source,
        })?;
        Keys::parse(path, &text)
    }

    /// Reads the text of a key file (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Keys, KeyError> {
        let bad = |line: usize, problem: String| KeyError::Malformed {
            path: path.to_path_buf(),
            line,
            problem,
        };
        let mut ids = Vec::new();
        let mut ciphers = HashMap::new();
        let mut secrets = HashMap::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(id), Some(hex_key), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad(n + 1, "expected an id and a key".into()));
            };
            if !valid_id(id) {
                return Err(bad(
                    n + 1,
                    format!("key id {id:?} is not 1-32 of A-Z a-z 0-9 - _"),
                ));
            }
            let bytes = hex::decode(hex_key)
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| bad(n + 1, format!("the key of {id} is not 64 hex digits")))?;
            if ciphers.contains_key(id) {
                return Err(bad(n + 1, format!("key id {id} appears twice")));
            }
            let cipher = Aes256Gcm::new_from_slice(&bytes)
                .map_err(|_| bad(n + 1, "not a 256-bit key".into()))?;
            ids.push(id.to_owned());
            ciphers.insert(id.to_owned(), cipher);
            let mut secret = [0u8; 32];
            secret.copy_from_slice(&bytes);
            secrets.insert(id.to_owned(), secret);
        }
        if ids.is_empty() {
            return Err(KeyError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(Keys {
            path: path.to_path_buf(),
            ids,
            ciphers,
            secrets,
        })
    }

    /// Adds a new random key to the key file at `path` (creating it and its directory, owner
    /// read and write only), which becomes the key of new recordings. Returns its id.
    pub fn generate(path: &Path, now_ms: i64) -> Result<String, KeyError> {
        let write = |source| KeyError::Write {
            path: path.to_path_buf(),
            source,
        };
        let existing = match std::fs::read_to_string(path) {
            Ok(text) => Some(Keys::parse(path, &text)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(KeyError::Missing {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let day = jiff::Timestamp::from_millisecond(now_ms)
            .map(|t| t.strftime("%Y%m%d").to_string())
            .unwrap_or_else(|_| "0".into());
        let mut id = format!("k{day}");
        let mut n = 1;
        while existing
            .as_ref()
            .is_some_and(|k| k.ciphers.contains_key(&id))
        {
            n += 1;
            id = format!("k{day}-{n}");
        }
        let key: [u8; 32] = rand::random();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write)?;
        }
        let mut text = if existing.is_some() {
            std::fs::read_to_string(path).map_err(write)?
        } else {
            "# navbat recording keys: `<id> <64 hex digits>` a line; the last encrypts new\n\
             # recordings. Keep every line while recordings made with it are kept.\n"
                .to_owned()
        };
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("{id} {}\n", hex::encode(key)));
        write_private(path, text.as_bytes()).map_err(write)?;
        Ok(id)
    }

    /// The key file these keys came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The id of the key that encrypts new recordings.
    pub fn current(&self) -> &str {
        self.ids.last().map(String::as_str).unwrap_or("")
    }

    /// The key ids in file order (the last encrypts new data).
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// A 256-bit sub-key of key `id` for one purpose, by HKDF-SHA-256 (RFC 5869) with the
    /// purpose as its `info` label, so that no key is ever used for two purposes: the
    /// recordings use the key itself, callers' personal data ([`crate::pii`]) keys derived
    /// with the labels `navbat pii data v1` and `navbat pii lookup v1`.
    pub fn derive(&self, id: &str, label: &[u8]) -> Option<[u8; 32]> {
        let secret = self.secrets.get(id)?;
        let mut out = [0u8; 32];
        hkdf::Hkdf::<sha2::Sha256>::new(Some(b"navbat key file v1"), secret)
            .expand(label, &mut out)
            .ok()?;
        Some(out)
    }

    pub(crate) fn cipher(&self, id: &str) -> Option<&Aes256Gcm> {
        self.ciphers.get(id)
    }

    /// Checks the key file against the recordings directory `dir` (see the module's "Start-up
    /// check") and records the current key there if it is new.
    pub fn check(&self, dir: &Path) -> Result<(), KeyError> {
        let file = dir.join("keycheck");
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(KeyError::Missing { path: file, source });
            }
        };
        let mut seen = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (id, sealed) = line.split_once(' ').unwrap_or((line, ""));
            let Some(cipher) = self.cipher(id) else {
                return Err(KeyError::UnknownKey {
                    path: self.path.clone(),
                    id: id.to_owned(),
                    dir: dir.to_path_buf(),
                });
            };
            let opened = hex::decode(sealed.trim()).ok().and_then(|b| {
                let (nonce, body) = b.split_at_checked(12)?;
                let nonce: [u8; 12] = nonce.try_into().ok()?;
                cipher
                    .decrypt(
                        &nonce.into(),
                        Payload {
                            msg: body,
                            aad: id.as_bytes(),
                        },
                    )
                    .ok()
            });
            if opened.as_deref() != Some(CHECK_TEXT) {
                return Err(KeyError::WrongKey {
                    path: self.path.clone(),
                    id: id.to_owned(),
                    dir: dir.to_path_buf(),
                });
            }
            seen.push(id.to_owned());
        }
        let current = self.current();
        if !seen.iter().any(|s| s == current) {
            let nonce: [u8; 12] = rand::random();
            let sealed = self
                .cipher(current)
                .and_then(|c| {
                    c.encrypt(
                        &nonce.into(),
                        Payload {
                            msg: CHECK_TEXT,
                            aad: current.as_bytes(),
                        },
                    )
                    .ok()
                })
                .unwrap_or_default();
            let mut all = text;
            if !all.is_empty() && !all.ends_with('\n') {
                all.push('\n');
            }
            all.push_str(&format!(
                "{current} {}{}\n",
                hex::encode(nonce),
                hex::encode(sealed)
            ));
            std::fs::create_dir_all(dir).map_err(|source| KeyError::Write {
                path: dir.to_path_buf(),
                source,
            })?;
            write_private(&file, all.as_bytes())
                .map_err(|source| KeyError::Write { path: file, source })?;
        }
        Ok(())
    }
}

pub(crate) fn valid_id(id: &str) -> bool {
    (1..=MAX_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Writes `bytes` to `path` readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
