//! The append-only event journal: JSON lines in numbered segment files.
//!
//! One writer thread appends what the in-process buffer hands it and fsyncs after every batch
//! (group commit: a batch is whatever queued up during the previous fsync, at most
//! `journal_batch_events`). Only then is the new end published as *durable*; the database
//! writer reads up to that point and never past it. A line may carry an [`Ack`], sent once it
//! is fsynced (an SMS waits for it before its first attempt). Every process start opens a
//! fresh segment, so a line torn by `kill -9` can only be the last line of an older segment,
//! where the reader skips it (it never was durable, so no caller saw it acknowledged). A segment is deleted once
//! the database holds everything in it; the position reached is kept in the `cursor` file.
//!
//! A `LOCK` file (an OS file lock) keeps a second process off the same directory.

use super::record::JournalEntry;
use super::StoreError;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

const SEGMENT_SUFFIX: &str = ".jnl";
const CURSOR_FILE: &str = "cursor";
/// Least time from one journal write + fsync to the next while the writer keeps pace: an
/// event waits at most this long (plus the fsync) before it is durable.
const GROUP_COMMIT: std::time::Duration = std::time::Duration::from_millis(10);

/// A place in the journal: a segment and a byte offset inside it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// Segment number (file `000000000042.jnl`).
    pub segment: u64,
    /// Bytes from the start of the segment.
    pub offset: u64,
}

/// What the writer publishes and the reader waits on.
#[derive(Debug, Default)]
pub struct Durable {
    end: Mutex<Position>,
    /// Events fsynced by this process.
    pub events: AtomicU64,
    /// Set when a write or fsync failed (disk full, I/O error): events are being lost.
    pub failures: AtomicU64,
    /// Woken after each fsync.
    pub notify: tokio::sync::Notify,
}

impl Durable {
    /// Everything before this position is on disk.
    pub fn end(&self) -> Position {
        *self.end.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, end: Position, events: u64) {
        *self.end.lock().unwrap_or_else(|e| e.into_inner()) = end;
        self.events.fetch_add(events, Ordering::Release);
        self.notify.notify_one();
    }
}

/// The file of segment `segment`.
pub(crate) fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:012}{SEGMENT_SUFFIX}"))
}

/// Segment numbers present in `dir`, ascending.
pub fn segments(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| StoreError::journal(dir, "list", e))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name
            .strip_suffix(SEGMENT_SUFFIX)
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Holds the directory lock for the life of the process.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// Creates `dir` if needed and takes its lock; fails if another process holds it.
pub fn lock_dir(dir: &Path) -> Result<DirLock, StoreError> {
    fs::create_dir_all(dir).map_err(|e| StoreError::journal(dir, "create", e))?;
    let path = dir.join("LOCK");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::journal(&path, "open", e))?;
    match file.try_lock() {
        Ok(()) => Ok(DirLock { _file: file }),
        Err(_) => Err(StoreError::JournalInUse {
            dir: dir.to_path_buf(),
        }),
    }
}

/// The drained position saved in `dir/cursor`, or the start of the oldest segment.
///
/// The file is one fixed-width line `segment offset check` (see [`save_cursor`]). A line
/// whose check does not match (a write torn by a crash) is ignored: the journal is then
/// read again from its oldest segment, which only repeats idempotent inserts.
pub fn load_cursor(dir: &Path) -> Position {
    let text = fs::read_to_string(dir.join(CURSOR_FILE)).unwrap_or_default();
    let mut parts = text.split_whitespace().map(|p| p.parse::<u64>());
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(segment)), Some(Ok(offset)), Some(Ok(check)))
            if check == cursor_check(segment, offset) =>
        {
            Position { segment, offset }
        }
        // The two-field form written by earlier versions (write + rename, never torn).
        (Some(Ok(segment)), Some(Ok(offset)), None) => Position { segment, offset },
        _ => Position::default(),
    }
}

