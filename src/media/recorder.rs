//! Call recording (D19, C9): stereo WAV, caller left, operator right, 8 kHz 16-bit.
//!
//! Media tasks never touch the disk. A [`Recording`] collects half a second of 20 ms frames
//! and hands them to one writer thread through a bounded queue (a batch that does not fit
//! is counted as shed, never waited for): two hand-offs per call per second rather than 50,
//! because waking the writer for every frame of every call cost more than the audio work
//! (`BENCHMARKS.md`, "Media"). The writer keeps a buffered file per recording and rewrites
//! the WAV header every second, so a file is valid while it grows (the HTTP API serves it in
//! progress, one to two seconds behind) and after a crash loses at most the last two
//! seconds. On close (also when the call ends abruptly: the recording is dropped) it
//! writes what is pending and the final header, hashes the file and reports.
//!
//! With keys ([`Recorder::with_keys`], as `navbat run` always has), a recording is written
//! encrypted instead (`.nvbrec`, format in `crate::recordings::seal`): the samples in sealed
//! half-second chunks, each written as it fills, so the file grows as a live call goes on.
//! Without keys (benchmarks, unit tests) it is a plain WAV.

use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

/// Samples per channel in one frame (20 ms at 8 kHz).
pub const FRAME: usize = 160;
/// Frames between header rewrites (one second).
const FLUSH_EVERY: u64 = 50;
/// Frames a recording collects before handing them to the writer (half a second).
pub const BATCH_FRAMES: usize = 25;
/// Interleaved stereo samples in one frame.
const FRAME_SAMPLES: usize = FRAME * 2;
/// Bytes of the WAV header hound writes for [`spec`].
const HEADER_BYTES: u64 = 44;
/// `tenant` of recordings opened without one.
pub const NO_TENANT: &str = "none";

/// A finished recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingDone {
    /// The call id.
    pub call: String,
    /// The tenant given to [`Recorder::open_for`].
    pub tenant: String,
    /// The file.
    pub path: PathBuf,
    /// Audio length.
    pub duration_ms: u64,
    /// File size.
    pub bytes: u64,
    /// Lowercase hex SHA-256 of the file as stored (encrypted, if it is).
    pub sha256: String,
    /// The key it is encrypted with; `None`: a plain WAV.
    pub key_id: Option<String>,
    /// Frames lost because the writer queue was full.
    pub frames_shed: u64,
}

/// Called on the writer thread when a recording is closed.
pub type OnDone = Box<dyn FnOnce(Result<RecordingDone, String>) + Send>;

enum Job {
    Open {
        id: u64,
        call: String,
        tenant: String,
        path: PathBuf,
        // Boxed: the cipher's key schedule would make every job as big.
        sealed: Option<Box<crate::recordings::seal::Sealed>>,
    },
    /// Whole frames of interleaved stereo samples (left, right, left, ...).
    Frames {
        id: u64,
        samples: Vec<i16>,
    },
    Close {
        id: u64,
        shed: u64,
        done: OnDone,
    },
}

/// Counters of the writer.
#[derive(Debug, Default)]
pub struct RecorderCounters {
    /// Frames written.
    pub frames: AtomicU64,
    /// Frames dropped because the queue was full.
    pub shed: AtomicU64,
    /// Recordings that failed (cannot create or write the file).
    pub failures: AtomicU64,
    /// Recordings in progress.
    pub open: AtomicU64,
    /// Bytes written to recording files (headers included), all tenants.
    pub bytes: AtomicU64,
    /// Bytes written, by the tenant given to [`Recorder::open_for`] (a bounded set: the
    /// configured tenants and [`NO_TENANT`]).
    bytes_by_tenant: Mutex<BTreeMap<String, u64>>,
}

impl RecorderCounters {
    /// Bytes written so far, by tenant.
    pub fn bytes_by_tenant(&self) -> Vec<(String, u64)> {
        let map = self
            .bytes_by_tenant
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(t, b)| (t.clone(), *b)).collect()
    }

    fn add_bytes(&self, tenant: &str, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        let mut map = self
            .bytes_by_tenant
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match map.get_mut(tenant) {
            Some(b) => *b += n,
            None => {
                map.insert(tenant.to_string(), n);
            }
        }
    }
}

