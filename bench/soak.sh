#!/usr/bin/env bash
# Soak: the published nbdfast serving a writable file under verified random I/O and rude clients.
#
# Usage:   bench/soak.sh MINUTES          (fractional minutes allowed, e.g. 0.25; ./build.sh soak MINUTES)
#
# For MINUTES the server (a file-backed export, default --io) gets:
#   - fio's nbd engine, randrw 4k-64k with --verify=crc32c (with verify_backlog, so written blocks are read
#     back and checked all through the run), 4 jobs = 4 connections, each on its own 64 MiB region;
#   - bench/soak_dropper.py: one connection after another, each dropped at a random point (mid-handshake,
#     after the handshake, mid-request), its writes confined to a fifth region fio never touches.
# Meanwhile the server's RSS (VmRSS) and open fds (/proc/PID/fd) are sampled every second.
# Afterwards the clients are gone, so the fd count must return to its value before any client connected,
# and SIGTERM must stop the server with status 0.
#
# Prints "soak: ..." lines (settings, fio figures, dropper figures, RSS and fds at start / middle / end /
# peak / idle afterwards) and finally "soak: PASS" or "soak: FAIL: reasons". Exits non-zero on any
# verify or I/O error, a dropper error, a server that died, RSS or fds that grew from the middle to the
# end of the run beyond the thresholds below, fds not back to baseline, or an unclean shutdown.
#
# Environment (all optional):
#   NBDFAST       nbdfast binary (default artifacts/nbdfast)
#   NBDFAST_ARGS  extra server arguments (e.g. "--io sockets" or "--direct")
#   WORK          scratch directory (default: a new temp directory, removed afterwards unless KEEP_WORK=1)
#   RSS_GROWTH_MIB  allowed RSS growth from middle to end (default 64 MiB, plus 25% of the middle value)
#   FD_GROWTH     allowed fd growth from middle to end (default 8; the dropper holds at most one connection)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

MINUTES=${1:-}
if ! [[ "$MINUTES" =~ ^([0-9]+([.][0-9]*)?|[.][0-9]+)$ ]] || awk "BEGIN { exit !($MINUTES <= 0) }"; then
    echo "usage: bench/soak.sh MINUTES   (a positive number, e.g. 3 or 0.25)" >&2
    exit 2
fi
SECONDS_TOTAL=$(awk "BEGIN { s = int($MINUTES * 60 + 0.5); print (s < 5 ? 5 : s) }")
NBDFAST=${NBDFAST:-$ROOT/artifacts/nbdfast}
NBDFAST_ARGS=${NBDFAST_ARGS:-}
RSS_GROWTH_MIB=${RSS_GROWTH_MIB:-64}
FD_GROWTH=${FD_GROWTH:-8}
PYTHON=/usr/bin/python3   # Debian's, for json; the dropper needs only the standard library
REGION_MIB=64
JOBS=4

[ -x "$NBDFAST" ] || { echo "error: $NBDFAST is missing; run ./build.sh publish" >&2; exit 2; }
command -v fio >/dev/null || { echo "error: fio is not installed (./build.sh deps)" >&2; exit 2; }

if [ -n "${WORK:-}" ]; then
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/nbdfast-soak-XXXXXX")
fi
SOCKET=$WORK/nbd.sock
IMAGE=$WORK/disk.img
SAMPLES=$WORK/samples.txt
SERVER_PID='' SAMPLER_PID='' DROPPER_PID='' FIO_PID=''

say() { printf 'soak: %s\n' "$*"; }

