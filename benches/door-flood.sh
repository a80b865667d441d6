#!/usr/bin/env bash
# Exam-day flood at the SIP door (issue 18): every channel busy, then new INVITEs from many
# loopback sources as fast as this machine can offer them. Measures what refusing costs.
#
# 1. Writes a config (free loopback ports, CHANNELS channels) and starts navbat.
# 2. Fills every channel with answered calls held by one SIPp (benches/sipp/holder.xml,
#    from 127.0.0.1, the trunk).
# 3. Floods: SOURCES SIPp instances on 127.0.0.11, .12, ... each at RATE/SOURCES new INVITEs
#    a second for SECS seconds (benches/sipp/refused.xml: INVITE, expect 503, ACK), plus one
#    probe SIPp from the trunk at PROBE_RATE whose INVITEs the door admits (they are
#    refused by the full channels, through the stack), for its INVITE-to-first-response.
# 4. Samples navbat's RSS every second from the start of the flood until 40 s after it.
#
# DOOR=1 writes [sip.door] with the trunk (127.0.0.1) named, so the flood sources get the
# per-source caps and the door refuses them statelessly; every refusal is answered
# (answers_per_sec is raised so that "every INVITE answered" can be read off SIPp).
# DOOR=0 writes no [sip.door] (main's binary refuses the section): every INVITE goes
# through the stack and the channel check, as before the door.
#
# FULL=1 (with DOOR=1) raises the per-source caps far above the flood (every source stays
# under its own rate and call caps), so the door admits every INVITE and the refusals come
# from the full channels; SCREEN picks who answers them: SCREEN=1 the guard, statelessly, from
# the channel counts ([sip.door] screen_calls, the default), SCREEN=0 the stack and the router
# as before (a transaction and three events each).
#
# Knobs: NAVBAT_BIN (required: a release build), DOOR (1), FULL (0), SCREEN (1), RATE (4000), SOURCES (8),
# SECS (30), CHANNELS (20), PROBE_RATE (20), AFTER_SECS (40), ANSWERS (1000000: the
# per-source answer budget; 100 is the default of [sip.door]), OUT (a temp dir).
# Bounded: every SIPp has -m and -timeout, and runs under `timeout`.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=benches/lib.sh
. "$here/lib.sh"
scen="$here/sipp"
DOOR=${DOOR:-1}
RATE=${RATE:-4000}
SOURCES=${SOURCES:-8}
SECS=${SECS:-30}
CHANNELS=${CHANNELS:-20}
PROBE_RATE=${PROBE_RATE:-20}
AFTER_SECS=${AFTER_SECS:-40}
ANSWERS=${ANSWERS:-1000000}
FULL=${FULL:-0}
SCREEN=${SCREEN:-1}
TOKEN=bench-admin-token-0123456789
CLK_TCK=$(getconf CLK_TCK)
[[ -x "${NAVBAT_BIN:-}" ]] || { echo "set NAVBAT_BIN to a release build of navbat" >&2; exit 1; }

work=$(mktemp -d /tmp/navbat-flood.XXXXXX)
OUT=${OUT:-$work}
mkdir -p "$OUT" "$work/no-prompts"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
log() { printf '[door-flood] %s\n' "$*" >&2; }

read -r SIP_PORT HTTP_PORT < <(free_ports 2)

cfg=$work/navbat-flood.toml
cat >"$cfg" <<EOF
[sip]
udp = "127.0.0.1:$SIP_PORT"
realm = "navbat"

[media]
rtp_ip = "127.0.0.1"
rtp_port_min = 52000
rtp_port_max = 52999
prompts_dir = "$work/no-prompts"
recordings_dir = "$work/recordings"

[database]
url = "sqlite://$work/navbat.db"
journal_dir = "$work/journal"

[http]
listen = "127.0.0.1:$HTTP_PORT"
admin_token = "$TOKEN"

[limits]
channels = $CHANNELS
retry_after_secs = 30

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
max_wait_secs = 3600

