#!/usr/bin/env bash
# Full-path call-rate ladder for navbat, driven by SIPp over loopback.
#
# Every call takes the whole path: trunk INVITE -> 200 OK -> ACK -> IVR digit 1
# (SIP INFO) -> digit 2 -> queue dtm-uz -> navbat INVITEs an operator -> 180/200
# -> ACK -> caller holds HOLD_MS -> caller BYE -> navbat BYEs the operator.
#
# The script builds navbat in release mode once, writes a config into a temp
# dir (free ports, high channel limit, OPERATORS operators with wrap_up_secs=0),
# registers every operator (one SIPp REGISTER run, injection file) to ONE shared
# operator UAS SIPp, then runs the caller scenario at increasing rates. A step
# passes when SIPp saw no failed call AND navbat's queue totals say every call
# of the step was answered by an operator. It stops at the first failing step.
#
# Per step it records: calls, SIPp-failed calls, calls answered / abandoned in
# navbat, offered rate actually achieved, INVITE -> first response p50/p99,
# navbat CPU-ms per call (utime+stime from /proc), navbat RSS, and the CPU the
# SIPp caller and the operator UAS used (they share the machine with navbat).
#
# Knobs (environment):
#   RATES          call rates to try, cps          (default "50 100 200 400 800 1000 1200 1400 1600 2000")
#   STEP_SECS      seconds of load per step         (default 10; calls = rate * STEP_SECS, at least 200)
#   OPERATORS      registered operators              (default 40)
#   HOLD_MS        caller's hold after IVR, ms       (default 20; see BENCHMARKS.md for why)
#   MAX_STEPS      ladder length bound               (default 12)
#   STEP_TIMEOUT   hard wall-clock bound per step, s (default STEP_SECS*3+30)
#   OUT            results directory                 (default: the temp dir, printed at the end)
#   NAVBAT_BIN     prebuilt binary (skips cargo build)
#   PROMPTS_DIR    media.prompts_dir (default: an empty dir, so no greeting or IVR
#                  prompt plays and the ladder measures the signalling path; set it to
#                  "$repo/config/prompts" for the full product path with early media)
#   RECORDINGS_DIR media.recordings_dir (default: "$work/recordings", on the same disk
#                  as the journal and database). On a journal-less ext4 (this VM's root
#                  disk) creating a WAV file costs a scan past every inode deleted in the
#                  last minutes (`recently_deleted`), so other jobs deleting files (builds)
#                  move navbat's CPU per call; see BENCHMARKS.md. A tmpfs directory
#                  (/dev/shm/...) takes the filesystem out of the measurement.
#   KEEP_GOING=1   soak mode: do not stop at a failing step (for memory over many
#                  steps at one rate, e.g. RATES="150 150 150 150 150 150")
#   SIP_THREADS    workers of navbat's SIP runtime ([sip] threads; default 1)
#   SIPP_BUFF      SO_SNDBUF/SO_RCVBUF of the SIPp caller's and operator UAS's sockets
#                  (-buff_size; default 4194304, the kernel caps it at rmem_max). SIPp's own
#                  default, 65,535 bytes, overflowed in bursts at 2,000 calls/s: the UAS
#                  dropped navbat's INVITEs to operators, whose retransmission (500 ms) came
#                  after the caller's 200 ms hold, and those callers counted as abandoned
#   SAMPLE_SECS    every N seconds during each step, append navbat's RSS and the gauges of
#                  what it holds (own transactions and their bytes, call legs, the event
#                  ring's bytes, the repeat index's calls, the journal's depth) to
#                  samples.tsv in OUT (default 0: off)
#   PERF=1         record `perf record -g` on navbat during step PERF_STEP (default: the last rate)
#   PERF_ARGS      perf record options (default "-g -F 499"; release builds have no frame
#                  pointers, so "--call-graph dwarf -F 199" gives usable stacks)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=benches/lib.sh
. "$here/lib.sh"
repo=$(cd "$here/.." && pwd)
scen="$here/sipp"