cleanup() {
    local pid
    for pid in "$FIO_PID" "$DROPPER_PID" "$SAMPLER_PID" "$SERVER_PID"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    [ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

server_alive() { kill -0 "$SERVER_PID" 2>/dev/null; }

# "RSS_KIB FDS" of the server now.
sample() {
    local rss fds
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status" 2>/dev/null) || return 1
    fds=$(find "/proc/$SERVER_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l) || return 1
    [ -n "$rss" ] && echo "$rss $fds"
}

# ------------------------------------------------------------------ server

truncate -s "$(( (JOBS + 1) * REGION_MIB ))M" "$IMAGE"
# shellcheck disable=SC2086   # NBDFAST_ARGS is a word list on purpose
"$NBDFAST" "$IMAGE" --writable -U "$SOCKET" $NBDFAST_ARGS 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 150); do
    grep -q '^nbdfast: serving' "$WORK/server.log" 2>/dev/null && break
    server_alive || break
    sleep 0.1
done
if ! grep -q '^nbdfast: serving' "$WORK/server.log"; then
    echo "error: nbdfast did not start:" >&2
    cat "$WORK/server.log" >&2
    exit 1
fi
say "$MINUTES min ($SECONDS_TOTAL s): $(grep '^nbdfast: serving' "$WORK/server.log" | sed 's/^nbdfast: //')"
BASELINE=$(sample)

# ------------------------------------------------------------------ load

(
    start=$(date +%s.%N)
    while sample_now=$(sample); do
        echo "$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $start }") $sample_now"
        sleep 1
    done
) >"$SAMPLES" &
SAMPLER_PID=$!

fio --name=soak --ioengine=nbd --uri="nbd+unix:///?socket=$SOCKET" \
    --rw=randrw --bsrange=4k-64k --iodepth=16 --numjobs=$JOBS \
    --size=${REGION_MIB}M --offset_increment=${REGION_MIB}M \
    --verify=crc32c --verify_backlog=512 --continue_on_error=verify --verify_state_save=0 \
    --time_based --runtime="$SECONDS_TOTAL" \
    --output-format=json --output="$WORK/fio.json" >"$WORK/fio.out" 2>&1 &
FIO_PID=$!

"$PYTHON" "$ROOT/bench/soak_dropper.py" "$SOCKET" "$SECONDS_TOTAL" \
    $(( JOBS * REGION_MIB << 20 )) $(( REGION_MIB << 20 )) >"$WORK/dropper.out" 2>&1 &
DROPPER_PID=$!

FIO_STATUS=0 DROPPER_STATUS=0
wait "$FIO_PID" || FIO_STATUS=$?
FIO_PID=''
wait "$DROPPER_PID" || DROPPER_STATUS=$?
DROPPER_PID=''
kill "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=''

# ------------------------------------------------------------------ verdict

FAILURES=()
fail() { FAILURES+=("$*"); }

BASELINE_FD=${BASELINE#* }
IDLE_RSS=-1 IDLE_FD=-1
if server_alive; then
    # The clients are gone: give the server a few seconds to close their sockets, then compare fds.
    for _ in $(seq 1 50); do
        read -r IDLE_RSS IDLE_FD <<<"$(sample || echo -1 -1)"
        [ "$IDLE_FD" -le "$BASELINE_FD" ] && break
        sleep 0.1
    done
else
    fail "the server died (see its log below)"
fi

# fio: the JSON follows "fio: connected" lines and possibly verify messages (which may even be interleaved
# with its first bytes), so parse from the '{' that opens the object holding "fio version".
FIO_FIGURES=$("$PYTHON" - "$WORK/fio.json" <<'EOF' || echo "unparsable"
import json, sys
text = open(sys.argv[1]).read()
start = text.rindex("{", 0, text.index('"fio version"'))
jobs = json.loads(text[start:])["jobs"]
reads = sum(j["read"]["total_ios"] for j in jobs)
writes = sum(j["write"]["total_ios"] for j in jobs)
errors = sum(j.get("total_err", 0) for j in jobs)
failed = sum(1 for j in jobs if j["error"] != 0)
print(reads + writes, reads, writes, errors, failed, len(jobs))
EOF
)
VERIFY_MESSAGES=$(cat "$WORK/fio.json" "$WORK/fio.out" 2>/dev/null | grep -c '^verify' || true)
if [ "$FIO_FIGURES" = unparsable ]; then
    fail "fio's JSON could not be read (fio exit $FIO_STATUS)"
    say "fio: exit $FIO_STATUS, no figures; verify messages $VERIFY_MESSAGES"
else
    read -r IOS READS WRITES ERRORS FAILED_JOBS NJOBS <<<"$FIO_FIGURES"
    say "fio: $IOS I/Os done (read $READS, write $WRITES) over $NJOBS connections; verify errors $ERRORS ($VERIFY_MESSAGES verify lines printed); jobs with errors $FAILED_JOBS; exit $FIO_STATUS"
    [ "$ERRORS" -eq 0 ] && [ "$VERIFY_MESSAGES" -eq 0 ] || fail "fio found $ERRORS verify errors"
    [ "$FAILED_JOBS" -eq 0 ] && [ "$FIO_STATUS" -eq 0 ] || fail "fio: $FAILED_JOBS jobs ended with an error (exit $FIO_STATUS)"
    [ "$IOS" -gt 0 ] || fail "fio did no I/O"
fi

DROPPER_LINE=$(grep '^dropper:' "$WORK/dropper.out" || true)
say "${DROPPER_LINE:-dropper: no summary (exit $DROPPER_STATUS)}"
[ "$DROPPER_STATUS" -eq 0 ] && [ -n "$DROPPER_LINE" ] || fail "the dropper failed (exit $DROPPER_STATUS): $(grep -v '^dropper:' "$WORK/dropper.out" | head -5 | tr '\n' ' ')"

# Samples: "SECONDS RSS_KIB FDS". start = the first, middle = the one nearest half time, end = the last.
read -r N START_RSS START_FD MID_RSS MID_FD END_RSS END_FD PEAK_RSS PEAK_FD <<<"$(awk '
    { t[NR] = $1; r[NR] = $2; f[NR] = $3; if ($2 > pr) pr = $2; if ($3 > pf) pf = $3 }
    END {
        if (NR == 0) { print 0, 0, 0, 0, 0, 0, 0, 0, 0; exit }
        m = 1; for (i = 1; i <= NR; i++) if ((t[i] - t[NR] / 2) ^ 2 < (t[m] - t[NR] / 2) ^ 2) m = i
        print NR, r[1], f[1], r[m], f[m], r[NR], f[NR], pr, pf
    }' "$SAMPLES")"
say "RSS MiB: start $((START_RSS >> 10)), middle $((MID_RSS >> 10)), end $((END_RSS >> 10)), peak $((PEAK_RSS >> 10)), idle after $((IDLE_RSS < 0 ? -1 : IDLE_RSS >> 10)) ($N samples, one a second)"
say "fds: before clients $BASELINE_FD, start $START_FD, middle $MID_FD, end $END_FD, peak $PEAK_FD, idle after $IDLE_FD"
if [ "$N" -lt 3 ]; then
    fail "only $N RSS/fd samples"
else
    RSS_LIMIT=$(( MID_RSS + MID_RSS / 4 + RSS_GROWTH_MIB * 1024 ))
    [ "$END_RSS" -le "$RSS_LIMIT" ] || fail "RSS grew from $MID_RSS KiB (middle) to $END_RSS KiB (end), over the $RSS_LIMIT KiB limit"
    [ "$END_FD" -le $(( MID_FD + FD_GROWTH )) ] || fail "fds grew from $MID_FD (middle) to $END_FD (end)"
fi
if server_alive; then
    [ "$IDLE_FD" -le "$BASELINE_FD" ] || fail "fds did not return to $BASELINE_FD once the clients were gone ($IDLE_FD)"
    kill -TERM "$SERVER_PID"
    SERVER_STATUS=0
    wait "$SERVER_PID" || SERVER_STATUS=$?
    SERVER_PID=''
    [ "$SERVER_STATUS" -eq 0 ] || fail "SIGTERM: the server exited with status $SERVER_STATUS"
fi

if [ "${#FAILURES[@]}" -gt 0 ]; then
    say "FAIL: $(printf '%s; ' "${FAILURES[@]}" | sed 's/; $//')"
    echo "--- server log (last 20 lines) ---" >&2
    tail -n 20 "$WORK/server.log" >&2
    echo "--- fio messages (first 10) ---" >&2
    grep -v '^ \|^{\|^}' "$WORK/fio.out" | head -n 10 >&2 || true
    exit 1
fi
say "PASS"
