//! Erlang B, C and A: blocking, waiting and abandonment of a group of identical servers
//! fed by Poisson arrivals with exponential holding times.
//!
//! * **Erlang B** (M/M/N/N): a call that finds every channel busy is lost. Used for trunk
//!   sizing: how many channels keep blocking under a target.
//! * **Erlang C** (M/M/N): a call that finds every agent busy waits as long as it takes.
//! * **Erlang A** (M/M/N+M): a waiting caller hangs up after an exponential patience time.
//!
//! Everything is computed from `offered` traffic in Erlangs (arrival rate x mean handle time)
//! and times in seconds. Erlang B uses the stable recurrence
//! `B(0) = 1, B(n) = A B(n-1) / (n + A B(n-1))`; Erlang C is derived from B; Erlang A is solved
//! exactly from the stationary distribution of its birth-death chain, and its waiting-time
//! distribution by integrating the "callers ahead of me" chain (see [`erlang_a`]).

/// Blocking probability of `channels` channels offered `offered` Erlangs (Erlang B).
///
/// Returns 1 for zero channels with positive traffic and 0 for zero traffic.
pub fn erlang_b(channels: u32, offered: f64) -> f64 {
    if offered <= 0.0 {
        return if channels == 0 { 1.0 } else { 0.0 };
    }
    let mut b = 1.0;
    for n in 1..=channels {
        b = offered * b / (n as f64 + offered * b);
    }
    b
}

/// The fewest channels whose Erlang B blocking is at most `target` (at most 100,000).
pub fn channels_for_blocking(offered: f64, target: f64) -> u32 {
    if offered <= 0.0 {
        return 0;
    }
    let mut b = 1.0;
    let mut n = 0u32;
    while b > target && n < 100_000 {
        n += 1;
        b = offered * b / (n as f64 + offered * b);
    }
    n
}

/// What Erlang C (or A) predicts for one staffing level.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Prediction {
    /// Agents (servers).
    pub agents: u32,
    /// Probability that an arriving caller has to wait at all.
    pub p_wait: f64,
    /// Fraction of all offered calls answered within the target time.
    pub service_level: f64,
    /// Average speed of answer: the mean wait of answered calls, in seconds (Erlang C: of
    /// all calls, which is the same thing there since nobody leaves).
    pub asa_secs: f64,
    /// Fraction of callers who hang up before being answered (0 for Erlang C).
    pub p_abandon: f64,
    /// Fraction of agent time spent on calls.
    pub occupancy: f64,
}

/// Erlang C for `agents` agents, `offered` Erlangs, mean handle time `aht_secs`, and a
/// service-level target of answering within `target_secs`.
///
/// With `agents <= offered` the queue grows without bound: every caller waits, the service
/// level is 0 and the ASA is infinite.
pub fn erlang_c(agents: u32, offered: f64, aht_secs: f64, target_secs: f64) -> Prediction {
    let n = agents as f64;
    if offered <= 0.0 {
        return Prediction {
            agents,
            p_wait: 0.0,
            service_level: 1.0,
            asa_secs: 0.0,
            p_abandon: 0.0,
            occupancy: 0.0,
        };
    }
    if n <= offered {
        return Prediction {
            agents,
            p_wait: 1.0,
            service_level: 0.0,
            asa_secs: f64::INFINITY,
            p_abandon: 0.0,
            occupancy: 1.0,
        };
    }
    let b = erlang_b(agents, offered);
    let p_wait = n * b / (n - offered * (1.0 - b));
    let service_level = 1.0 - p_wait * (-(n - offered) * target_secs / aht_secs).exp();
    let asa_secs = p_wait * aht_secs / (n - offered);
    Prediction {
        agents,
        p_wait,
        service_level,
        asa_secs,
        p_abandon: 0.0,
        occupancy: offered / n,
    }
}

