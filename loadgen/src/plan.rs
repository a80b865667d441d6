//! `loadgen plan`: staffing per interval for a call forecast (Erlang C and Erlang A), and
//! trunk channels for a blocking target (Erlang B).
//!
//! Input is a CSV with a header and the columns `interval` (any label, e.g. `09:00`) and
//! `calls`, and optionally `aht_secs` (overrides the global handle time for that row).

use crate::erlang::{agents_for_target, channels_for_blocking, erlang_b, Prediction, Targets};
use navbat::chart::{chart, Series, Style, PALETTE};
use std::fmt::Write;

/// The planner's targets and assumptions.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PlanParams {
    /// Interval length, seconds.
    pub interval_secs: f64,
    /// Mean handle time (talk + hold + after-call work), seconds.
    pub aht_secs: f64,
    /// Service level target: this fraction of calls ...
    pub sl_target: f64,
    /// ... answered within this many seconds.
    pub target_secs: f64,
    /// Mean caller patience for Erlang A, seconds.
    pub patience_secs: f64,
    /// Share of paid time agents are not on the phones (breaks, training, absence).
    pub shrinkage: f64,
    /// Highest acceptable agent occupancy.
    pub occupancy_cap: f64,
    /// Highest acceptable abandonment (Erlang A only).
    pub abandon_cap: f64,
    /// Time a call holds a trunk channel before it queues (greeting + IVR), seconds.
    pub ivr_secs: f64,
    /// Trunk blocking target (Erlang B).
    pub blocking_target: f64,
    /// Most agents to consider per interval.
    pub max_agents: u32,
}

/// One forecast row.
#[derive(Clone, Debug)]
pub struct ForecastRow {
    /// The interval's label.
    pub interval: String,
    /// Calls forecast in the interval.
    pub calls: f64,
    /// Handle time for this row, if it differs from the global one.
    pub aht_secs: Option<f64>,
}

/// The plan for one interval.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PlanRow {
    /// The interval's label.
    pub interval: String,
    /// Calls forecast.
    pub calls: f64,
    /// Offered load in Erlangs.
    pub erlangs: f64,
    /// Erlang C staffing (agents on the phones) and what it gives.
    pub erlang_c: Option<Prediction>,
    /// Erlang A staffing and what it gives.
    pub erlang_a: Option<Prediction>,
    /// Agents to schedule for the Erlang A staffing after shrinkage.
    pub scheduled_a: Option<u32>,
    /// Agents to schedule for the Erlang C staffing after shrinkage.
    pub scheduled_c: Option<u32>,
    /// Trunk load in Erlangs: answered calls hold a channel through IVR, wait and talk.
    pub trunk_erlangs: f64,
    /// Channels for the blocking target.
    pub channels: u32,
    /// Blocking with that many channels.
    pub blocking: f64,
}

/// The forecast CSV could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ForecastError {
    /// No header with `calls`.
    #[error("forecast CSV needs a header with the columns interval,calls[,aht_secs]")]
    NoHeader,
    /// A number did not parse.
    #[error("forecast CSV line {line}: {column} {value:?} is not a non-negative number")]
    BadNumber {
        /// 1-based line number.
        line: usize,
        /// The column.
        column: &'static str,
        /// The text found.
        value: String,
    },
}

/// Reads the forecast CSV (simple comma-separated values, no quoting).
pub fn parse_forecast(text: &str) -> Result<Vec<ForecastRow>, ForecastError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or(ForecastError::NoHeader)?;
    let cols: Vec<String> = header.split(',').map(|c| c.trim().to_lowercase()).collect();
    let at = |name: &str| cols.iter().position(|c| c == name);
    let calls_at = at("calls").ok_or(ForecastError::NoHeader)?;
    let label_at = at("interval");
    let aht_at = at("aht_secs");
    let mut rows = Vec::new();
    for (i, line) in lines {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let num = |idx: usize, column: &'static str| -> Result<f64, ForecastError> {
            let v = cells.get(idx).copied().unwrap_or("");
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or(ForecastError::BadNumber {
                    line: i + 1,
                    column,
                    value: v.into(),
                })
        };
        rows.push(ForecastRow {
            interval: label_at
                .and_then(|l| cells.get(l))
                .map(|s| s.to_string())
                .unwrap_or_else(|| format!("{}", rows.len() + 1)),
            calls: num(calls_at, "calls")?,
            aht_secs: match aht_at {
                Some(a) if cells.get(a).is_some_and(|c| !c.is_empty()) => Some(num(a, "aht_secs")?),
                _ => None,
            },
        });
    }
    Ok(rows)
}

