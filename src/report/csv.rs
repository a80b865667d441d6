//! CSV: one file per table in a directory (`summary.csv`, `outcomes.csv`, `days.csv`,
//! `topics.csv`, `categories.csv`, `operators.csv`, `repeat.csv`, `requests.csv`,
//! `surge.csv`, `invoice.csv` when billed, and `calls.csv` with every call), because each
//! table has its own columns and a spreadsheet or a script reads one table per file.
//!
//! RFC 4180 (comma, CRLF, quotes doubled), UTF-8 with a byte-order mark so that Excel shows
//! the Cyrillic headings. Headings are in both languages. A text cell that a spreadsheet
//! would run as a formula (starting with `=`, `+`, `-`, `@`, tab or CR: masked numbers start
//! with `+`) gets a leading `'`, the usual guard against CSV injection.

use super::labels::Lang;
use super::table::{detail_cells, tables, Cell, Table, DETAILS_KEY, DETAIL_COLUMNS};
use super::{secs, MonthlyReport, ReportError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The byte-order mark each file starts with.
pub const BOM: &str = "\u{feff}";

fn field(out: &mut String, text: &str) {
    let guarded = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let needs_quotes = guarded || text.contains([',', '"', '\n', '\r']);
    if needs_quotes {
        out.push('"');
        if guarded {
            out.push('\'');
        }
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// A cell as CSV text.
pub fn cell_text(c: &Cell) -> String {
    match c {
        Cell::Text(s) | Cell::Link(s) => s.clone(),
        Cell::Int(n) => n.to_string(),
        Cell::Pct(p) => format!("{p:.2}"),
        Cell::Secs(ms) => format!("{:.1}", secs(*ms)),
        Cell::Money(m) => m.to_string(),
        Cell::Empty => String::new(),
    }
}

fn line(out: &mut String, cells: impl IntoIterator<Item = String>) {
    for (i, c) in cells.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(out, &c);
    }
    out.push_str("\r\n");
}

/// One table as a CSV document (with the byte-order mark).
pub fn table_csv(t: &Table, lang: Lang) -> String {
    let mut out = String::from(BOM);
    line(&mut out, t.columns.iter().map(|c| lang.of(*c)));
    for row in &t.rows {
        line(&mut out, row.iter().map(cell_text));
    }
    out
}

/// The call details as a CSV document.
pub fn details_csv(r: &MonthlyReport, lang: Lang) -> String {
    let mut out = String::with_capacity(r.details.len() * 160 + 512);
    out.push_str(BOM);
    line(&mut out, DETAIL_COLUMNS.iter().map(|c| lang.of(*c)));
    for d in &r.details {
        line(&mut out, detail_cells(d, lang).iter().map(cell_text));
    }
    out
}

/// The table `key` (`summary`, ..., `calls`) as CSV, or `None` for an unknown key.
pub fn one(r: &MonthlyReport, key: &str, lang: Lang) -> Option<String> {
    if key == DETAILS_KEY {
        return Some(details_csv(r, lang));
    }
    tables(r, lang)
        .iter()
        .find(|t| t.key == key)
        .map(|t| table_csv(t, lang))
}

/// The keys of the tables this report has, in order (`calls` last).
pub fn keys(r: &MonthlyReport) -> Vec<&'static str> {
    let mut k: Vec<&'static str> = tables(r, Lang::Both).iter().map(|t| t.key).collect();
    k.push(DETAILS_KEY);
    k
}

/// Writes every table into `dir` (created if missing), both languages in the headings;
/// returns the files written.
pub fn write_dir(r: &MonthlyReport, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let err = |path: &Path, e: std::io::Error| ReportError::Write {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
    let mut written = Vec::new();
    let mut docs: Vec<(&str, String)> = tables(r, Lang::Both)
        .iter()
        .map(|t| (t.key, table_csv(t, Lang::Both)))
        .collect();
    docs.push((DETAILS_KEY, details_csv(r, Lang::Both)));
    for (key, text) in docs {
        let path = dir.join(format!("{key}.csv"));
        let mut f = std::fs::File::create(&path).map_err(|e| err(&path, e))?;
        f.write_all(text.as_bytes()).map_err(|e| err(&path, e))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        let mut out = String::new();
        line(
            &mut out,
            [
                "a,b".into(),
                "say \"hi\"".into(),
                "+9989******67".into(),
                "=1+1".into(),
                "plain".into(),
            ],
        );
        assert_eq!(
            out,
            "\"a,b\",\"say \"\"hi\"\"\",\"'+9989******67\",\"'=1+1\",plain\r\n"
        );
        assert_eq!(cell_text(&Cell::Secs(12_345)), "12.3");
        assert_eq!(cell_text(&Cell::Pct(33.333)), "33.33");
    }
}
