#!/usr/bin/python3
"""An independent count of a month's report, for tests/report.rs.

Reads the same rows the report was made from (SQLite, with Python's own sqlite3 and SQL of
its own), counts every figure again in a different way (SQL GROUP BY, Python's collections,
zoneinfo for local days), and compares with the report navbat wrote: its JSON, its workbook
read back with openpyxl (Debian's python3-openpyxl) and its CSV files. Prints each
mismatch and exits 1 if there is any.

    report_check.py DB JSON XLSX CSVDIR TENANT MONTH ZONE SL_SECS TIERS BILLABLE PRICING

TIERS is "110000:150000,150000:135000,:120000" (up_to:price in minor units; empty up_to on
the last tier); BILLABLE "answered,deflected"; PRICING "volume" or "graduated".
"""

import collections
import csv
import datetime
import json
import math
import os
import sqlite3
import sys
import zoneinfo

import openpyxl

(DB, JSON_PATH, XLSX, CSVDIR, TENANT, MONTH, ZONE, SL_SECS, TIERS, BILLABLE, PRICING, NUMBERS) = sys.argv[1:13]
SL_MS = int(SL_SECS) * 1000
TZ = zoneinfo.ZoneInfo(ZONE)
problems = []


def check(what, got, want):
    if isinstance(want, float) or isinstance(got, float):
        ok = got is not None and want is not None and abs(float(got) - float(want)) < 0.0051
    else:
        ok = got == want
    if not ok:
        problems.append(f"{what}: report {got!r}, independent count {want!r}")


def secs(ms):
    return (ms // 100) / 10


def pct(part, whole):
    return 0.0 if whole == 0 else math.floor(part * 10000 / whole + 0.5) / 100


def mask(n):
    n = list(n)
    if len(n) <= 4:
        return "*" * len(n)
    head, tail = (5, 2) if len(n) >= 9 else (2, 1)
    return "".join(c if i < head or i >= len(n) - tail else "*" for i, c in enumerate(n))


def nearest_rank(sorted_values, q):
    if not sorted_values:
        return 0
    rank = max(1, min(len(sorted_values), math.ceil(q * len(sorted_values) / 100)))
    return sorted_values[rank - 1]


db = sqlite3.connect(DB)
db.row_factory = sqlite3.Row
report = json.load(open(JSON_PATH, encoding="utf-8"))
year, mon = map(int, MONTH.split("-"))
start = int(datetime.datetime(year, mon, 1, tzinfo=TZ).timestamp() * 1000)
nxt = datetime.datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=TZ)
end = int(nxt.timestamp() * 1000)

calls = db.execute(
    "SELECT * FROM call_records WHERE tenant = ? AND arrived_at_ms >= ? AND arrived_at_ms < ?",
    (TENANT, start, end)).fetchall()
# The numbers are sealed in the database (D18): the plain ones come from the generator that
# wrote the rows (NUMBERS: call_uid -> number), so repeats are counted here by the number
# itself, independently of the report's keyed hashes.
plain = json.load(open(NUMBERS))
calls = [dict(c) for c in calls]
for c in calls:
    assert c["caller_number"] is None or c["caller_number"].startswith("pii1."), "a number is not sealed"
    c["caller_number"] = plain.get(c["call_uid"])
by_uid = {c["call_uid"]: c for c in calls}
outcome_sql = dict(db.execute(
    "SELECT COALESCE(outcome, 'unfinished'), COUNT(*) FROM call_records WHERE tenant = ? AND month = ? GROUP BY 1",
    (TENANT, MONTH)).fetchall())
answered = [c for c in calls if c["outcome"] == "answered"]
missed_names = ("abandoned", "timed_out", "blocked", "closed")

# Holds: pair each hold with the next resume of the same side, clipped to the conversation.
holds = collections.defaultdict(int)
marks = collections.defaultdict(list)
for e in db.execute("SELECT call_uid, at_ms, body FROM call_events WHERE kind = 'call_hold' ORDER BY at_ms"):
    b = json.loads(e["body"])
    marks[e["call_uid"]].append((e["at_ms"], b["by"], b["held"]))
