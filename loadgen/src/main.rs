//! `loadgen`: navbat's load generator (`run`), discrete-event simulator (`sim`) and Erlang
//! capacity planner (`plan`). See `loadgen --help`.
#![forbid(unsafe_code)]

mod dist;
mod erlang;
mod phones;
mod plan;
mod report;
mod run;
mod scenario;
mod sim;
mod sipmsg;
use navbat::chart as svg;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use dist::Dist;
use scenario::{Profile, Scenario, SurgePolicy};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    version,
    about = "navbat load generator, simulator and Erlang capacity planner"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Staffing per interval (Erlang C and A) and trunk channels (Erlang B) for a forecast.
    Plan(PlanArgs),
    /// Discrete-event simulation through navbat's own ACD core.
    Sim(SimArgs),
    /// Real SIP over UDP against navbat (embedded child process, or --target).
    Run(RunArgs),
    /// Simulate M/M/N and M/M/N+M cases and print them beside Erlang C and A.
    Agreement {
        /// Calls per case.
        #[arg(long, default_value_t = 200_000)]
        calls: u64,
    },
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Scenario seconds per wall second (60 replays an hour in a minute).
    #[arg(long, default_value_t = 60.0)]
    compression: f64,
    /// A running navbat's SIP UDP address (it must use the demo operators); default: start
    /// one with the scenario's configuration.
    #[arg(long)]
    target: Option<std::net::SocketAddr>,
    /// The running navbat's HTTP API address (with --target).
    #[arg(long)]
    http: Option<std::net::SocketAddr>,
    /// Admin token of the API.
    #[arg(long, default_value = "demo-admin-token")]
    token: String,
    /// The navbat binary (default: next to loadgen's executable).
    #[arg(long)]
    navbat: Option<PathBuf>,
    /// Give up on the calls phase after this many wall seconds.
    #[arg(long, default_value_t = 3600.0)]
    max_wall_secs: f64,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Output directory.
    #[arg(long, default_value = "loadgen-run")]
    out: PathBuf,
}

#[derive(Args)]
struct PlanArgs {
    /// Forecast CSV: interval,calls[,aht_secs].
    #[arg(long)]
    forecast: PathBuf,
    /// Interval length in minutes.
    #[arg(long, default_value_t = 30.0)]
    interval_mins: f64,
    /// Mean handle time, seconds.
    #[arg(long, default_value_t = 180.0)]
    aht: f64,
    /// Service level target (share of calls answered within --target-secs).
    #[arg(long, default_value_t = 0.8)]
    service_level: f64,
    /// Service level time, seconds.
    #[arg(long, default_value_t = 20.0)]
    target_secs: f64,
    /// Mean caller patience for Erlang A, seconds.
    #[arg(long, default_value_t = 120.0)]
    patience: f64,
    /// Shrinkage (share of paid time off the phones).
    #[arg(long, default_value_t = 0.3)]
    shrinkage: f64,
    /// Occupancy cap.
    #[arg(long, default_value_t = 0.85)]
    occupancy_cap: f64,
    /// Abandonment cap (Erlang A).
    #[arg(long, default_value_t = 0.05)]
    abandon_cap: f64,
    /// Seconds a call spends in greeting + IVR (holds a trunk channel).
    #[arg(long, default_value_t = 15.0)]
    ivr_secs: f64,
    /// Trunk blocking target (Erlang B).
    #[arg(long, default_value_t = 0.01)]
    blocking: f64,
    /// Write the plan as CSV here.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Write the plan as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write an HTML page with table and charts here.
    #[arg(long)]
    html: Option<PathBuf>,
}

