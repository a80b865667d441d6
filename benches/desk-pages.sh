#!/usr/bin/env bash
# Desk page latency with a big store: 1,000,000 call records (10 % with dispositions) in
# SQLite, 40 desks connected by Server-Sent Events, then N sequential GETs of the operator's
# desk and of the supervisor's floor, timed by curl on loopback. Prints p50 / p90 / p99 / max.
#
# Then the screen pop: operator 1001 registers (SIPp, benches/sipp), a reader holds 1001's
# desk stream (/desk/events), and POPS calls (benches/sipp/caller.xml, one at a time) reach
# 1001. For each call: the wall-clock time from navbat's `call_offered` event (when it
# rings the phone) to the pop's HTML arriving on the desk stream, which includes the caller's
# history looked up in the 1,000,000 records (the bench caller's number has earlier calls).
# The prompts directory is empty, so calls are not held up by the greeting.
#
#   benches/desk-pages.sh                 # N=1000, ROWS=1000000
#   N=300 ROWS=200000 benches/desk-pages.sh
#
# Needs a release build (cargo build --release), sqlite3 and curl. Uses a temporary directory
# and free loopback ports; never touches data/. Every loop is bounded by N.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000}
POPS=${POPS:-100}
ROWS=${ROWS:-1000000}
DESKS=${DESKS:-40}
BIN=target/release/navbat
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }

tmp=$(mktemp -d /tmp/navbat-desk-bench-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(free_port); sip=$(free_port)
sed -e "s/127.0.0.1:8080/127.0.0.1:$http/" -e "s/127.0.0.1:5060/127.0.0.1:$sip/" \
    -e 's/^rtp_port_min = .*/rtp_port_min = 41000/' -e 's/^rtp_port_max = .*/rtp_port_max = 41999/' \
    -e "s#^prompts_dir = .*#prompts_dir = \"$tmp/no-prompts\"#" \
    config/navbat.toml > "$tmp/navbat.toml"
mkdir -p "$tmp/no-prompts"
repo=$PWD
cd "$tmp"
"$repo/$BIN" --config navbat.toml migrate >/dev/null

echo "filling $ROWS call records..."
today=$(( $(date +%s) * 1000 ))
sqlite3 data/navbat.db <<SQL
PRAGMA journal_mode = WAL;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ROWS)
INSERT INTO call_records (call_uid, node, boot, call_ref, tenant, did, caller_number, month,
  arrived_at_ms, answered_at_ms, ended_at_ms, language, topic, queue, operator, outcome, wait_ms, talk_ms)
SELECT 'bench:b:c' || i, 'bench', 'b', 'c' || i, CASE i % 5 WHEN 0 THEN 'support' ELSE 'dtm' END,
  '712351914', '99890' || printf('%07d', i % 200000), '2026-12',
  $today - (i * 2000), $today - (i * 2000) + 20000, $today - (i * 2000) + 200000, 'uz', 'results',
  'dtm-uz', '10' || printf('%02d', 1 + i % 10), 'answered', 20000, 180000 FROM n;
INSERT INTO dispositions (disposition_uid, call_uid, operator, topic_code, category, resolved,
  disputed, notes, at_ms, tenant, outcome, revision, saved_by)
SELECT call_uid, call_uid, operator, 'results', 'question', 1, 0, 'bench note', ended_at_ms, tenant,
  'resolved', 1, 'op1001' FROM call_records WHERE rowid % 10 = 0;
SQL

"$repo/$BIN" --config navbat.toml run > navbat.log 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q "navbat ready" navbat.log && break; sleep 0.2; done
grep -q "navbat ready" navbat.log || { cat navbat.log; exit 1; }
base="http://127.0.0.1:$http"

login() { # user -> cookie jar file
    local jar="$tmp/$1.jar"
    local page csrf
    page=$(curl -s -c "$jar" "$base/login")
    csrf=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' <<<"$page" | head -1)
    curl -s -b "$jar" -c "$jar" -o /dev/null --data-urlencode "csrf=$csrf" \
        --data-urlencode "username=$1" --data-urlencode "password=demo-$1" "$base/login"
    echo "$jar"
}
op=$(login op1001)
sup=$(login supervisor)
for _ in $(seq 1 "$DESKS"); do
    curl -s -N -b "$op" "$base/desk/events" > /dev/null &
    pids+=($!)