/// Plans every interval.
pub fn plan(rows: &[ForecastRow], p: &PlanParams) -> Vec<PlanRow> {
    rows.iter()
        .map(|r| {
            let aht = r.aht_secs.unwrap_or(p.aht_secs);
            let erlangs = r.calls * aht / p.interval_secs;
            let targets = Targets {
                target_secs: p.target_secs,
                sl_target: p.sl_target,
                occupancy_cap: p.occupancy_cap,
                abandon_cap: p.abandon_cap,
            };
            let c = agents_for_target(
                erlangs,
                aht,
                f64::INFINITY,
                &Targets {
                    abandon_cap: 1.0,
                    ..targets
                },
                p.max_agents,
            );
            let a = agents_for_target(erlangs, aht, p.patience_secs, &targets, p.max_agents);
            let schedule = |n: u32| (n as f64 / (1.0 - p.shrinkage).max(0.01)).ceil() as u32;
            // A call holds a channel through the IVR, then (if it stays) its wait and talk.
            let held = match a {
                Some(pa) => {
                    p.ivr_secs
                        + (1.0 - pa.p_abandon) * (pa.asa_secs + aht)
                        + pa.p_abandon * p.patience_secs.min(pa.asa_secs * 2.0 + p.target_secs)
                }
                None => p.ivr_secs + aht,
            };
            let trunk_erlangs = r.calls * held / p.interval_secs;
            let channels = channels_for_blocking(trunk_erlangs, p.blocking_target);
            PlanRow {
                interval: r.interval.clone(),
                calls: r.calls,
                erlangs,
                erlang_c: c,
                erlang_a: a,
                scheduled_a: a.map(|x| schedule(x.agents)),
                scheduled_c: c.map(|x| schedule(x.agents)),
                trunk_erlangs,
                channels,
                blocking: erlang_b(channels, trunk_erlangs),
            }
        })
        .collect()
}

fn opt_agents(p: &Option<Prediction>) -> String {
    p.map_or("-".into(), |p| p.agents.to_string())
}

/// A plain-text table for the terminal.
pub fn table(rows: &[PlanRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<10} {:>8} {:>8} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7} {:>6} {:>6} {:>8}",
        "interval",
        "calls",
        "erlangs",
        "C",
        "A",
        "sched",
        "SL(A)",
        "ASA(A)",
        "aband",
        "occ",
        "chan",
        "block"
    );
    for r in rows {
        let a = r.erlang_a;
        let _ = writeln!(
            s,
            "{:<10} {:>8.0} {:>8.2} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7} {:>6} {:>6} {:>8.4}",
            r.interval,
            r.calls,
            r.erlangs,
            opt_agents(&r.erlang_c),
            opt_agents(&r.erlang_a),
            r.scheduled_a.map_or("-".into(), |n| n.to_string()),
            a.map_or("-".into(), |a| format!("{:.3}", a.service_level)),
            a.map_or("-".into(), |a| format!("{:.1}", a.asa_secs)),
            a.map_or("-".into(), |a| format!("{:.3}", a.p_abandon)),
            a.map_or("-".into(), |a| format!("{:.2}", a.occupancy)),
            r.channels,
            r.blocking
        );
    }
    s
}

/// CSV of the plan.
pub fn csv(rows: &[PlanRow]) -> String {
    let mut s = String::from(
        "interval,calls,erlangs,agents_c,sl_c,asa_c,agents_a,sl_a,asa_a,abandon_a,occupancy_a,scheduled_c,scheduled_a,trunk_erlangs,channels,blocking\n",
    );
    let f = |p: &Option<Prediction>, g: fn(&Prediction) -> f64| {
        p.as_ref().map_or(String::new(), |p| format!("{:.6}", g(p)))
    };
    for r in rows {
        let _ = writeln!(
            s,
            "{},{},{:.4},{},{},{},{},{},{},{},{},{},{},{:.4},{},{:.6}",
            r.interval,
            r.calls,
            r.erlangs,
            r.erlang_c.map_or(String::new(), |p| p.agents.to_string()),
            f(&r.erlang_c, |p| p.service_level),
            f(&r.erlang_c, |p| p.asa_secs),
            r.erlang_a.map_or(String::new(), |p| p.agents.to_string()),
            f(&r.erlang_a, |p| p.service_level),
            f(&r.erlang_a, |p| p.asa_secs),
            f(&r.erlang_a, |p| p.p_abandon),
            f(&r.erlang_a, |p| p.occupancy),
            r.scheduled_c.map_or(String::new(), |n| n.to_string()),
            r.scheduled_a.map_or(String::new(), |n| n.to_string()),
            r.trunk_erlangs,
            r.channels,
            r.blocking
        );
    }
    s
}