/// The caller, operator and router model shared by `sim` and `run`.
#[derive(Args, Clone)]
struct ScenarioArgs {
    /// Arrival profile: results-day | constant | ramp | csv.
    #[arg(long, default_value = "results-day")]
    profile: String,
    /// Calls (results-day, constant).
    #[arg(long, default_value_t = 150_000)]
    calls: u64,
    /// Duration in seconds (constant, ramp).
    #[arg(long, default_value_t = 3600.0)]
    duration: f64,
    /// Ramp start and end rate, calls per second: FROM,TO.
    #[arg(long, default_value = "0.5,5")]
    ramp: String,
    /// Arrival curve CSV (profile csv): start_secs,len_secs,calls or minute,calls.
    #[arg(long)]
    curve: Option<PathBuf>,
    /// Place at most this many calls (a bounded slice of the profile).
    #[arg(long)]
    limit: Option<u64>,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Caller patience in queue: exp:MEAN | lognormal:MEAN,SD | const:S | never.
    #[arg(long, default_value = "exp:120")]
    patience: Dist,
    /// Talk time.
    #[arg(long, default_value = "lognormal:180,120")]
    handle: Dist,
    /// Operator ring delay before answering.
    #[arg(long, default_value = "const:3")]
    ring_delay: Dist,
    /// Operator after-call work (ended early through the API when shorter than --wrap-up).
    #[arg(long, default_value = "exp:8")]
    operator_wrap_up: Dist,
    /// Seconds in the IVR before joining the queue.
    #[arg(long, default_value_t = 8.0)]
    ivr_secs: f64,
    /// Weights of language digits 1 (uz) and 2 (ru).
    #[arg(long, default_value = "0.7,0.3")]
    languages: String,
    /// Weights of topic digits 1,2,3,0.
    #[arg(long, default_value = "0.2,0.5,0.1,0.2")]
    topics: String,
    /// Operators.
    #[arg(long, default_value_t = 40)]
    operators: u32,
    /// Share of operators speaking both languages.
    #[arg(long, default_value_t = 0.6)]
    bilingual: f64,
    /// Reserve staff (D11: one per 20 operators).
    #[arg(long, default_value_t = 2)]
    reserve: u32,
    /// Channel limit (D6).
    #[arg(long, default_value_t = 300)]
    channels: u32,
    /// Queue maximum wait, seconds.
    #[arg(long, default_value_t = 300)]
    max_wait: u64,
    /// Queue ring timeout, seconds.
    #[arg(long, default_value_t = 20)]
    ring_timeout: u64,
    /// Queue wrap-up, seconds.
    #[arg(long, default_value_t = 15)]
    wrap_up: u64,
    /// Reserve staff take calls after this wait, seconds ("never" for no overflow).
    #[arg(long, default_value = "60")]
    reserve_after: String,
    /// Cap on waiting calls per queue ("none" for no cap).
    #[arg(long, default_value = "500")]
    max_waiting: String,
    /// Service level target time, seconds.
    #[arg(long, default_value_t = 20.0)]
    target_secs: f64,
    /// Start with the DTM tenant in surge mode (surge max wait, reserve staff at once,
    /// self-service share).
    #[arg(long)]
    surge: bool,
    /// Surge: queue maximum wait, seconds (the results-day policy's 90 s; the surge of
    /// before used 120).
    #[arg(long, default_value_t = 90)]
    surge_max_wait: u64,
    /// Surge: share of callers (0-1) who take the self-service branch (sim only; a SIP run
    /// follows the callers' keys).
    #[arg(long, default_value_t = 0.25)]
    surge_deflect: f64,
    /// Surge: a caller still waiting this long is offered a callback (the tenant's
    /// offer_after_secs), seconds (sim only).
    #[arg(long, default_value_t = 45.0)]
    surge_callback_after: f64,
    /// Surge: share of offered callers (0-1) who accept the callback (sim only; a SIP run
    /// follows the callers' keys).
    #[arg(long, default_value_t = 0.3)]
    surge_callback_accept: f64,
    /// Surge: the results-day policy, `on` (offer at the door, callbacks that can be kept,
    /// live reserve) or `off` (the callback offer after --surge-callback-after only) (sim only).
    #[arg(long, default_value = "on")]
    surge_policy: String,
    /// Surge policy: greeting and IVR, seconds (the demo's surge greeting, 9.4 s in both
    /// languages, then the language and topic keys pressed into their prompts).
    #[arg(long, default_value_t = 14.0)]
    surge_ivr_secs: f64,
    /// Surge policy: the self-service information prompt, seconds (the demo's results-where,
    /// 7.1 s in Uzbek and 6.0 s in Russian, weighted by the callers' languages, 70/30).
    #[arg(long, default_value_t = 6.8)]
    surge_info_secs: f64,
    /// Surge policy: after a caller keys the callback or the SMS, the confirmation prompt
    /// holds the channel this long, seconds (the demo's callback-booked, 4.5/2.4 s, and
    /// sms-sent, 3.5/3.4 s, weighted by language and choice; sim only: over SIP the router
    /// plays the real prompt).
    #[arg(long, default_value_t = 3.6)]
    surge_confirm_secs: f64,
    /// Surge policy: offer at queue entry when the expected wait is above this, seconds.
    #[arg(long, default_value_t = 60.0)]
    surge_offer_above: f64,
    /// Surge policy: share of offered callers (0-1) who take the SMS when they take no callback.
    #[arg(long, default_value_t = 0.5)]
    surge_sms_accept: f64,
    /// Surge policy: share of operators kept for live callers while they wait, percent.
    #[arg(long, default_value_t = 30)]
    surge_live_reserve: u8,
    /// Surge policy: the next morning's callback window, seconds (0: none).
    #[arg(long, default_value_t = 7200.0)]
    surge_next_morning: f64,
}

