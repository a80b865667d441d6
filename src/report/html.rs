//! The report as HTML: a fragment (tables and inline-SVG charts from [`crate::chart`], the
//! module the load generator's reports use too) that the desk's reports page embeds, and a
//! standalone document for a file. Every text that comes from data or configuration is
//! escaped; numbers are masked before they get here (D18).

use super::labels::{self as l, Lang};
use super::table::{detail_cells, tables, Cell, DETAIL_COLUMNS};
use super::{secs, MonthlyReport};
use crate::chart::{category_chart, escape, Series, PALETTE};
use std::fmt::Write;

/// How the details' links are drawn.
#[derive(Clone, Debug)]
pub struct View {
    /// Prefix of the desk's links (`https://navbat.example.uz`); `None`: paths only.
    pub base_url: Option<String>,
    /// The reader may hear recordings (the recording route's roles): a listen link per
    /// recorded call.
    pub listen: bool,
    /// At most this many calls are listed (the files hold them all).
    pub details_limit: usize,
}

impl Default for View {
    fn default() -> View {
        View {
            base_url: None,
            listen: false,
            details_limit: 1_000,
        }
    }
}

/// The page's style (the standalone file; the desk has its own).
pub const CSS: &str = "body{font:14px sans-serif;margin:24px;color:#222}\
.report table{border-collapse:collapse;margin:8px 0 20px}\
.report td,.report th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
.report th{background:#f3f3f3}.report td.t,.report th.t{text-align:left}\
.report h2{margin-top:28px}.report .note{color:#555}.report .charts svg{margin:8px 0}";

fn cell_html(c: &Cell, view: &View) -> String {
    match c {
        Cell::Text(s) => format!("<td class=\"t\">{}</td>", escape(s)),
        Cell::Int(n) => format!("<td>{n}</td>"),
        Cell::Pct(p) => format!("<td>{p:.2}</td>"),
        Cell::Secs(ms) => format!("<td>{:.1}</td>", secs(*ms)),
        Cell::Money(m) => format!("<td>{m}</td>"),
        Cell::Link(path) => format!(
            "<td class=\"t\"><a href=\"{}{}\">{}</a></td>",
            escape(view.base_url.as_deref().unwrap_or("")),
            escape(path),
            escape(path)
        ),
        Cell::Empty => "<td></td>".to_owned(),
    }
}

fn charts(r: &MonthlyReport, lang: Lang) -> String {
    let mut out = String::from("<div class=\"charts\">");
    let days: Vec<String> = r
        .days
        .iter()
        .map(|d| d.day.rsplit('-').next().unwrap_or("").to_owned())
        .collect();
    let names = [
        lang.of(l::ANSWERED),
        lang.of(l::MISSED),
        lang.of(l::DEFLECTED),
        lang.of(l::CALLBACK_REQUESTED),
        lang.of(l::OTHER_ENDS),
    ];
    let pick: [fn(&super::DayRow) -> u64; 5] = [
        |d| d.answered,
        |d| d.missed,
        |d| d.deflected,
        |d| d.callback_requested,
        |d| d.other,
    ];
    let colours = [PALETTE[2], PALETTE[1], PALETTE[0], PALETTE[3], PALETTE[7]];
    let series: Vec<Series> = names
        .iter()
        .zip(pick)
        .zip(colours)
        .map(|((name, f), colour)| Series {
            name,
            colour,
            points: r
                .days
                .iter()
                .enumerate()
                .map(|(i, d)| (i as f64, f(d) as f64))
                .collect(),
        })
        .collect();
    out.push_str(&category_chart(
        &lang.of(l::DAYS),
        &lang.of(l::CALLS),
        &days,
        &series,
        true,
    ));
    let outcome_names: Vec<String> = r
        .outcomes
        .iter()
        .map(|o| lang.of(l::outcome(&o.key)))
        .collect();
    let calls = lang.of(l::CALLS);
    out.push_str(&category_chart(
        &lang.of(l::OUTCOMES),
        &calls,
        &outcome_names,
        &[Series {
            name: &calls,
            colour: PALETTE[0],
            points: r
                .outcomes
                .iter()
                .enumerate()
                .map(|(i, o)| (i as f64, o.count as f64))
                .collect(),
        }],
        false,
    ));
    let topic_names: Vec<String> = r
        .topics
        .iter()
        .map(|t| match lang {
            Lang::Ru => t.label_ru.clone(),
            _ => t.label_uz.clone(),
        })
        .collect();
    let (ivr, op) = (lang.of(l::IVR_TOPIC), lang.of(l::OPERATOR_TOPIC));
    out.push_str(&category_chart(
        &lang.of(l::TOPICS),
        &calls,
        &topic_names,
        &[
            Series {
                name: &ivr,
                colour: PALETTE[0],
                points: r
                    .topics
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (i as f64, t.ivr_calls as f64))
                    .collect(),
            },
            Series {
                name: &op,
                colour: PALETTE[3],
                points: r
                    .topics
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (i as f64, t.classified as f64))
                    .collect(),
            },
        ],
        false,
    ));
    let cat_names: Vec<String> = r
        .categories
        .iter()
        .map(|c| lang.of(l::category(&c.category)))
        .collect();
    let (res, unres, disp) = (
        lang.of(l::RESOLVED),
        lang.of(l::UNRESOLVED),
        lang.of(l::DISPUTED),
    );
    let cat_points = |f: fn(&super::CategoryRow) -> u64| -> Vec<(f64, f64)> {
        r.categories
            .iter()
            .enumerate()
            .map(|(i, c)| (i as f64, f(c) as f64))
            .collect()
    };
    let cs = [
        Series {
            name: &res,
            colour: PALETTE[2],
            points: cat_points(|c| c.resolved),
        },
        Series {
            name: &unres,
            colour: PALETTE[1],
            points: cat_points(|c| c.unresolved),
        },
        Series {
            name: &disp,
            colour: PALETTE[4],
            points: cat_points(|c| c.disputed),
        },
    ];
    out.push_str(&category_chart(
        &lang.of(l::CATEGORIES),
        &calls,
        &cat_names,
        &cs,
        true,
    ));
    out.push_str("</div>");
    out
}