/// The check number written after a cursor's two fields.
fn cursor_check(segment: u64, offset: u64) -> u64 {
    (segment.rotate_left(32) ^ offset ^ 0x6e61_7662_6174_6375).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Saves the drained position: one fixed-width line overwritten in place, without a sync.
///
/// The cursor only says how much of the journal is already in the database. A cursor that
/// a crash left behind (not yet written back) or tore (its check fails, see [`load_cursor`])
/// makes the next start read more of the journal again, and every insert is idempotent, so
/// it needs no fsync and no new file per batch: creating and renaming a file per batch cost
/// ext4 an inode allocation each time (seen in perf under load).
pub fn save_cursor(dir: &Path, at: Position) -> Result<(), StoreError> {
    let path = dir.join(CURSOR_FILE);
    let line = format!(
        "{:020} {:020} {:020}\n",
        at.segment,
        at.offset,
        cursor_check(at.segment, at.offset)
    );
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::journal(&path, "open", e))?;
    std::os::unix::fs::FileExt::write_all_at(&file, line.as_bytes(), 0)
        .map_err(|e| StoreError::journal(&path, "write", e))?;
    // A file left by the older two-field format may be longer than the line.
    if file.metadata().map(|m| m.len()).unwrap_or(0) > line.len() as u64 {
        file.set_len(line.len() as u64)
            .map_err(|e| StoreError::journal(&path, "truncate", e))?;
    }
    Ok(())
}

/// Replaces a segment's bytes (sealing older entries, [`super::sealing::seal_journal`]): a
/// temporary file, fsynced, renamed over the segment, then the directory fsynced.
pub fn replace_segment(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("jnl.tmp");
    let mut file = File::create(&tmp).map_err(|e| StoreError::journal(&tmp, "create", e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| StoreError::journal(&tmp, "write", e))?;
    fs::rename(&tmp, path).map_err(|e| StoreError::journal(path, "replace", e))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::journal(dir, "sync", e))?;
    }
    Ok(())
}

/// Deletes the segments wholly before `segment` (drained into the database).
pub fn drop_segments_before(dir: &Path, segment: u64) -> Result<(), StoreError> {
    for s in segments(dir)? {
        if s < segment {
            let path = segment_path(dir, s);
            fs::remove_file(&path).map_err(|e| StoreError::journal(&path, "remove", e))?;
        }
    }
    Ok(())
}

/// Told once the line it rode on is fsynced (dropped unsent if the writer ends first).
pub type Ack = tokio::sync::oneshot::Sender<()>;

/// What the writer appends: one JSON line, and possibly someone waiting for it to be on disk
/// (an SMS is durable before its first attempt, a callback before it is confirmed).
pub trait Line: serde::Serialize {
    /// The waiter, if any; taken once by the writer.
    fn take_ack(&mut self) -> Option<Ack> {
        None
    }
}

impl Line for JournalEntry {}

impl<T: Line> Line for Box<T> {
    fn take_ack(&mut self) -> Option<Ack> {
        T::take_ack(self)
    }
}

/// Starts the writer thread on a fresh segment after every existing one; returns the
/// shared durable state. The thread ends when every sender is dropped.
pub fn start_writer<T: Line + Send + 'static>(
    dir: &Path,
    rx: mpsc::Receiver<T>,
    batch_events: usize,
    segment_bytes: u64,
) -> Result<Arc<Durable>, StoreError> {
    let first = segments(dir)?.last().map(|n| n + 1).unwrap_or(1);
    let path = segment_path(dir, first);
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(|e| StoreError::journal(&path, "create", e))?;
    let durable = Arc::new(Durable::default());
    durable.publish(
        Position {
            segment: first,
            offset: 0,
        },
        0,
    );
    let shared = durable.clone();
    let dir = dir.to_path_buf();
    std::thread::Builder::new()
        .name("navbat-journal".into())
        .spawn(move || {
            write_loop(
                &dir,
                rx,
                batch_events.max(1),
                segment_bytes,
                first,
                file,
                &shared,
            )
        })
        .map_err(|e| StoreError::journal(&path, "spawn the writer for", e))?;
    Ok(durable)
}