fn weights<const N: usize>(s: &str, what: &str) -> anyhow::Result<[f64; N]> {
    let v: Vec<f64> = s
        .split(',')
        .map(|x| x.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("--{what} {s:?}: expected {N} comma-separated numbers"))?;
    v.try_into()
        .map_err(|_| anyhow::anyhow!("--{what} {s:?}: expected exactly {N} weights"))
}

impl ScenarioArgs {
    fn scenario(&self) -> anyhow::Result<Scenario> {
        let profile = match self.profile.as_str() {
            "results-day" => Profile::results_day(self.calls),
            "constant" => Profile::constant(self.calls, self.duration),
            "ramp" => {
                let [a, b] = weights::<2>(&self.ramp, "ramp")?;
                Profile::ramp(a, b, self.duration)
            }
            "csv" => Profile::from_csv(
                self.curve
                    .as_deref()
                    .context("--profile csv needs --curve FILE")?,
            )?,
            other => anyhow::bail!("--profile {other:?}: use results-day, constant, ramp or csv"),
        };
        let opt = |s: &str, none: &str, what: &str| -> anyhow::Result<Option<u64>> {
            if s == none {
                Ok(None)
            } else {
                Ok(Some(s.parse().with_context(|| {
                    format!("--{what} {s:?}: a whole number or {none:?}")
                })?))
            }
        };
        Ok(Scenario {
            profile,
            seed: self.seed,
            patience: self.patience,
            handle: self.handle,
            ring_delay: self.ring_delay,
            operator_wrap_up: self.operator_wrap_up,
            ivr_secs: self.ivr_secs,
            language_weights: weights::<2>(&self.languages, "languages")?,
            topic_weights: weights::<4>(&self.topics, "topics")?,
            operators: self.operators,
            bilingual_share: self.bilingual.clamp(0.0, 1.0),
            reserve: self.reserve,
            channels: self.channels,
            max_wait_secs: self.max_wait,
            ring_timeout_secs: self.ring_timeout,
            wrap_up_secs: self.wrap_up,
            reserve_after_secs: opt(&self.reserve_after, "never", "reserve-after")?,
            max_waiting: opt(&self.max_waiting, "none", "max-waiting")?.map(|m| m as u32),
            target_secs: self.target_secs,
            surge: self.surge,
            surge_max_wait_secs: self.surge_max_wait,
            surge_deflect_share: self.surge_deflect.clamp(0.0, 1.0),
            surge_callback_after_secs: self.surge_callback_after.max(0.0),
            surge_callback_accept: self.surge_callback_accept.clamp(0.0, 1.0),
            surge_policy: match self.surge_policy.as_str() {
                "on" => Some(SurgePolicy {
                    ivr_secs: self.surge_ivr_secs.max(0.0),
                    info_secs: self.surge_info_secs.max(0.0),
                    offer_above_secs: self.surge_offer_above.max(0.0),
                    offer_secs: SurgePolicy::default().offer_secs,
                    confirm_secs: self.surge_confirm_secs.max(0.0),
                    sms_accept: self.surge_sms_accept.clamp(0.0, 1.0),
                    live_reserve_percent: self.surge_live_reserve.min(100),
                    next_morning_secs: self.surge_next_morning.max(0.0),
                }),
                "off" => None,
                other => anyhow::bail!("--surge-policy {other:?}: use on or off"),
            },
            call_limit: self.limit.unwrap_or(u64::MAX),
        })
    }
}

