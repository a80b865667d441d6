//! A recording file read as the WAV a listener gets: a header made for the audio written so
//! far, then the samples. Random access, so a range request reads only what it asks for,
//! and the length is taken anew at each open, so a growing file plays to its current end.
//! Both kinds of file are read: encrypted (`.nvbrec`, see [`super::seal`]), whose chunks are
//! decrypted as a read touches them, and plain WAV (recordings made without keys).

use super::range::{wav_header, WAV_HEADER_BYTES};
use super::seal::{Keys, OpenError, Sealed, CHUNK, MAGIC, TAG};
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
    /// The file is encrypted and no keys were given.
    #[error("{0} is encrypted and no recording keys are loaded; fix: set [recordings] key_file to the key file it was recorded with")]
    NoKeys(PathBuf),
    /// The keys do not open the file.
    #[error("cannot decrypt recording {path}: {source}")]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        source: OpenError,
    },
}

/// How the file holds the samples.
enum Body {
    /// A WAV file: the samples from `data_offset` on.
    Plain { data_offset: u64 },
    /// An encrypted file: chunks after a header of `header_len` bytes; the last chunk
    /// decrypted is kept for the next read.
    Sealed {
        sealed: Box<Sealed>,
        header_len: u64,
        cache: Option<(u64, Vec<u8>)>,
    },
}

/// An open recording, as the WAV it is served as.
pub struct Playable {
    file: File,
    path: PathBuf,
    body: Body,
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
    /// Opens `path` and takes its current length; `keys` open an encrypted file.
    pub fn open(path: &Path, keys: Option<&Keys>) -> Result<Playable, ReadError> {
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
        let key_error = |source| ReadError::Key {
            path: path.to_path_buf(),
            source,
        };
        let (body, data_len) = if head.starts_with(&MAGIC[..head.len().min(MAGIC.len())])
            && !head.is_empty()
        {
            let keys = keys.ok_or_else(|| ReadError::NoKeys(path.to_path_buf()))?;
            match Sealed::open(&head, keys).map_err(key_error)? {
                // The header is still being written: nothing to play yet.
                None => (Body::Plain { data_offset: len }, 0),
                Some(sealed) => {
                    let header_len = sealed.header().len() as u64;
                    let mut body = Body::Sealed {
                        sealed: Box::new(sealed),
                        header_len,
                        cache: None,
                    };
                    let data_len = sealed_len(&mut file, &mut body, len, path)?;
                    (body, data_len)
                }
            }
        } else {
            let data_offset = match wav_data_offset(&head) {
                Some(offset) => offset,
                // Just opened: the writer has not flushed its first header yet.
                None if head.len() < 44 && b"RIFF".starts_with(&head[..head.len().min(4)]) => len,
                None => return Err(ReadError::NotARecording(path.to_path_buf())),
            };
            let available = len.saturating_sub(data_offset);
            (Body::Plain { data_offset }, available)
        };
        // Whole frames only (a growing file may end in a torn one), within WAV's 4 GiB.
        let data_len = (data_len - data_len % FRAME_BYTES).min(u64::from(u32::MAX) - 64);
        Ok(Playable {
            file,
            path: path.to_path_buf(),
            body,
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
        while done < buf.len() && at < self.len() {
            let want = ((self.len() - at) as usize).min(buf.len() - done);
            let plain_at = at - WAV_HEADER_BYTES;
            let n = match &mut self.body {
                Body::Plain { data_offset } => {
                    let from = *data_offset + plain_at;
                    let io = |source| ReadError::Io {
                        path: self.path.clone(),
                        source,
                    };
                    self.file.seek(SeekFrom::Start(from)).map_err(io)?;
                    self.file
                        .read_exact(&mut buf[done..done + want])
                        .map_err(io)?;
                    want
                }
                Body::Sealed { .. } => {
                    let index = plain_at / CHUNK as u64;
                    let within = (plain_at % CHUNK as u64) as usize;
                    let chunk = chunk(&mut self.file, &mut self.body, index, &self.path)?;
                    let n = chunk.len().saturating_sub(within).min(want);
                    if n == 0 {
                        break;
                    }
                    buf[done..done + n].copy_from_slice(&chunk[within..within + n]);
                    n
                }
            };
            done += n;
            at += n as u64;
        }
        Ok(done)
    }
}

/// The plain bytes of chunk `index` of an encrypted body (from the cache when it is there).
fn chunk<'a>(
    file: &mut File,
    body: &'a mut Body,
    index: u64,
    path: &Path,
) -> Result<&'a [u8], ReadError> {
    let Body::Sealed {
        sealed,
        header_len,
        cache,
    } = body
    else {
        return Ok(&[]);
    };
    if cache.as_ref().is_none_or(|(i, _)| *i != index) {
        let io = |source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        };
        let at = *header_len + index * (CHUNK + TAG) as u64;
        file.seek(SeekFrom::Start(at)).map_err(io)?;
        let mut raw = Vec::with_capacity(CHUNK + TAG);
        file.by_ref()
            .take((CHUNK + TAG) as u64)
            .read_to_end(&mut raw)
            .map_err(io)?;
        let plain = sealed
            .unseal(index, &raw)
            .map_err(|source| ReadError::Key {
                path: path.to_path_buf(),
                source,
            })?;
        *cache = Some((index, plain));
    }
    Ok(cache.as_ref().map(|(_, p)| p.as_slice()).unwrap_or(&[]))
}

/// The plain bytes an encrypted file of `len` bytes holds now: its whole chunks, and a last
/// shorter one if it opens (a chunk still being written does not, and is left out). The
/// first chunk is always opened, so a wrong key is an error here, not silence.
fn sealed_len(file: &mut File, body: &mut Body, len: u64, path: &Path) -> Result<u64, ReadError> {
    let Body::Sealed { header_len, .. } = body else {
        return Ok(0);
    };
    let stored = len.saturating_sub(*header_len);
    let whole = stored / (CHUNK + TAG) as u64;
    let rest = stored % (CHUNK + TAG) as u64;
    if whole > 0 {
        chunk(file, body, 0, path)?;
    }
    let last = if rest > TAG as u64 {
        match chunk(file, body, whole, path) {
            Ok(c) => c.len() as u64,
            Err(ReadError::Key { .. }) if whole > 0 => 0,
            Err(e) => return Err(e),
        }
    } else {
        0
    };
    Ok(whole * CHUNK as u64 + last)
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
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for i in 0..1000i16 {
            w.write_sample(i).unwrap();
        }
        w.flush().unwrap();
        let mut raw = std::fs::read(&path).unwrap();
        raw.extend_from_slice(&[9, 9, 9]); // a torn frame at the end
        std::fs::write(&path, &raw).unwrap();
        let mut p = Playable::open(&path, None).unwrap();
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
            Playable::open(&missing, None),
            Err(ReadError::Missing(_))
        ));
        let fresh = dir.path().join("fresh.wav");
        std::fs::write(&fresh, b"").unwrap();
        assert!(Playable::open(&fresh, None).unwrap().is_empty());
        let other = dir.path().join("x.wav");
        std::fs::write(&other, b"hello, not audio").unwrap();
        assert!(matches!(
            Playable::open(&other, None),
            Err(ReadError::NotARecording(_))
        ));
    }
}