[[operator]]
ext = "2000"
name = "Bench"
ha1 = "00000000000000000000000000000000"
languages = ["uz"]
EOF
if [[ "$DOOR" == 1 ]]; then
cat >>"$cfg" <<EOF

[sip.door]
trunk_sources = ["127.0.0.1"]
answers_per_sec = $ANSWERS
EOF
if [[ "$FULL" == 1 ]]; then
cat >>"$cfg" <<EOF
source_invites_per_sec = 1000000
source_burst = 1000000
source_calls = 0
screen_calls = $([[ "$SCREEN" == 1 ]] && echo true || echo false)
EOF
fi
fi
[[ "$OUT" == "$work" ]] || cp "$cfg" "$OUT/"

api() { curl -sf --max-time 5 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$HTTP_PORT$1"; }

RUST_LOG=warn,navbat=info,navbat::events=off "$NAVBAT_BIN" run --config "$cfg" 2>"$work/navbat.stderr" &
NAVBAT_PID=$!
pids+=("$NAVBAT_PID")
for _ in $(seq 1 100); do
    grep -q 'navbat ready' "$work/navbat.stderr" 2>/dev/null && break
    kill -0 "$NAVBAT_PID" 2>/dev/null || { cat "$work/navbat.stderr" >&2; exit 1; }
    sleep 0.1
done
rss_start=$(rss_kib "$NAVBAT_PID")
log "navbat $NAVBAT_BIN on :$SIP_PORT, DOOR=$DOOR FULL=$FULL SCREEN=$SCREEN, RSS at start $((rss_start / 1024)) MiB"

# Fill every channel.
hold_ms=$(( (SECS + AFTER_SECS + 60) * 1000 ))
(cd "$work" && exec timeout $((SECS + AFTER_SECS + 120)) sipp -sf "$scen/holder.xml" -i 127.0.0.1 -p 0 \
    -s 712351914 -r 50 -m "$CHANNELS" -d "$hold_ms" -nostdin -timeout $((SECS + AFTER_SECS + 100))s \
    "127.0.0.1:$SIP_PORT" >/dev/null 2>&1) &
pids+=($!)
for _ in $(seq 1 200); do
    [[ "$(api /api/health | jq .channels_in_use)" == "$CHANNELS" ]] && break
    sleep 0.1
done
in_use=$(api /api/health | jq .channels_in_use)
[[ "$in_use" == "$CHANNELS" ]] || { log "only $in_use of $CHANNELS channels filled"; exit 1; }
log "all $CHANNELS channels busy; RSS $(( $(rss_kib "$NAVBAT_PID") / 1024 )) MiB"

cpu0=$(cpu_ticks "$NAVBAT_PID")
drops0=$(udp_rcvbuf_errors)
t0=$(date +%s.%N)
per=$(( RATE / SOURCES ))
flood=()
for ((s = 0; s < SOURCES; s++)); do
    ip=127.0.0.$((11 + s))
    (cd "$work" && exec timeout $((SECS + 90)) sipp -sf "$scen/refused.xml" -i "$ip" -p 0 \
        -s 712351914 -r "$per" -m $((per * SECS)) -l $((per * 40)) -nostdin \
        -timeout $((SECS + 60))s -trace_stat -stf "$work/flood-$s.csv" -fd 1 \
        -max_recv_loops 100000 -max_sched_loops 100000 \
        "127.0.0.1:$SIP_PORT" >"$work/flood-$s.out" 2>&1) &
    flood+=($!)
    pids+=($!)
done
(cd "$work" && exec timeout $((SECS + 90)) sipp -sf "$scen/refused.xml" -i 127.0.0.1 -p 0 \
    -s 712351914 -r "$PROBE_RATE" -m $((PROBE_RATE * SECS)) -nostdin -timeout $((SECS + 60))s \
    -trace_rtt -rtt_freq 1 -trace_stat -stf "$work/probe.csv" \
    "127.0.0.1:$SIP_PORT" >"$work/probe.out" 2>&1) &
probe=$!
pids+=($!)

printf 'secs\trss_mib\tcpu_s\n' >"$OUT/rss.tsv"
flood_end=""
for _ in $(seq 1 $((SECS + AFTER_SECS + 120))); do
    sleep 1
    now=$(date +%s.%N)
    printf '%.0f\t%d\t%.2f\n' "$(echo "$now - $t0" | bc)" $(( $(rss_kib "$NAVBAT_PID") / 1024 )) \
        "$(echo "($(cpu_ticks "$NAVBAT_PID") - $cpu0) / $CLK_TCK" | bc -l)" >>"$OUT/rss.tsv"
    if [[ -z "$flood_end" ]]; then
        running=0
        for p in "${flood[@]}"; do kill -0 "$p" 2>/dev/null && running=1; done
        if [[ $running == 0 ]]; then
            flood_end=$now
            cpu1=$(cpu_ticks "$NAVBAT_PID")
        fi
    elif (( $(echo "$now - $flood_end > $AFTER_SECS" | bc) )); then
        break
    fi
done
wait "$probe" 2>/dev/null || true
drops1=$(udp_rcvbuf_errors)

created=0; ok=0; failed=0; retrans=0
for ((s = 0; s < SOURCES; s++)); do
    f="$work/flood-$s.csv"
    created=$((created + $(stat_col "$f" "TotalCallCreated")))
    ok=$((ok + $(stat_col "$f" "SuccessfulCall(C)")))
    failed=$((failed + $(stat_col "$f" "FailedCall(C)")))
    retrans=$((retrans + $(stat_col "$f" "Retransmissions(C)")))
done
flood_secs=$(echo "$flood_end - $t0" | bc -l)
cpu_ms=$(echo "($cpu1 - $cpu0) * 1000 / $CLK_TCK" | bc -l)
invites=$((created + retrans))
rtt=$(ls "$work"/refused_*_rtt.csv 2>/dev/null | head -1)
p99=$(awk -F';' 'NR>1 && $3==1 {print $2}' "$rtt" | sort -n | awk '{a[NR]=$1} END {i=int(NR*0.99); if (i<1) i=1; print a[i]}')
p50=$(awk -F';' 'NR>1 && $3==1 {print $2}' "$rtt" | sort -n | awk '{a[NR]=$1} END {i=int(NR*0.5); if (i<1) i=1; print a[i]}')
rss_max=$(awk 'NR>1 {if ($2>m) m=$2} END {print m}' "$OUT/rss.tsv")
rss_end=$(( $(rss_kib "$NAVBAT_PID") / 1024 ))
api /metrics | grep -E '^navbat_(sip_(door_total|invites_rejected_total|guard_datagrams_total\{verdict="passed")|calls_blocked_total|calls_arrived_total)' >"$OUT/metrics.txt" || true
printf 'door\tfull\tscreen\trate\tsources\tsecs\tflood_secs\tcalls\tanswered_503\tfailed\tretrans\tachieved_per_s\tcpu_ms\tcpu_ms_per_invite\tprobe_p50_ms\tprobe_p99_ms\trss_start_mib\trss_max_mib\trss_end_mib\tudp_drops\tload1\n' >"$OUT/result.tsv"
printf '%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%s\t%s\t%s\t%s\t%.0f\t%.0f\t%.4f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$DOOR" "$FULL" "$SCREEN" "$RATE" "$SOURCES" "$SECS" "$flood_secs" "$created" "$ok" "$failed" "$retrans" \
    "$(echo "$created / $flood_secs" | bc -l)" "$cpu_ms" "$(echo "$cpu_ms / $invites" | bc -l)" \
    "${p50:-}" "${p99:-}" $((rss_start / 1024)) "$rss_max" "$rss_end" $((drops1 - drops0)) \
    "$(cut -d' ' -f1 /proc/loadavg)" >>"$OUT/result.tsv"
column -t "$OUT/result.tsv" >&2
log "results in $OUT (result.tsv, rss.tsv, metrics.txt)"