/// Erlang A (M/M/N+M): like [`erlang_c`], plus exponential patience with mean
/// `patience_secs` (`f64::INFINITY` gives Erlang C).
///
/// Exact up to truncation of the state space at a probability below 1e-15:
/// * the stationary distribution `pi(n)` of the number in system has birth rate `lambda` and
///   death rate `min(n, N) mu + max(n - N, 0) theta`;
/// * P(wait) is the mass at `n >= N` (Poisson arrivals see time averages);
/// * P(abandon) = `theta E[queue] / lambda`;
/// * an arrival that finds `j` callers ahead moves up at rate `N mu + j theta` and leaves at
///   rate `theta`; integrating that chain, started from `pi(N + j)`, gives the probability of
///   being answered by time `t` and the mean wait of answered callers.
///
/// The service level counts a call as met when it is answered within the target, divided by
/// all offered calls (abandoned calls count as missed whenever they left).
pub fn erlang_a(
    agents: u32,
    offered: f64,
    aht_secs: f64,
    patience_secs: f64,
    target_secs: f64,
) -> Prediction {
    if !patience_secs.is_finite() {
        return erlang_c(agents, offered, aht_secs, target_secs);
    }
    if offered <= 0.0 {
        return erlang_c(agents, offered, aht_secs, target_secs);
    }
    let mu = 1.0 / aht_secs;
    let lambda = offered * mu;
    let theta = 1.0 / patience_secs.max(1e-9);
    let n_agents = agents as usize;
    // Unnormalised stationary weights, in logs to survive large N.
    let mut log_w: Vec<f64> = vec![0.0];
    let mut n = 0usize;
    loop {
        let death = if n < n_agents {
            (n + 1) as f64 * mu
        } else {
            n_agents as f64 * mu + (n + 1 - n_agents) as f64 * theta
        };
        let next = log_w[n] + (lambda / death).ln();
        log_w.push(next);
        n += 1;
        let max = log_w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        if n > n_agents && next - max < -36.0 && lambda < death {
            break;
        }
        if n > 2_000_000 {
            break;
        }
    }
    let max = log_w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = log_w.iter().map(|l| (l - max).exp()).collect();
    let total: f64 = w.iter().sum();
    let pi: Vec<f64> = w.iter().map(|x| x / total).collect();
    let p_wait: f64 = pi.iter().skip(n_agents).sum();
    let queue_mean: f64 = pi
        .iter()
        .enumerate()
        .skip(n_agents)
        .map(|(n, p)| (n - n_agents) as f64 * p)
        .sum();
    let p_abandon = theta * queue_mean / lambda;
    let busy_mean: f64 = pi
        .iter()
        .enumerate()
        .map(|(n, p)| n.min(n_agents) as f64 * p)
        .sum();
    let (answered_within, answered_wait_sum, answered_total) = waiting_answered(
        &pi[n_agents.min(pi.len())..],
        agents as f64 * mu,
        theta,
        target_secs,
    );
    let answered = (1.0 - p_wait) + answered_total;
    Prediction {
        agents,
        p_wait,
        service_level: (1.0 - p_wait) + answered_within,
        asa_secs: if answered > 0.0 {
            answered_wait_sum / answered
        } else {
            f64::INFINITY
        },
        p_abandon,
        occupancy: busy_mean / agents.max(1) as f64,
    }
}

