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
use std::path::PathBuf;

pub(crate) use crate::keyfile::valid_id;
pub use crate::keyfile::{KeyError, Keys};

/// The first bytes of an encrypted recording (format version 1).
pub const MAGIC: &[u8; 8] = b"NVBREC\x00\x01";
/// Plain bytes per chunk: half a second of stereo 8 kHz 16-bit audio (one writer batch).
pub const CHUNK: usize = 16_000;
/// Bytes the tag adds to each chunk.
pub const TAG: usize = 16;

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
    use std::path::Path;

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
