//! Prompt recordings: 8 kHz, 16-bit, mono WAV files under the prompts directory, loaded once
//! and shared by every call.
//!
//! Lookup for tenant `t`, language `l`, name `n`: `<dir>/<t>/<l>/<n>.wav`, then
//! `<dir>/<l>/<n>.wav`. Hold music is `<dir>/hold-music.wav`. `config/prompts/generate.sh`
//! makes synthetic ones; a deployment drops in recorded voices with the same names.
//!
//! The demo prompts are also compiled into the binary (`build.rs`). A store made with
//! [`PromptStore::with_embedded_fallback`] (the embedded demo configuration) takes a file
//! from the directory when it is there and the compiled-in copy otherwise, so `navbat` run
//! from any directory greets its callers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_prompts.rs"));
}

/// Decoded audio, 8 kHz linear samples.
pub type Clip = Arc<[i16]>;

/// Why a prompt file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// Neither the tenant's nor the shared file exists.
    #[error("prompt {name:?} ({language}) not found: looked for {tried}; fix: run config/prompts/generate.sh or add the recording")]
    Missing {
        /// The prompt name.
        name: String,
        /// The language directory.
        language: String,
        /// The paths tried.
        tried: String,
        /// Already found missing recently (and reported then): see [`PromptError::is_news`].
        known: bool,
    },
    /// The file is not a readable WAV.
    #[error("prompt {path}: {source}; fix: save it as WAV, 8 kHz, 16-bit, mono")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What hound said.
        source: hound::Error,
    },
    /// The WAV has another format.
    #[error("prompt {path}: {found}; fix: convert it, e.g. sox in.wav -r 8000 -c 1 -b 16 {path}")]
    WrongFormat {
        /// The file.
        path: PathBuf,
        /// What it is.
        found: String,
    },
}

impl PromptError {
    /// Whether this is worth a warning: a prompt that is missing is looked for again only
    /// every [`MISS_RECHECK`], and in between the miss is answered from memory as already
    /// known, so a missing file yields one warning per prompt per period, not one per call
    /// (at a thousand calls a second that was thousands of log lines and file lookups a
    /// second).
    pub fn is_news(&self) -> bool {
        !matches!(self, PromptError::Missing { known: true, .. })
    }
}

/// How long a prompt found missing is remembered before the files are looked for again
/// (so a recording dropped into the directory is picked up without a restart).
pub const MISS_RECHECK: Duration = Duration::from_secs(30);

/// Loads prompts on first use and keeps them; remembers misses for [`MISS_RECHECK`].
#[derive(Debug)]
pub struct PromptStore {
    dir: PathBuf,
    /// Fall back on the prompts compiled into the binary.
    embedded: bool,
    cache: RwLock<HashMap<PathBuf, Clip>>,
    /// Files found missing, with when.
    misses: RwLock<HashMap<PathBuf, Instant>>,
}

