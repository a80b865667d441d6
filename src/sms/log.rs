//! Where the SMS outbox survives a restart.
//!
//! [`OutboxLog`] is the interface the SMS actor writes through; it will move into the store
//! (journal + SQLite/Postgres) when that lands. Until then [`FileLog`] keeps an append-only
//! file of JSON lines under the data directory, synced after every record: a message is
//! written before its first attempt, every attempt result after it. Replaying the file gives
//! back every message that was neither sent nor given up, with its attempt count, so a
//! restart resumes retries with the same idempotency keys.

use super::Message;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// A new message.
    Queued(Message),
    /// An attempt failed and will be retried.
    Attempted {
        /// Message id.
        id: String,
        /// Attempts so far.
        attempts: u32,
    },
    /// The gateway took it.
    Sent {
        /// Message id.
        id: String,
    },
    /// Given up.
    Failed {
        /// Message id.
        id: String,
    },
}

/// Failure of the outbox log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The file could not be opened, read, written or synced.
    #[error(
        "SMS outbox log {path}: {source}; fix: check that the directory exists and is writable"
    )]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Durable storage of the outbox.
pub trait OutboxLog: Send {
    /// Every message neither sent nor given up, with its attempt count, in the order queued.
    fn replay(&mut self) -> Result<Vec<(Message, u32)>, LogError>;
    /// Appends one record durably (returns after it is on disk).
    fn append(&mut self, record: &Record) -> Result<(), LogError>;
}

/// An append-only JSON-lines file.
pub struct FileLog {
    path: PathBuf,
    file: File,
}

impl FileLog {
    /// Opens (creating it and its directory if needed) the log at `path`.
    pub fn open(path: &Path) -> Result<FileLog, LogError> {
        let io = |source| LogError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(io)?;
        let mut log = FileLog {
            path: path.to_path_buf(),
            file,
        };
        // After a crash mid-write the last line may be torn: end it, so the next record
        // starts on a line of its own (replay skips the torn one).
        let text = std::fs::read(path).map_err(|e| log.io(e))?;
        if text.last().is_some_and(|b| *b != b'\n') {
            log.file.write_all(b"\n").map_err(|e| log.io(e))?;
        }
        Ok(log)
    }

    fn io(&self, source: std::io::Error) -> LogError {
        LogError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

impl OutboxLog for FileLog {
    fn replay(&mut self) -> Result<Vec<(Message, u32)>, LogError> {
        let file = File::open(&self.path).map_err(|e| self.io(e))?;
        let mut order: Vec<String> = Vec::new();
        let mut open: BTreeMap<String, (Message, u32)> = BTreeMap::new();
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|e| self.io(e))?;
            // A torn last line (crash mid-write) is skipped: its message was never attempted.
            let Ok(record) = serde_json::from_str::<Record>(&line) else {
                continue;
            };
            match record {
                Record::Queued(m) => {
                    if !open.contains_key(&m.id) {
                        order.push(m.id.clone());
                        open.insert(m.id.clone(), (m, 0));
                    }
                }
                Record::Attempted { id, attempts } => {
                    if let Some(entry) = open.get_mut(&id) {
                        entry.1 = attempts;
                    }
                }
                Record::Sent { id } | Record::Failed { id } => {
                    open.remove(&id);
                }
            }
        }
        Ok(order
            .into_iter()
            .filter_map(|id| open.remove(&id))
            .collect())
    }

    fn append(&mut self, record: &Record) -> Result<(), LogError> {
        let mut line = serde_json::to_string(record).unwrap_or_default();
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .map_err(|e| self.io(e))?;
        self.file.sync_data().map_err(|e| self.io(e))
    }
}

#[cfg(test)]
mod tests {
    use super::super::MessageKind;
    use super::*;

    fn message(id: &str) -> Message {
        Message {
            id: id.into(),
            to: "+998901234567".into(),
            text: "salom".into(),
            kind: MessageKind::Deflection,
            tenant: "dtm".into(),
        }
    }

    #[test]
    fn replay_returns_what_is_still_unsent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sms/outbox.jsonl");
        {
            let mut log = FileLog::open(&path).unwrap();
            for id in ["a", "b", "c"] {
                log.append(&Record::Queued(message(id))).unwrap();
            }
            log.append(&Record::Attempted {
                id: "b".into(),
                attempts: 2,
            })
            .unwrap();
            log.append(&Record::Sent { id: "a".into() }).unwrap();
            log.append(&Record::Failed { id: "c".into() }).unwrap();
        }
        // A torn line at the end is ignored.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"record\":\"queu")
            .unwrap();
        let mut log = FileLog::open(&path).unwrap();
        log.append(&Record::Queued(message("d"))).unwrap();
        assert_eq!(
            log.replay().unwrap(),
            vec![(message("b"), 2), (message("d"), 0)]
        );
    }
}