for uid, ms in marks.items():
    c = by_uid.get(uid)
    if c is None or c["answered_at_ms"] is None or c["ended_at_ms"] is None:
        continue
    lo, hi = c["answered_at_ms"], c["ended_at_ms"]
    open_at = {}
    for at, by, held in ms:
        at = min(max(at, lo), hi)
        if held:
            open_at.setdefault(by, at)
        elif by in open_at:
            holds[uid] += at - open_at.pop(by)
    for by, at in open_at.items():
        holds[uid] += hi - at

# After-call work: the operator's wrap_up that starts within 2 s before to 10 s after the end.
wraps = {}
for c in answered:
    if c["ended_at_ms"] is None:
        continue
    row = db.execute(
        "SELECT at_ms FROM operator_state_changes WHERE operator = ? AND to_state = 'wrap_up' "
        "AND at_ms BETWEEN ? AND ? ORDER BY at_ms LIMIT 1",
        (c["operator"], c["ended_at_ms"] - 2000, c["ended_at_ms"] + 10000)).fetchone()
    if row:
        nxt_change = db.execute(
            "SELECT MIN(at_ms) FROM operator_state_changes WHERE operator = ? AND at_ms > ?",
            (c["operator"], row["at_ms"])).fetchone()[0]
        if nxt_change is not None:
            wraps[c["call_uid"]] = nxt_change - row["at_ms"]

waits = sorted(max(0, c["wait_ms"] or 0) for c in answered)
queued = sum(1 for c in calls if c["enqueued_at_ms"] is not None)
in_sl = sum(1 for c in answered if c["enqueued_at_ms"] is not None and (c["wait_ms"] or 0) <= SL_MS)
n_ans = len(answered)
talk = sum(max(0, c["talk_ms"] or 0) for c in answered)
hold_total = sum(holds.get(c["call_uid"], 0) for c in answered)
wrap_total = sum(wraps.get(c["call_uid"], 0) for c in answered)
called_back = db.execute(
    "SELECT COUNT(*) FROM callback_requests WHERE tenant = ? AND status = 'connected' "
    "AND arrived_at_ms >= ? AND arrived_at_ms < ?", (TENANT, start, end)).fetchone()[0]
missed = sum(outcome_sql.get(o, 0) for o in missed_names)
s = report["summary"]
want = {
    "offered": len(calls), "answered": outcome_sql.get("answered", 0), "missed": missed,
    "deflected": outcome_sql.get("deflected", 0),
    "callback_requested": outcome_sql.get("callback_requested", 0), "called_back": called_back,
    "other_ends": len(calls) - outcome_sql.get("answered", 0) - missed
    - outcome_sql.get("deflected", 0) - outcome_sql.get("callback_requested", 0),
    "queued": queued, "answered_in_sl": in_sl, "sl_target_secs": SL_MS // 1000,
    "service_level_pct": pct(in_sl, queued),
    "wait_p50_ms": nearest_rank(waits, 50), "wait_p90_ms": nearest_rank(waits, 90),
    "wait_p95_ms": nearest_rank(waits, 95), "wait_avg_ms": sum(waits) // n_ans if n_ans else 0,
    "talk_total_ms": talk, "talk_avg_ms": talk // n_ans if n_ans else 0,
    "hold_total_ms": hold_total, "hold_avg_ms": hold_total // n_ans if n_ans else 0,
    "wrap_total_ms": wrap_total, "wrap_avg_ms": wrap_total // n_ans if n_ans else 0,
    "surge_calls": sum(1 for c in calls if c["surge"]),
}
for k, v in want.items():
    check(f"summary.{k}", s.get(k), v)
assert len(want) == len(s), sorted(set(s) - set(want))

# Outcomes.
got_outcomes = {o["key"]: o["count"] for o in report["outcomes"]}
for k, v in outcome_sql.items():
    check(f"outcomes.{k}", got_outcomes.get(k), v)
check("outcomes total", sum(got_outcomes.values()), len(calls))

