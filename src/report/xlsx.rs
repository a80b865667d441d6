//! The report as an Excel workbook (`rust_xlsxwriter`): one sheet per table, headings in
//! Uzbek and Russian, numbers as numbers (seconds with one decimal, shares with two, money
//! with two), native Excel charts of calls by day, outcomes, topics and categories, and
//! every call on the last sheet (streamed row by row: a 150,000-call month stays small in
//! memory). Each sheet: row 1 its title, row 2 tenant and month, row 3 the headings, data
//! from row 4, so a reader finds any figure at the same place every month.

use super::labels::{self as l, Lang};
use super::table::{detail_cells, tables, Cell, Table, DETAILS_KEY, DETAIL_COLUMNS};
use super::{secs, MonthlyReport, ReportError};
use rust_xlsxwriter::{Chart, ChartType, Format, Workbook, Worksheet, XlsxError};

/// The sheet of each table: short, both languages, no characters Excel's formulas must quote.
pub fn sheet_name(key: &str) -> &'static str {
    match key {
        "summary" => "Xulosa - Сводка",
        "outcomes" => "Natijalar - Исходы",
        "days" => "Kunlar - По дням",
        "topics" => "Mavzular - Темы",
        "categories" => "Toifalar - Категории",
        "operators" => "Operatorlar - Операторы",
        "repeat" => "Takroriy - Повторные",
        "requests" => "Murojaatlar - Обращения",
        "surge" => "Yuklama - Пики",
        "invoice" => "Hisob - Счёт",
        DETAILS_KEY => "Tafsilot - Звонки",
        _ => "Jadval - Таблица",
    }
}

/// The row (0-based) of the first data row on every sheet.
pub const FIRST_DATA_ROW: u32 = 3;

struct Formats {
    title: Format,
    head: Format,
    secs: Format,
    pct: Format,
    money: Format,
}

fn xerr(e: XlsxError) -> ReportError {
    ReportError::Write {
        path: "(workbook)".into(),
        detail: e.to_string(),
    }
}

fn write_cell(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    c: &Cell,
    f: &Formats,
) -> Result<(), XlsxError> {
    match c {
        Cell::Text(s) | Cell::Link(s) => {
            if !s.is_empty() {
                ws.write_string(row, col, s)?;
            }
        }
        Cell::Int(n) => {
            ws.write_number(row, col, *n as f64)?;
        }
        Cell::Pct(p) => {
            ws.write_number_with_format(row, col, *p, &f.pct)?;
        }
        Cell::Secs(ms) => {
            ws.write_number_with_format(row, col, secs(*ms), &f.secs)?;
        }
        Cell::Money(m) => {
            ws.write_number_with_format(row, col, m.as_units_f64(), &f.money)?;
        }
        Cell::Empty => {}
    }
    Ok(())
}

fn heading(
    ws: &mut Worksheet,
    r: &MonthlyReport,
    title: l::L,
    columns: &[l::L],
    f: &Formats,
) -> Result<(), XlsxError> {
    ws.write_string_with_format(0, 0, Lang::Both.of(title), &f.title)?;
    ws.write_string(
        1,
        0,
        format!(
            "{} / {} ({}) · {}",
            r.tenant_name_uz, r.tenant_name_ru, r.tenant, r.month
        ),
    )?;
    for (i, c) in columns.iter().enumerate() {
        let col = u16::try_from(i).unwrap_or(u16::MAX);
        ws.write_string_with_format(2, col, Lang::Both.of(*c), &f.head)?;
        ws.set_column_width(col, if i < 2 { 28 } else { 16 })?;
    }
    Ok(())
}

fn chart_for(t: &Table, sheet: &str) -> Option<Chart> {
    let n = t.rows.len() as u32;
    if n == 0 {
        return None;
    }
    let (first, last) = (FIRST_DATA_ROW, FIRST_DATA_ROW + n - 1);
    let (kind, cat_col, value_cols, last_row): (ChartType, u16, Vec<u16>, u32) = match t.key {
        "days" => (ChartType::ColumnStacked, 0, vec![2, 3, 4, 5, 6], last),
        "outcomes" => (ChartType::Column, 1, vec![2], last),
        "topics" => (ChartType::Column, 1, vec![2, 4], last),
        // Not the two summing rows at the end.
        "categories" => (
            ChartType::ColumnStacked,
            1,
            vec![3, 4, 5],
            last.saturating_sub(2),
        ),
        _ => return None,
    };
    let mut chart = Chart::new(kind);
    chart.title().set_name(&Lang::Both.of(t.title));
    for col in value_cols {
        chart
            .add_series()
            .set_name((sheet, 2, col))
            .set_categories((sheet, first, cat_col, last_row, cat_col))
            .set_values((sheet, first, col, last_row, col));
    }
    chart.y_axis().set_name(&Lang::Both.of(l::CALLS));
    chart.set_width(900).set_height(420);
    Some(chart)
}

/// The workbook as bytes.
pub fn workbook(r: &MonthlyReport) -> Result<Vec<u8>, ReportError> {
    build(r).and_then(|mut wb| wb.save_to_buffer().map_err(xerr))
}

/// Writes the workbook to `path`.
pub fn write_file(r: &MonthlyReport, path: &std::path::Path) -> Result<(), ReportError> {
    let mut wb = build(r)?;
    wb.save(path).map_err(|e| ReportError::Write {
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}

fn build(r: &MonthlyReport) -> Result<Workbook, ReportError> {
    let f = Formats {
        title: Format::new().set_bold().set_font_size(14),
        head: Format::new()
            .set_bold()
            .set_background_color("F3F3F3")
            .set_text_wrap(),
        secs: Format::new().set_num_format("0.0"),
        pct: Format::new().set_num_format("0.00"),
        money: Format::new().set_num_format("#,##0.00"),
    };
    let mut wb = Workbook::new();
    for t in tables(r, Lang::Both) {
        let sheet = sheet_name(t.key);
        let ws = wb.add_worksheet();
        ws.set_name(sheet).map_err(xerr)?;
        heading(ws, r, t.title, &t.columns, &f).map_err(xerr)?;
        for (i, row) in t.rows.iter().enumerate() {
            let rn = FIRST_DATA_ROW + i as u32;
            for (j, c) in row.iter().enumerate() {
                write_cell(ws, rn, u16::try_from(j).unwrap_or(u16::MAX), c, &f).map_err(xerr)?;
            }
        }
        ws.set_freeze_panes(FIRST_DATA_ROW, 0).map_err(xerr)?;
        if let Some(chart) = chart_for(&t, sheet) {
            let at_col = u16::try_from(t.columns.len() + 1).unwrap_or(8);
            ws.insert_chart(FIRST_DATA_ROW, at_col, &chart)
                .map_err(xerr)?;
        }
    }
    let ws = wb.add_worksheet_with_constant_memory().map_err(xerr)?;
    ws.set_name(sheet_name(DETAILS_KEY)).map_err(xerr)?;
    heading(ws, r, l::DETAILS, &DETAIL_COLUMNS, &f).map_err(xerr)?;
    for (i, d) in r.details.iter().enumerate() {
        let rn = FIRST_DATA_ROW + i as u32;
        for (j, c) in detail_cells(d, Lang::Both).iter().enumerate() {
            write_cell(ws, rn, j as u16, c, &f).map_err(xerr)?;
        }
    }
    Ok(wb)
}
