//! Reading TOML text into the raw document, section by section.
//!
//! The document is parsed once into a spanned tree; each section and each `[[tenant]]`,
//! `[[queue]]` and `[[operator]]` entry is then deserialized on its own, so that a typo in one
//! entry is reported together with the problems of every other entry instead of hiding them.

use serde::Deserialize;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::error::Collector;
use super::raw::RawConfig;

/// The top-level keys a configuration may have.
pub(crate) const SECTIONS: &[&str] = &[
    "sip",
    "media",
    "http",
    "limits",
    "shutdown",
    "operators_defaults",
    "node",
    "database",
    "presence",
    "history",
    "tenant",
    "queue",
    "operator",
    "sms",
    "trunk",
    "callbacks",
    "desk",
    "requests",
    "notices",
    "recordings",
    "account",
];

/// Reads `text`; syntax errors end the reading (nothing after them can be trusted), errors in
/// single sections or entries are recorded and reading goes on.
pub(crate) fn read(text: &str, errors: &mut Collector) -> Option<RawConfig> {
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for error in syntax {
            let (line, column) = error
                .span()
                .map(|span| line_column(text, span.start))
                .unwrap_or((1, 1));
            errors.push(
                format!("line {line}, column {column}"),
                format!("TOML syntax error: {}", first_line(error.message())),
                "correct the TOML syntax at that position (quote strings, close brackets, one key per line)",
            );
        }
        return None;
    }

    let mut raw = RawConfig::default();
    for (key, value) in root.into_inner() {
        let name = key.get_ref().as_ref();
        match name {
            "sip" => section(text, name, value, errors, &mut raw.sip),
            "media" => section(text, name, value, errors, &mut raw.media),
            "http" => section(text, name, value, errors, &mut raw.http),
            "limits" => section(text, name, value, errors, &mut raw.limits),
            "shutdown" => section(text, name, value, errors, &mut raw.shutdown),
            "operators_defaults" => section(text, name, value, errors, &mut raw.operators_defaults),
            "node" => section(text, name, value, errors, &mut raw.node),
            "database" => section(text, name, value, errors, &mut raw.database),
            "presence" => section(text, name, value, errors, &mut raw.presence),
            "history" => section(text, name, value, errors, &mut raw.history),
            "tenant" => raw.tenants = entries(text, name, value, errors),
            "queue" => raw.queues = entries(text, name, value, errors),
            "operator" => raw.operators = entries(text, name, value, errors),
            "sms" => {
                let mut sms = super::sms::RawSms::default();
                section(text, name, value, errors, &mut sms);
                raw.sms = Some(sms);
            }
            "trunk" => {
                let mut trunk = None;
                section(text, name, value, errors, &mut trunk);
                raw.trunk = trunk;
            }
            "callbacks" => section(text, name, value, errors, &mut raw.callbacks),
            "desk" => section(text, name, value, errors, &mut raw.desk),
            "requests" => section(text, name, value, errors, &mut raw.requests),
            "notices" => section(text, name, value, errors, &mut raw.notices),
            "recordings" => section(text, name, value, errors, &mut raw.recordings),
            "account" => raw.accounts = entries(text, name, value, errors),
            other => {
                let (line, column) = line_column(text, key.span().start);
                errors.push(
                    other,
                    format!("unknown section at line {line}, column {column}"),
                    format!(
                        "remove it or correct the spelling; the sections are {}",
                        SECTIONS.join(", ")
                    ),
                );
            }
        }
    }
    Some(raw)
}

/// Deserializes one `[section]` into `slot`, recording an error instead on failure.
fn section<'de, T: Deserialize<'de>>(
    text: &str,
    name: &str,
    value: Spanned<DeValue<'de>>,
    errors: &mut Collector,
    slot: &mut T,
) {
    if !value.get_ref().is_table() {
        errors.push(
            name,
            format!("expected a table, found {}", value.get_ref().type_str()),
            format!("write it as a [{name}] section"),
        );
        return;
    }
    if let Some(parsed) = deserialize(text, name, value, errors) {
        *slot = parsed;
    }
}