# Days.
days = collections.defaultdict(collections.Counter)
for c in calls:
    d = datetime.datetime.fromtimestamp(c["arrived_at_ms"] / 1000, TZ).date().isoformat()
    o = c["outcome"]
    kind = ("answered" if o == "answered" else "missed" if o in missed_names else
            "deflected" if o == "deflected" else "callback_requested" if o == "callback_requested" else "other")
    days[d]["offered"] += 1
    days[d][kind] += 1
n_days = (nxt.date() - datetime.date(year, mon, 1)).days
check("days rows", len(report["days"]), n_days)
for row in report["days"]:
    for k in ("offered", "answered", "missed", "deflected", "callback_requested", "other"):
        check(f"days.{row['day']}.{k}", row[k], days[row["day"]][k])

# Dispositions of the month's calls.
disps = db.execute(
    "SELECT d.* FROM dispositions d JOIN call_records c ON c.call_uid = d.call_uid "
    "WHERE c.tenant = ? AND c.month = ?", (TENANT, MONTH)).fetchall()
disp_by = {d["call_uid"]: d for d in disps}

# Topics.
ivr = collections.Counter((c["topic"] or "") for c in calls)
ivr_ans = collections.Counter((c["topic"] or "") for c in answered)
classified = collections.Counter((d["topic_code"] or "") for d in disps)
agree = collections.Counter(
    c["topic"] for c in calls
    if c["call_uid"] in disp_by and c["topic"] is not None and disp_by[c["call_uid"]]["topic_code"] == c["topic"])
seen = set()
for t in report["topics"]:
    code = t["code"]
    seen.add(code)
    check(f"topics.{code}.ivr_calls", t["ivr_calls"], ivr.get(code, 0))
    check(f"topics.{code}.ivr_answered", t["ivr_answered"], ivr_ans.get(code, 0))
    check(f"topics.{code}.classified", t["classified"], classified.get(code, 0))
    check(f"topics.{code}.agree", t["agree"], agree.get(code, 0))
for code in set(ivr) | set(classified):
    if code not in seen:
        problems.append(f"topic {code!r} missing from the report")

# Categories.
cat = {r[0]: r[1:] for r in db.execute(
    "SELECT d.category, COUNT(*), SUM(d.outcome = 'resolved'), SUM(d.outcome = 'unresolved'), "
    "SUM(d.outcome = 'disputed') FROM dispositions d JOIN call_records c ON c.call_uid = d.call_uid "
    "WHERE c.tenant = ? AND c.month = ? GROUP BY d.category", (TENANT, MONTH))}
for row in report["categories"]:
    n, r, u, dsp = cat.get(row["category"], (0, 0, 0, 0))
    check(f"categories.{row['category']}", (row["calls"], row["resolved"], row["unresolved"], row["disputed"]), (n, r, u, dsp))
check("not_classified", report["not_classified"], sum(1 for c in answered if c["call_uid"] not in disp_by))

# Operators.
ops = collections.defaultdict(lambda: collections.Counter())
for c in answered:
    o = ops[c["operator"]]
    o["calls"] += 1
    o["talk"] += max(0, c["talk_ms"] or 0)
    o["hold"] += holds.get(c["call_uid"], 0)
    o["wrap"] += wraps.get(c["call_uid"], 0)
for d in disps:
    op = d["operator"] or (by_uid[d["call_uid"]]["operator"] if d["call_uid"] in by_uid else None)
    ops[op]["disp"] += 1
    ops[op]["resolved"] += d["outcome"] == "resolved"
