//! Prompt recordings: 8 kHz, 16-bit, mono WAV files under the prompts directory, loaded once
//! and shared by every call.
//!
//! Lookup for tenant `t`, language `l`, name `n`: `<dir>/<t>/<l>/<n>.wav`, then
//! `<dir>/<l>/<n>.wav`. Hold music is `<dir>/hold-music.wav`. `config/prompts/generate.sh`
//! makes synthetic ones; a deployment drops in recorded voices with the same names.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

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

/// Loads prompts on first use and keeps them.
#[derive(Debug)]
pub struct PromptStore {
    dir: PathBuf,
    cache: RwLock<HashMap<PathBuf, Clip>>,
}

impl PromptStore {
    /// A store over `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> PromptStore {
        PromptStore {
            dir: dir.into(),
            cache: RwLock::new(HashMap::new()),
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
        for path in [&own, &shared] {
            if let Some(c) = self.cached(path) {
                return Ok(c);
            }
            if path.is_file() {
                return self.load(path);
            }
        }
        Err(PromptError::Missing {
            name: name.into(),
            language: language.into(),
            tried: format!("{}, {}", own.display(), shared.display()),
        })
    }

    /// The hold music.
    pub fn music(&self) -> Result<Clip, PromptError> {
        let path = self.dir.join("hold-music.wav");
        if let Some(c) = self.cached(&path) {
            return Ok(c);
        }
        if !path.is_file() {
            return Err(PromptError::Missing {
                name: "hold-music".into(),
                language: "-".into(),
                tried: path.display().to_string(),
            });
        }
        self.load(&path)
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
        let e = store.clip("t", "uz", "greeting").unwrap_err().to_string();
        assert!(e.contains("16000 Hz") && e.contains("sox"), "{e}");
    }
}
