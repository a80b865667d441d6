#!/usr/bin/env bash
# The results-day policy replayed over SIP (BENCHMARKS.md, "Results-day policy", "Replayed
# over SIP"): `loadgen run --surge` against an embedded navbat (real SIP, real prompts in
# real time, the SMS gateway and the callers' trunk on loopback) and `loadgen sim --surge` on
# the identical scenario, then the outcome shares side by side.
#
#   benches/results-day-replay.sh [BIN_DIR]        (default target/release, else target/debug)
#
# The scenario is a window of the results day's peak hour (10:00-11:00: 19 % of 150,000 calls,
# 7.9 calls/s against 40 operators, 2 reserve and 300 channels), scaled down by SCALE (default
# 10) in arrivals, operators and channels, so that this 2-core machine carries it in real
# time: compression 1, because the greeting, menu, offer and information prompts are real
# audio whose length a compressed clock would stretch by the compression factor. WINDOW_SECS
# (default 480) of it; the run is bounded by BOUND_SECS (default 720) of calls and tail.
# The simulator holds the channel as the router's prompts do (--surge-info-secs 6.8: the
# results-where information, 7.1 s in Uzbek, 6.0 s in Russian; --surge-confirm-secs 4.1: the
# confirmation after a key, callback-booked 4.5/2.4 s and sms-sent 3.5/3.4 s, plus about
# 0.5 s of the event feed's lag before loadgen's callers key); the run takes the same flags
# and ignores those two
# (the router plays the real prompts). The simulator is also run with SIM_SEEDS other seeds
# (default 4) on the same scenario, to show how far chance alone moves each share.
# Environment: SCALE, WINDOW_SECS, BOUND_SECS, SEED (default 1), SIM_SEEDS, OUT (default a
# temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-target/release}"
if [ ! -x "$BIN/loadgen" ] || [ ! -x "$BIN/navbat" ]; then
    BIN="${CARGO_TARGET_DIR:-target}/debug"
fi
SCALE="${SCALE:-10}"
WINDOW_SECS="${WINDOW_SECS:-480}"
BOUND_SECS="${BOUND_SECS:-720}"
SEED="${SEED:-1}"
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT"

calls=$(python3 -c "print(round(150000 * 0.19 / 3600 * $WINDOW_SECS / $SCALE))")
operators=$(python3 -c "print(max(1, round(40 / $SCALE)))")
reserve=$(python3 -c "print(round(2 / $SCALE))")
channels=$(python3 -c "print(max(1, round(300 / $SCALE)))")
ARGS=(--profile constant --calls "$calls" --duration "$WINDOW_SECS"
    --operators "$operators" --reserve "$reserve" --channels "$channels" --surge
    --surge-info-secs 6.8 --surge-confirm-secs 4.1)
SIM_SEEDS="${SIM_SEEDS:-4}"
echo "scenario: ${ARGS[*]} --seed $SEED (binaries: $BIN)" >&2

"$BIN/loadgen" sim "${ARGS[@]}" --seed "$SEED" --out "$OUT/sim" >/dev/null
for i in $(seq 1 "$SIM_SEEDS"); do
    "$BIN/loadgen" sim "${ARGS[@]}" --seed "$((SEED + i))" --out "$OUT/sim-seed$i" >/dev/null
done
"$BIN/loadgen" run "${ARGS[@]}" --seed "$SEED" --compression 1 --navbat "$BIN/navbat" \
    --max-wall-secs "$BOUND_SECS" --quiet --out "$OUT/run" >"$OUT/run.txt" 2>&1 || {
    cat "$OUT/run.txt" >&2
    exit 1
}

python3 - "$OUT/sim/summary.json" "$OUT/run/summary.json" "$OUT"/sim-seed*/summary.json <<'PY'
import json, sys
sim, run = (json.load(open(p)) for p in sys.argv[1:3])
others = [json.load(open(p)) for p in sys.argv[3:]]

def shares(d):
    o, p = d["outcomes"], d["policy"]
    n = sum(o.values())
    rows = [
        ("refused at the door (blocked)", o["blocked"]),
        ("let go at the maximum wait (timed out)", o["timed_out"]),
        ("abandoned", o["abandoned"]),
        ("information, self-service", p["got_info_self_service"]),
        ("information, SMS", p["got_info_sms"]),
        ("callback done today", p["got_callback"]),
        ("callback promised for the morning", p["got_callback_next_morning"]),
        ("callback promised, not done by the end", p["got_callback_pending"]),
        ("answered live", o["answered"]),
        ("other (IVR hang-up, closed, failed)", o["ivr_hangup"] + o["closed"] + o["failed"]),
    ]
    return n, rows

(ns, s), (nr, r) = shares(sim), shares(run)
spread = [shares(d) for d in others]
print(f"| outcome | simulation ({ns:,} calls) | replay over SIP ({nr:,} calls) | difference, points | simulation, other seeds |")
print("|---|---:|---:|---:|---:|")
for i, ((name, a), (_, b)) in enumerate(zip(s, r)):
    pa, pb = 100.0 * a / max(ns, 1), 100.0 * b / max(nr, 1)
    o = [100.0 * rows[i][1] / max(n, 1) for n, rows in spread]
    rng = f"{min(o):.1f}-{max(o):.1f} %" if o else "-"
    print(f"| {name} | {a:,} ({pa:.1f} %) | {b:,} ({pb:.1f} %) | {pb - pa:+.1f} | {rng} |")
sp, rp = sim["policy"], run["policy"]
print()
print("| offers | simulation | replay |")
print("|---|---:|---:|")
for k in ["offers_at_door", "offers_in_queue", "offered_callback_today",
          "offered_callback_next_morning", "offered_without_callback",
          "took_callback_today", "took_callback_next_morning", "took_sms", "let_go_unoffered"]:
    print(f"| {k} | {sp[k]:,} | {rp[k]:,} |")
print()
print(f"replay: wall {run['wall_secs']:.0f} s, bounded out: {run['bounded_out']}, "
      f"navbat's own outcomes {run['router_outcomes']}, totals equal: {run['totals_equal']}, "
      f"SMS gateway requests {run['sms_gateway_received']}, caller events unplaced "
      f"{run['caller_events_unplaced']}, shed {run['caller_events_shed']}, "
      f"close after {run['close_after_secs']} s")
PY
echo "reports: $OUT" >&2