check("operators count", len(report["operators"]), len(ops))
for row in report["operators"]:
    o = ops[row["ext"]]
    handle = o["talk"] + o["hold"] + o["wrap"]
    got = (row["calls"], row["talk_ms"], row["hold_ms"], row["wrap_ms"], row["handle_ms"],
           row["handle_avg_ms"], row["dispositions"], row["resolved"], row["qa_score"])
    want_row = (o["calls"], o["talk"], o["hold"], o["wrap"], handle,
                handle // o["calls"] if o["calls"] else 0, o["disp"], o["resolved"], None)
    check(f"operators.{row['ext']}", got, want_row)
    check(f"operators.{row['ext']}.resolved_pct", row["resolved_pct"], pct(o["resolved"], o["disp"]))

# Repeat callers.
numbers = collections.Counter(c["caller_number"] for c in calls if c["caller_number"] and c["caller_number"].strip())
rp = report["repeat"]
rep = {n: k for n, k in numbers.items() if k > 1}
check("repeat.callers", rp["callers"], len(numbers))
check("repeat.repeat_callers", rp["repeat_callers"], len(rep))
check("repeat.repeat_share_pct", rp["repeat_share_pct"], pct(len(rep), len(numbers)))
check("repeat.repeat_calls", rp["repeat_calls"], sum(rep.values()))
check("repeat.marked_repeats", rp["marked_repeats"], sum(1 for c in calls if c["repeat_of"] is not None))
check("repeat.anonymous", rp["anonymous"], len(calls) - sum(numbers.values()))
buckets = {"1": (1, 1), "2": (2, 2), "3": (3, 3), "4": (4, 4), "5": (5, 5), "6-10": (6, 10), "11+": (11, 10**9)}
for b in rp["distribution"]:
    lo, hi = buckets[b["times"]]
    inside = [k for k in numbers.values() if lo <= k <= hi]
    check(f"repeat.distribution.{b['times']}", (b["callers"], b["calls"]), (len(inside), sum(inside)))
top = sorted(rep.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
check("repeat.top", [(t["key"], t["count"]) for t in rp["top"]], [(mask(n), k) for n, k in top])

# Requests.
reqs = db.execute("SELECT channel, priority, status, head FROM requests WHERE tenant = ? "
                  "AND registered_at_ms >= ? AND registered_at_ms < ?", (TENANT, start, end)).fetchall()
rq = report["requests"]
check("requests.total", rq["total"], len(reqs))
for c in rq["by_channel"]:
    check(f"requests.channel.{c['key']}", c["count"], sum(1 for r in reqs if r["channel"] == c["key"]))
for c in rq["by_priority"]:
    check(f"requests.priority.{c['key']}", c["count"], sum(1 for r in reqs if r["priority"] == c["key"]))
breached = [r for r in reqs if json.loads(r["head"]).get("breaches")]
check("requests.sla_breached", rq["sla_breached"], len(breached))
check("requests.sla_met", rq["sla_met"], sum(1 for r in reqs if not json.loads(r["head"]).get("breaches") and r["status"] in ("resolved", "closed")))
check("requests.sla_open", rq["sla_open"], len(reqs) - len(breached) - rq["sla_met"])
for c in rq["breaches_by_clock"]:
    check(f"requests.breach.{c['key']}", c["count"], sum(1 for r in breached if c["key"] in json.loads(r["head"])["breaches"]))

# Surge periods from the switches.
switches = [(e["at_ms"], json.loads(e["body"])) for e in db.execute(
    "SELECT at_ms, body FROM call_events WHERE kind = 'surge_changed' ORDER BY at_ms")]
switches = [(at, b) for at, b in switches if b["tenant"] == TENANT]
periods, on = [], None
before = [b for at, b in switches if at < start]
if before and before[-1]["on"]:
    on = (start, before[-1]["by"])
for at, b in switches:
    if at < start or at >= end:
        continue
    if b["on"] and on is None:
        on = (at, b["by"])
    elif not b["on"] and on is not None:
        periods.append((on[0], at, on[1]))
        on = None
if on:
    periods.append((on[0], end, on[1]))
check("surge periods", len(report["surge"]), len(periods))
fmt = lambda ms: datetime.datetime.fromtimestamp(ms / 1000, TZ).strftime("%Y-%m-%d %H:%M")
for (f, t, by), got in zip(periods, report["surge"]):
    inside = [c for c in calls if f <= c["arrived_at_ms"] < t]
    cnt = lambda o: sum(1 for c in inside if c["outcome"] == o)
    check(f"surge {fmt(f)}", (got["from"], got["to"], got["minutes"], got["by"], got["calls"], got["answered"],
                              got["deflected"], got["callback_requested"], got["missed"]),
          (fmt(f), fmt(t), (t - f) // 60000, by, len(inside), cnt("answered"), cnt("deflected"),
           cnt("callback_requested"), sum(cnt(o) for o in missed_names)))

# Every call's details, masked.
details = report["details"]
check("details rows", len(details), len(calls))
ordered = sorted(calls, key=lambda c: (c["arrived_at_ms"], c["call_uid"]))
recorded = {r[0] for r in db.execute("SELECT DISTINCT call_uid FROM recordings")}
for c, d in zip(ordered, details):
    num = c["caller_number"] if c["caller_number"] and c["caller_number"].strip() else None
    dp = disp_by.get(c["call_uid"])
    want_d = {
        "call": c["call_uid"],
        "time": datetime.datetime.fromtimestamp(c["arrived_at_ms"] / 1000, TZ).strftime("%Y-%m-%d %H:%M:%S"),
        "number": mask(num) if num else "", "language": c["language"] or "", "ivr_topic": c["topic"] or "",
        "topic": (dp["topic_code"] or "") if dp else "", "category": dp["category"] if dp else "",
        "resolution": dp["outcome"] if dp else "", "outcome": c["outcome"] or "unfinished",
        "operator": c["operator"] or "", "wait_ms": max(0, c["wait_ms"] or 0), "talk_ms": max(0, c["talk_ms"] or 0),
        "hold_ms": holds.get(c["call_uid"], 0), "wrap_ms": wraps.get(c["call_uid"], 0), "surge": bool(c["surge"]),
        "caller_calls": numbers.get(num, 0) if num else 0,
        "recording": c["recording_ref"] is not None or c["call_uid"] in recorded,
        "link": "/calls/" + c["call_uid"],
    }
    if d != want_d:
        problems.append(f"details {c['call_uid']}: report {d}, independent {want_d}")
        break

# The invoice.
tiers = []
for part in TIERS.split(","):
    up, price = part.split(":")
    tiers.append((int(up) if up else None, int(price)))
billable = BILLABLE.split(",")
volume = sum(outcome_sql.get(o, 0) for o in billable)
idx = next(i for i, (up, _) in enumerate(tiers) if up is None or volume <= up)
if PRICING == "volume":
    total = volume * tiers[idx][1]
else:
    total, done = 0, 0
    for up, price in tiers[: idx + 1]:
        upto = volume if up is None else min(up, volume)
        total += max(0, upto - done) * price
        done = upto
inv = report["invoice"]
check("invoice.volume", inv["volume"], volume)
check("invoice.tier", inv["tier"], idx + 1)
check("invoice.unit_price", inv["unit_price"], f"{tiers[idx][1] // 100}.{tiers[idx][1] % 100:02}")
check("invoice.total", inv["total"], f"{total // 100}.{total % 100:02}")

# The workbook, read back: every sheet's figures are the report's.
wb = openpyxl.load_workbook(XLSX, read_only=True)
def rows_of(sheet):
    return [list(r) for r in wb[sheet].iter_rows(min_row=4, values_only=True)]
summary_rows = rows_of("Xulosa - Сводка")
values = [r[1] for r in summary_rows]
want_values = [None, MONTH, None, s["offered"], s["answered"], s["missed"], s["deflected"],
               s["callback_requested"], s["called_back"], s["other_ends"], s["queued"], s["sl_target_secs"],
               s["answered_in_sl"], s["service_level_pct"], secs(s["wait_p50_ms"]), secs(s["wait_p90_ms"]),
               secs(s["wait_p95_ms"]), secs(s["wait_avg_ms"]), secs(s["talk_total_ms"]), secs(s["talk_avg_ms"]),
               secs(s["hold_total_ms"]), secs(s["hold_avg_ms"]), secs(s["wrap_total_ms"]), secs(s["wrap_avg_ms"]),
               s["surge_calls"], rp["repeat_share_pct"]]
for i, (got, w) in enumerate(zip(values, want_values)):
    if w is not None:
        check(f"xlsx summary row {i + 4}", got, w)
check("xlsx summary rows", len(values), len(want_values))
for r, d in zip(rows_of("Kunlar - По дням"), report["days"]):
    check(f"xlsx day {d['day']}", r[:7], [d["day"], d["offered"], d["answered"], d["missed"], d["deflected"], d["callback_requested"], d["other"]])
for r, o in zip(rows_of("Natijalar - Исходы"), report["outcomes"]):
    check(f"xlsx outcome {o['key']}", (r[0], r[2]), (o["key"], o["count"]))
for r, t in zip(rows_of("Mavzular - Темы"), report["topics"]):
    check(f"xlsx topic {t['code']}", ((r[0] or ""), r[2], r[3], r[4], r[5]), (t["code"], t["ivr_calls"], t["ivr_answered"], t["classified"], t["agree"]))
for r, c in zip(rows_of("Toifalar - Категории"), report["categories"]):
    check(f"xlsx category {c['category']}", (r[0], r[2], r[3], r[4], r[5]), (c["category"], c["calls"], c["resolved"], c["unresolved"], c["disputed"]))
op_rows = rows_of("Operatorlar - Операторы")
check("xlsx operators", len(op_rows), len(report["operators"]))
for r, o in zip(op_rows, report["operators"]):
    check(f"xlsx operator {o['ext']}", (r[0], r[2], r[3], r[6], r[8], r[9], r[11]),
          (o["ext"], o["calls"], secs(o["talk_ms"]), secs(o["handle_ms"]), o["dispositions"], o["resolved"], None))
req_rows = {r[0]: r[2] for r in rows_of("Murojaatlar - Обращения")}
check("xlsx requests total", req_rows.get("total"), rq["total"])
check("xlsx requests breached", req_rows.get("sla:breached"), rq["sla_breached"])
for r, p in zip(rows_of("Yuklama - Пики"), report["surge"]):
    check(f"xlsx surge {p['from']}", (r[0], r[4], r[6], r[7]), (p["from"], p["calls"], p["deflected"], p["callback_requested"]))
inv_rows = rows_of("Hisob - Счёт")
check("xlsx invoice volume", inv_rows[3][1], inv["volume"])
check("xlsx invoice total", round(inv_rows[-1][1] * 100), total)
det = rows_of("Tafsilot - Звонки")
check("xlsx details rows", len(det), len(details))
for r, d in list(zip(det, details))[:: max(1, len(details) // 200)]:
    check(f"xlsx details {d['call']}", (r[0], r[2], r[8], r[9] or "", r[11], r[17]),
          (d["call"], d["number"] or None, d["outcome"], d["operator"], secs(d["talk_ms"]), d["link"]))

# The CSV files hold the same.
def csv_rows(name):
    with open(os.path.join(CSVDIR, name), encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))[1:]
cs = csv_rows("summary.csv")
check("csv summary offered", int(cs[3][1]), s["offered"])
check("csv summary answered", int(cs[4][1]), s["answered"])
for r, d in zip(csv_rows("days.csv"), report["days"]):
    check(f"csv day {d['day']}", [r[0]] + [int(x) for x in r[1:]], [d["day"], d["offered"], d["answered"], d["missed"], d["deflected"], d["callback_requested"], d["other"]])
calls_csv = csv_rows("calls.csv")
check("csv calls rows", len(calls_csv), len(details))
check("csv first number", calls_csv[0][2].lstrip("'"), details[0]["number"])
inv_csv = csv_rows("invoice.csv")
check("csv invoice total", inv_csv[-1][1], inv["total"])

# No full number anywhere (D18).
full = {c["caller_number"] for c in calls if c["caller_number"]}
for path in [JSON_PATH] + [os.path.join(CSVDIR, f) for f in os.listdir(CSVDIR)]:
    text = open(path, encoding="utf-8-sig").read()
    leaked = [n for n in list(full)[:500] if n in text]
    if leaked:
        problems.append(f"{path} holds full numbers, e.g. {leaked[0][:6]}...")

if problems:
    print(f"{len(problems)} mismatches:")
    for p in problems[:60]:
        print("  " + p)
    sys.exit(1)
print(f"every figure matches: {len(calls)} calls, {len(disps)} dispositions, {len(reqs)} requests, "
      f"{len(periods)} surge periods; xlsx and csv read back")
