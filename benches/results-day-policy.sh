#!/usr/bin/env bash
# The results-day policy in `loadgen sim` (BENCHMARKS.md, "Results-day policy"): the day
# before and after the policy, the live reserve's default, and the sensitivity to how callers
# behave. Deterministic (seed 1); a debug build is enough (each run takes a few seconds).
#
#   benches/results-day-policy.sh [path/to/loadgen]
#
# Prints Markdown tables. Runs write their reports under a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
L="${1:-target/debug/loadgen}"
if [ ! -x "$L" ]; then
    cargo build -q -p loadgen
    L=target/debug/loadgen
fi
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

# One run: a label, then loadgen sim options. Prints one table row.
run() {
    local label="$1"
    shift
    local dir="$OUT/$(echo "$label" | tr -c 'a-zA-Z0-9' '_')"
    "$L" sim --out "$dir" "$@" >/dev/null
    python3 - "$dir/summary.json" "$label" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
o, p, c = d["outcomes"], d["policy"], d["callbacks"]
n = sum(o.values())
live, cb = p["conversations_live"], p["conversations_callback"]
share = 100.0 * live / (live + cb) if live + cb else 0.0
got_cb = p["got_callback"] + p["got_callback_next_morning"]
print(f"| {sys.argv[2]} | {100.0 * o['blocked'] / n:.1f} % | {o['answered']:,} | "
      f"{p['got_callback']:,} + {p['got_callback_next_morning']:,} | "
      f"{c['pending_at_profile_end']:,} | {share:.0f} % | "
      f"{p['got_info_self_service']:,} | {p['got_info_sms']:,} | {p['got_nothing']:,} | "
      f"{o['timed_out']:,} | {p['let_go_unoffered']:,} |")
PY
}

header() {
    echo
    echo "### $1"
    echo
    echo "| run | refused at the door | live answers | callbacks done today + promised for the morning | callbacks late (not done by 20:00) | live share of conversations while live callers wait | information, self-service | information, SMS | nothing | let go at max wait | of them never offered |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
}

header "Before and after"
run "normal (no surge)"
run "surge before (--surge-policy off --surge-max-wait 120)" --surge --surge-policy off --surge-max-wait 120
run "surge after: the policy (defaults)" --surge

header "Live reserve (--surge-live-reserve, percent)"
for r in 0 10 20 25 30 40 50; do
    run "reserve $r %" --surge --surge-live-reserve "$r"
done

header "Callers who take self-service (--surge-deflect)"
for s in 0.1 0.25 0.4; do
    run "self-service $s" --surge --surge-deflect "$s"
done

header "Callers who accept a callback (--surge-callback-accept)"
for a in 0.15 0.3 0.5; do
    run "callback accept $a" --surge --surge-callback-accept "$a"
done

header "Callers who take the SMS when they take no callback (--surge-sms-accept)"
for a in 0.25 0.5 0.75; do
    run "SMS accept $a" --surge --surge-sms-accept "$a"
done

header "The door threshold (--surge-offer-above, seconds)"
for t in 30 60 90; do
    run "offer above $t s" --surge --surge-offer-above "$t"
done

header "Channel holding: greeting and IVR (--surge-ivr-secs), surge maximum wait (--surge-max-wait)"
for a in "6 90" "10 90" "14 90" "20 90" "14 60" "14 120"; do
    set -- $a
    run "IVR $1 s, max wait $2 s" --surge --surge-ivr-secs "$1" --surge-max-wait "$2"
done