/// The writer thread and its queue. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: SyncSender<Job>,
    next: Arc<AtomicU64>,
    dir: PathBuf,
    /// Where other nodes fetch this node's recordings from (`[recordings] node_url`).
    node_url: Option<String>,
    /// The recording keys; `None`: plain WAV files.
    keys: Option<Arc<crate::recordings::seal::Keys>>,
    /// Counters.
    pub counters: Arc<RecorderCounters>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("dir", &self.dir).finish()
    }
}

/// Why recording cannot start.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// The directory cannot be created.
    #[error("cannot create the recordings directory {dir}: {source}; fix: set media.recordings_dir to a writable directory")]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The writer thread cannot be started.
    #[error("cannot start the recording writer: {0}")]
    Thread(std::io::Error),
}

impl Recorder {
    /// Starts the writer over `dir` with a queue of about `capacity` frames (held as
    /// one-second batches). Recordings go to a subdirectory of `dir` of their own for this
    /// run of navbat (UTC start time and a random tag, e.g. `20261123T191100Z-3fa9c2`): call
    /// ids start again at `c1` after every restart, and must never overwrite (or, over HTTP,
    /// be served as) an earlier run's recording (D19, C9). One directory per run also keeps
    /// directories small for the filesystem.
    pub fn start(dir: &Path, capacity: usize) -> Result<Recorder, RecorderError> {
        let dir_error = |dir: &Path, source| RecorderError::Dir {
            dir: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| dir_error(dir, e))?;
        // A new directory, never one another run already uses (create_dir fails if it exists).
        let mut attempt = 0;
        let run_dir = loop {
            let run = dir.join(format!(
                "{}-{:06x}",
                jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ"),
                rand::random::<u32>() & 0xff_ffff
            ));
            match std::fs::create_dir(&run) {
                Ok(()) => break run,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 8 => {
                    attempt += 1;
                }
                Err(e) => return Err(dir_error(&run, e)),
            }
        };
        let dir = run_dir.as_path();
        let (tx, rx) = sync_channel((capacity / BATCH_FRAMES).max(16));
        let counters = Arc::new(RecorderCounters::default());
        let c = counters.clone();
        std::thread::Builder::new()
            .name("navbat-recorder".into())
            .spawn(move || write_loop(rx, c))
            .map_err(RecorderError::Thread)?;
        Ok(Recorder {
            tx,
            next: Arc::new(AtomicU64::new(1)),
            dir: dir.to_path_buf(),
            node_url: None,
            keys: None,
            counters,
        })
    }

    /// The same recorder, naming `url` as the address other nodes fetch its recordings from
    /// (it goes into each recording's index row).
    pub fn with_node_url(mut self, url: Option<String>) -> Recorder {
        self.node_url = url;
        self
    }

    /// The same recorder, encrypting every recording from now on with the current key of
    /// `keys`.
    pub fn with_keys(mut self, keys: Arc<crate::recordings::seal::Keys>) -> Recorder {
        self.keys = Some(keys);
        self
    }

    /// The recording keys, if recordings are encrypted.
    pub fn keys(&self) -> Option<&Arc<crate::recordings::seal::Keys>> {
        self.keys.as_ref()
    }

    /// The key new recordings are encrypted with.
    pub fn key_id(&self) -> Option<&str> {
        self.keys.as_deref().map(|k| k.current())
    }

    /// The address other nodes fetch this node's recordings from.
    pub fn node_url(&self) -> Option<&str> {
        self.node_url.as_deref()
    }

    /// The directory this run's recordings go to (a subdirectory of `media.recordings_dir`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the recording of `call` is (or will be) written.
    pub fn path_for(&self, call: &str) -> PathBuf {
        let ext = if self.keys.is_some() { "nvbrec" } else { "wav" };
        self.dir.join(format!("{}.{ext}", sanitise(call)))
    }

    /// Starts recording `call` (bytes counted under [`NO_TENANT`]).
    pub fn open(&self, call: &str) -> Recording {
        self.open_for(call, NO_TENANT)
    }

    /// Starts recording `call` of `tenant` (a configured tenant id: it becomes a metric
    /// label value).
    pub fn open_for(&self, call: &str, tenant: &str) -> Recording {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.path_for(call);
        // Open and Close wait for room: they are rare and must never be lost.
        let sealed = self
            .keys
            .as_deref()
            .map(|k| Box::new(crate::recordings::seal::Sealed::new(k)));
        let _ = self.tx.send(Job::Open {
            id,
            call: call.to_string(),
            tenant: tenant.to_string(),
            path,
            sealed,
        });
        Recording {
            id,
            tx: self.tx.clone(),
            counters: self.counters.clone(),
            pending: Vec::with_capacity(BATCH_FRAMES * FRAME_SAMPLES),
            shed: 0,
            done: None,
        }
    }
}