/// The report's body: headings, charts, every table, and the first calls with their links.
pub fn fragment(r: &MonthlyReport, lang: Lang, view: &View) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let name = match lang {
        Lang::Ru => r.tenant_name_ru.clone(),
        Lang::Uz => r.tenant_name_uz.clone(),
        Lang::Both => format!("{} / {}", r.tenant_name_uz, r.tenant_name_ru),
    };
    let _ = write!(
        out,
        "<section class=\"report\" id=\"report\" data-tenant=\"{}\" data-month=\"{}\"><h1>{}: {} · {}</h1><p class=\"note\">{} ({}). {}.</p>",
        escape(&r.tenant),
        escape(&r.month),
        escape(&lang.of(l::TITLE)),
        escape(&name),
        escape(&r.month),
        escape(&lang.of(l::TIME_ZONE)),
        escape(&r.time_zone),
        escape(&lang.of(l::LIVE_NOTE)),
    );
    let all = tables(r, lang);
    let mut first = true;
    for t in &all {
        let _ = write!(
            out,
            "<h2>{}</h2><table id=\"report-{}\"><thead><tr>",
            escape(&lang.of(t.title)),
            t.key
        );
        for c in &t.columns {
            let _ = write!(out, "<th class=\"t\">{}</th>", escape(&lang.of(*c)));
        }
        out.push_str("</tr></thead><tbody>");
        for row in &t.rows {
            out.push_str("<tr>");
            for c in row {
                out.push_str(&cell_html(c, view));
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
        if t.key == "surge" && t.rows.is_empty() {
            let _ = write!(
                out,
                "<p class=\"note\">{}</p>",
                escape(&lang.of(l::NO_SURGE))
            );
        }
        if first {
            out.push_str(&charts(r, lang));
            first = false;
        }
    }
    if r.invoice.is_none() {
        let _ = write!(
            out,
            "<h2>{}</h2><p class=\"note\" id=\"no-invoice\">{}</p>",
            escape(&lang.of(l::INVOICE)),
            escape(&lang.of(l::NO_BILLING))
        );
    }
    let _ = write!(
        out,
        "<h2>{}</h2><p class=\"note\">{} ({} / {})</p><table id=\"report-calls\"><thead><tr>",
        escape(&lang.of(l::DETAILS)),
        escape(&lang.of(l::DETAILS_CAPPED)),
        r.details.len().min(view.details_limit),
        r.details.len()
    );
    for c in DETAIL_COLUMNS {
        let _ = write!(out, "<th class=\"t\">{}</th>", escape(&lang.of(c)));
    }
    if view.listen {
        let _ = write!(out, "<th class=\"t\">{}</th>", escape(&lang.of(l::LISTEN)));
    }
    out.push_str("</tr></thead><tbody>");
    for d in r.details.iter().take(view.details_limit) {
        let _ = write!(
            out,
            "<tr class=\"report-call\" data-call=\"{}\">",
            escape(&d.call)
        );
        for c in detail_cells(d, lang) {
            out.push_str(&cell_html(&c, view));
        }
        if view.listen {
            if d.recording {
                let _ = write!(
                    out,
                    "<td class=\"t\"><a class=\"listen\" href=\"{}/api/recordings/{}\">{}</a></td>",
                    escape(view.base_url.as_deref().unwrap_or("")),
                    escape(&d.call),
                    escape(&lang.of(l::LISTEN))
                );
            } else {
                out.push_str("<td></td>");
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></section>");
    out
}

/// A standalone HTML document (for a file), both languages.
pub fn document(r: &MonthlyReport, view: &View) -> String {
    format!(
        "<!doctype html><html lang=\"uz\"><head><meta charset=\"utf-8\"><title>{} {} {}</title><style>{CSS}</style></head><body>{}</body></html>",
        escape(&Lang::Both.of(l::TITLE)),
        escape(&r.tenant),
        escape(&r.month),
        fragment(r, Lang::Both, view)
    )
}
