//! Attachments: size-limited, type-checked by their bytes (not by the name the sender gave),
//! kept once per content under the attachments directory, named by their SHA-256.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A file on a request's message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The name as sent, cleaned (no path, no control characters, at most 120 characters).
    pub file_name: String,
    /// The type found in its bytes.
    pub media_type: String,
    /// Size.
    pub bytes: u64,
    /// SHA-256 of the content, hex; also its file name in the attachments directory.
    pub sha256: String,
}

/// Why a file was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachError {
    /// Over the limit.
    #[error("the file is {bytes} bytes; at most {limit} are taken")]
    TooLarge {
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// Not a type the line takes.
    #[error(
        "files of this type are not taken (PDF, PNG, JPEG, Office documents and plain text are)"
    )]
    Type,
    /// Empty.
    #[error("the file is empty")]
    Empty,
    /// Could not be written.
    #[error("cannot keep the file in {dir}: {detail}; fix: check requests.attachments_dir is writable and the disk is not full")]
    Io {
        /// The directory.
        dir: PathBuf,
        /// The OS error.
        detail: String,
    },
}

/// The types taken, found by their first bytes. Office documents (docx, xlsx) are ZIP files;
/// a ZIP that is not one of them is refused.
pub fn sniff(bytes: &[u8], file_name: &str) -> Option<&'static str> {
    let lower = file_name.to_ascii_lowercase();
    if bytes.starts_with(b"%PDF-") {
        return Some("application/pdf");
    }
    if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]) {
        return Some("image/png");
    }
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        return Some("image/jpeg");
    }
    if bytes.starts_with(b"PK\x03\x04") {
        let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        if has(b"word/") && lower.ends_with(".docx") {
            return Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document");
        }
        if has(b"xl/") && lower.ends_with(".xlsx") {
            return Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
        }
        return None;
    }
    // Plain text: valid UTF-8 without control characters other than tab and line ends.
    if let Ok(text) = std::str::from_utf8(bytes) {
        if text
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
        {
            return Some(if lower.ends_with(".csv") {
                "text/csv"
            } else {
                "text/plain"
            });
        }
    }
    None
}

/// A name safe to show and to offer as a download name.
pub fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '<' | '>' | ':' | '*' | '?' | '|'))
        .take(120)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        "file".to_owned()
    } else {
        cleaned
    }
}

/// Checks a file against the limit and the types taken (pure).
pub fn check(bytes: &[u8], file_name: &str, limit: u64) -> Result<Attachment, AttachError> {
    let size = bytes.len() as u64;
    if size == 0 {
        return Err(AttachError::Empty);
    }
    if size > limit {
        return Err(AttachError::TooLarge { bytes: size, limit });
    }
    let media_type = sniff(bytes, file_name).ok_or(AttachError::Type)?;
    Ok(Attachment {
        file_name: clean_name(file_name),
        media_type: media_type.to_owned(),
        bytes: size,
        sha256: hex(&Sha256::digest(bytes)),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a checked attachment's content lives.
pub fn path_of(dir: &Path, sha256: &str) -> Option<PathBuf> {
    (sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit())).then(|| dir.join(sha256))
}

/// Writes the content (once per SHA-256) and fsyncs it, before the request's step names it.
pub fn keep(dir: &Path, attachment: &Attachment, bytes: &[u8]) -> Result<(), AttachError> {
    let io = |e: std::io::Error| AttachError::Io {
        dir: dir.to_path_buf(),
        detail: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let path = path_of(dir, &attachment.sha256).ok_or(AttachError::Type)?;
    if path.exists() {
        return Ok(());
    }
    let tmp = dir.join(format!(".{}.tmp{}", attachment.sha256, std::process::id()));
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(sniff(b"%PDF-1.7\n...", "x.exe"), Some("application/pdf"));
        assert_eq!(sniff(b"MZ\x90\x00\x03", "invoice.pdf"), None);
        assert_eq!(
            sniff("Salom, дорогие".as_bytes(), "a.txt"),
            Some("text/plain")
        );
        assert_eq!(sniff(b"PK\x03\x04....", "a.zip"), None);
        assert!(sniff(b"PK\x03\x04..word/document.xml", "a.docx").is_some());
        assert_eq!(sniff(b"\x00\x01binary", "a.txt"), None);
    }

    #[test]
    fn limits_and_names() {
        assert_eq!(
            check(&[b'a'; 11], "a.txt", 10),
            Err(AttachError::TooLarge {
                bytes: 11,
                limit: 10
            })
        );
        assert_eq!(check(b"", "a.txt", 10), Err(AttachError::Empty));
        let a = check(b"hello", "../../etc/passwd", 10).unwrap();
        assert_eq!(a.file_name, "passwd");
        assert_eq!(a.sha256.len(), 64);
        assert_eq!(clean_name("C:\\x\\..\\\"evil\".txt"), "evil.txt");
        assert_eq!(clean_name("..."), "file");
    }

    #[test]
    fn kept_once_under_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let a = check(b"%PDF-1.4 test", "a.pdf", 100).unwrap();
        keep(dir.path(), &a, b"%PDF-1.4 test").unwrap();
        keep(dir.path(), &a, b"%PDF-1.4 test").unwrap();
        let p = path_of(dir.path(), &a.sha256).unwrap();
        assert_eq!(std::fs::read(p).unwrap(), b"%PDF-1.4 test");
        assert!(path_of(dir.path(), "../x").is_none());
    }
}