impl PromptStore {
    /// A store over `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> PromptStore {
        PromptStore {
            dir: dir.into(),
            embedded: false,
            cache: RwLock::new(HashMap::new()),
            misses: RwLock::new(HashMap::new()),
        }
    }

    /// A store over `dir` that takes the demo prompts compiled into the binary for any file
    /// the directory does not have (or when it does not exist at all).
    pub fn with_embedded_fallback(dir: impl Into<PathBuf>) -> PromptStore {
        PromptStore {
            embedded: true,
            ..PromptStore::new(dir)
        }
    }

    /// The prompts directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The recording `name` in `language` for `tenant`.
    pub fn clip(&self, tenant: &str, language: &str, name: &str) -> Result<Clip, PromptError> {
        let own = self
            .dir
            .join(tenant)
            .join(language)
            .join(format!("{name}.wav"));
        let shared = self.dir.join(language).join(format!("{name}.wav"));
        // In order: the tenant's own file, then the shared one; a path found missing less
        // than MISS_RECHECK ago is not looked for on disk again.
        let mut looked = false;
        for path in [&own, &shared] {
            if let Some(c) = self.cached(path) {
                return Ok(c);
            }
            if self.known_miss(path) {
                continue;
            }
            looked = true;
            if let Some(found) = self.load_from_disk_or_embedded(path) {
                return found;
            }
            self.miss(path.clone());
        }
        Err(PromptError::Missing {
            name: name.into(),
            language: language.into(),
            tried: format!("{}, {}", own.display(), shared.display()),
            known: !looked,
        })
    }

    /// The hold music.
    pub fn music(&self) -> Result<Clip, PromptError> {
        let path = self.dir.join("hold-music.wav");
        if let Some(c) = self.cached(&path) {
            return Ok(c);
        }
        let known = self.known_miss(&path);
        if !known {
            if let Some(found) = self.load_from_disk_or_embedded(&path) {
                return found;
            }
            self.miss(path.clone());
        }
        Err(PromptError::Missing {
            name: "hold-music".into(),
            language: "-".into(),
            tried: path.display().to_string(),
            known,
        })
    }

    /// `path` from disk, else its compiled-in copy (when this store has them); `None` when
    /// neither exists.
    fn load_from_disk_or_embedded(&self, path: &Path) -> Option<Result<Clip, PromptError>> {
        if path.is_file() {
            return Some(self.load(path));
        }
        let bytes = self.embedded_copy(path)?;
        let clip = hound::WavReader::new(std::io::Cursor::new(bytes))
            .map_err(|source| PromptError::Unreadable {
                path: path.to_path_buf(),
                source,
            })
            .and_then(|reader| decode(reader, path));
        Some(clip.inspect(|clip| {
            self.cache
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(path.to_path_buf(), clip.clone());
        }))
    }

    fn embedded_copy(&self, path: &Path) -> Option<&'static [u8]> {
        if !self.embedded {
            return None;
        }
        let rel = path.strip_prefix(&self.dir).ok()?;
        let key: Vec<&str> = rel
            .components()
            .map(|c| c.as_os_str().to_str())
            .collect::<Option<_>>()?;
        let key = key.join("/");
        embedded::FILES
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, bytes)| *bytes)
    }

    /// Whether `path` was found missing less than [`MISS_RECHECK`] ago.
    fn known_miss(&self, path: &Path) -> bool {
        self.misses
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
            .is_some_and(|at| at.elapsed() < MISS_RECHECK)
    }

    fn miss(&self, path: PathBuf) {
        self.misses
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path, Instant::now());
    }

    fn cached(&self, path: &Path) -> Option<Clip> {
        self.cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
            .cloned()
    }

    fn load(&self, path: &Path) -> Result<Clip, PromptError> {
        let clip = read_wav(path)?;
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_path_buf(), clip.clone());
        Ok(clip)
    }
}

/// Reads an 8 kHz, 16-bit, mono WAV file.
pub fn read_wav(path: &Path) -> Result<Clip, PromptError> {
    let unreadable = |source| PromptError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let reader = hound::WavReader::open(path).map_err(unreadable)?;
    decode(reader, path)
}

