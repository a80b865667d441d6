//! The report as tables: one list of rows per sheet, shared by the XLSX, CSV and HTML
//! writers so that the three always hold the same figures under the same headings.

use super::labels::{self as l, Lang, L};
use super::{DetailRow, MonthlyReport};
use crate::money::Money;

/// One cell.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// Text (outside text is escaped by each writer).
    Text(String),
    /// A count.
    Int(u64),
    /// A percentage (display only).
    Pct(f64),
    /// A duration given in milliseconds, shown in seconds with one decimal.
    Secs(u64),
    /// Money, exact.
    Money(Money),
    /// A link in the desk (`/calls/<uid>`): its path.
    Link(String),
    /// Nothing (QA score before QA exists).
    Empty,
}

/// One table of the report.
#[derive(Clone, Debug)]
pub struct Table {
    /// File and sheet key: `summary`, `days`, ... (`<key>.csv`).
    pub key: &'static str,
    /// Its title.
    pub title: L,
    /// Column headings.
    pub columns: Vec<L>,
    /// Rows.
    pub rows: Vec<Vec<Cell>>,
}

fn t(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

const CODE: L = L {
    uz: "Kod",
    ru: "Код",
};

/// Every table but the call details (see [`DETAIL_COLUMNS`]), in sheet order.
pub fn tables(r: &MonthlyReport, lang: Lang) -> Vec<Table> {
    let s = &r.summary;
    let mut out = Vec::new();
    let name = match lang {
        Lang::Uz => r.tenant_name_uz.clone(),
        Lang::Ru => r.tenant_name_ru.clone(),
        Lang::Both => format!("{} / {}", r.tenant_name_uz, r.tenant_name_ru),
    };
    let figure = |label: L, v: Cell| vec![t(lang.of(label)), v];
    out.push(Table {
        key: "summary",
        title: l::SUMMARY,
        columns: vec![l::FIGURE, l::VALUE],
        rows: vec![
            figure(l::TENANT, t(format!("{name} ({})", r.tenant))),
            figure(l::MONTH, t(r.month.clone())),
            figure(l::TIME_ZONE, t(r.time_zone.clone())),
            figure(l::OFFERED, Cell::Int(s.offered)),
            figure(l::ANSWERED, Cell::Int(s.answered)),
            figure(l::MISSED, Cell::Int(s.missed)),
            figure(l::DEFLECTED, Cell::Int(s.deflected)),
            figure(l::CALLBACK_REQUESTED, Cell::Int(s.callback_requested)),
            figure(l::CALLED_BACK, Cell::Int(s.called_back)),
            figure(l::OTHER_ENDS, Cell::Int(s.other_ends)),
            figure(l::QUEUED, Cell::Int(s.queued)),
            figure(l::SL_TARGET, Cell::Int(s.sl_target_secs)),
            figure(l::IN_SL, Cell::Int(s.answered_in_sl)),
            figure(
                L {
                    uz: "Xizmat darajasi, %",
                    ru: "Уровень обслуживания, %",
                },
                Cell::Pct(s.service_level_pct),
            ),
            figure(l::WAIT_P50, Cell::Secs(s.wait_p50_ms)),
            figure(l::WAIT_P90, Cell::Secs(s.wait_p90_ms)),
            figure(l::WAIT_P95, Cell::Secs(s.wait_p95_ms)),
            figure(l::WAIT_AVG, Cell::Secs(s.wait_avg_ms)),
            figure(l::TALK_TOTAL, Cell::Secs(s.talk_total_ms)),
            figure(l::TALK_AVG, Cell::Secs(s.talk_avg_ms)),
            figure(l::HOLD_TOTAL, Cell::Secs(s.hold_total_ms)),
            figure(l::HOLD_AVG, Cell::Secs(s.hold_avg_ms)),
            figure(l::WRAP_TOTAL, Cell::Secs(s.wrap_total_ms)),
            figure(l::WRAP_AVG, Cell::Secs(s.wrap_avg_ms)),
            figure(l::SURGE_CALLS, Cell::Int(s.surge_calls)),
            figure(l::REPEAT_SHARE, Cell::Pct(r.repeat.repeat_share_pct)),
        ],
    });
    out.push(Table {
        key: "outcomes",
        title: l::OUTCOMES,
        columns: vec![CODE, l::OUTCOME, l::CALLS, l::SHARE],
        rows: r
            .outcomes
            .iter()
            .map(|c| {
                vec![
                    t(c.key.clone()),
                    t(lang.of(l::outcome(&c.key))),
                    Cell::Int(c.count),
                    Cell::Pct(pct(c.count, s.offered)),
                ]
            })
            .collect(),
    });
    out.push(Table {
        key: "days",
        title: l::DAYS,
        columns: vec![
            l::DAY,
            l::OFFERED,
            l::ANSWERED,
            l::MISSED,
            l::DEFLECTED,
            l::CALLBACK_REQUESTED,
            l::OTHER_ENDS,
        ],
        rows: r
            .days
            .iter()
            .map(|d| {
                vec![
                    t(d.day.clone()),
                    Cell::Int(d.offered),
                    Cell::Int(d.answered),
                    Cell::Int(d.missed),
                    Cell::Int(d.deflected),
                    Cell::Int(d.callback_requested),
                    Cell::Int(d.other),
                ]
            })
            .collect(),
    });
    out.push(Table {
        key: "topics",
        title: l::TOPICS,
        columns: vec![
            l::TOPIC_CODE,
            l::TOPIC,
            l::IVR_TOPIC,
            l::IVR_ANSWERED,
            l::OPERATOR_TOPIC,
            l::AGREE,
        ],
        rows: r
            .topics
            .iter()
            .map(|x| {
                let label = match lang {
                    Lang::Uz => x.label_uz.clone(),
                    Lang::Ru => x.label_ru.clone(),
                    Lang::Both if x.label_uz == x.label_ru => x.label_uz.clone(),
                    Lang::Both => format!("{} / {}", x.label_uz, x.label_ru),
                };
                vec![
                    t(x.code.clone()),
                    t(label),
                    Cell::Int(x.ivr_calls),
                    Cell::Int(x.ivr_answered),
                    Cell::Int(x.classified),
                    Cell::Int(x.agree),
                ]
            })
            .collect(),
    });
    let mut cat_rows: Vec<Vec<Cell>> = r
        .categories
        .iter()
        .map(|c| {
            vec![
                t(c.category.clone()),
                t(lang.of(l::category(&c.category))),
                Cell::Int(c.calls),
                Cell::Int(c.resolved),
                Cell::Int(c.unresolved),
                Cell::Int(c.disputed),
            ]
        })
        .collect();
    let sum = |f: fn(&super::CategoryRow) -> u64| r.categories.iter().map(f).sum::<u64>();
    cat_rows.push(vec![
        t(""),
        t(lang.of(l::TOTAL)),
        Cell::Int(sum(|c| c.calls)),
        Cell::Int(sum(|c| c.resolved)),
        Cell::Int(sum(|c| c.unresolved)),
        Cell::Int(sum(|c| c.disputed)),
    ]);
    cat_rows.push(vec![
        t(""),
        t(lang.of(l::NOT_CLASSIFIED)),
        Cell::Int(r.not_classified),
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
    ]);
    out.push(Table {
        key: "categories",
        title: l::CATEGORIES,
        columns: vec![
            CODE,
            l::CATEGORY,
            l::CALLS,
            l::RESOLVED,
            l::UNRESOLVED,
            l::DISPUTED,
        ],
        rows: cat_rows,
    });
    out.push(Table {
        key: "operators",
        title: l::OPERATORS,
        columns: vec![
            l::EXT,
            l::NAME,
            l::CALLS,
            l::TALK,
            l::HOLD,
            l::WRAP,
            l::HANDLE_TOTAL,
            l::HANDLE_AVG,
            l::DISPOSITIONS,
            l::RESOLVED,
            l::RESOLVED_SHARE,
            l::QA_SCORE,
            l::QA_COUNT,
        ],
        rows: r
            .operators
            .iter()
            .map(|o| {
                vec![
                    t(o.ext.clone()),
                    t(o.name.clone()),
                    Cell::Int(o.calls),
                    Cell::Secs(o.talk_ms),
                    Cell::Secs(o.hold_ms),
                    Cell::Secs(o.wrap_ms),
                    Cell::Secs(o.handle_ms),
                    Cell::Secs(o.handle_avg_ms),
                    Cell::Int(o.dispositions),
                    Cell::Int(o.resolved),
                    Cell::Pct(o.resolved_pct),
                    o.qa_score.map_or(Cell::Empty, Cell::Pct),
                    Cell::Int(o.qa_count),
                ]
            })
            .collect(),
    });
    let rp = &r.repeat;
    let mut repeat_rows = vec![
        figure(l::CALLERS, Cell::Int(rp.callers)),
        figure(l::REPEAT_CALLERS, Cell::Int(rp.repeat_callers)),
        figure(l::REPEAT_SHARE, Cell::Pct(rp.repeat_share_pct)),
        figure(l::REPEAT_CALLS, Cell::Int(rp.repeat_calls)),
        figure(l::MARKED_REPEATS, Cell::Int(rp.marked_repeats)),
        figure(l::ANONYMOUS, Cell::Int(rp.anonymous)),
    ];
    for row in &mut repeat_rows {
        row.push(Cell::Empty);
    }
    for b in &rp.distribution {
        repeat_rows.push(vec![
            t(format!("{}: {}", lang.of(l::TIMES), b.times)),
            Cell::Int(b.callers),
            Cell::Int(b.calls),
        ]);
    }
    for c in &rp.top {
        repeat_rows.push(vec![
            t(format!("{}: {}", lang.of(l::NUMBER), c.key)),
            Cell::Empty,
            Cell::Int(c.count),
        ]);
    }
    out.push(Table {
        key: "repeat",
        title: l::REPEAT,
        columns: vec![l::FIGURE, l::CALLERS, l::CALLS],
        rows: repeat_rows,
    });
    let rq = &r.requests;
    let mut req_rows = vec![vec![t("total"), t(lang.of(l::TOTAL)), Cell::Int(rq.total)]];
    for c in &rq.by_channel {
        req_rows.push(vec![
            t(format!("channel:{}", c.key)),
            t(format!(
                "{}: {}",
                lang.of(l::CHANNEL),
                lang.of(l::channel(&c.key))
            )),
            Cell::Int(c.count),
        ]);
    }
    for c in &rq.by_priority {
        req_rows.push(vec![
            t(format!("priority:{}", c.key)),
            t(format!(
                "{}: {}",
                lang.of(l::PRIORITY),
                lang.of(l::priority(&c.key))
            )),
            Cell::Int(c.count),
        ]);
    }
    for (key, label, n) in [
        ("sla:met", l::SLA_MET, rq.sla_met),
        ("sla:breached", l::SLA_BREACHED, rq.sla_breached),
        ("sla:open", l::SLA_OPEN, rq.sla_open),
    ] {
        req_rows.push(vec![
            t(key),
            t(format!("{}: {}", lang.of(l::SLA), lang.of(label))),
            Cell::Int(n),
        ]);
    }
    for c in &rq.breaches_by_clock {
        req_rows.push(vec![
            t(format!("breach:{}", c.key)),
            t(format!(
                "{}: {}",
                lang.of(l::SLA_BREACHED),
                lang.of(l::clock(&c.key))
            )),
            Cell::Int(c.count),
        ]);
    }
    out.push(Table {
        key: "requests",
        title: l::REQUESTS,
        columns: vec![CODE, l::FIGURE, l::VALUE],
        rows: req_rows,
    });
    out.push(Table {
        key: "surge",
        title: l::SURGE,
        columns: vec![
            l::FROM,
            l::TO,
            l::MINUTES,
            l::SWITCHED_BY,
            l::CALLS,
            l::ANSWERED,
            l::DEFLECTED,
            l::CALLBACK_REQUESTED,
            l::MISSED,
        ],
        rows: r
            .surge
            .iter()
            .map(|p| {
                vec![
                    t(p.from.clone()),
                    t(p.to.clone()),
                    Cell::Int(p.minutes),
                    t(p.by.clone()),
                    Cell::Int(p.calls),
                    Cell::Int(p.answered),
                    Cell::Int(p.deflected),
                    Cell::Int(p.callback_requested),
                    Cell::Int(p.missed),
                ]
            })
            .collect(),
    });
    if let Some(inv) = &r.invoice {
        let mut rows = vec![
            vec![t(lang.of(l::CURRENCY)), t(inv.currency.clone())],
            vec![
                t(lang.of(l::PRICING)),
                t(lang.of(if inv.pricing == "graduated" {
                    l::PRICING_GRADUATED
                } else {
                    l::PRICING_VOLUME
                })),
            ],
            vec![
                t(lang.of(l::BILLABLE)),
                t(inv
                    .billable
                    .iter()
                    .map(|(o, n)| format!("{} {n}", lang.of(l::outcome(o))))
                    .collect::<Vec<_>>()
                    .join("; ")),
            ],
            vec![t(lang.of(l::VOLUME)), Cell::Int(inv.volume)],
            vec![t(lang.of(l::TIER)), Cell::Int(inv.tier as u64)],
            vec![t(lang.of(l::TIER_RANGE)), t(inv.tier_range.clone())],
            vec![t(lang.of(l::UNIT_PRICE)), Cell::Money(inv.unit_price)],
        ];
        for line in &inv.lines {
            rows.push(vec![
                t(format!(
                    "{} {}: {}-{} × {}",
                    lang.of(l::TIER),
                    line.tier,
                    line.from_call,
                    line.to_call,
                    line.unit_price
                )),
                Cell::Money(line.amount),
            ]);
        }
        rows.push(vec![t(lang.of(l::TOTAL)), Cell::Money(inv.total)]);
        out.push(Table {
            key: "invoice",
            title: l::INVOICE,
            columns: vec![l::FIGURE, l::VALUE],
            rows,
        });
    }
    out
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 10_000.0 / whole as f64).round() / 100.0
    }
}