/// Deserializes every entry of an array of tables such as `[[queue]]`. A failed entry is kept
/// as `None` so that indices in later messages still match the file.
fn entries<'de, T: Deserialize<'de>>(
    text: &str,
    name: &str,
    value: Spanned<DeValue<'de>>,
    errors: &mut Collector,
) -> Vec<Option<T>> {
    let DeValue::Array(items) = value.into_inner() else {
        errors.push(
            name,
            "expected a list of tables",
            format!("write each entry under its own [[{name}]] header"),
        );
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| deserialize(text, &format!("{name}[{index}]"), item.clone(), errors))
        .collect()
}

fn deserialize<'de, T: Deserialize<'de>>(
    text: &str,
    path: &str,
    value: Spanned<DeValue<'de>>,
    errors: &mut Collector,
) -> Option<T> {
    let tree = value.clone();
    match T::deserialize(ValueDeserializer::from(value)) {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            let message = first_line(error.message()).to_owned();
            let (field, position) = match error.span() {
                Some(span) => {
                    let (line, column) = line_column(text, span.start);
                    (
                        path_at(&tree, span.start, path.to_owned()),
                        format!(" (line {line}, column {column})"),
                    )
                }
                None => (path.to_owned(), String::new()),
            };
            let fix = fix_for_serde_message(&message);
            // The list of expected keys goes into the fix, not twice into the line.
            let problem = match message.split_once(", expected") {
                Some((head, _)) if message.starts_with("unknown field") => head,
                _ => message.as_str(),
            };
            errors.push(field, format!("{problem}{position}"), fix);
            None
        }
    }
}

/// The path of the key at `offset` in `tree`, else of the deepest value whose span holds it.
///
/// Keys are searched first and at any depth because a table written under its own header
/// (`[tenant.ivr]`) has a span that covers the header only, not its keys.
fn path_at(tree: &Spanned<DeValue<'_>>, offset: usize, path: String) -> String {
    key_path_at(tree, offset, &path).unwrap_or_else(|| value_path_at(tree, offset, path))
}

fn key_path_at(tree: &Spanned<DeValue<'_>>, offset: usize, path: &str) -> Option<String> {
    match tree.get_ref() {
        DeValue::Table(table) => table.iter().find_map(|(key, value)| {
            let here = format!("{path}.{}", key.get_ref());
            if key.span().contains(&offset) {
                Some(here)
            } else {
                key_path_at(value, offset, &here)
            }
        }),
        DeValue::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| key_path_at(item, offset, &format!("{path}[{index}]"))),
        _ => None,
    }
}

fn value_path_at(tree: &Spanned<DeValue<'_>>, offset: usize, path: String) -> String {
    let child = match tree.get_ref() {
        DeValue::Table(table) => table
            .iter()
            .find(|(_, value)| holds(value, offset))
            .map(|(key, value)| (value, format!("{path}.{}", key.get_ref()))),
        DeValue::Array(items) => items
            .iter()
            .enumerate()
            .find(|(_, item)| holds(item, offset))
            .map(|(index, item)| (item, format!("{path}[{index}]"))),
        _ => None,
    };
    match child {
        Some((value, child_path)) => value_path_at(value, offset, child_path),
        None => path,
    }
}

/// Whether `offset` lies in `value` or in anything nested in it (see [`path_at`] on spans of
/// tables written under a header).
fn holds(value: &Spanned<DeValue<'_>>, offset: usize) -> bool {
    value.span().contains(&offset)
        || match value.get_ref() {
            DeValue::Table(table) => table.iter().any(|(_, child)| holds(child, offset)),
            DeValue::Array(items) => items.iter().any(|item| holds(item, offset)),
            _ => false,
        }
}

/// A fix for the messages serde produces, which say what is wrong but not what to do.
fn fix_for_serde_message(message: &str) -> String {
    if message.starts_with("unknown field") {
        match message.split_once("expected ") {
            Some((_, expected)) => {
                format!("remove the key or correct its spelling; expected {expected}")
            }
            None => "remove the key or correct its spelling (this table takes no keys)".to_owned(),
        }
    } else if message.starts_with("missing field") {
        "add the missing key".to_owned()
    } else if message.starts_with("invalid type") {
        "write the value with the type named after \"expected\" (quote strings, no quotes around numbers)"
            .to_owned()
    } else {
        "correct the value as the message says".to_owned()
    }
}

fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or(message).trim()
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |rest| rest.chars().count())
        + 1;
    (line, column)
}