fn write_loop<T: Line>(
    dir: &Path,
    rx: mpsc::Receiver<T>,
    batch_events: usize,
    segment_bytes: u64,
    mut segment: u64,
    mut file: File,
    durable: &Durable,
) {
    let mut offset = 0u64;
    let mut buf: Vec<u8> = Vec::with_capacity(256 * 1024);
    let mut acks: Vec<Ack> = Vec::new();
    while let Ok(first) = rx.recv() {
        buf.clear();
        let mut count = 0u64;
        let mut next = Some(first);
        while let Some(mut entry) = next.take() {
            if let Some(ack) = entry.take_ack() {
                acks.push(ack);
            }
            if serde_json::to_writer(&mut buf, &entry).is_ok() {
                buf.push(b'\n');
                count += 1;
            }
            if count < batch_events as u64 {
                next = rx.try_recv().ok();
            }
        }
        // A failed write is retried until it succeeds: the buffer in front of us absorbs the
        // wait (and sheds, counted, if it fills), but nothing already taken is dropped.
        let mut attempt = 0u32;
        let synced_at = std::time::Instant::now();
        loop {
            match file.write_all(&buf).and_then(|()| file.sync_data()) {
                Ok(()) => break,
                Err(e) => {
                    durable.failures.fetch_add(1, Ordering::Relaxed);
                    if attempt.is_multiple_of(50) {
                        tracing::error!(error = %e, segment, "journal write failed; retrying (fix: free disk space or check the journal disk)");
                    }
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    // Start a fresh segment so a partly written batch is never followed by
                    // a repeat of itself in the same file; the reader skips the torn tail.
                    if let Ok(f) = OpenOptions::new()
                        .create_new(true)
                        .append(true)
                        .open(segment_path(dir, segment + 1))
                    {
                        segment += 1;
                        file = f;
                        offset = 0;
                    }
                }
            }
        }
        offset += buf.len() as u64;
        durable.publish(Position { segment, offset }, count);
        // Before the pause below: a waiter's line is on disk now.
        for ack in acks.drain(..) {
            // The waiter may have gone (its actor stopped): nothing to tell.
            let _ = ack.send(());
        }
        // Group commit: a batch that did not fill up means events trickle in; let them
        // gather for GROUP_COMMIT before the next write and fsync, so that at a thousand
        // calls a second the disk sees a hundred syncs a second, not one per handful of
        // events (each fsync costs the kernel a block write of the segment and its inode).
        if count < batch_events as u64 {
            let since = synced_at.elapsed();
            if since < GROUP_COMMIT {
                std::thread::sleep(GROUP_COMMIT - since);
            }
        }
        if offset >= segment_bytes {
            if let Ok(f) = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(segment_path(dir, segment + 1))
            {
                segment += 1;
                file = f;
                offset = 0;
                durable.publish(Position { segment, offset }, 0);
            }
        }
    }
}

/// Reads entries from a position up to the durable end.
#[derive(Debug)]
pub struct Reader {
    dir: PathBuf,
    at: Position,
    file: Option<BufReader<File>>,
    /// Lines that were not valid entries (skipped, counted).
    pub corrupt: u64,
}

impl Reader {
    /// A reader starting at `at` (the saved cursor).
    pub fn new(dir: &Path, at: Position) -> Reader {
        Reader {
            dir: dir.to_path_buf(),
            at,
            file: None,
            corrupt: 0,
        }
    }

    /// Where the next read starts.
    pub fn position(&self) -> Position {
        self.at
    }

    /// Moves back to `at` (after a failed database write the same entries are read again).
    pub fn rewind(&mut self, at: Position) {
        self.at = at;
        self.file = None;
    }

