#!/usr/bin/env bash
# A scanner's REGISTER flood (svwar/svcrack-style probing, issue 18 part 4): SOURCES SIPp
# instances on 127.0.0.21, .22, ... each send RATE/SOURCES REGISTERs a second for SECS
# seconds, each for a new extension without credentials, and expect the 401 challenge.
# Measures what answering them costs navbat: CPU per REGISTER, RSS every second from the
# flood's start until AFTER_SECS after it, and (on builds that have it) the live transactions
# of navbat's own transaction layer and their bytes from /metrics at the flood's end.
#
# Run it on two builds in one session to compare (A/B), e.g. before and after out-of-dialog
# REGISTER moved off rsipstack:
#   NAVBAT_BIN=/path/to/navbat RATE=2000 SECS=20 benches/register-flood.sh
# Knobs: NAVBAT_BIN (required: a release build), RATE (2000), SOURCES (4), SECS (20),
# AFTER_SECS (40), OUT (a temp dir). Bounded: every SIPp has -m and -timeout, under `timeout`.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=benches/lib.sh
. "$here/lib.sh"
scen="$here/sipp"
RATE=${RATE:-2000}
SOURCES=${SOURCES:-4}
SECS=${SECS:-20}
AFTER_SECS=${AFTER_SECS:-40}
TOKEN=bench-admin-token-0123456789
CLK_TCK=$(getconf CLK_TCK)
[[ -x "${NAVBAT_BIN:-}" ]] || { echo "set NAVBAT_BIN to a release build of navbat" >&2; exit 1; }

work=$(mktemp -d /tmp/navbat-regflood.XXXXXX)
OUT=${OUT:-$work}
mkdir -p "$OUT" "$work/no-prompts"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
log() { printf '[register-flood] %s\n' "$*" >&2; }

read -r SIP_PORT HTTP_PORT < <(free_ports 2)

cfg=$work/navbat-regflood.toml
cat >"$cfg" <<EOF
[sip]
udp = "127.0.0.1:$SIP_PORT"
realm = "navbat"

[media]
rtp_ip = "127.0.0.1"
rtp_port_min = 53000
rtp_port_max = 53999
prompts_dir = "$work/no-prompts"
recordings_dir = "$work/recordings"

[database]
url = "sqlite://$work/navbat.db"
journal_dir = "$work/journal"

[http]
listen = "127.0.0.1:$HTTP_PORT"
admin_token = "$TOKEN"

[shutdown]
drain_secs = 1

[[tenant]]
id = "dtm"
name = { uz = "Bench", ru = "Bench" }
dids = ["712351914"]
timezone = "Asia/Tashkent"
hours = "24/7"
holidays = []

[tenant.ivr]
digit_timeout_secs = 600
max_retries = 2
on_no_input = "default"
default_language = "uz"
languages = [{ digit = "1", language = "uz", queue = "dtm-uz" }]
topics = [{ digit = "1", topic = "results", label = { uz = "a", ru = "a" } }]
default_topic = "results"

[[queue]]
id = "dtm-uz"
tenant = "dtm"
language = "uz"
topics = []

[[operator]]
ext = "2000"
name = "Bench"
ha1 = "00000000000000000000000000000000"
languages = ["uz"]
EOF
[[ "$OUT" == "$work" ]] || cp "$cfg" "$OUT/"

api() { curl -sf --max-time 5 "http://127.0.0.1:$HTTP_PORT$1"; }
metric() { api /metrics | awk -v m="$1" '$1 == m {print $2}' | head -1; }

RUST_LOG=warn,navbat=info,navbat::events=off "$NAVBAT_BIN" run --config "$cfg" 2>"$work/navbat.stderr" &
NAVBAT_PID=$!
pids+=("$NAVBAT_PID")
for _ in $(seq 1 100); do
    grep -q 'navbat ready' "$work/navbat.stderr" 2>/dev/null && break
    kill -0 "$NAVBAT_PID" 2>/dev/null || { cat "$work/navbat.stderr" >&2; exit 1; }
    sleep 0.1
done
api /api/health >/dev/null || { log "navbat did not start (see $work/navbat.stderr)"; exit 1; }
sleep 1
rss_start=$(rss_kib "$NAVBAT_PID")
cpu0=$(cpu_ticks "$NAVBAT_PID")
log "navbat $NAVBAT_BIN on :$SIP_PORT, RSS at start $((rss_start / 1024)) MiB"

per=$((RATE / SOURCES))
total=$((per * SECS))
sipps=()
for s in $(seq 1 "$SOURCES"); do
    ip="127.0.0.$((20 + s))"
    timeout $((SECS + 90)) sipp "127.0.0.1:$SIP_PORT" -sf "$scen/register-probe.xml" \
        -i "$ip" -p 0 -r "$per" -rp 1000 -m "$total" -l "$per" -nostdin \
        -timeout $((SECS + 60))s -trace_stat -stf "$work/flood-$s.csv" -fd 1 \
        >"$work/sipp-$s.out" 2>&1 &
    sipps+=("$!")
    pids+=("$!")
done

printf 'secs\trss_mib\tcpu_s\n' >"$OUT/rss.tsv"
t0=$(date +%s.%N)
peak_live=""
peak_bytes=""
end=$(echo "$t0 + $SECS + $AFTER_SECS" | bc)
while (( $(echo "$(date +%s.%N) < $end" | bc) )); do
    now=$(date +%s.%N)
    printf '%.0f\t%d\t%.2f\n' "$(echo "$now - $t0" | bc)" $(( $(rss_kib "$NAVBAT_PID") / 1024 )) \
        "$(echo "($(cpu_ticks "$NAVBAT_PID") - $cpu0) / $CLK_TCK" | bc -l)" >>"$OUT/rss.tsv"
    if [[ -z "$peak_live" ]] && (( $(echo "$now - $t0 >= $SECS + 2" | bc) )); then
        peak_live=$(metric navbat_sip_own_transactions || true)
        peak_bytes=$(metric navbat_sip_own_transaction_bytes || true)
        cpu_flood=$(cpu_ticks "$NAVBAT_PID")
    fi
    sleep 1
done
wait "${sipps[@]}" 2>/dev/null || true

ok=0; failed=0
for s in $(seq 1 "$SOURCES"); do
    f=$(ls "$work"/flood-"$s"*.csv 2>/dev/null | head -1)
    [[ -n "$f" ]] || continue
    ok=$((ok + $(stat_col "$f" 'SuccessfulCall(C)')))
    failed=$((failed + $(stat_col "$f" 'FailedCall(C)')))
done
cpu_s=$(echo "(${cpu_flood:-$(cpu_ticks "$NAVBAT_PID")} - $cpu0) / $CLK_TCK" | bc -l)
max_rss=$(awk 'NR>1 && $2>m {m=$2} END {print m}' "$OUT/rss.tsv")
last_rss=$(tail -1 "$OUT/rss.tsv" | cut -f2)
per_reg=$(echo "$cpu_s * 1000 / ($ok + $failed + 0.000001)" | bc -l)
{
    printf 'offered\tanswered_401\tfailed\tcpu_ms_per_register\trss_start_mib\trss_max_mib\trss_after_mib\town_live\town_bytes\n'
    printf '%d\t%d\t%d\t%.4f\t%d\t%d\t%d\t%s\t%s\n' "$((total * SOURCES))" "$ok" "$failed" "$per_reg" \
        $((rss_start / 1024)) "$max_rss" "$last_rss" "${peak_live:--}" "${peak_bytes:--}"
} | tee "$OUT/summary.tsv" | column -t
log "RSS per second: $OUT/rss.tsv; work dir $work"