/// Decodes an 8 kHz, 16-bit, mono WAV; `path` names it in errors.
fn decode<R: std::io::Read>(reader: hound::WavReader<R>, path: &Path) -> Result<Clip, PromptError> {
    let unreadable = |source| PromptError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let spec = reader.spec();
    if spec.sample_rate != 8000
        || spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(PromptError::WrongFormat {
            path: path.to_path_buf(),
            found: format!(
                "{} Hz, {} channel(s), {} bit",
                spec.sample_rate, spec.channels, spec.bits_per_sample
            ),
        });
    }
    let samples: Result<Vec<i16>, _> = reader.into_samples::<i16>().collect();
    Ok(samples.map_err(unreadable)?.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompts_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prompts")
    }

    /// Ages every remembered miss past the recheck period.
    fn forget_misses(store: &PromptStore) {
        store
            .misses
            .write()
            .unwrap()
            .values_mut()
            .for_each(|at| *at = at.checked_sub(MISS_RECHECK).unwrap_or(*at));
    }

    #[test]
    fn a_missing_prompt_is_news_once_then_known_until_the_recheck() {
        let dir = tempfile::tempdir().unwrap();
        let store = PromptStore::new(dir.path());
        let first = store.clip("dtm", "uz", "greeting").unwrap_err();
        assert!(first.is_news(), "the first miss is reported");
        let again = store.clip("dtm", "uz", "greeting").unwrap_err();
        assert!(
            !again.is_news(),
            "a repeat within the recheck period is not"
        );
        assert_eq!(
            again.to_string(),
            first.to_string(),
            "same message, same paths"
        );
        // Another prompt, another language and the hold music are misses of their own.
        assert!(store.clip("dtm", "ru", "greeting").unwrap_err().is_news());
        assert!(store.music().unwrap_err().is_news());
        assert!(!store.music().unwrap_err().is_news());
        // A file dropped in is found once the miss is older than MISS_RECHECK.
        std::fs::create_dir_all(dir.path().join("uz")).unwrap();
        std::fs::copy(
            prompts_dir().join("uz/greeting.wav"),
            dir.path().join("uz/greeting.wav"),
        )
        .unwrap();
        assert!(
            store.clip("dtm", "uz", "greeting").is_err(),
            "not looked for yet"
        );
        forget_misses(&store);
        assert!(store.clip("dtm", "uz", "greeting").is_ok());
    }

    #[test]
    fn the_embedded_copies_serve_a_directory_that_is_not_there_and_disk_files_win() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-dir");
        let store = PromptStore::with_embedded_fallback(&missing);
        let embedded = store.clip("dtm", "uz", "greeting").unwrap();
        let on_disk = read_wav(&prompts_dir().join("dtm/uz/greeting.wav")).unwrap();
        assert_eq!(embedded, on_disk, "the tenant's own greeting, compiled in");
        assert_eq!(
            store.music().unwrap(),
            read_wav(&prompts_dir().join("hold-music.wav")).unwrap()
        );
        assert!(store.clip("dtm", "uz", "no-such-prompt").is_err());
        // Without the fallback the same directory has nothing.
        assert!(PromptStore::new(&missing)
            .clip("dtm", "uz", "greeting")
            .is_err());
        // A file on disk replaces the compiled-in one.
        let own = dir.path().join("over");
        std::fs::create_dir_all(own.join("uz")).unwrap();
        std::fs::copy(
            prompts_dir().join("uz/goodbye.wav"),
            own.join("uz/greeting.wav"),
        )
        .unwrap();
        let store = PromptStore::with_embedded_fallback(&own);
        assert_eq!(
            store.clip("other", "uz", "greeting").unwrap(),
            read_wav(&prompts_dir().join("uz/goodbye.wav")).unwrap()
        );
    }

    #[test]
    fn committed_prompts_exist_in_both_languages_and_are_not_silent() {
        let store = PromptStore::new(prompts_dir());
        let mut names: Vec<String> = [
            "greeting",
            "choose-language",
            "choose-topic",
            "invalid-choice",
            "goodbye",
            "closed",
            "please-wait",
            "place-in-queue",
            "expected-wait-minutes",
            "over-twenty",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        names.extend((1..=20).map(|n| format!("number-{n}")));
        for lang in crate::config::SUPPORTED_LANGUAGES {
            for name in &names {
                let clip = store.clip("any", lang, name).unwrap();
                assert!(clip.len() > 1600, "{lang}/{name} is too short");
                assert!(
                    crate::media::g711::rms(&clip) > 100.0,
                    "{lang}/{name} is silent"
                );
            }
        }
        // The tenant's own greeting wins over the shared one.
        let own = store.clip("dtm", "uz", "greeting").unwrap();
        let shared = store.clip("other", "uz", "greeting").unwrap();
        assert_ne!(own.len(), shared.len());
        assert!(store.music().unwrap().len() >= 8000);
    }

    #[test]
    fn missing_and_wrong_format_name_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let store = PromptStore::new(dir.path());
        let e = store.clip("t", "uz", "greeting").unwrap_err().to_string();
        assert!(e.contains("generate.sh"), "{e}");
        std::fs::create_dir_all(dir.path().join("uz")).unwrap();
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(dir.path().join("uz/greeting.wav"), spec).unwrap();
        w.write_sample(0i16).unwrap();
        w.write_sample(0i16).unwrap();
        w.finalize().unwrap();
        forget_misses(&store);
        let e = store.clip("t", "uz", "greeting").unwrap_err().to_string();
        assert!(e.contains("16000 Hz") && e.contains("sox"), "{e}");
    }
}
