# Shell helpers shared by the SIPp bench scripts (sourced, not run).

# N loopback ports free on both UDP and TCP, on one line. Racy in theory, fine here.
free_ports() {
    python3 - "$1" <<'PY'
import socket, sys
ports = []
while len(ports) < int(sys.argv[1]):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p))
    except OSError:
        t.close(); continue
    ports.append(p)
    t.close(); u.close()
print(*ports)
PY
}

# CPU time of a process (user + system) in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Resident set and its high-water mark, in KiB.
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
# System-wide UDP receive-buffer overflows (datagrams the kernel dropped).
udp_rcvbuf_errors() { awk '/^Udp:/ {n++} /^Udp:/ && n==2 {print $6}' /proc/net/snmp; }
# Column of the last line of a SIPp stat CSV, by header name.
stat_col() { awk -F';' -v col="$2" 'NR==1 {for (i=1;i<=NF;i++) if ($i==col) c=i} END {print $c}' "$1"; }