RATES=${RATES:-"50 100 200 400 800 1000 1200 1400 1600 2000"}
STEP_SECS=${STEP_SECS:-10}
OPERATORS=${OPERATORS:-40}
HOLD_MS=${HOLD_MS:-20}
MAX_STEPS=${MAX_STEPS:-12}
KEEP_GOING=${KEEP_GOING:-0}
STEP_TIMEOUT=${STEP_TIMEOUT:-$((STEP_SECS * 3 + 30))}
SIPP_BUFF=${SIPP_BUFF:-4194304}
TOKEN=bench-admin-token-0123456789
CLK_TCK=$(getconf CLK_TCK)

work=$(mktemp -d /tmp/navbat-cps.XXXXXX)
OUT=${OUT:-$work}
PROMPTS_DIR=${PROMPTS_DIR:-$work/no-prompts}
RECORDINGS_DIR=${RECORDINGS_DIR:-$work/recordings}
mkdir -p "$PROMPTS_DIR"
mkdir -p "$OUT"
pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap cleanup EXIT

log() { printf '[sipp-cps] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---- binary ------------------------------------------------------------------
if [[ -z "${NAVBAT_BIN:-}" ]]; then
    log "cargo build --release (once)"
    (cd "$repo" && cargo build --release --bin navbat -q)
    target=${CARGO_TARGET_DIR:-$repo/target}
    NAVBAT_BIN=$target/release/navbat
fi
[[ -x "$NAVBAT_BIN" ]] || die "no navbat binary at $NAVBAT_BIN"
command -v sipp >/dev/null || die "sipp not found"
command -v sqlite3 >/dev/null || die "sqlite3 not found (Debian: sqlite3): the step's waits are read from the call records"

# ---- free ports (loopback only) ---------------------------------------------
# Asks the kernel for ports free on both UDP and TCP; racy in theory, fine here.
read -r SIP_PORT HTTP_PORT UAS_PORT REG_PORT CALLER_PORT < <(free_ports 5)
# RTP: each call binds 2 pairs (caller leg and operator leg); leave headroom.
RTP_MIN=${RTP_MIN:-40000}
RTP_MAX=${RTP_MAX:-49999}

# ---- config ------------------------------------------------------------------
cfg=$work/navbat-bench.toml
ops_csv=$work/operators.csv
echo "SEQUENTIAL" >"$ops_csv"
{
cat <<EOF
# Generated by benches/sipp-cps.sh: loopback, high channel limit, no wrap-up.
[sip]
udp = "127.0.0.1:$SIP_PORT"
tcp = "127.0.0.1:$SIP_PORT"
realm = "navbat"
nonce_ttl_secs = 300
register_min_expires_secs = 60
register_max_expires_secs = 3600
threads = ${SIP_THREADS:-1}

[media]
rtp_ip = "127.0.0.1"
rtp_port_min = $RTP_MIN
rtp_port_max = $RTP_MAX
prompts_dir = "$PROMPTS_DIR"
recordings_dir = "$RECORDINGS_DIR"

# Everything the run writes stays in the work dir: a stale database from an
# earlier run would be read back at start-up (repeat-call window).
[database]
url = "sqlite://$work/navbat.db"
journal_dir = "$work/journal"

[http]
listen = "127.0.0.1:$HTTP_PORT"
admin_token = "$TOKEN"

[limits]
channels = 4000
retry_after_secs = 30

[shutdown]
drain_secs = 1

[operators_defaults]
available_on_register = true

[[tenant]]
id = "dtm"
name = { uz = "Bench", ru = "Bench" }
dids = ["712351914"]
channels = 4000
timezone = "Asia/Tashkent"
hours = "24/7"
holidays = []
service_level_secs = 20

[tenant.ivr]
digit_timeout_secs = 6
max_retries = 2
on_no_input = "default"
default_language = "uz"
languages = [
    { digit = "1", language = "uz", queue = "dtm-uz" },
    { digit = "2", language = "ru", queue = "dtm-ru" },
]
topics = [
    { digit = "1", topic = "registration", label = { uz = "a", ru = "a" } },
    { digit = "2", topic = "results", label = { uz = "b", ru = "b" } },
]
default_topic = "results"
EOF
for lang in uz ru; do
cat <<EOF

[[queue]]
id = "dtm-$lang"
tenant = "dtm"
language = "$lang"
topics = []
strategy = "longest-idle"
max_wait_secs = 60
ring_timeout_secs = 10
wrap_up_secs = 0
max_missed_offers = 3
max_waiting = 4000
priority = 0
EOF
done
for ((i = 0; i < OPERATORS; i++)); do
    ext=$((2000 + i))
    pass="bench$ext"
    ha1=$(printf '%s:navbat:%s' "$ext" "$pass" | md5sum | cut -d' ' -f1)
    printf '%s;%s;%s\n' "$ext" "$pass" "$UAS_PORT" >>"$ops_csv"
cat <<EOF

[[operator]]
ext = "$ext"
name = "Bench $ext"
ha1 = "$ha1"
languages = ["uz", "ru"]
EOF
done
} >"$cfg"
cp "$cfg" "$OUT/" 2>/dev/null || true

# ---- helpers -----------------------------------------------------------------
api() { curl -sf --max-time 5 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$HTTP_PORT$1"; }
fd_count() { ls "/proc/$1/fd" | wc -l; }
# Sum of the dtm queues' totals: "entered answered abandoned timed_out blocked".
totals() { api /api/queues | jq -r '[.[] | select(.tenant=="dtm") | .totals] |
    "\(map(.entered)|add) \(map(.answered)|add) \(map(.abandoned)|add) \(map(.timed_out)|add) \(map(.blocked)|add)"'; }

# One line of samples.tsv: seconds into the step, RSS and the gauges named in the header.
gauges=(navbat_sip_own_transactions navbat_sip_own_transaction_bytes navbat_sip_own_call_legs
    navbat_events_memory_bytes navbat_repeat_index_calls navbat_journal_depth_events)
sample_while_running() {
    local rate=$1 t0=$2 out=$3 metrics now
    [[ -s "$out" ]] || printf 'rate\tsecs\trss_mib\t%s\n' "$(IFS=$'\t'; echo "${gauges[*]}")" >"$out"
    while sleep "$SAMPLE_SECS"; do
        metrics=$(api /metrics) || continue
        now=$(date +%s.%N)
        printf '%s\t%.0f\t%.1f' "$rate" "$(awk -v a="$t0" -v b="$now" 'BEGIN {print b-a}')" \
            "$(awk -v k="$(rss_kib "$NAVBAT_PID")" 'BEGIN {print k/1024}')" >>"$out"
        for g in "${gauges[@]}"; do
            printf '\t%s' "$(awk -v g="$g" '$1 == g {print $2; exit}' <<<"$metrics")" >>"$out"
        done
        printf '\n' >>"$out"
    done
}

# ---- start navbat --------------------------------------------------------------
# The per-event JSON log (target navbat::events, info level) is switched off;
# navbat itself stays at info so that its "navbat ready" line is seen.
log "navbat: SIP 127.0.0.1:$SIP_PORT HTTP :$HTTP_PORT, $OPERATORS operators, hold ${HOLD_MS} ms"
RUST_LOG="${NAVBAT_LOG:-warn,navbat=info,navbat::events=off}" "$NAVBAT_BIN" run --config "$cfg" 2>"$work/navbat.stderr" &
NAVBAT_PID=$!
pids+=("$NAVBAT_PID")
for _ in $(seq 1 100); do
    grep -q 'navbat ready' "$work/navbat.stderr" 2>/dev/null && break
    kill -0 "$NAVBAT_PID" 2>/dev/null || { cat "$work/navbat.stderr" >&2; die "navbat exited"; }
    sleep 0.1
done
grep -q 'navbat ready' "$work/navbat.stderr" || die "navbat not ready in 10 s"

# ---- operators ----------------------------------------------------------------
(cd "$work" && exec sipp -sf "$scen/operator-uas.xml" -i 127.0.0.1 -p "$UAS_PORT" \
    -nostdin -trace_err -max_recv_loops 10000 -buff_size "$SIPP_BUFF" >/dev/null 2>&1) &
UAS_PID=$!
pids+=("$UAS_PID")
sleep 0.3
kill -0 "$UAS_PID" 2>/dev/null || die "operator UAS did not start"
# One short SIPp run per operator (bounded by OPERATORS, 10 s each).
while IFS=';' read -r ext pass uas; do
    [[ "$ext" == SEQUENTIAL ]] && continue
    (cd "$work" && timeout 10 sipp -sf "$scen/register.xml" -s "$ext" -au "$ext" -ap "$pass" \
        -key uas_port "$uas" -i 127.0.0.1 -p "$REG_PORT" -m 1 -nostdin -timeout 8s -trace_err \
        "127.0.0.1:$SIP_PORT" >/dev/null 2>&1) || die "operator $ext failed to register (see $work)"
done <"$ops_csv"
registered=$(api /api/health | jq .operators_registered)
[[ "$registered" == "$OPERATORS" ]] || die "$registered of $OPERATORS operators registered"
log "$registered operators registered to one UAS on :$UAS_PORT; navbat RSS before any call: $(( $(rss_kib "$NAVBAT_PID") / 1024 )) MiB"

# ---- ladder -------------------------------------------------------------------
table=$OUT/sipp-cps.tsv
printf 'rate\tcalls\tsipp_failed\tanswered\tabandoned\tachieved_cps\tp50_ms\tp99_ms\twait_p50_ms\twait_p99_ms\tcpu_ms_per_call\trss_mib\thwm_mib\tsipp_caller_cpu_s\tuas_cpu_s\tudp_drops\tfds\tload1\twall_s\n' >"$table"
best=0
step=0
rates=($RATES)
for rate in "${rates[@]}"; do
    step=$((step + 1))
    ((step <= MAX_STEPS)) || { log "MAX_STEPS reached"; break; }
    calls=$((rate * STEP_SECS))
    ((calls >= 200)) || calls=200
    # Concurrency bound: far above rate * (hold + IVR round trips), well below fd limits.
    limit=$((rate * (HOLD_MS + 500) / 1000 * 4 + 100))
    ((limit <= 6000)) || limit=6000
    sd=$work/step-$rate
    mkdir -p "$sd"
    read -r e0 a0 ab0 _ _ < <(totals)
    n0=$(cpu_ticks "$NAVBAT_PID")
    u0=$(cpu_ticks "$UAS_PID")
    d0=$(udp_rcvbuf_errors)
    load=$(cut -d' ' -f1 /proc/loadavg)
    perf_pid=
    if [[ "${PERF:-0}" == 1 && $step -eq ${PERF_STEP:-${#rates[@]}} ]]; then
        # shellcheck disable=SC2086
        perf record ${PERF_ARGS:--g -F 499} -p "$NAVBAT_PID" -o "$OUT/perf.data" 2>/dev/null &
        perf_pid=$!
    fi
    log "step $step: $rate cps x $calls calls (limit $limit)"
    t0=$(date +%s.%N)
    t0_ms=$(date +%s%3N)
    sampler_pid=
    if ((${SAMPLE_SECS:-0} > 0)); then
        sample_while_running "$rate" "$t0" "$OUT/samples.tsv" &
        sampler_pid=$!
    fi
    set +e
    (cd "$sd" && /usr/bin/time -f '%U %S' -o "$sd/caller.time" \
        timeout "$STEP_TIMEOUT" sipp -sf "$scen/caller.xml" -s 712351914 \
        -i 127.0.0.1 -p "$CALLER_PORT" -r "$rate" -rp 1000 -m "$calls" -l "$limit" -d "$HOLD_MS" \
        -nostdin -timeout "$((STEP_TIMEOUT - 5))s" -max_recv_loops 10000 -max_sched_loops 10000 \
        -buff_size "$SIPP_BUFF" \
        -trace_stat -stf "$sd/stat.csv" -fd 1 -trace_rtt -rtt_freq 1 -trace_screen -trace_err \
        "127.0.0.1:$SIP_PORT" >/dev/null 2>&1)
    rc=$?
    set -e
    t1=$(date +%s.%N)
    [[ -n "$sampler_pid" ]] && { kill "$sampler_pid" 2>/dev/null; wait "$sampler_pid" 2>/dev/null || true; }
    [[ -n "$perf_pid" ]] && { kill -INT "$perf_pid" 2>/dev/null; wait "$perf_pid" 2>/dev/null || true; }
    # Let navbat finish the last BYEs (bounded), then read its counters.
    for _ in $(seq 1 50); do
        [[ "$(api /api/health | jq .channels_in_use)" == 0 ]] && break
        sleep 0.2
    done
    n1=$(cpu_ticks "$NAVBAT_PID")
    u1=$(cpu_ticks "$UAS_PID")
    d1=$(udp_rcvbuf_errors)
    read -r e1 a1 ab1 _ _ < <(totals)
    # Queue-to-answer wait (enqueue -> operator's 200 OK) from navbat's own call records,
    # once the store has written every event of the step (bounded wait); read after the CPU
    # sample so the query is not billed to the calls. (The in-memory event feed holds only
    # its newest 16 MiB, the last seconds of a step at these rates.)
    for _ in $(seq 1 50); do
        [[ "$(api /metrics | awk '$1 == "navbat_journal_depth_events" {print $2}')" == 0 ]] && break
        sleep 0.2
    done
    read -r w50 w99 < <(timeout 120 sqlite3 "$work/navbat.db" \
        "SELECT wait_ms FROM call_records WHERE outcome = 'answered' AND arrived_at_ms >= $t0_ms" | sort -g |
        awk '{v[NR]=$1} END {
            if (NR == 0) { print "- -"; exit }
            i50 = int(NR*0.50); if (i50 < 1) i50 = 1
            i99 = int(NR*0.99); if (i99 < 1) i99 = 1
            print v[i50], v[i99] }')
    ok=$(stat_col "$sd/stat.csv" 'SuccessfulCall(C)')
    failed=$(stat_col "$sd/stat.csv" 'FailedCall(C)')
    answered=$((a1 - a0))
    abandoned=$((ab1 - ab0))
    rtt=$(ls "$sd"/*_rtt.csv 2>/dev/null | head -1)
    # rtt CSV: date_ms;response_time_ms;rtd_no - one line per call (-rtt_freq 1).
    read -r p50 p99 < <(awk -F';' 'NR>1 && $2 != "" {print $2}' "${rtt:-/dev/null}" | sort -g |
        awk '{v[NR]=$1} END {
            if (NR == 0) { print "- -"; exit }
            i50 = int(NR*0.50); if (i50 < 1) i50 = 1
            i99 = int(NR*0.99); if (i99 < 1) i99 = 1
            printf "%.2f %.2f\n", v[i50], v[i99] }')
    # Offered rate actually achieved: calls over the span of their INVITE answers.
    achieved=$(awk -F';' 'NR>1 && $1 != "" {if (min == "" || $1 < min) min=$1; if ($1 > max) max=$1; n++}
        END {span=(max-min)/1000; if (span > 0) printf "%.0f", (n-1)/span; else print "-"}' "${rtt:-/dev/null}")
    cpu_ms=$(awk -v d=$((n1 - n0)) -v hz="$CLK_TCK" -v c="$calls" 'BEGIN {printf "%.3f", d*1000/hz/c}')
    rss=$(awk -v k="$(rss_kib "$NAVBAT_PID")" 'BEGIN {printf "%.1f", k/1024}')
    hwm=$(awk -v k="$(hwm_kib "$NAVBAT_PID")" 'BEGIN {printf "%.1f", k/1024}')
    ccpu=$(tail -1 "$sd/caller.time" 2>/dev/null | awk '{printf "%.2f", $1+$2}')
    ucpu=$(awk -v d=$((u1 - u0)) -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", d/hz}')
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b-a}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rate" "$calls" "${failed:-?}" \
        "$answered" "$abandoned" "$achieved" "$p50" "$p99" "$w50" "$w99" "$cpu_ms" "$rss" "$hwm" "$ccpu" "$ucpu" "$((d1 - d0))" "$(fd_count "$NAVBAT_PID")" "$load" "$wall" \
        | tee -a "$table"
    if [[ $rc -ne 0 || "${failed:-1}" != 0 || "${ok:-0}" != "$calls" || $answered -ne $calls ]]; then
        log "step $rate cps FAILED (sipp rc=$rc ok=$ok failed=$failed answered=$answered/$calls)"
        [[ "$KEEP_GOING" == 1 ]] && continue
        break
    fi
    best=$rate
done

kill -0 "$NAVBAT_PID" 2>/dev/null || log "navbat died during the run (see $work/navbat.stderr)"
log "highest zero-failure rate: $best cps (OPERATORS=$OPERATORS HOLD_MS=$HOLD_MS)"
log "table: $table   work dir: $work"
column -t "$table" >&2