/// An HTML page with the table and a chart per quantity per interval.
pub fn html(rows: &[PlanRow], p: &PlanParams) -> String {
    let pts = |f: &dyn Fn(&PlanRow) -> f64| -> Vec<(f64, f64)> {
        rows.iter()
            .enumerate()
            .map(|(i, r)| (i as f64 + 1.0, f(r)))
            .collect()
    };
    let staff = chart(
        "Agents needed per interval",
        "interval number",
        "agents",
        Style::Lines,
        &[
            Series {
                name: "Erlang C",
                colour: PALETTE[0],
                points: pts(&|r| r.erlang_c.map_or(f64::NAN, |p| p.agents as f64)),
            },
            Series {
                name: "Erlang A",
                colour: PALETTE[2],
                points: pts(&|r| r.erlang_a.map_or(f64::NAN, |p| p.agents as f64)),
            },
            Series {
                name: "scheduled (A, after shrinkage)",
                colour: PALETTE[3],
                points: pts(&|r| r.scheduled_a.map_or(f64::NAN, |n| n as f64)),
            },
        ],
    );
    let load = chart(
        "Offered load and trunk channels per interval",
        "interval number",
        "Erlangs / channels",
        Style::Lines,
        &[
            Series {
                name: "agent Erlangs",
                colour: PALETTE[0],
                points: pts(&|r| r.erlangs),
            },
            Series {
                name: "trunk Erlangs",
                colour: PALETTE[4],
                points: pts(&|r| r.trunk_erlangs),
            },
            Series {
                name: "channels",
                colour: PALETTE[1],
                points: pts(&|r| r.channels as f64),
            },
        ],
    );
    let mut t = String::from("<table><tr><th>#</th><th>interval</th><th>calls</th><th>Erlangs</th><th>agents C</th><th>agents A</th><th>scheduled A</th><th>SL A</th><th>ASA A (s)</th><th>abandon A</th><th>occupancy A</th><th>channels</th><th>blocking</th></tr>");
    for (i, r) in rows.iter().enumerate() {
        let a = r.erlang_a;
        let _ = write!(
            t,
            "<tr><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td></tr>",
            i + 1,
            r.interval,
            r.calls,
            r.erlangs,
            opt_agents(&r.erlang_c),
            opt_agents(&r.erlang_a),
            r.scheduled_a.map_or("-".into(), |n| n.to_string()),
            a.map_or("-".into(), |a| format!("{:.3}", a.service_level)),
            a.map_or("-".into(), |a| format!("{:.1}", a.asa_secs)),
            a.map_or("-".into(), |a| format!("{:.3}", a.p_abandon)),
            a.map_or("-".into(), |a| format!("{:.2}", a.occupancy)),
            r.channels,
            r.blocking
        );
    }
    t.push_str("</table>");
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>navbat staffing plan</title><style>{}</style></head><body><h1>Staffing plan</h1><p>Target {:.0}% in {} s, AHT {} s, patience {} s, shrinkage {:.0}%, occupancy cap {:.0}%, abandonment cap {:.1}%, trunk blocking target {:.2}%.</p>{}{}{}</body></html>",
        crate::report::CSS,
        p.sl_target * 100.0,
        p.target_secs,
        p.aht_secs,
        p.patience_secs,
        p.shrinkage * 100.0,
        p.occupancy_cap * 100.0,
        p.abandon_cap * 100.0,
        p.blocking_target * 100.0,
        staff,
        load,
        t
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> PlanParams {
        PlanParams {
            interval_secs: 1800.0,
            aht_secs: 180.0,
            sl_target: 0.8,
            target_secs: 20.0,
            patience_secs: 120.0,
            shrinkage: 0.3,
            occupancy_cap: 0.9,
            abandon_cap: 0.05,
            ivr_secs: 15.0,
            blocking_target: 0.01,
            max_agents: 1000,
        }
    }

    #[test]
    fn forecast_parses_and_reports_bad_lines() {
        let rows = parse_forecast("interval,calls,aht_secs\n09:00,100,\n09:30,200,240\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].aht_secs, Some(240.0));
        assert!(matches!(
            parse_forecast("interval,calls\n09:00,x\n"),
            Err(ForecastError::BadNumber { line: 2, .. })
        ));
        assert!(matches!(
            parse_forecast("a,b\n"),
            Err(ForecastError::NoHeader)
        ));
    }

    #[test]
    fn plan_meets_targets_and_grows_with_load() {
        let rows = parse_forecast("interval,calls\na,100\nb,400\nc,0\n").unwrap();
        let plan = plan(&rows, &params());
        let a0 = plan[0].erlang_a.unwrap();
        let a1 = plan[1].erlang_a.unwrap();
        assert!(a0.service_level >= 0.8 && a0.occupancy <= 0.9);
        assert!(a1.agents > a0.agents);
        assert!(plan[0].scheduled_a.unwrap() > a0.agents);
        assert!(plan[0].blocking <= 0.01);
        assert_eq!(plan[2].channels, 0);
        // Erlang A never needs more agents than Erlang C for the same targets.
        assert!(a0.agents <= plan[0].erlang_c.unwrap().agents);
        let page = html(&plan, &params());
        assert!(page.contains("<svg") && page.contains("</html>"));
        assert_eq!(csv(&plan).lines().count(), 4);
    }
}
