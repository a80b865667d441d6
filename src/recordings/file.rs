//! A recording file read as the WAV a listener gets: a header made for the audio written so
//! far, then the samples. Random access, so a range request reads only what it asks for,
//! and the length is taken anew at each open, so a growing file plays to its current end.

use super::range::{wav_header, WAV_HEADER_BYTES};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Channels of every recording (caller left, operator right).
const CHANNELS: u16 = 2;
/// Sample rate of every recording.
const RATE: u32 = 8000;
/// Bytes of one sample frame (both channels).
const FRAME_BYTES: u64 = 4;

/// Why a recording cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file is not there (never written, expired, or on another node).
    #[error("recording file {0} does not exist")]
    Missing(PathBuf),
    /// The file cannot be read.
    #[error("cannot read recording file {path}: {source}; fix: check the file's permissions and the disk")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is neither a WAV recording nor one of navbat's encrypted recordings.
    #[error("{0} is not a recording navbat wrote (no WAV or navbat header)")]
    NotARecording(PathBuf),
}

/// An open recording, as the WAV it is served as.
pub struct Playable {
    file: File,
    path: PathBuf,
    /// Where the samples start in the file.
    data_offset: u64,
    /// Bytes of whole sample frames available now.
    data_len: u64,
    header: [u8; 44],
}

impl std::fmt::Debug for Playable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Playable")
            .field("path", &self.path)
            .field("data_len", &self.data_len)
            .finish()
    }
}

impl Playable {
    /// Opens `path` and takes its current length.
    pub fn open(path: &Path) -> Result<Playable, ReadError> {
        let io = |source: std::io::Error| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ReadError::Missing(path.to_path_buf())
            } else {
                ReadError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        };
        let mut file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut head = vec![0u8; len.min(4096) as usize];
        file.read_exact(&mut head).map_err(io)?;
        let data_offset = match wav_data_offset(&head) {
            Some(offset) => offset,
            // Just opened: the writer has not flushed its first header yet. Nothing to play.
            None if head.len() < 44 && b"RIFF".starts_with(&head[..head.len().min(4)]) => len,
            None => return Err(ReadError::NotARecording(path.to_path_buf())),
        };
        let available = len.saturating_sub(data_offset);
        // Whole frames only (a growing file may end in a torn one), within WAV's 4 GiB.
        let data_len = (available - available % FRAME_BYTES).min(u64::from(u32::MAX) - 64);
        Ok(Playable {
            file,
            path: path.to_path_buf(),
            data_offset,
            data_len,
            header: wav_header(data_len as u32, CHANNELS, RATE),
        })
    }

    /// Length of the WAV served now.
    pub fn len(&self) -> u64 {
        WAV_HEADER_BYTES + self.data_len
    }

    /// Whether there is no audio yet.
    pub fn is_empty(&self) -> bool {
        self.data_len == 0
    }

    /// Reads up to `buf.len()` bytes of the served WAV from `offset`; 0 at its end.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, ReadError> {
        let mut done = 0;
        let mut at = offset;
        if at < WAV_HEADER_BYTES && done < buf.len() {
            let h = &self.header[at as usize..];
            let n = h.len().min(buf.len());
            buf[..n].copy_from_slice(&h[..n]);
            done += n;
            at += n as u64;
        }
        if done < buf.len() && at < self.len() {
            let want = ((self.len() - at) as usize).min(buf.len() - done);
            let io = |source| ReadError::Io {
                path: self.path.clone(),
                source,
            };
            let from = self.data_offset + (at - WAV_HEADER_BYTES);
            self.file.seek(SeekFrom::Start(from)).map_err(io)?;
            self.file
                .read_exact(&mut buf[done..done + want])
                .map_err(io)?;
            done += want;
        }
        Ok(done)
    }
}

/// Where the `data` chunk's samples start in a RIFF/WAVE file's first bytes.
fn wav_data_offset(bytes: &[u8]) -> Option<u64> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let mut pos = 12usize;
    while pos + 8 <= bytes.len() {
        let size = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]) as usize;
        if &bytes[pos..pos + 4] == b"data" {
            return Some(pos as u64 + 8);
        }
        pos = pos.checked_add(8 + size + size % 2)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_wav_is_served_with_a_header_for_its_whole_frames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c1.wav");
        let mut w = hound::WavWriter::create(&path, crate::media::recorder::spec()).unwrap();
        for i in 0..1000i16 {
            w.write_sample(i).unwrap();
        }
        w.flush().unwrap();
        let mut raw = std::fs::read(&path).unwrap();
        raw.extend_from_slice(&[9, 9, 9]); // a torn frame at the end
        std::fs::write(&path, &raw).unwrap();
        let mut p = Playable::open(&path).unwrap();
        assert_eq!(p.len(), 44 + 2000);
        let mut whole = vec![0u8; p.len() as usize + 10];
        let n = p.read_at(0, &mut whole).unwrap();
        whole.truncate(n);
        let reader = hound::WavReader::new(std::io::Cursor::new(&whole)).unwrap();
        let s: Vec<i16> = reader.into_samples().map(|s| s.unwrap()).collect();
        assert_eq!(s, (0..1000).collect::<Vec<i16>>());
        // A range across the header's end reads the same bytes as the whole.
        let mut part = vec![0u8; 20];
        assert_eq!(p.read_at(30, &mut part).unwrap(), 20);
        assert_eq!(part, whole[30..50]);
        assert_eq!(p.read_at(p.len(), &mut part).unwrap(), 0);
        drop(w);
    }

    #[test]
    fn missing_and_foreign_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.wav");
        assert!(matches!(
            Playable::open(&missing),
            Err(ReadError::Missing(_))
        ));
        let fresh = dir.path().join("fresh.wav");
        std::fs::write(&fresh, b"").unwrap();
        assert!(Playable::open(&fresh).unwrap().is_empty());
        let other = dir.path().join("x.wav");
        std::fs::write(&other, b"hello, not audio").unwrap();
        assert!(matches!(
            Playable::open(&other),
            Err(ReadError::NotARecording(_))
        ));
    }
}