/// Integrates the "callers ahead" chain of Erlang A for all arrivals that must wait at once
/// (the chain is linear, so their masses can be superposed).
///
/// `start[j]` is the probability that an arrival finds `j` callers waiting ahead of it;
/// `serve` is the rate at which agents free up (N mu). Returns (mass answered by `target`,
/// sum over answered mass of the wait, total mass answered eventually).
fn waiting_answered(start: &[f64], serve: f64, theta: f64, target: f64) -> (f64, f64, f64) {
    let mut p: Vec<f64> = start.to_vec();
    if p.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let rate = |j: usize| serve + j as f64 * theta;
    // Step small against the fastest rate so the explicit RK4 scheme stays accurate.
    let fastest = rate(p.len()) + theta;
    let dt = (0.05 / fastest).min(target.max(1e-3) / 200.0);
    let deriv = |p: &[f64], out: &mut [f64]| {
        for j in 0..p.len() {
            let inflow = if j + 1 < p.len() {
                rate(j + 1) * p[j + 1]
            } else {
                0.0
            };
            out[j] = inflow - (rate(j) + theta) * p[j];
        }
    };
    let len = p.len();
    let (mut k1, mut k2, mut k3, mut k4, mut tmp) = (
        vec![0.0; len],
        vec![0.0; len],
        vec![0.0; len],
        vec![0.0; len],
        vec![0.0; len],
    );
    let mut t = 0.0;
    let mut answered = 0.0;
    let mut within = None;
    let mut wait_sum = 0.0;
    let mut steps = 0u64;
    loop {
        let remaining: f64 = p.iter().sum();
        if t >= target && within.is_none() {
            within = Some(answered);
        }
        if (remaining < 1e-13 && within.is_some()) || steps > 50_000_000 {
            break;
        }
        // Answer flow is serve * p[0]; integrate it with the same RK4 stages.
        deriv(&p, &mut k1);
        for j in 0..len {
            tmp[j] = p[j] + 0.5 * dt * k1[j];
        }
        let a2 = tmp[0];
        deriv(&tmp, &mut k2);
        for j in 0..len {
            tmp[j] = p[j] + 0.5 * dt * k2[j];
        }
        let a3 = tmp[0];
        deriv(&tmp, &mut k3);
        for j in 0..len {
            tmp[j] = p[j] + dt * k3[j];
        }
        let a4 = tmp[0];
        deriv(&tmp, &mut k4);
        let flow = serve * dt / 6.0 * (p[0] + 2.0 * a2 + 2.0 * a3 + a4);
        let mid = t + dt / 2.0;
        // Cut the last step at the target exactly (flow is smooth, so linear share is fine).
        if within.is_none() && t + dt > target {
            let share = (target - t) / dt;
            within = Some(answered + flow * share);
        }
        answered += flow;
        wait_sum += flow * mid;
        for j in 0..len {
            p[j] += dt / 6.0 * (k1[j] + 2.0 * k2[j] + 2.0 * k3[j] + k4[j]);
        }
        t += dt;
        steps += 1;
    }
    (within.unwrap_or(answered), wait_sum, answered)
}

/// What a staffing level must achieve.
#[derive(Clone, Copy, Debug)]
pub struct Targets {
    /// Service-level time, seconds.
    pub target_secs: f64,
    /// At least this share answered within `target_secs`.
    pub sl_target: f64,
    /// At most this occupancy.
    pub occupancy_cap: f64,
    /// At most this abandonment (Erlang A).
    pub abandon_cap: f64,
}