#[derive(Args)]
struct SimArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Report interval, scenario seconds.
    #[arg(long, default_value_t = 60.0)]
    interval: f64,
    /// Output directory for summary.json, series.csv and report.html.
    #[arg(long, default_value = "loadgen-sim")]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Plan(a) => run_plan(a),
        Command::Sim(a) => run_sim(a),
        Command::Run(a) => run_run(a),
        Command::Agreement { calls } => {
            let cases = [
                (14, 10.0, None),
                (45, 40.0, None),
                (13, 10.0, Some(300.0)),
                (14, 10.0, Some(60.0)),
                (10, 12.0, Some(120.0)),
                (40, 45.0, Some(60.0)),
            ];
            let started = std::time::Instant::now();
            let rows = sim::agreement(&cases, calls)?;
            println!("| agents | Erlangs | patience | SL formula | SL sim | diff pp | abandon formula | abandon sim | diff pp |");
            println!("|---|---|---|---|---|---|---|---|---|");
            for r in &rows {
                println!(
                    "| {} | {} | {} | {:.4} | {:.4} | {:+.2} | {:.4} | {:.4} | {:+.2} |",
                    r.agents,
                    r.erlangs,
                    r.patience_secs
                        .map_or("none (C)".into(), |p| format!("exp {p} s (A)")),
                    r.sl_formula,
                    r.sl_sim,
                    (r.sl_sim - r.sl_formula) * 100.0,
                    r.abandon_formula,
                    r.abandon_sim,
                    (r.abandon_sim - r.abandon_formula) * 100.0
                );
            }
            println!(
                "{} cases x {calls} calls in {:.2} s",
                rows.len(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}

fn run_plan(a: PlanArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.forecast)
        .with_context(|| format!("reading forecast {}", a.forecast.display()))?;
    let rows = plan::parse_forecast(&text)?;
    let params = plan::PlanParams {
        interval_secs: a.interval_mins * 60.0,
        aht_secs: a.aht,
        sl_target: a.service_level,
        target_secs: a.target_secs,
        patience_secs: a.patience,
        shrinkage: a.shrinkage,
        occupancy_cap: a.occupancy_cap,
        abandon_cap: a.abandon_cap,
        ivr_secs: a.ivr_secs,
        blocking_target: a.blocking,
        max_agents: 5000,
    };
    let result = plan::plan(&rows, &params);
    print!("{}", plan::table(&result));
    if let Some(p) = a.csv {
        std::fs::write(&p, plan::csv(&result))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = a.json {
        let doc = serde_json::json!({"params": params, "intervals": result});
        std::fs::write(&p, serde_json::to_string_pretty(&doc)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = a.html {
        std::fs::write(&p, plan::html(&result, &params))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

fn run_sim(a: SimArgs) -> anyhow::Result<()> {
    let sc = a.scenario.scenario()?;
    let started = std::time::Instant::now();
    let out = sim::simulate(&sc, a.interval)?;
    let wall = started.elapsed().as_secs_f64();
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut summary = out.recorder.summary();
    summary["mode"] = "sim".into();
    summary["calls_placed"] = out.placed.into();
    summary["wall_secs"] = wall.into();
    summary["calls_per_wall_sec"] = (out.placed as f64 / wall.max(1e-9)).into();
    summary["core_steps"] = out.core_steps.into();
    summary["core_rejected"] = out.rejected.into();
    summary["scenario_secs"] = (out.end_ms as f64 / 1000.0).into();
    summary["profile_secs"] = sc.profile.duration_secs().into();
    summary["scenario"] = serde_json::to_value(&sc)?;
    let header = format!(
        "<p class=\"note\">Discrete-event simulation through navbat's ACD core. Profile: {}. {} operators ({}% bilingual) + {} reserve, {} channels. Patience {}, talk {}, ring delay {}, seed {}. {} calls simulated in {:.2} s wall time.</p>",
        sc.profile.name,
        sc.operators,
        (sc.bilingual_share * 100.0).round(),
        sc.reserve,
        sc.channels,
        sc.patience,
        sc.handle,
        sc.ring_delay,
        sc.seed,
        out.placed,
        wall
    );
    write_outputs(
        &a.out,
        &out.recorder,
        &summary,
        "navbat simulation",
        &header,
        sc.profile.start_hour,
    )?;
    println!("{}", serde_json::to_string_pretty(&summary["outcomes"])?);
    println!(
        "{} calls simulated in {:.3} s ({:.0} calls/s); service level {:.3}; report in {}",
        out.placed,
        wall,
        out.placed as f64 / wall.max(1e-9),
        out.recorder.service_level(),
        a.out.display()
    );
    Ok(())
}

fn write_outputs(
    dir: &std::path::Path,
    rec: &report::Recorder,
    summary: &serde_json::Value,
    title: &str,
    header: &str,
    start_hour: f64,
) -> anyhow::Result<()> {
    let write = |name: &str, body: String| {
        let p = dir.join(name);
        std::fs::write(&p, body).with_context(|| format!("writing {}", p.display()))
    };
    write("summary.json", serde_json::to_string_pretty(summary)?)?;
    write("series.csv", rec.csv())?;
    write("report.html", rec.html(title, header, start_hour))?;
    Ok(())
}

fn run_run(a: RunArgs) -> anyhow::Result<()> {
    let sc = a.scenario.scenario()?;
    anyhow::ensure!(
        a.compression > 0.0 && a.compression.is_finite(),
        "--compression must be a positive number"
    );
    let arrivals = sc
        .profile
        .arrivals_ms(&mut dist::Rng::seeded(sc.seed), sc.call_limit);
    let opts = run::RunOptions {
        compression: a.compression,
        target: a.target,
        http: a.http,
        token: a.token.clone(),
        navbat: a.navbat.clone().unwrap_or_else(run::default_navbat),
        out: a.out.clone(),
        max_wall_secs: a.max_wall_secs,
        progress: !a.quiet,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let out = runtime.block_on(run::run(&sc, &opts, arrivals))?;
    let rec = &out.phones.recorder;
    let compare = run::comparison(&out);
    let placed = out.phones.calls_placed();
    let loadgen_total: u64 = compare.iter().map(|c| c.1).sum();
    let router_total: u64 = out.router.outcomes.values().sum();
    let equal = compare.iter().all(|(_, a, b)| a == b) && router_total == loadgen_total;
    let mut summary = rec.summary();
    summary["mode"] = "run".into();
    summary["calls_planned"] = out.phones.calls_planned().into();
    summary["calls_placed"] = placed.into();
    summary["calls_ended"] = out.phones.calls_ended().into();
    summary["wall_secs"] = out.wall_secs.into();
    summary["compression"] = a.compression.into();
    summary["bounded_out"] = out.bounded_out.into();
    summary["router_outcomes"] = serde_json::to_value(&out.router.outcomes)?;
    let mut queue_totals = serde_json::Map::new();
    for q in out.queues.as_array().into_iter().flatten() {
        for (k, v) in q["totals"].as_object().into_iter().flatten() {
            let sum = queue_totals.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
            queue_totals.insert(k.clone(), (sum + v.as_u64().unwrap_or(0)).into());
        }
    }
    summary["router_queue_totals"] = queue_totals.into();
    summary["router_feed"] = serde_json::json!({
        "events": out.router.events, "missed": out.router.missed, "polls": out.router.polls
    });
    summary["router_total"] = router_total.into();
    summary["loadgen_total"] = loadgen_total.into();
    summary["totals_equal"] = equal.into();
    summary["router_queues"] = out.queues.clone();
    summary["router_process"] = serde_json::to_value(out.router_proc)?;
    summary["loadgen_process"] = serde_json::to_value(out.loadgen_proc)?;
    summary["sip"] = serde_json::to_value(&out.phones.counters)?;
    summary["sms_gateway_received"] = out.sms_received.into();
    summary["caller_events_shed"] = out.caller_events_shed.into();
    summary["caller_events_unplaced"] = out.phones.unplaced_events.into();
    summary["callbacks_pending_at_end"] = out.phones.callbacks_pending().into();
    summary["close_after_secs"] = out.close_after_secs.into();
    summary["peak_router_cpu"] = out
        .seconds
        .iter()
        .map(|s| s.router_cpu)
        .fold(0.0, f64::max)
        .into();
    summary["peak_loadgen_cpu"] = out
        .seconds
        .iter()
        .map(|s| s.loadgen_cpu)
        .fold(0.0, f64::max)
        .into();
    summary["scenario"] = serde_json::to_value(&sc)?;
    summary["navbat_config"] = out
        .config_path
        .as_ref()
        .map(|p| p.display().to_string())
        .into();
    std::fs::create_dir_all(&a.out)?;
    let mut cmp = String::from(
        "<h2>Every call accounted for</h2><table><tr><th>outcome</th><th>loadgen</th><th>navbat (call_finished events)</th></tr>",
    );
    for (name, l, r) in &compare {
        cmp.push_str(&format!("<tr><td>{name}</td><td>{l}</td><td>{r}</td></tr>"));
    }
    cmp.push_str(&format!(
        "<tr><th>total</th><th>{loadgen_total}</th><th>{router_total}</th></tr></table><p>Calls placed: {placed}. Totals equal: <b>{}</b>.</p>",
        if equal { "yes" } else { "no" }
    ));
    let secs = &out.seconds;
    let sys_chart = svg::chart(
        "Router and loadgen CPU per wall second (1.0 = one core)",
        "wall seconds",
        "cores",
        svg::Style::Lines,
        &[
            svg::Series {
                name: "navbat",
                colour: svg::PALETTE[1],
                points: secs.iter().map(|s| (s.t as f64, s.router_cpu)).collect(),
            },
            svg::Series {
                name: "loadgen",
                colour: svg::PALETTE[0],
                points: secs.iter().map(|s| (s.t as f64, s.loadgen_cpu)).collect(),
            },
        ],
    );
    let lat_chart = svg::chart(
        "INVITE to final response per wall second (ms)",
        "wall seconds",
        "ms",
        svg::Style::Lines,
        &[
            svg::Series {
                name: "p50",
                colour: svg::PALETTE[2],
                points: secs.iter().map(|s| (s.t as f64, s.invite_p50_ms)).collect(),
            },
            svg::Series {
                name: "p99",
                colour: svg::PALETTE[3],
                points: secs.iter().map(|s| (s.t as f64, s.invite_p99_ms)).collect(),
            },
        ],
    );
    let header = format!(
        "<p class=\"note\">Real SIP over UDP against navbat on loopback. Profile: {}; {} calls placed, time compression {}x ({} scenario seconds per wall second); {} operators ({}% bilingual) + {} reserve, {} channels. Patience {}, talk {}, ring delay {} (scenario time). Wall time of the calls phase {:.1} s. Router peak RSS {:.1} MiB, CPU {:.1} s.</p>{cmp}<h2>Router load</h2>{sys_chart}{lat_chart}",
        sc.profile.name,
        placed,
        a.compression,
        a.compression,
        sc.operators,
        (sc.bilingual_share * 100.0).round(),
        sc.reserve,
        sc.channels,
        sc.patience,
        sc.handle,
        sc.ring_delay,
        out.wall_secs,
        out.router_proc.map_or(0.0, |p| p.peak_rss_mib),
        out.router_proc.map_or(0.0, |p| p.cpu_secs),
    );
    write_outputs(
        &a.out,
        rec,
        &summary,
        "navbat load test",
        &header,
        sc.profile.start_hour,
    )?;
    let mut csv = String::from("t,placed,ended,waiting,router_cpu,router_rss_mib,loadgen_cpu,invite_p50_ms,invite_p99_ms,invite_max_ms\n");
    for s in secs {
        csv.push_str(&format!(
            "{},{},{},{},{:.3},{:.1},{:.3},{:.3},{:.3},{:.3}\n",
            s.t,
            s.placed,
            s.ended,
            s.waiting,
            s.router_cpu,
            s.router_rss_mib,
            s.loadgen_cpu,
            s.invite_p50_ms,
            s.invite_p99_ms,
            s.invite_max_ms
        ));
    }
    std::fs::write(a.out.join("seconds.csv"), csv)?;
    println!(
        "{placed} calls in {:.1} s wall; loadgen total {loadgen_total}, navbat total {router_total}, equal: {equal}",
        out.wall_secs
    );
    for (name, l, r) in &compare {
        println!("  {name:<11} loadgen {l:>7}  navbat {r:>7}");
    }
    println!("report in {}", a.out.display());
    Ok(())
}