/// The call details' headings.
pub const DETAIL_COLUMNS: [L; 18] = [
    l::CALL_ID,
    l::TIME,
    l::NUMBER,
    l::LANGUAGE,
    l::IVR_TOPIC,
    l::OPERATOR_TOPIC,
    l::CATEGORY,
    l::RESOLUTION,
    l::OUTCOME,
    l::OPERATOR,
    l::WAIT,
    l::TALK,
    l::HOLD,
    l::WRAP,
    l::SURGE_FLAG,
    l::REPEAT,
    l::RECORDING,
    l::LINK,
];

/// The key of the details table (`calls.csv`).
pub const DETAILS_KEY: &str = "calls";

/// One call's cells, in [`DETAIL_COLUMNS`] order (codes, not labels: the sheet is for
/// filtering and counting).
pub fn detail_cells(d: &DetailRow, lang: Lang) -> Vec<Cell> {
    let yes_no = |b: bool| t(lang.of(if b { l::YES } else { l::NO }));
    vec![
        t(d.call.clone()),
        t(d.time.clone()),
        t(d.number.clone()),
        t(d.language.clone()),
        t(d.ivr_topic.clone()),
        t(d.topic.clone()),
        t(d.category.clone()),
        t(d.resolution.clone()),
        t(d.outcome.clone()),
        t(d.operator.clone()),
        Cell::Secs(d.wait_ms),
        Cell::Secs(d.talk_ms),
        Cell::Secs(d.hold_ms),
        Cell::Secs(d.wrap_ms),
        yes_no(d.surge),
        Cell::Int(d.caller_calls),
        yes_no(d.recording),
        Cell::Link(d.link.clone()),
    ]
}