/// The fewest agents meeting every target, searching up to `max_agents`.
///
/// `patience_secs = INFINITY` uses Erlang C. Returns the prediction at the chosen staffing,
/// or `None` when no staffing up to `max_agents` meets the targets.
pub fn agents_for_target(
    offered: f64,
    aht_secs: f64,
    patience_secs: f64,
    t: &Targets,
    max_agents: u32,
) -> Option<Prediction> {
    let Targets {
        target_secs,
        sl_target,
        occupancy_cap,
        abandon_cap,
    } = *t;
    if offered <= 0.0 {
        return Some(erlang_c(0, 0.0, aht_secs, target_secs));
    }
    // Start near the load: fewer agents than offered/occupancy_cap can never meet the cap.
    let start = ((offered / occupancy_cap.clamp(0.01, 1.0)).floor() as u32).max(1);
    for agents in start..=max_agents {
        let p = erlang_a(agents, offered, aht_secs, patience_secs, target_secs);
        if p.service_level >= sl_target
            && p.occupancy <= occupancy_cap
            && p.p_abandon <= abandon_cap
        {
            return Some(p);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// The worked example of Call Centre Helper, "Erlang C Formula - Made Simple With an Easy
    /// Worked Example": 100 calls in 30 minutes, 180 s handle time (10 Erlangs), 14 agents,
    /// 20 s target (figures as given in issue 6).
    #[test]
    fn erlang_c_call_centre_helper_case() {
        let p = erlang_c(14, 100.0 * 180.0 / 1800.0, 180.0, 20.0);
        assert!(close(p.p_wait, 0.174132, 5e-7), "{p:?}");
        assert!(close(p.service_level, 0.888350, 5e-7), "{p:?}");
        assert!(close(p.asa_secs, 7.836, 5e-4), "{p:?}");
        // 13 agents fall just short of 80% in 20 s (0.7956), so 14 is the staffing.
        assert!(close(
            erlang_c(13, 10.0, 180.0, 20.0).service_level,
            0.795595,
            5e-6
        ));
        let chosen = agents_for_target(
            10.0,
            180.0,
            f64::INFINITY,
            &Targets {
                target_secs: 20.0,
                sl_target: 0.8,
                occupancy_cap: 1.0,
                abandon_cap: 1.0,
            },
            100,
        );
        assert_eq!(chosen.map(|p| p.agents), Some(14));
    }

    /// Textbook M/M/c values (Kleinrock, Queueing Systems vol. 1, and every Erlang C table):
    /// 2 servers at 1 Erlang wait with probability 1/3; 1 server at load rho waits with
    /// probability rho.
    #[test]
    fn erlang_c_closed_forms() {
        assert!(close(erlang_c(2, 1.0, 1.0, 0.0).p_wait, 1.0 / 3.0, 1e-12));
        assert!(close(erlang_c(1, 0.7, 1.0, 0.0).p_wait, 0.7, 1e-12));
        // M/M/1: mean wait rho/(mu - lambda) = 0.7 / 0.3 handle times.
        assert!(close(erlang_c(1, 0.7, 1.0, 0.0).asa_secs, 0.7 / 0.3, 1e-12));
    }

    /// The standard Erlang B table (e.g. the table in Iversen, "Teletraffic Engineering and
    /// Network Planning", DTU 2015, and any published Erlang B table): the traffic that N
    /// channels carry at a given grade of service, to the table's two decimals.
    #[test]
    fn erlang_b_published_table() {
        // (channels, blocking, Erlangs from the table)
        let table = [
            (1, 0.01, 0.0101),
            (5, 0.01, 1.36),
            (10, 0.01, 4.46),
            (10, 0.02, 5.08),
            (20, 0.01, 12.03),
            (50, 0.01, 37.90),
            (100, 0.01, 84.06),
        ];
        for (n, gos, erl) in table {
            let b = erlang_b(n, erl);
            assert!(
                close(b, gos, gos * 0.02),
                "B({n}, {erl}) = {b}, table says {gos}"
            );
            assert_eq!(
                channels_for_blocking(erl * 0.999, gos),
                n,
                "{n} {gos} {erl}"
            );
        }
        // Iversen's worked value: 2 Erlangs on 4 channels block 2/21.
        assert!(close(erlang_b(4, 2.0), 2.0 / 21.0, 1e-12));
    }

    /// pyworkforce's documented Erlang A example (docs "Erlang A (abandonment)"): 100 calls
    /// per 30 minutes, AHT 3 min, patience 5 min, 13 positions -> service level 0.858...,
    /// abandonment 0.025..., waiting probability 0.226..., ASA 0.125... min, occupancy 0.750...
    #[test]
    fn erlang_a_pyworkforce_case() {
        let p = erlang_a(13, 10.0, 180.0, 300.0, 20.0);
        assert!(close(p.service_level, 0.858, 0.001), "{p:?}");
        assert!(close(p.p_wait, 0.226, 0.001), "{p:?}");
        assert!(close(p.p_abandon, 0.025, 0.001), "{p:?}");
        assert!(close(p.occupancy, 0.750, 0.001), "{p:?}");
    }

    /// Erlang A tends to Erlang C as patience grows.
    #[test]
    fn erlang_a_converges_to_erlang_c() {
        let c = erlang_c(14, 10.0, 180.0, 20.0);
        let a = erlang_a(14, 10.0, 180.0, 1e9, 20.0);
        assert!(close(a.p_wait, c.p_wait, 1e-5), "{a:?} {c:?}");
        assert!(close(a.service_level, c.service_level, 1e-5), "{a:?} {c:?}");
        assert!(close(a.asa_secs, c.asa_secs, 1e-3), "{a:?} {c:?}");
    }

    /// Overload: Erlang C has no steady state, Erlang A does, and abandonment absorbs the
    /// excess: answered traffic can never exceed the agents.
    #[test]
    fn erlang_a_overload_is_stable() {
        let a = erlang_a(10, 20.0, 180.0, 60.0, 20.0);
        assert!(a.p_abandon > 0.45 && a.p_abandon < 1.0, "{a:?}");
        assert!(a.occupancy <= 1.0 && a.occupancy > 0.95, "{a:?}");
        assert!(erlang_c(10, 20.0, 180.0, 20.0).asa_secs.is_infinite());
    }
}
