//! Loading and checking configuration files from disk.

use std::io::Write;
use std::path::{Path, PathBuf};

use navbat::config::{Config, ConfigErrors, EMBEDDED_DEFAULT_TOML};

fn shipped_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/navbat.toml")
}

/// Writes `text` to a temporary file and loads it.
fn load_text(text: &str) -> (tempfile::NamedTempFile, Result<Config, ConfigErrors>) {
    let mut file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temporary file");
    file.write_all(text.as_bytes()).expect("write config");
    let loaded = Config::load(file.path());
    (file, loaded)
}

#[test]
fn shipped_demo_config_loads_and_matches_the_embedded_default() {
    let loaded = Config::load(&shipped_config()).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(loaded, Config::embedded_default());
    assert_eq!(
        std::fs::read_to_string(shipped_config()).unwrap(),
        EMBEDDED_DEFAULT_TOML
    );
}

#[test]
fn demo_config_content() {
    let config = Config::embedded_default();
    let dtm = config.tenant_by_did("712351914").expect("DTM DID");
    assert_eq!(dtm.id, "dtm");
    let digits: Vec<(char, &str, &str)> = dtm
        .ivr
        .languages
        .iter()
        .map(|choice| {
            (
                choice.digit.as_char(),
                choice.language.as_str(),
                choice.queue.as_str(),
            )
        })
        .collect();
    assert_eq!(digits, [('1', "uz", "dtm-uz"), ('2', "ru", "dtm-ru")]);
    let topics: Vec<(char, &str)> = dtm
        .ivr
        .topics
        .iter()
        .map(|choice| (choice.digit.as_char(), choice.topic.as_str()))
        .collect();
    assert_eq!(
        topics,
        [
            ('1', "registration"),
            ('2', "results"),
            ('3', "complaints"),
            ('0', "other")
        ]
    );
    let support = config.tenant_by_did("712038872").expect("support DID");
    assert_eq!(support.id, "support");
    assert!(support.holidays.len() >= 14);
    let exts: Vec<&str> = config
        .operators
        .iter()
        .map(|operator| operator.ext.as_str())
        .collect();
    assert_eq!(
        exts,
        [
            "1001", "1002", "1003", "1004", "1005", "1006", "1007", "1008", "1009", "1010", "1901",
            "1902"
        ]
    );
    // Every queue has at least one non-reserve operator who speaks its language.
    for queue in &config.queues {
        assert!(
            config
                .operators
                .iter()
                .any(|operator| !operator.reserve && operator.languages.contains(&queue.language)),
            "queue {} has no operator",
            queue.id
        );
    }
}

#[test]
fn errors_name_the_file_and_are_one_per_line() {
    let text = EMBEDDED_DEFAULT_TOML
        .replace("channels = 250", "channels = 400")
        .replace("strategy = \"longest-idle\"", "strategy = \"fastest\"");
    let (file, loaded) = load_text(&text);
    let errors = loaded.unwrap_err();
    let path = file.path().display().to_string();
    let rendered = errors.to_string();
    assert_eq!(rendered.lines().count(), errors.0.len());
    for line in rendered.lines() {
        assert!(line.starts_with(&format!("{path}: ")), "{line}");
        assert!(line.contains("; fix: "), "{line}");
    }
    assert!(errors.has("tenant.dtm.channels"));
    for index in 0..4 {
        assert!(
            errors.has(&format!("queue[{index}].strategy")),
            "{rendered}"
        );
    }
}

#[test]
fn syntax_error_in_a_file_reports_line_and_column() {
    let (_file, loaded) = load_text("[sip]\nudp = 127.0.0.1:5060\n");
    let errors = loaded.unwrap_err();
    assert!(errors.0[0].field.starts_with("line 2, column "), "{errors}");
}

#[test]
fn demo_credentials_refused_when_sip_is_public() {
    let text = EMBEDDED_DEFAULT_TOML
        .replace("udp = \"127.0.0.1:5060\"", "udp = \"0.0.0.0:5060\"")
        .replace("# public_ip = \"192.0.2.10\"", "public_ip = \"192.0.2.10\"");
    let (_file, loaded) = load_text(&text);
    let errors = loaded.unwrap_err();
    assert_eq!(errors.0.len(), 12, "{errors}");
    for (index, error) in errors.0.iter().enumerate() {
        assert_eq!(error.field, format!("operator[{index}].ha1"));
        assert!(error.problem.contains("only allowed"), "{error}");
        assert!(error.fix.contains("md5sum"), "{error}");
    }
}

#[test]
fn missing_file_is_a_config_error() {
    let errors = Config::load(Path::new("/definitely/not/here.toml")).unwrap_err();
    assert_eq!(errors.0.len(), 1);
    assert_eq!(errors.0[0].file, "/definitely/not/here.toml");
    assert!(errors.to_string().contains("cannot read"));
}

#[test]
fn windows_line_endings_load() {
    let text = EMBEDDED_DEFAULT_TOML.replace('\n', "\r\n");
    let (_file, loaded) = load_text(&text);
    assert_eq!(loaded.unwrap(), Config::embedded_default());
}