    fn next_segment(&mut self, end: Position) -> Result<bool, StoreError> {
        let next = segments(&self.dir)?
            .into_iter()
            .find(|&n| n > self.at.segment && n <= end.segment);
        self.file = None;
        match next {
            Some(segment) => {
                self.at = Position { segment, offset: 0 };
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Up to `max` entries after the current position, none past `end`; with each, the
    /// position just after it.
    pub fn read(
        &mut self,
        max: usize,
        end: Position,
    ) -> Result<Vec<(JournalEntry, Position)>, StoreError> {
        let mut out = Vec::new();
        let mut line = Vec::with_capacity(512);
        while out.len() < max {
            if self.at.segment > end.segment
                || (self.at.segment == end.segment && self.at.offset >= end.offset)
            {
                break;
            }
            if self.file.is_none() {
                let path = segment_path(&self.dir, self.at.segment);
                match File::open(&path) {
                    Ok(mut f) => {
                        f.seek(SeekFrom::Start(self.at.offset))
                            .map_err(|e| StoreError::journal(&path, "seek", e))?;
                        self.file = Some(BufReader::with_capacity(256 * 1024, f));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        if self.next_segment(end)? {
                            continue;
                        }
                        break;
                    }
                    Err(e) => return Err(StoreError::journal(&path, "open", e)),
                }
            }
            let Some(file) = self.file.as_mut() else {
                break;
            };
            line.clear();
            let n = file.read_until(b'\n', &mut line).map_err(|e| {
                StoreError::journal(&segment_path(&self.dir, self.at.segment), "read", e)
            })? as u64;
            let older = self.at.segment < end.segment;
            if n == 0 || line.last() != Some(&b'\n') {
                // End of the segment, or a torn last line left by a crash: only an older
                // segment is finished; the current one may still grow.
                if older && self.next_segment(end)? {
                    continue;
                }
                self.file = None;
                break;
            }
            if !older && self.at.offset + n > end.offset {
                self.file = None;
                break;
            }
            self.at.offset += n;
            match serde_json::from_slice::<JournalEntry>(&line) {
                Ok(entry) => out.push((entry, self.at)),
                Err(e) => {
                    self.corrupt += 1;
                    tracing::error!(error = %e, segment = self.at.segment, "corrupt journal line skipped");
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> JournalEntry {
        JournalEntry {
            uid: format!("n:b:{seq}"),
            node: "n".into(),
            boot: "b".into(),
            seq,
            at_ms: seq,
            event: serde_json::value::RawValue::from_string(
                serde_json::json!({"kind":"surge_changed","tenant":"t","on":true,"by":"x"})
                    .to_string(),
            )
            .unwrap(),
            caller: None,
            caller_lookup: None,
            repeat: None,
            surge: false,
            record: None,
        }
    }

    fn wait_durable(d: &Durable, events: u64) {
        // Waits on the writer's progress, not on time.
        while d.events.load(Ordering::Acquire) < events {
            std::thread::yield_now();
        }
    }

    #[test]
    fn written_entries_read_back_in_order_across_segments_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::sync_channel(100);
        let durable = start_writer(dir.path(), rx, 4, 200).unwrap();
        for i in 1..=20 {
            tx.send(entry(i)).unwrap();
        }
        wait_durable(&durable, 20);
        drop(tx);
        assert!(
            segments(dir.path()).unwrap().len() > 2,
            "small segments rotate"
        );
        // A torn line at the end of an old segment (kill -9 mid-write) is skipped.
        let last = *segments(dir.path()).unwrap().last().unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(segment_path(dir.path(), last))
            .unwrap();
        f.write_all(b"{\"uid\":\"torn").unwrap();
        // "Restart": a new writer starts a new segment after the old ones.
        let (tx2, rx2) = mpsc::sync_channel(100);
        let durable2 = start_writer(dir.path(), rx2, 4, 1 << 20).unwrap();
        tx2.send(entry(21)).unwrap();
        wait_durable(&durable2, 1);
        let mut reader = Reader::new(dir.path(), load_cursor(dir.path()));
        let mut seqs = Vec::new();
        loop {
            let batch = reader.read(7, durable2.end()).unwrap();
            if batch.is_empty() {
                break;
            }
            seqs.extend(batch.iter().map(|(e, _)| e.seq));
            let at = batch.last().unwrap().1;
            save_cursor(dir.path(), at).unwrap();
            drop_segments_before(dir.path(), at.segment).unwrap();
        }
        assert_eq!(seqs, (1..=21).collect::<Vec<_>>());
        assert_eq!(reader.corrupt, 0);
        // Drained segments are gone; reading again from the cursor yields nothing.
        assert_eq!(segments(dir.path()).unwrap().len(), 1);
        let mut again = Reader::new(dir.path(), load_cursor(dir.path()));
        assert!(again.read(100, durable2.end()).unwrap().is_empty());
    }

    #[test]
    fn cursor_overwrites_in_place_and_a_torn_one_means_read_again() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_cursor(dir.path()), Position::default());
        // The older two-field form still loads, and is replaced by the checked one.
        fs::write(dir.path().join(CURSOR_FILE), "7 123456789\n").unwrap();
        let old = load_cursor(dir.path());
        assert_eq!((old.segment, old.offset), (7, 123_456_789));
        let at = Position {
            segment: 8,
            offset: 42,
        };
        save_cursor(dir.path(), at).unwrap();
        assert_eq!(load_cursor(dir.path()), at);
        let later = Position {
            segment: 8,
            offset: 9_000,
        };
        save_cursor(dir.path(), later).unwrap();
        assert_eq!(load_cursor(dir.path()), later);
        // A torn write (digits of two cursors mixed) fails its check: start from the oldest.
        let text = fs::read_to_string(dir.path().join(CURSOR_FILE)).unwrap();
        let torn = text.replacen("9000", "9999", 1);
        assert_ne!(torn, text);
        fs::write(dir.path().join(CURSOR_FILE), torn).unwrap();
        assert_eq!(load_cursor(dir.path()), Position::default());
    }

    #[test]
    fn a_second_process_cannot_take_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let _held = lock_dir(dir.path()).unwrap();
        assert!(matches!(
            lock_dir(dir.path()),
            Err(StoreError::JournalInUse { .. })
        ));
    }
}
