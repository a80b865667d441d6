//! Recordings encrypted at rest: AES-256-GCM per file, in chunks, keys from a key file
//! outside the data directory.
//!
//! # Key file
//! One key a line, `<id> <64 hex digits>` (32 bytes); `#` starts a comment. The last key
//! encrypts new recordings; the others stay for the recordings made with them, so a key is
//! rotated by adding a line (`navbat keygen FILE` appends one). A key id is 1-32 characters
//! of `A-Z a-z 0-9 - _`.
//!
//! # File format (version 1)
//! ```text
//! header:  "NVBREC" 0x00 0x01          magic and format version (8 bytes)
//!          n (1 byte), key id (n bytes) which key of the key file
//!          nonce prefix (12 bytes)      random per file
//!          chunk size C (u32 BE)        plain bytes per chunk: 16,000 (half a second)
//! chunk i: AES-256-GCM(key, nonce = prefix XOR i in its last 4 bytes,
//!                      aad = header || i as u64 BE) of C plain bytes, then the 16-byte tag;
//!          the last chunk of a closed file may hold fewer.
//! ```
//! The plain bytes are the recording's samples (stereo, 8 kHz, 16-bit little-endian); the WAV
//! header is made when it is served. Chunk `i` starts at `header + i * (C + 16)`, so a range
//! read decrypts only the chunks it touches, and a growing file is read up to its last whole
//! chunk: a live call plays half a second behind. The associated data binds each chunk to its
//! place and its file, so chunks cannot be reordered or moved between files unnoticed; a file
//! cut short at a chunk boundary reads as a shorter recording, which its index row's size and
//! SHA-256 reveal.
//!
//! # Start-up check
//! `keycheck` in the recordings directory holds, per key id ever used there, a known text
//! sealed with that key. At start every line must open with the key file's key of that id:
//! a key file that lacks a key or holds a different one stops navbat with an error naming the
//! file and the key, before a recording is made or served.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The first bytes of an encrypted recording (format version 1).
pub const MAGIC: &[u8; 8] = b"NVBREC\x00\x01";
/// Plain bytes per chunk: half a second of stereo 8 kHz 16-bit audio (one writer batch).
pub const CHUNK: usize = 16_000;
/// Bytes the tag adds to each chunk.
pub const TAG: usize = 16;
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
    path: PathBuf,
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

    fn cipher(&self, id: &str) -> Option<&Aes256Gcm> {
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

fn valid_id(id: &str) -> bool {
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

/// Why a chunk cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The header is not one of navbat's encrypted recordings.
    #[error("not a navbat encrypted recording (bad header)")]
    Header,
    /// The key id is not in the key file.
    #[error("recording key file {key_file} has no key {id}, which this recording is encrypted with; fix: put back the key file (or its line for {id}) that was in use when it was recorded")]
    UnknownKey {
        /// The key file.
        key_file: PathBuf,
        /// The key id.
        id: String,
    },
    /// The key does not open the chunk (wrong key, or the bytes were changed).
    #[error("recording key {id} from {key_file} does not open this recording (a different key under that id, or the file was altered); fix: put back the key file that was in use when it was recorded")]
    WrongKey {
        /// The key file.
        key_file: PathBuf,
        /// The key id.
        id: String,
    },
}

/// The header of an encrypted recording and the cipher that opens it.
pub struct Sealed {
    header: Vec<u8>,
    prefix: [u8; 12],
    cipher: Aes256Gcm,
    id: String,
    key_file: PathBuf,
}

impl Sealed {
    /// A new file's header under the current key (a fresh random nonce prefix).
    pub fn new(keys: &Keys) -> Sealed {
        let id = keys.current().to_owned();
        let prefix: [u8; 12] = rand::random();
        let mut header = MAGIC.to_vec();
        header.push(id.len() as u8);
        header.extend_from_slice(id.as_bytes());
        header.extend_from_slice(&prefix);
        header.extend_from_slice(&(CHUNK as u32).to_be_bytes());
        let cipher = keys
            .cipher(&id)
            .cloned()
            .unwrap_or_else(|| Aes256Gcm::new(&[0u8; 32].into()));
        Sealed {
            header,
            prefix,
            cipher,
            id,
            key_file: keys.path.clone(),
        }
    }

    /// Reads the header at the start of `bytes`; `Ok(None)`: not enough bytes yet.
    pub fn open(bytes: &[u8], keys: &Keys) -> Result<Option<Sealed>, OpenError> {
        if bytes.len() < MAGIC.len() + 1 {
            return Ok(None);
        }
        if &bytes[..MAGIC.len()] != MAGIC {
            return Err(OpenError::Header);
        }
        let n = usize::from(bytes[MAGIC.len()]);
        let len = MAGIC.len() + 1 + n + 12 + 4;
        if bytes.len() < len {
            return Ok(None);
        }
        let id = std::str::from_utf8(&bytes[MAGIC.len() + 1..MAGIC.len() + 1 + n])
            .ok()
            .filter(|id| valid_id(id))
            .ok_or(OpenError::Header)?;
        let at = MAGIC.len() + 1 + n;
        let prefix: [u8; 12] = bytes[at..at + 12]
            .try_into()
            .map_err(|_| OpenError::Header)?;
        let chunk = u32::from_be_bytes(
            bytes[at + 12..at + 16]
                .try_into()
                .map_err(|_| OpenError::Header)?,
        );
        if chunk as usize != CHUNK {
            return Err(OpenError::Header);
        }
        let cipher = keys
            .cipher(id)
            .cloned()
            .ok_or_else(|| OpenError::UnknownKey {
                key_file: keys.path.clone(),
                id: id.to_owned(),
            })?;
        Ok(Some(Sealed {
            header: bytes[..len].to_vec(),
            prefix,
            cipher,
            id: id.to_owned(),
            key_file: keys.path.clone(),
        }))
    }

    /// The header's bytes (the file starts with them).
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// The key id.
    pub fn key_id(&self) -> &str {
        &self.id
    }

    fn nonce(&self, index: u64) -> [u8; 12] {
        let mut n = self.prefix;
        let i = (index as u32).to_be_bytes();
        for k in 0..4 {
            n[8 + k] ^= i[k];
        }
        n
    }

    fn aad(&self, index: u64) -> Vec<u8> {
        let mut aad = self.header.clone();
        aad.extend_from_slice(&index.to_be_bytes());
        aad
    }

    /// Chunk `index` of `plain` (at most [`CHUNK`] bytes), encrypted with its tag.
    pub fn seal(&self, index: u64, plain: &[u8]) -> Vec<u8> {
        let aad = self.aad(index);
        self.cipher
            .encrypt(
                &self.nonce(index).into(),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            // Encryption fails only for a message beyond GCM's 64 GiB: a chunk is 16 kB.
            .unwrap_or_default()
    }

    /// The plain bytes of chunk `index`.
    pub fn unseal(&self, index: u64, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        let aad = self.aad(index);
        self.cipher
            .decrypt(
                &self.nonce(index).into(),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| OpenError::WrongKey {
                key_file: self.key_file.clone(),
                id: self.id.clone(),
            })
    }
}

/// The keys `navbat run` records with: the key file of `[recordings] key_file`, checked
/// against the recordings directory. A missing key file is an error, except on a demo run
/// (SIP and HTTP on loopback only), where a new key file is made at that path (outside the
/// data directory: `keys/recordings.key` by default) and said in the log.
pub fn load_for_run(config: &crate::config::Config, now_ms: i64) -> Result<Keys, KeyError> {
    let path = &config.recordings.key_file;
    let keys = match Keys::load(path) {
        Err(KeyError::Missing { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound
                && config.sip.is_loopback_only()
                && config.http.listen.ip().is_loopback() =>
        {
            let id = Keys::generate(path, now_ms)?;
            tracing::warn!(
                key_file = %path.display(),
                key = %id,
                "demo run on loopback: created a recording key file; keep it with the recordings \
                 (without it they cannot be heard), and give production its own (navbat keygen)"
            );
            Keys::load(path)?
        }
        other => other?,
    };
    keys.check(&config.media.recordings_dir)?;
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(dir: &Path) -> Keys {
        let path = dir.join("keys/recordings.key");
        Keys::generate(&path, 0).unwrap();
        Keys::load(&path).unwrap()
    }

    #[test]
    fn chunks_round_trip_and_are_bound_to_their_place() {
        let dir = tempfile::tempdir().unwrap();
        let k = keys(dir.path());
        let s = Sealed::new(&k);
        let plain = vec![7u8; CHUNK];
        let c0 = s.seal(0, &plain);
        assert_eq!(c0.len(), CHUNK + TAG);
        assert!(!c0.windows(32).any(|w| w == &plain[..32]));
        let reopened = Sealed::open(s.header(), &k).unwrap().unwrap();
        assert_eq!(reopened.unseal(0, &c0).unwrap(), plain);
        // The same chunk read as another index does not open.
        assert!(matches!(
            reopened.unseal(1, &c0),
            Err(OpenError::WrongKey { .. })
        ));
        // Half a header: not yet.
        assert!(Sealed::open(&s.header()[..10], &k).unwrap().is_none());
    }

    #[test]
    fn rotation_keeps_old_keys_and_a_wrong_or_missing_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/recordings.key");
        let first = Keys::generate(&path, 0).unwrap();
        let old = Keys::load(&path).unwrap();
        let rec = dir.path().join("recordings");
        old.check(&rec).unwrap();
        let s = Sealed::new(&old);
        let c = s.seal(0, b"hello");
        let second = Keys::generate(&path, 0).unwrap();
        assert_ne!(first, second);
        let rotated = Keys::load(&path).unwrap();
        assert_eq!(rotated.current(), second);
        rotated.check(&rec).unwrap();
        // An old recording still opens after rotation.
        let again = Sealed::open(s.header(), &rotated).unwrap().unwrap();
        assert_eq!(again.unseal(0, &c).unwrap(), b"hello");
        // Another key file (same ids, other keys): the start-up check names the file.
        let other_path = dir.path().join("other.key");
        let text = std::fs::read_to_string(&path).unwrap();
        let other: String = text
            .lines()
            .map(|l| match l.split_once(' ') {
                Some((id, _)) if !l.starts_with('#') => {
                    format!("{id} {}\n", hex::encode(rand::random::<[u8; 32]>()))
                }
                _ => format!("{l}\n"),
            })
            .collect();
        std::fs::write(&other_path, other).unwrap();
        let wrong = Keys::load(&other_path).unwrap();
        let err = wrong.check(&rec).unwrap_err();
        assert!(matches!(err, KeyError::WrongKey { .. }), "{err}");
        assert!(err.to_string().contains("other.key"), "{err}");
        let opened = Sealed::open(s.header(), &wrong).unwrap().unwrap();
        assert!(matches!(
            opened.unseal(0, &c),
            Err(OpenError::WrongKey { .. })
        ));
        // A key file without the first key.
        let short = dir.path().join("short.key");
        let last_line = text.lines().last().unwrap();
        std::fs::write(&short, format!("{last_line}\n")).unwrap();
        let err = Keys::load(&short).unwrap().check(&rec).unwrap_err();
        assert!(
            matches!(err, KeyError::UnknownKey { ref id, .. } if *id == first),
            "{err}"
        );
        // A missing key file names itself and the fix.
        let err = Keys::load(&dir.path().join("none.key")).unwrap_err();
        assert!(err.to_string().contains("none.key") && err.to_string().contains("navbat keygen"));
    }

    #[test]
    fn malformed_key_files_say_which_line() {
        let p = Path::new("/etc/navbat/recordings.key");
        for (text, line) in [
            ("k1 abcd\n", 1),
            ("# c\nk1\n", 2),
            ("k1 {}\nk1 {}\n", 2),
            ("bad/id {}\n", 1),
        ] {
            let text = text.replace("{}", &"ab".repeat(32));
            match Keys::parse(p, &text) {
                Err(KeyError::Malformed { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            Keys::parse(p, "# nothing\n"),
            Err(KeyError::Empty { .. })
        ));
    }
}