/// File names keep only safe characters of a call id.
fn sanitise(call: &str) -> String {
    call.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One recording in progress, owned by a media task. Dropping it closes the file.
pub struct Recording {
    id: u64,
    tx: SyncSender<Job>,
    counters: Arc<RecorderCounters>,
    /// Frames not yet handed to the writer.
    pending: Vec<i16>,
    shed: u64,
    done: Option<OnDone>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording").field("id", &self.id).finish()
    }
}

impl Recording {
    /// Adds 20 ms: `left` (caller) and `right` (operator), [`FRAME`] samples each. Every
    /// [`BATCH_FRAMES`] frames go to the writer together.
    pub fn push(&mut self, left: &[i16], right: &[i16]) {
        for i in 0..FRAME {
            self.pending.push(left.get(i).copied().unwrap_or(0));
            self.pending.push(right.get(i).copied().unwrap_or(0));
        }
        if self.pending.len() >= BATCH_FRAMES * FRAME_SAMPLES {
            self.hand_over();
        }
    }

    /// Sends the pending frames to the writer without waiting; counted as shed if full.
    fn hand_over(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let samples = std::mem::replace(
            &mut self.pending,
            Vec::with_capacity(BATCH_FRAMES * FRAME_SAMPLES),
        );
        let frames = (samples.len() / FRAME_SAMPLES) as u64;
        match self.tx.try_send(Job::Frames {
            id: self.id,
            samples,
        }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.shed += frames;
                self.counters.shed.fetch_add(frames, Ordering::Relaxed);
            }
        }
    }

    /// What to call when the file is closed.
    pub fn on_done(&mut self, done: OnDone) {
        self.done = Some(done);
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        self.hand_over();
        let done = self.done.take().unwrap_or_else(|| Box::new(|_| {}));
        let _ = self.tx.send(Job::Close {
            id: self.id,
            shed: self.shed,
            done,
        });
    }
}

struct OpenFile {
    call: String,
    tenant: String,
    path: PathBuf,
    writer: Option<Sink>,
    frames: u64,
    error: Option<String>,
}

/// The WAV format of recordings.
pub fn spec() -> hound::WavSpec {
    hound::WavSpec {
        channels: 2,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    }
}

/// Where a recording's samples go.
enum Sink {
    Wav(hound::WavWriter<BufWriter<std::fs::File>>),
    Sealed(Box<SealedSink>),
}

/// An encrypted recording being written: samples gather into chunks of
/// [`crate::recordings::seal::CHUNK`] bytes, each sealed and written out as it fills.
struct SealedSink {
    file: BufWriter<std::fs::File>,
    sealed: Box<crate::recordings::seal::Sealed>,
    index: u64,
    pending: Vec<u8>,
    /// The file is written front to back once: its SHA-256 and size are taken on the way
    /// (a WAV's header is rewritten at the end, so a WAV file is read back instead).
    hasher: Sha256,
    bytes: u64,
}

/// A finished sealed recording: bytes written by the last seal, the file's size and hash.
struct SealedDone {
    written: u64,
    bytes: u64,
    sha256: String,
}

impl SealedSink {
    fn create(
        path: &Path,
        sealed: Box<crate::recordings::seal::Sealed>,
    ) -> std::io::Result<SealedSink> {
        use std::io::Write;
        let mut file = BufWriter::new(std::fs::File::create(path)?);
        file.write_all(sealed.header())?;
        file.flush()?;
        let hasher = Sha256::new_with_prefix(sealed.header());
        let bytes = sealed.header().len() as u64;
        Ok(SealedSink {
            file,
            sealed,
            index: 0,
            pending: Vec::with_capacity(crate::recordings::seal::CHUNK * 2),
            hasher,
            bytes,
        })
    }

    /// Adds samples; returns the bytes written to the file.
    fn write(&mut self, samples: &[i16]) -> std::io::Result<u64> {
        use crate::recordings::seal::CHUNK;
        for s in samples {
            self.pending.extend_from_slice(&s.to_le_bytes());
        }
        let mut written = 0;
        while self.pending.len() >= CHUNK {
            written += self.seal_out(CHUNK)?;
        }
        if written > 0 {
            // Out to the file at once: a live call's recording is read from it.
            std::io::Write::flush(&mut self.file)?;
        }
        Ok(written)
    }