done

measure() { # label jar path
    local out
    out="$tmp/$(tr -c "a-z0-9" "_" <<<"$1").times"
    for _ in $(seq 1 "$N"); do
        curl -s -b "$2" -o /dev/null -w '%{time_total}\n' "$base$3"
    done > "$out"
    sort -n "$out" | awk -v label="$1" '{ t[NR] = $1 * 1000 } END {
        printf "%-22s n=%d p50=%.1f ms p90=%.1f ms p99=%.1f ms max=%.1f ms\n", label, NR,
            t[int(NR*0.5)], t[int(NR*0.9)], t[int(NR*0.99)], t[NR] }'
}
for pair in "$op /desk" "$sup /supervisor"; do
    set -- $pair
    echo "status of $2: $(curl -s -b "$1" -o /dev/null -w '%{http_code}' "$base$2")"
done
echo "store: $ROWS call records; $DESKS desks connected by SSE; $N sequential requests each"
measure "GET /desk" "$op" /desk
measure "GET /supervisor" "$sup" /supervisor
measure "GET /kb?q=natija" "$op" "/kb?tenant=dtm&q=natija"

# ---- screen pop ---------------------------------------------------------------------------
uas=$(free_port); reg=$(free_port); caller=$(free_port)
(sipp -sf "$repo/benches/sipp/operator-uas.xml" -i 127.0.0.1 -p "$uas" -nostdin \
    > /dev/null 2>&1) &
pids+=($!)
sleep 0.3
timeout 10 sipp -sf "$repo/benches/sipp/register.xml" -s 1001 -au 1001 -ap demo1001 \
    -key uas_port "$uas" -i 127.0.0.1 -p "$reg" -m 1 -nostdin -timeout 8s \
    "127.0.0.1:$sip" > /dev/null 2>&1 || { echo "1001 did not register"; exit 1; }
cookie=$(awk '$6 == "navbat_session" { print $7 }' "$op")
python3 - "$http" "$cookie" > pops.tsv <<'PY' &
import socket, sys, time
port, cookie = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
s.sendall(f"GET /desk/events HTTP/1.1\r\nHost: x\r\nCookie: navbat_session={cookie}\r\n\r\n".encode())
buf, event = b"", None
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        line = line.decode(errors="replace").rstrip("\r")
        if line.startswith("event: "):
            event = line[7:]
            continue
        if event == "pop" and 'data-call="' in line:
            call = line.split('data-call="', 1)[1].split('"', 1)[0]
            print(f"{call}\t{time.time() * 1000:.1f}", flush=True)
            event = None
PY
pids+=($!)
sleep 0.5
for _ in $(seq 1 "$POPS"); do
    timeout 20 sipp -sf "$repo/benches/sipp/caller.xml" -s 712351914 -i 127.0.0.1 -p "$caller" \
        -m 1 -d 200 -nostdin -timeout 15s "127.0.0.1:$sip" > /dev/null 2>&1 || true
    sleep 0.3 # the operator's 15 s wrap-up would hold the next call: end it as the desk does
    curl -s -o /dev/null -H "Authorization: Bearer demo-admin-token" -H 'Content-Type: application/json' \
        -d '{"state":"available"}' "$base/api/operators/1001/state"
done
sleep 1
curl -s -H "Authorization: Bearer demo-admin-token" "$base/api/events" > events.json
python3 - pops.tsv events.json <<'PY'
import json, sys
pops = dict(l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l)
offered = {e["call"]: e["at_ms"] for e in json.load(open(sys.argv[2]))
           if e["kind"] == "call_offered" and e["operator"] == "1001"}
d = sorted(float(pops[c]) - offered[c] for c in offered if c in pops)
if not d:
    sys.exit("no screen pop measured")
q = lambda f: d[min(len(d) - 1, int(len(d) * f))]
print(f"screen pop after ring   n={len(d)} of {len(offered)} offers p50={q(0.5):.1f} ms "
      f"p90={q(0.9):.1f} ms p99={q(0.99):.1f} ms max={d[-1]:.1f} ms")
PY
