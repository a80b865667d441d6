//! Configuration errors: every one names the file, the field and what to change.

use std::fmt;

/// One problem found in a configuration file.
///
/// `field` is a path into the document such as `queue[2].tenant` or
/// `tenant.dtm.ivr.languages[1].queue`; `fix` tells the reader what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {field}: {problem}; fix: {fix}")]
pub struct ConfigError {
    /// The file (or other origin) the configuration came from.
    pub file: String,
    /// Where in the document the problem is.
    pub field: String,
    /// What is wrong.
    pub problem: String,
    /// What to change.
    pub fix: String,
}

/// Every problem found while loading one configuration; never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Lines(.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The errors whose field path is exactly `field`.
    pub fn at<'a>(&'a self, field: &'a str) -> impl Iterator<Item = &'a ConfigError> + 'a {
        self.0.iter().filter(move |e| e.field == field)
    }

    /// Whether any error's field path equals `field`.
    pub fn has(&self, field: &str) -> bool {
        self.at(field).next().is_some()
    }
}

/// Displays errors one per line.
struct Lines<'a>(&'a [ConfigError]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// Collects errors for one origin while a configuration is checked.
#[derive(Debug)]
pub(crate) struct Collector {
    file: String,
    errors: Vec<ConfigError>,
}

impl Collector {
    pub(crate) fn new(file: &str) -> Collector {
        Collector {
            file: file.to_owned(),
            errors: Vec::new(),
        }
    }

    /// Records one problem.
    pub(crate) fn push(
        &mut self,
        field: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            field: field.into(),
            problem: problem.into(),
            fix: fix.into(),
        });
    }

    /// How many problems are recorded so far; a check compares it before and after itself.
    pub(crate) fn len(&self) -> usize {
        self.errors.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub(crate) fn into_errors(self) -> ConfigErrors {
        ConfigErrors(self.errors)
    }
}