    fn seal_out(&mut self, n: usize) -> std::io::Result<u64> {
        use std::io::Write;
        let sealed = self.sealed.seal(self.index, &self.pending[..n]);
        self.file.write_all(&sealed)?;
        self.hasher.update(&sealed);
        self.bytes += sealed.len() as u64;
        self.pending.drain(..n);
        self.index += 1;
        Ok(sealed.len() as u64)
    }

    /// Seals what is left (a last, shorter chunk) and flushes.
    fn finish(mut self) -> std::io::Result<SealedDone> {
        let n = self.pending.len();
        let written = if n > 0 { self.seal_out(n)? } else { 0 };
        std::io::Write::flush(&mut self.file)?;
        self.file.get_ref().sync_data()?;
        Ok(SealedDone {
            written,
            bytes: self.bytes,
            sha256: hex::encode(self.hasher.finalize()),
        })
    }
}

fn write_loop(rx: Receiver<Job>, counters: Arc<RecorderCounters>) {
    let mut files: HashMap<u64, OpenFile> = HashMap::new();
    while let Ok(job) = rx.recv() {
        match job {
            Job::Open {
                id,
                call,
                tenant,
                path,
                sealed,
            } => {
                let created = match sealed {
                    Some(sealed) => {
                        let header = sealed.header().len() as u64;
                        SealedSink::create(&path, sealed)
                            .map(|w| (Sink::Sealed(Box::new(w)), header))
                            .map_err(|e| e.to_string())
                    }
                    None => hound::WavWriter::create(&path, spec())
                        .map(|w| (Sink::Wav(w), HEADER_BYTES))
                        .map_err(|e| e.to_string()),
                };
                let (writer, error) = match created {
                    Ok((w, header)) => {
                        counters.add_bytes(&tenant, header);
                        (Some(w), None)
                    }
                    Err(e) => {
                        counters.failures.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(path = %path.display(), error = %e, "cannot create recording");
                        (None, Some(e.to_string()))
                    }
                };
                counters.open.fetch_add(1, Ordering::Relaxed);
                files.insert(
                    id,
                    OpenFile {
                        call,
                        tenant,
                        path,
                        writer,
                        frames: 0,
                        error,
                    },
                );
            }
            Job::Frames { id, samples } => {
                let Some(f) = files.get_mut(&id) else {
                    continue;
                };
                let Some(w) = f.writer.as_mut() else { continue };
                let frames = (samples.len() / FRAME_SAMPLES) as u64;
                let samples = &samples[..frames as usize * FRAME_SAMPLES];
                let before = f.frames;
                f.frames += frames;
                counters.frames.fetch_add(frames, Ordering::Relaxed);
                let result: Result<(), String> = match w {
                    Sink::Wav(w) => {
                        let mut result = Ok(());
                        {
                            let mut sw = w.get_i16_writer(samples.len() as u32);
                            for s in samples {
                                sw.write_sample(*s);
                            }
                            if let Err(e) = sw.flush() {
                                result = Err(e.to_string());
                            }
                        }
                        counters.add_bytes(&f.tenant, samples.len() as u64 * 2);
                        if result.is_ok() && before / FLUSH_EVERY != f.frames / FLUSH_EVERY {
                            result = w.flush().map_err(|e| e.to_string());
                        }
                        result
                    }
                    Sink::Sealed(w) => match w.write(samples) {
                        Ok(n) => {
                            counters.add_bytes(&f.tenant, n);
                            Ok(())
                        }
                        Err(e) => Err(e.to_string()),
                    },
                };
                if let Err(e) = result {
                    counters.failures.fetch_add(1, Ordering::Relaxed);
                    f.error = Some(e);
                    f.writer = None;
                }
            }
            Job::Close { id, shed, done } => {
                let Some(mut f) = files.remove(&id) else {
                    done(Err("recording was never opened".into()));
                    continue;
                };
                counters.open.fetch_sub(1, Ordering::Relaxed);
                let mut key_id = None;
                let mut hashed = None;
                match f.writer.take() {
                    Some(Sink::Wav(w)) => {
                        if let Err(e) = w.finalize() {
                            f.error = Some(e.to_string());
                        }
                    }
                    Some(Sink::Sealed(w)) => {
                        key_id = Some(w.sealed.key_id().to_owned());
                        match w.finish() {
                            Ok(d) => {
                                counters.add_bytes(&f.tenant, d.written);
                                hashed = Some((d.bytes, d.sha256));
                            }
                            Err(e) => f.error = Some(e.to_string()),
                        }
                    }
                    None => {}
                }
                let result = match f.error {
                    Some(e) => Err(format!("{}: {e}", f.path.display())),
                    None => hashed
                        .map_or_else(|| hash_file(&f.path), Ok)
                        .map(|(bytes, sha256)| RecordingDone {
                            call: f.call,
                            tenant: f.tenant,
                            path: f.path.clone(),
                            duration_ms: f.frames * 20,
                            bytes,
                            sha256,
                            key_id,
                            frames_shed: shed,
                        })
                        .map_err(|e| format!("{}: {e}", f.path.display())),
                };
                done(result);
            }
        }
    }
}

fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((total, hex::encode(hasher.finalize())))
}

/// Makes the bytes of a WAV file that may still be growing self-consistent: the RIFF and
/// `data` sizes are set to what is actually there (whole sample frames only). Used to serve
/// a recording in progress. Returns `None` when the bytes are not a RIFF/WAVE file.
pub fn snapshot(mut bytes: Vec<u8>) -> Option<Vec<u8>> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let mut pos = 12;
    let mut block_align = 1usize;
    while pos + 8 <= bytes.len() {
        let id = [bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]];
        let size = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]) as usize;
        if &id == b"fmt " && pos + 22 <= bytes.len() {
            block_align =
                usize::from(u16::from_le_bytes([bytes[pos + 20], bytes[pos + 21]])).max(1);
        }
        if &id == b"data" {
            let start = pos + 8;
            let available = bytes.len() - start;
            let data = available - available % block_align;
            bytes.truncate(start + data);
            bytes[pos + 4..pos + 8].copy_from_slice(&(data as u32).to_le_bytes());
            let riff = (bytes.len() - 8) as u32;
            bytes[4..8].copy_from_slice(&riff.to_le_bytes());
            return Some(bytes);
        }
        pos += 8 + size + size % 2;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::time::Duration;

    #[test]
    fn writes_stereo_wav_with_hash_and_duration() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Recorder::start(dir.path(), 1024).unwrap();
        let (tx, rx) = channel();
        {
            let mut r = rec.open_for("c/1", "dtm");
            r.on_done(Box::new(move |d| tx.send(d).unwrap()));
            let left = [1000i16; FRAME];
            let right = [-2000i16; FRAME];
            for _ in 0..80 {
                r.push(&left, &right);
            }
        } // dropped: closed
        let done = rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
        assert_eq!(done.duration_ms, 1600);
        assert_eq!(done.path, rec.dir().join("c_1.wav"));
        assert_eq!(rec.dir().parent(), Some(dir.path()));
        // 80 frames: three batches of 25, the last 5 handed over when the recording is dropped.
        assert_eq!(done.bytes, 44 + 80 * 160 * 4);
        assert_eq!(
            rec.counters.bytes_by_tenant(),
            vec![("dtm".to_string(), done.bytes)]
        );
        assert_eq!(rec.counters.frames.load(Ordering::Relaxed), 80);
        let bytes = std::fs::read(&done.path).unwrap();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), done.sha256);
        let mut reader = hound::WavReader::open(&done.path).unwrap();
        assert_eq!(reader.spec(), spec());
        let s: Vec<i16> = reader.samples::<i16>().map(|s| s.unwrap()).collect();
        assert_eq!(s.len(), 80 * 320);
        assert_eq!((s[0], s[1]), (1000, -2000));
    }

    #[test]
    fn each_run_records_into_its_own_directory() {
        // Call ids restart at c1 with every run: a restart must not overwrite c1.wav.
        let dir = tempfile::tempdir().unwrap();
        let first = Recorder::start(dir.path(), 64).unwrap();
        let second = Recorder::start(dir.path(), 64).unwrap();
        assert_ne!(first.path_for("c1"), second.path_for("c1"));
        assert!(first.path_for("c1").starts_with(dir.path()));
        assert!(second.path_for("c1").starts_with(dir.path()));
    }

    #[test]
    fn snapshot_of_a_growing_file_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wav");
        let mut w = hound::WavWriter::create(&path, spec()).unwrap();
        for i in 0..1000 {
            w.write_sample(i as i16).unwrap();
        }
        w.flush().unwrap();
        for i in 0..333 {
            w.write_sample(i as i16).unwrap(); // not reflected in the header yet
        }
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[1, 2, 3]); // a torn sample frame
        let fixed = snapshot(bytes).unwrap();
        let reader = hound::WavReader::new(std::io::Cursor::new(fixed)).unwrap();
        assert_eq!(reader.len() % 2, 0);
        assert!(reader.len() >= 1000);
        assert!(snapshot(b"not a wav".to_vec()).is_none());
        drop(w);
    }

    /// An encrypted recording as the recorder writes it: its raw bytes hold none of the
    /// audio written, it reads back exactly with the keys (also across its last, shorter
    /// chunk), and with
    /// another key file it fails with the error naming that file.
    #[test]
    fn encrypted_recordings_hide_the_audio_and_need_the_right_key() {
        use crate::recordings::file::{Playable, ReadError};
        use crate::recordings::seal::{Keys, OpenError};
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("keys/recordings.key");
        Keys::generate(&key_file, 0).unwrap();
        let keys = std::sync::Arc::new(Keys::load(&key_file).unwrap());
        let rec = Recorder::start(&dir.path().join("recordings"), 4096)
            .unwrap()
            .with_keys(keys.clone());
        // A pattern no cipher text would hold by chance: a ramp on the left, its negation right.
        let left: Vec<i16> = (0..FRAME as i16).map(|i| 1000 + i * 7).collect();
        let right: Vec<i16> = left.iter().map(|s| -s).collect();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut r = rec.open_for("c9", "dtm");
        r.on_done(Box::new(move |d| tx.send(d).unwrap()));
        for _ in 0..60 {
            r.push(&left, &right);
        }
        let path = rec.path_for("c9");
        assert_eq!(path.extension().and_then(|e| e.to_str()), Some("nvbrec"));
        drop(r);
        let done = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap()
            .unwrap();
        assert_eq!(done.key_id.as_deref(), Some(keys.current()));
        assert_eq!(done.duration_ms, 60 * 20);

        let raw = std::fs::read(&path).unwrap();
        assert_eq!(raw.len() as u64, done.bytes);
        // Hashed as it was written: the same as the file's hash.
        assert_eq!(hex::encode(Sha256::digest(&raw)), done.sha256);
        let mut pattern = Vec::new();
        for i in 0..8 {
            pattern.extend_from_slice(&left[i].to_le_bytes());
            pattern.extend_from_slice(&right[i].to_le_bytes());
        }
        assert!(
            !raw.windows(pattern.len()).any(|w| w == pattern),
            "audio in the clear"
        );
        for needle in [&pattern[..4], b"RIFF".as_slice(), b"data".as_slice()] {
            assert!(
                !raw.windows(needle.len()).any(|w| w == needle),
                "{needle:?} in the file"
            );
        }

        let mut p = Playable::open(&path, Some(&keys)).unwrap();
        let mut wav = vec![0u8; p.len() as usize];
        assert_eq!(p.read_at(0, &mut wav).unwrap(), wav.len());
        let samples: Vec<i16> = hound::WavReader::new(std::io::Cursor::new(wav))
            .unwrap()
            .into_samples()
            .map(|s| s.unwrap())
            .collect();
        assert_eq!(samples.len(), 60 * FRAME * 2);
        assert!(samples.chunks(FRAME * 2).all(|f| f
            .iter()
            .step_by(2)
            .copied()
            .eq(left.iter().copied())
            && f.iter()
                .skip(1)
                .step_by(2)
                .copied()
                .eq(right.iter().copied())));

        // The same key id with another key: refused, naming the key file.
        let other_file = dir.path().join("other.key");
        std::fs::write(
            &other_file,
            format!("{} {}\n", keys.current(), hex::encode([9u8; 32])),
        )
        .unwrap();
        let other = Keys::load(&other_file).unwrap();
        let err = Playable::open(&path, Some(&other)).unwrap_err();
        assert!(
            matches!(
                err,
                ReadError::Key {
                    source: OpenError::WrongKey { .. },
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("other.key"), "{err}");
        // Without keys: named too, never read as something else.
        assert!(matches!(
            Playable::open(&path, None),
            Err(ReadError::NoKeys(_))
        ));
    }
}
