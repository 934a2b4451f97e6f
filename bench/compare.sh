#!/usr/bin/env bash
# Compare nbdfast with nbdkit and qemu-nbd (and two reference points) using fio's nbd engine and nbdcopy.
#
# Usage:   bench/compare.sh                    # full matrix: RUNS=3 RUNTIME=5, unix + tcp, every job and server
#          RUNS=1 RUNTIME=2 JOBS="randread4k-qd32 seqread1m-qd8" TRANSPORTS=unix bench/compare.sh   # smoke run
#          bench/compare.sh --list              # list jobs and servers, print the time estimate and exit
#
# Environment (all optional):
#   NBDFAST     nbdfast binary        (default: artifacts/nbdfast, else artifacts/publish/nbdfast)
#   RUNS        repetitions           (default 3; medians and min-max are reported over these)
#   RUNTIME     seconds per fio job   (default 5)
#   TRANSPORTS  "unix tcp"            (default both)
#   JOBS        subset of the job names below (default all)
#   SERVERS     subset of the server names below (default all)
#               "floor" is bench/floor/nbd-floor.c (built with clang into $WORK on first use): an NBD server with
#               no device at all (reads return zeroes, writes are dropped, one sendmsg per batch of replies);
#               the least server CPU per I/O and the most client throughput any server can get here.
#               "floor-mem" is the same program with -m: a bare 1 GiB memory export (replies point into it,
#               writes are received into it), i.e. the least work a server that keeps the data can do.
#               "floor-staged-mem" (-m -t) stages each WRITE payload and copies it into place once whole, as a
#               server must so that a payload cut short is never applied: the least such a memory server can do.
#               "floor-staged-file" (-M BACKING -t) does the same into the backing file's page cache (mapped
#               MAP_SHARED): the least a page-cache file server keeping that rule can do for WRITE.
#               "floor-sr-mem" and "floor-sr-file" are those two with -S: they accept structured replies and answer
#               READ with one OFFSET_DATA chunk, as every real server must once libnbd negotiates them (nbdkit,
#               qemu-nbd and nbdfast all do). The client needs four receives per structured READ reply against two
#               for a simple one, so with one fio job (the client saturated) these are the fair read ceilings.
#               "floor-pwrite-file" (-M BACKING -t -S -P) is floor-sr-file applying each staged WRITE with pwrite(2),
#               as every page-cache file server does, so it pays the filesystem's write path per request; the
#               mmap floors defer that work to writeback, outside the server.
#               "floor-direct" (-f BACKING) serves the backing file with O_DIRECT through one io_uring per
#               connection (device reads and writes, the socket RECV) and one sendmsg per batch of replies: the
#               least an NBD server in front of the O_DIRECT file can do (bench/floor/direct.c).
#               "floor-direct-split" (-F BACKING) is floor-direct with the socket and the device on two threads per
#               connection (bench/floor/split.c): does splitting them get an O_DIRECT server closer to the device?
#               "device" is fio's own io_uring O_DIRECT job on the backing file (no server); "device-busy" is the
#               same while nproc-1 nice-19 busy loops keep the other vCPUs from idling, as an NBD client and
#               server running beside the device do (on this VM the disk slows down when they do).
#   SIZE_MIB    export / backing file size in MiB (default 1024)
#   WORK        scratch dir for the backing file, sockets, logs, raw results (default bench/.work, git-ignored)
#   RESULTS     markdown report to write (default bench/RESULTS.md; RESULTS=- to skip)
#   PORT        first TCP port to use (default 10900; each server start uses the next port)
#   NBDFAST_ARGS extra arguments for every nbdfast start (e.g. "--threads 1")
#   REPORT_FROM  only re-render the tables / RESULTS file from an earlier raw results-*.jsonl (pass the same
#               JOBS/SERVERS/TRANSPORTS/RUNTIME as that run)
#
# Loop order is: for run: for job: for transport: for server  -- so drift on a noisy machine hits all servers
# alike. Every measurement starts a fresh server process (memory servers are pre-filled with the backing
# file's random data through nbdcopy first, so reads move real data rather than holes/zeros).
# Server CPU = delta of utime+stime from /proc/PID/stat (all threads) around the fio job / nbdcopy.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

RUNS=${RUNS:-3}
RUNTIME=${RUNTIME:-5}
TRANSPORTS=${TRANSPORTS:-unix tcp}
SIZE_MIB=${SIZE_MIB:-1024}
WORK=${WORK:-$ROOT/bench/.work}
RESULTS=${RESULTS:-$ROOT/bench/RESULTS.md}
PORT=${PORT:-10900}
NBDFAST_ARGS=${NBDFAST_ARGS:-}

ALL_JOBS="randread4k-qd1 randread4k-qd32 randread4k-qd32-nj2 randwrite4k-qd32 randwrite4k-qd32-nj2 \
randread64k-qd16 seqread1m-qd8 seqwrite1m-qd8 randrw4k-qd32 randrw4k-qd32-nj2 nbdcopy"
ALL_SERVERS="nbdfast-uring-mem nbdfast-uring-file nbdfast-uring-direct nbdfast-sockets-mem nbdfast-sockets-file nbdkit-mem nbdkit-file \
qemu-nbd qemu-nbd-direct nbdkit-null floor floor-mem floor-staged-mem floor-staged-file floor-sr-mem floor-sr-file floor-pwrite-file floor-direct \
floor-direct-split device device-busy"
JOBS=${JOBS:-$ALL_JOBS}
SERVERS=${SERVERS:-$ALL_SERVERS}

# Ratios printed at the end: "A B" means A/B (like-for-like backing where possible).
RATIO_PAIRS=(
    "nbdfast-uring-mem nbdkit-mem"
    "nbdfast-uring-file nbdkit-file"
    "nbdfast-uring-file qemu-nbd"
    "nbdfast-uring-file qemu-nbd-direct"
    "nbdfast-uring-mem nbdfast-sockets-mem"
    "nbdfast-uring-file nbdfast-sockets-file"
    "nbdfast-uring-direct device"
    "nbdfast-uring-direct qemu-nbd-direct"
    "nbdfast-uring-mem floor"
    "nbdkit-mem floor"
    "nbdfast-uring-mem floor-mem"
    "nbdkit-mem floor-mem"
    "nbdfast-uring-mem floor-staged-mem"
    "nbdkit-mem floor-staged-mem"
    "floor-staged-mem nbdkit-mem"
    "nbdfast-uring-file floor-staged-file"
    "floor-staged-file nbdkit-file"
    "nbdfast-uring-mem floor-sr-mem"
    "floor-sr-mem nbdkit-mem"
    "nbdfast-uring-file floor-sr-file"
    "floor-sr-file nbdkit-file"
    "floor-sr-file qemu-nbd"
    "nbdfast-uring-file floor-pwrite-file"
    "floor-pwrite-file nbdkit-file"
    "floor-pwrite-file qemu-nbd"
    "nbdfast-uring-direct floor"
    "nbdfast-uring-direct floor-direct"
    "floor-direct device"
    "floor-direct-split floor-direct"
    "nbdfast-uring-direct device-busy"
    "floor-direct device-busy"
)

log() { printf '[compare %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- job definitions

# fio arguments for a job name (empty for the nbdcopy pseudo-job).
job_fio_args() {
    case $1 in
        randread4k-qd1)        echo "--rw=randread --bs=4k --iodepth=1" ;;
        randread4k-qd32)       echo "--rw=randread --bs=4k --iodepth=32" ;;
        randread4k-qd32-nj2)   echo "--rw=randread --bs=4k --iodepth=32 --numjobs=2" ;;
        randwrite4k-qd32)      echo "--rw=randwrite --bs=4k --iodepth=32" ;;
        randwrite4k-qd32-nj2)  echo "--rw=randwrite --bs=4k --iodepth=32 --numjobs=2" ;;
        randread64k-qd16)      echo "--rw=randread --bs=64k --iodepth=16" ;;
        seqread1m-qd8)         echo "--rw=read --bs=1M --iodepth=8" ;;
        seqwrite1m-qd8)        echo "--rw=write --bs=1M --iodepth=8" ;;
        randrw4k-qd32)         echo "--rw=randrw --rwmixread=70 --bs=4k --iodepth=32" ;;
        randrw4k-qd32-nj2)     echo "--rw=randrw --rwmixread=70 --bs=4k --iodepth=32 --numjobs=2" ;;
        nbdcopy)               echo "" ;;
        *) die "unknown job '$1' (jobs: $ALL_JOBS)" ;;
    esac
}
job_writes() { case $1 in *write*|*randrw*) return 0 ;; *) return 1 ;; esac; }

is_device() { case $1 in device|device-busy) return 0 ;; *) return 1 ;; esac; }

# Is (job, transport, server) measured at all?
applicable() {
    local job=$1 transport=$2 server=$3
    case $server in
        nbdkit-null) job_writes "$job" && return 1 ;;        # reads only: the client's ceiling
        device*)     [ "$transport" = local ] || return 1     # fio io_uring O_DIRECT on the file: device limit
                     [ "$job" = nbdcopy ] && return 1 ;;
    esac
    is_device "$server" || [ "$transport" != local ] || return 1
    return 0
}

# (transport server) pairs for one job, in run order.
combos() {
    local job=$1 t s
    for t in $TRANSPORTS; do
        for s in $SERVERS; do
            is_device "$s" && continue
            applicable "$job" "$t" "$s" && echo "$t $s"
        done
    done
    for s in $SERVERS; do
        is_device "$s" && applicable "$job" local "$s" && echo "local $s"
    done
    return 0
}

# ---------------------------------------------------------------- checks

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found; install it with: apt-get install $2"; }
need jq jq
need fio fio
need nbdcopy libnbd-bin
need nbdinfo libnbd-bin

for j in $JOBS; do job_fio_args "$j" >/dev/null; done
for s in $SERVERS; do
    case " $ALL_SERVERS " in *" $s "*) ;; *) die "unknown server '$s' (servers: $ALL_SERVERS)" ;; esac
    case $s in
        nbdfast-*) ;;
        nbdkit-*) need nbdkit nbdkit ;;
        qemu-nbd*) need qemu-nbd qemu-utils ;;
        floor*) need clang clang ;;
    esac
done
for t in $TRANSPORTS; do case $t in unix|tcp) ;; *) die "unknown transport '$t' (unix, tcp)" ;; esac; done

if [ -z "${NBDFAST:-}" ]; then
    if [ -x artifacts/nbdfast ]; then NBDFAST=artifacts/nbdfast
    elif [ -x artifacts/publish/nbdfast ]; then NBDFAST=artifacts/publish/nbdfast
    fi
    if [ -n "${NBDFAST:-}" ] && [ -x artifacts/publish/nbdfast ] && [ artifacts/publish/nbdfast -nt "$NBDFAST" ]; then
        log "warning: artifacts/publish/nbdfast is newer than $NBDFAST (run ./build.sh publish, or set NBDFAST=)"
    fi
fi
case " $SERVERS " in
    *" nbdfast-"*)
        [ -n "${NBDFAST:-}" ] && [ -x "$NBDFAST" ] || die "nbdfast binary not found; build it (./build.sh publish) or set NBDFAST=path"
        NBDFAST=$(cd "$(dirname "$NBDFAST")" && pwd)/$(basename "$NBDFAST") ;;
esac

count_measurements() {
    local n=0 j
    for j in $JOBS; do n=$((n + $(combos "$j" | wc -l))); done
    echo $((n * RUNS))
}
# Rough wall time (measured on a 2-vCPU VM): each measurement costs the fio RUNTIME (nbdcopy: ~2 s) plus
# ~1 s to start, probe and stop the server, plus ~3 s to pre-fill a memory server.
estimate_s() {
    local total=0 j t s
    for j in $JOBS; do
        while read -r t s; do
            [ -n "$s" ] || continue
            total=$((total + 10 + $([ "$j" = nbdcopy ] && echo 20 || echo $((RUNTIME * 10)))))
            case $s in *-mem) total=$((total + 30)) ;; esac
        done < <(combos "$j")
    done
    echo $((total * RUNS / 10))
}

if [ "${1:-}" = --list ]; then
    echo "jobs:       $ALL_JOBS"
    echo "servers:    $ALL_SERVERS"
    echo "selected:   JOBS=\"$JOBS\" SERVERS=\"$SERVERS\" TRANSPORTS=\"$TRANSPORTS\" RUNS=$RUNS RUNTIME=$RUNTIME"
    echo "measurements: $(count_measurements), estimated wall time ~$(( $(estimate_s) / 60 )) min"
    exit 0
fi

CLK_TCK=$(getconf CLK_TCK)
SIZE_BYTES=$((SIZE_MIB * 1048576))
mkdir -p "$WORK/logs"
# Keep the scratch dir (1 GiB backing file, logs) out of git without touching the repository's .gitignore.
[ -f "$WORK/.gitignore" ] || printf '*\n' >"$WORK/.gitignore"
BACKING=$WORK/backing-${SIZE_MIB}M.img
SOCK=$WORK/nbd.sock
STAMP=$(date -u +%Y%m%d-%H%M%S)
RAW=$WORK/results-$STAMP.jsonl
if [ -n "${REPORT_FROM:-}" ]; then   # re-render tables/RESULTS.md from an earlier run's raw results
    RAW=$(cd "$(dirname "$REPORT_FROM")" && pwd)/$(basename "$REPORT_FROM")
    STAMP=$(basename "$RAW" .jsonl); STAMP=${STAMP#results-}
else
    : >"$RAW"
fi

# ---------------------------------------------------------------- server lifecycle

SRV_PID=""
SRV_NAME=""
URI=""
declare -A SRV_CMD=()   # server/transport -> command line, for the report

cleanup() {
    local rc=$?
    if [ -n "$SRV_PID" ]; then stop_server; fi
    rm -f "$SOCK"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_server() {
    local pid=$SRV_PID i
    SRV_PID=""
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$SOCK"
}

# start_server SERVER TRANSPORT -> sets SRV_PID and URI (server is serving and pre-filled when this returns)
start_server() {
    local server=$1 transport=$2 i
    local -a cmd nbdfast_listen nbdkit_listen qemu_listen floor_listen
    PORT=$((PORT + 1)); [ "$PORT" -lt 65000 ] || PORT=10900
    if [ "$transport" = unix ]; then
        rm -f "$SOCK"
        URI="nbd+unix:///?socket=$SOCK"
        nbdfast_listen=(-U "$SOCK"); nbdkit_listen=(-U "$SOCK"); qemu_listen=(-k "$SOCK"); floor_listen=(-U "$SOCK")
    else
        URI="nbd://127.0.0.1:$PORT/"
        nbdfast_listen=(-b 127.0.0.1 -p "$PORT"); nbdkit_listen=(-i 127.0.0.1 -p "$PORT")
        qemu_listen=(-b 127.0.0.1 -p "$PORT"); floor_listen=(-b 127.0.0.1 -p "$PORT")
    fi
    # shellcheck disable=SC2206
    local -a extra=($NBDFAST_ARGS)
    case $server in
        nbdfast-uring-mem)    cmd=("$NBDFAST" --memory "${SIZE_MIB}M" --writable --io uring "${nbdfast_listen[@]}" "${extra[@]}") ;;
        nbdfast-uring-file)   cmd=("$NBDFAST" "$BACKING" --writable --io uring "${nbdfast_listen[@]}" "${extra[@]}") ;;
        nbdfast-uring-direct) cmd=("$NBDFAST" "$BACKING" --writable --direct --io uring "${nbdfast_listen[@]}" "${extra[@]}") ;;
        nbdfast-sockets-mem)  cmd=("$NBDFAST" --memory "${SIZE_MIB}M" --writable --io sockets "${nbdfast_listen[@]}" "${extra[@]}") ;;
        nbdfast-sockets-file) cmd=("$NBDFAST" "$BACKING" --writable --io sockets "${nbdfast_listen[@]}" "${extra[@]}") ;;
        nbdkit-mem)           cmd=(nbdkit -f --exit-with-parent "${nbdkit_listen[@]}" memory "${SIZE_MIB}M") ;;
        nbdkit-file)          cmd=(nbdkit -f --exit-with-parent "${nbdkit_listen[@]}" file "file=$BACKING") ;;
        nbdkit-null)          cmd=(nbdkit -f --exit-with-parent -r "${nbdkit_listen[@]}" null "${SIZE_MIB}M") ;;
        qemu-nbd)             cmd=(qemu-nbd -f raw -x "" --persistent --shared=16 "${qemu_listen[@]}" "$BACKING") ;;
        qemu-nbd-direct)      cmd=(qemu-nbd -f raw -x "" --persistent --shared=16 --cache=none --aio=io_uring "${qemu_listen[@]}" "$BACKING") ;;
        floor)                cmd=("$FLOOR" -s "$SIZE_BYTES" "${floor_listen[@]}") ;;
        floor-mem)            cmd=("$FLOOR" -s "$SIZE_BYTES" -m "${floor_listen[@]}") ;;
        floor-staged-mem)     cmd=("$FLOOR" -s "$SIZE_BYTES" -m -t "${floor_listen[@]}") ;;
        floor-staged-file)    cmd=("$FLOOR" -s "$SIZE_BYTES" -M "$BACKING" -t "${floor_listen[@]}") ;;
        floor-sr-mem)         cmd=("$FLOOR" -s "$SIZE_BYTES" -m -t -S "${floor_listen[@]}") ;;
        floor-sr-file)        cmd=("$FLOOR" -s "$SIZE_BYTES" -M "$BACKING" -t -S "${floor_listen[@]}") ;;
        floor-pwrite-file)    cmd=("$FLOOR" -s "$SIZE_BYTES" -M "$BACKING" -t -S -P "${floor_listen[@]}") ;;
        floor-direct)         cmd=("$FLOOR" -s "$SIZE_BYTES" -f "$BACKING" "${floor_listen[@]}") ;;
        floor-direct-split)   cmd=("$FLOOR" -s "$SIZE_BYTES" -F "$BACKING" "${floor_listen[@]}") ;;
        *) die "cannot start $server" ;;
    esac
    SRV_CMD[$server/$transport]=$(printf '%q ' "${cmd[@]}")
    SRV_NAME=$server
    "${cmd[@]}" >>"$WORK/logs/$server.log" 2>&1 &
    SRV_PID=$!
    for ((i = 0; i < 100; i++)); do
        kill -0 "$SRV_PID" 2>/dev/null || { SRV_PID=""; die "$server exited at start; see $WORK/logs/$server.log"; }
        nbdinfo --size "$URI" >/dev/null 2>&1 && break
        sleep 0.1
    done
    [ "$i" -lt 100 ] || die "$server did not start serving $URI within 10 s; see $WORK/logs/$server.log"
    case $server in
        *-mem) nbdcopy "$BACKING" "$URI" || die "pre-filling $server failed" ;;
    esac
}

cpu_ticks() {   # utime+stime of all threads of PID, in clock ticks
    local s
    s=$(<"/proc/$1/stat") || { echo 0; return; }
    s=${s##*) }
    # shellcheck disable=SC2086
    set -- $s
    echo $(( ${12} + ${13} ))
}

# vcpu_share BEFORE AFTER ("cpu" lines of /proc/stat): "IDLE STEAL", the percent of all vCPU time between the two
# that was idle (idle + iowait) and stolen by the host. On this VM the disk slows down as steal rises.
vcpu_share() {
    awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); t = 0
        for (i = 2; i <= 9; i++) t += y[i] - x[i]
        if (t <= 0) { print "0 0"; exit }
        printf "%.1f %.1f\n", 100 * (y[5] - x[5] + y[6] - x[6]) / t, 100 * (y[9] - x[9]) / t }'
}

# The disk's own await and queue depth around each run, for the O_DIRECT table.
# shellcheck source=bench/disk-stat.sh
. "$ROOT/bench/disk-stat.sh"

# ---------------------------------------------------------------- the backing file's page cache

# Page-cache file servers are measured with the backing file wholly cached in base pages. Since ext4 got
# large folios (kernel 6.x), a cache miss read sequentially comes back as folios of up to 2 MiB, and then
# every 4 KiB buffered write walks the folio's 512 buffer heads in ext4_block_write_begin: 10+ µs more
# server CPU per write for every pwrite-based server alike (nbdfast, nbdkit-file, qemu-nbd), while the mmap
# floors do not pay it. Which state a run met depended on the job order: O_DIRECT I/O drops the file from
# the cache (on this kernel even a 2 s O_DIRECT random read leaves none of it cached, says fincore), and the
# next sequential read (a memory server's nbdcopy pre-fill, seqread1m) brings it back as large folios. So
# after any O_DIRECT measurement, the next page-cache file server first gets the file written back, dropped
# from the cache, and read back in with random 4 KiB reads (base pages); CACHE_SETTLES counts how often.
CACHE_SETTLED=0
CACHE_SETTLES=0
uses_page_cache() {
    case $1 in nbdfast-uring-file|nbdfast-sockets-file|nbdkit-file|qemu-nbd|floor-staged-file|floor-sr-file|floor-pwrite-file) return 0 ;; *) return 1 ;; esac
}
drops_page_cache() {
    case $1 in nbdfast-uring-direct|qemu-nbd-direct|floor-direct|floor-direct-split|device|device-busy) return 0 ;; *) return 1 ;; esac
}
settle_backing_cache() {
    [ "$CACHE_SETTLED" = 1 ] && return 0
    sync "$BACKING"                                       # fsync: dirty pages cannot be dropped
    dd if="$BACKING" iflag=nocache count=0 status=none    # POSIX_FADV_DONTNEED over the whole file
    fio --name=settle --filename="$BACKING" --ioengine=io_uring --rw=randread --bs=4k --iodepth=32 \
        --size="$SIZE_BYTES" --output=/dev/null >>"$WORK/logs/fio.log" 2>&1 || die "reading the backing file back in failed"
    CACHE_SETTLED=1
    CACHE_SETTLES=$((CACHE_SETTLES + 1))
}

# ---------------------------------------------------------------- one measurement

# measure RUN JOB TRANSPORT SERVER: appends one JSON line to $RAW
measure() {
    local run=$1 job=$2 transport=$3 server=$4 c0=0 c1=0 out t0 t1 rc=0 i p0 p1 d0 d1 idle steal await depth
    local -a fargs
    read -r -a fargs <<<"$(job_fio_args "$job")"
    out=$WORK/fio-last.json
    if uses_page_cache "$server"; then settle_backing_cache; fi
    if drops_page_cache "$server"; then CACHE_SETTLED=0; fi
    if is_device "$server"; then
        local -a spinners=()
        if [ "$server" = device-busy ]; then
            for ((i = 1; i < $(nproc); i++)); do nice -n 19 bash -c 'while :; do :; done' & spinners+=($!); done
        fi
        SRV_CMD[$server/local]="${spinners:+$((${#spinners[@]})) nice-19 busy loop(s) + }fio --ioengine=io_uring --direct=1 --filename=$BACKING"
        p0=$(head -1 /proc/stat); d0=$(disk_snapshot)
        fio --name="$job" --ioengine=io_uring --direct=1 --filename="$BACKING" --size="$SIZE_BYTES" \
            "${fargs[@]}" --time_based --runtime="$RUNTIME" --norandommap --randrepeat=0 --group_reporting \
            --output-format=json --output="$out" >>"$WORK/logs/fio.log" 2>&1 || rc=$?
        p1=$(head -1 /proc/stat); d1=$(disk_snapshot)
        [ ${#spinners[@]} -eq 0 ] || { kill "${spinners[@]}"; wait "${spinners[@]}" 2>/dev/null || true; }
    else
        start_server "$server" "$transport"
        c0=$(cpu_ticks "$SRV_PID")
        p0=$(head -1 /proc/stat); d0=$(disk_snapshot)
        if [ "$job" = nbdcopy ]; then
            t0=$(date +%s%N)
            nbdcopy --no-extents "$URI" null: >>"$WORK/logs/nbdcopy.log" 2>&1 || rc=$?
            t1=$(date +%s%N)
        else
            fio --name="$job" --ioengine=nbd --uri="$URI" \
                "${fargs[@]}" --time_based --runtime="$RUNTIME" --norandommap --randrepeat=0 --group_reporting \
                --output-format=json --output="$out" >>"$WORK/logs/fio.log" 2>&1 || rc=$?
        fi
        p1=$(head -1 /proc/stat); d1=$(disk_snapshot)
        c1=$(cpu_ticks "$SRV_PID")
        stop_server
    fi
    if [ "$rc" -ne 0 ]; then
        local why
        why=$(grep -v '^ *$' "$WORK/logs/$([ "$job" = nbdcopy ] && echo nbdcopy || echo fio).log" | tail -2 | tr '\n' ' ' | cut -c1-200)
        log "  FAILED (rc=$rc): run=$run $job $transport $server: $why"
        jq -cn --argjson run "$run" --arg job "$job" --arg t "$transport" --arg s "$server" --argjson rc "$rc" --arg why "$why" \
            '{run:$run, job:$job, transport:$t, server:$s, failed:true, rc:$rc, why:$why}' >>"$RAW"
        return 0
    fi
    local cpu=$((c1 - c0)) line cmd=${SRV_CMD[$server/$transport]}
    read -r idle steal <<<"$(vcpu_share "$p0" "$p1")"
    read -r await depth <<<"$(disk_share "$d0" "$d1")"
    if [ "$job" = nbdcopy ]; then
        line=$(jq -cn --argjson run "$run" --arg job "$job" --arg t "$transport" --arg s "$server" \
            --argjson bytes "$SIZE_BYTES" --argjson ns "$((t1 - t0))" --argjson cpu "$cpu" --argjson hz "$CLK_TCK" \
            --argjson idle "$idle" --argjson steal "$steal" \
            --arg cmd "$cmd" '{run:$run, job:$job, transport:$t, server:$s, cmd:$cmd, iops:null, ios:null, bytes:$bytes,
              secs:($ns/1e9), mibs:($bytes/1048576/($ns/1e9)), cpu_s:($cpu/$hz), idle_pct:$idle, steal_pct:$steal}')
    else
        line=$(jq -c --argjson run "$run" --arg job "$job" --arg t "$transport" --arg s "$server" \
            --argjson cpu "$cpu" --argjson hz "$CLK_TCK" --argjson dev "$(is_device "$server" && echo true || echo false)" \
            --argjson idle "$idle" --argjson steal "$steal" --argjson await "$await" --argjson depth "$depth" \
            --arg cmd "$cmd" '.jobs[0] as $j |
             {run:$run, job:$job, transport:$t, server:$s, cmd:$cmd,
              iops:($j.read.iops + $j.write.iops), ios:($j.read.total_ios + $j.write.total_ios),
              bytes:($j.read.io_bytes + $j.write.io_bytes), secs:($j.job_runtime/1000),
              mibs:(($j.read.bw_bytes + $j.write.bw_bytes)/1048576),
              cpu_s:(if $dev then null else $cpu/$hz end), fio_cpu_pct:($j.usr_cpu + $j.sys_cpu), error:$j.error,
              idle_pct:$idle, steal_pct:$steal, disk_await_us:$await, disk_depth:$depth}' "$out")
    fi
    echo "$line" >>"$RAW"
    echo "$line" | jq -r '"  \(.job) \(.transport) \(.server): " +
        (if .iops then "\(.iops|floor) IOPS, " else "" end) + "\(.mibs*10|floor/10) MiB/s" +
        (if .cpu_s then ", server CPU \(.cpu_s) s" else "" end) + ", vCPUs \(.idle_pct)% idle, \(.steal_pct)% stolen"' >&2
}

# ---------------------------------------------------------------- run

N=$(count_measurements)
META=${RAW%.jsonl}.meta
NBDFAST_SRC=${NBDFAST:-}
NBDFAST_VERSION=n/a
ELAPSED='?' LOAD_START='?' LOAD_END='?'
if [ -n "${REPORT_FROM:-}" ]; then
    # shellcheck disable=SC1090
    [ -f "$META" ] && . "$META"
    N=$(jq -s 'length' "$RAW")
    RUNS=$(jq -s 'map(.run) | max' "$RAW")
    while IFS=$'\t' read -r s t c; do SRV_CMD[$s/$t]=$c; done < <(jq -r 'select(.cmd != null) | [.server, .transport, .cmd] | @tsv' "$RAW")
else
if [ -n "${NBDFAST:-}" ]; then
    # Run a private copy: other people rebuilding artifacts/ mid-run must not change the binary under test.
    cp "$NBDFAST" "$WORK/nbdfast.bin"
    NBDFAST=$WORK/nbdfast.bin
    NBDFAST_VERSION=$("$NBDFAST" --version 2>/dev/null | head -1 || echo '?')
fi
case " $SERVERS " in *" floor"*) FLOOR=$(bench/floor/build.sh "$WORK/nbd-floor") || die "building the floor server failed" ;; esac
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "nbdfast: ${NBDFAST_SRC:-n/a} ($NBDFAST_VERSION), copied to ${NBDFAST:-n/a}"
log "$N measurements (RUNS=$RUNS RUNTIME=${RUNTIME}s), estimated ~$(( $(estimate_s) / 60 )) min; raw results: $RAW"

if [ ! -f "$BACKING" ] || [ "$(stat -c %s "$BACKING")" -ne "$SIZE_BYTES" ]; then
    log "creating $SIZE_MIB MiB of random data in $BACKING"
    dd if=/dev/urandom of="$BACKING.tmp" bs=1M count="$SIZE_MIB" iflag=fullblock status=none
    mv "$BACKING.tmp" "$BACKING"
fi
cat "$BACKING" >/dev/null   # warm the page cache once so the buffered file servers all start alike

START=$(date +%s)
done_n=0
for ((run = 1; run <= RUNS; run++)); do
    for job in $JOBS; do
        while read -r transport server; do
            [ -n "$server" ] || continue
            done_n=$((done_n + 1))
            log "[$done_n/$N] run $run: $job over $transport on $server"
            measure "$run" "$job" "$transport" "$server"
        done < <(combos "$job")
    done
done
ELAPSED=$(( $(date +%s) - START ))
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
for v in ELAPSED LOAD_START LOAD_END NBDFAST_SRC NBDFAST_VERSION CACHE_SETTLES; do printf '%s=%q\n' "$v" "${!v}"; done >"$META"
log "measured in ${ELAPSED}s"
fi

# ---------------------------------------------------------------- report

# Aggregate: one TSV row per (job, transport, server) with median/min/max of each metric.
# Columns: job transport server n iops_med iops_min iops_max mibs_med mibs_min mibs_max
#          cpuio_med cpuio_min cpuio_max cpugib_med cpugib_min cpugib_max   ("-" when not applicable)
AGG=$WORK/aggregate-$STAMP.tsv
jq -r -s --arg jobs "$JOBS" --arg servers "$SERVERS" --arg transports "$TRANSPORTS local" '
    def stats(f): [.[] | f | select(. != null)] | sort |
        if length == 0 then ["-", "-", "-"]
        else [ (if length % 2 == 1 then .[length/2|floor] else (.[length/2 - 1] + .[length/2]) / 2 end), .[0], .[-1] ]
        end;
    ($jobs | split(" ") | map(select(. != ""))) as $J |
    ($servers | split(" ") | map(select(. != ""))) as $S |
    ($transports | split(" ") | map(select(. != ""))) as $T |
    map(select((.failed | not) and (.error == null or .error == 0))
        | . + {cpu_us_io: (if .cpu_s != null and .ios != null and .ios > 0 then .cpu_s * 1e6 / .ios else null end),
               cpu_s_gib: (if .cpu_s != null and .bytes > 0 then .cpu_s / (.bytes / 1073741824) else null end)})
    | group_by([.job, .transport, .server])
    | sort_by(.[0] as $r | [($J | index([$r.job])), ($T | index([$r.transport])), ($S | index([$r.server]))])
    | .[]
    | [.[0].job, .[0].transport, .[0].server, length] + stats(.iops) + stats(.mibs) + stats(.cpu_us_io) + stats(.cpu_s_gib)
    | map(tostring) | @tsv' "$RAW" >"$AGG"

results_table() {
    echo "| job | transport | server | runs | IOPS median (min–max) | MiB/s median (min–max) | server CPU µs/IO median (min–max) | server CPU s/GiB median (min–max) |"
    echo "|---|---|---|---:|---:|---:|---:|---:|"
    awk -F'\t' '
        function f(v, d) { return v == "-" ? "-" : sprintf("%." d "f", v) }
        function r(a, b, c, d) { return a == "-" ? "–" : f(a, d) " (" f(b, d) "–" f(c, d) ")" }
        { printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4,
              ($1 == "nbdcopy" ? "–" : r($5, $6, $7, 0)), r($8, $9, $10, 1), r($11, $12, $13, 2), r($14, $15, $16, 3) }' "$AGG"
}

ratio_table() {
    local pairs="" p
    for p in "${RATIO_PAIRS[@]}"; do pairs+="$p;"; done
    echo "| job | transport | A / B | throughput A/B (IOPS or MiB/s; >1 = A faster) | server CPU per I/O A/B (<1 = A cheaper) |"
    echo "|---|---|---|---:|---:|"
    awk -F'\t' -v pairs="$pairs" '
        { key = $1 SUBSEP $2; if (!(key in seen)) { seen[key] = 1; order[++n] = key }
          mibs[key, $3] = $8; cpu[key, $3] = $14 }
        END {
            np = split(pairs, P, ";")
            for (i = 1; i <= n; i++) {
                split(order[i], k, SUBSEP)
                for (j = 1; j <= np; j++) {
                    if (P[j] == "") continue
                    split(P[j], ab, " "); a = ab[1]; b = ab[2]
                    # A device reference (fio on the file, no server) is measured once per job as transport
                    # "local"; it is compared with the servers of every transport.
                    kb = ((order[i], b) in mibs) ? order[i] : (k[1] SUBSEP "local")
                    if (!((order[i], a) in mibs) || !((kb, b) in mibs)) continue
                    t = (mibs[order[i], a] == "-" || mibs[kb, b] + 0 == 0) ? "-" : sprintf("%.2f", mibs[order[i], a] / mibs[kb, b])
                    c = (cpu[order[i], a] == "-" || cpu[kb, b] == "-" || cpu[kb, b] + 0 == 0) ? "-" : sprintf("%.2f", cpu[order[i], a] / cpu[kb, b])
                    printf "| %s | %s | %s / %s | %s | %s |\n", k[1], k[2], a, b, t, c
                }
            }
        }' "$AGG"
}

# jq: the median of an array of numbers (null when empty), shared by the tables below.
JQ_MEDIAN='def med: sort | if length == 0 then null elif length % 2 == 1 then .[length/2|floor] else (.[length/2 - 1] + .[length/2]) / 2 end; '

# The O_DIRECT ceiling on this machine: fio (the client), the least NBD server (floor) and the device's own
# submission/completion work all need CPU for every I/O, and they share the same vCPUs. Adding the medians of
# the three (client and floor server CPU from the floor run, device CPU from fio's own usr+sys in the device
# run) estimates the fewest CPU-µs an NBD server with an O_DIRECT device needs per I/O here; the vCPU count
# divided by that estimates the most IOPS it can reach (floor-direct measures that server directly).
bound_table() {
    jq -r -s --argjson cores "$(nproc)" "$JQ_MEDIAN"'
        def fio_us: .fio_cpu_pct / 100 * .secs * 1e6 / .ios;
        map(select((.failed | not) and (.error == null or .error == 0) and .ios != null and .ios > 0)) as $all |
        ($all | map(.job) | unique) as $jobs |
        [ $jobs[] as $j | ($all | map(select(.job == $j))) as $r |
          ($r | map(select(.server == "device")) ) as $dev |
          select($dev | length > 0) |
          ($r | map(select(.server == "floor")) | map(.transport) | unique)[] as $t |
          ($r | map(select(.server == "floor" and .transport == $t))) as $fl |
          ($r | map(select(.server == "nbdfast-uring-direct" and .transport == $t)) | map(.iops) | med) as $ours |
          ($fl | map(fio_us) | med) as $client |
          ($fl | map(.cpu_s * 1e6 / .ios) | med) as $server |
          ($dev | map(fio_us) | med) as $device |
          ($dev | map(.iops) | med) as $devio |
          ($cores * 1e6 / ($client + $server + $device)) as $bound |
          "| \($j) | \($t) | \($client * 100 | round / 100) | \($server * 100 | round / 100) | \($device * 100 | round / 100) | \($bound | floor) | \($devio | floor) | \($bound / $devio * 100 | round / 100) | " +
          (if $ours then "\($ours | floor) (\($ours / $bound * 100 | round / 100) of bound)" else "–" end) + " |"
        ] | if length == 0 then empty else
          ("| job | transport | client CPU µs/IO (fio, floor run) | floor server CPU µs/IO | device CPU µs/IO (fio io_uring O_DIRECT) | CPU-bound IOPS ceiling | device IOPS | ceiling / device | nbdfast-uring-direct IOPS |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|", .[]) end' "$RAW"
}

# For the O_DIRECT servers and the device references: how idle the vCPUs were and how much time the host stole
# while each ran (medians). The disk of this VM is slower the busier the guest is (see device-busy).
load_table() {
    jq -r -s "$JQ_MEDIAN"'
        def direct: . == "nbdfast-uring-direct" or . == "floor-direct" or . == "qemu-nbd-direct" or . == "device" or . == "device-busy";
        map(select((.failed | not) and .idle_pct != null and (.server | direct))) as $all |
        [ ($all | map([.job, .transport, .server]) | unique)[] as [$j, $t, $s] |
          ($all | map(select(.job == $j and .transport == $t and .server == $s))) as $r |
          ($r | map(.disk_await_us // empty)) as $aw | ($r | map(.disk_depth // empty)) as $dp |
          "| \($j) | \($t) | \($s) | \($r | map(.iops // 0) | med | floor) | \($r | map(.idle_pct) | med) | \($r | map(.steal_pct) | med) | " +
          "\(if ($aw | length) > 0 then $aw | med | floor else "–" end) | \(if ($dp | length) > 0 then $dp | med else "–" end) |"
        ] | if length == 0 then empty else
          ("| job | transport | server | IOPS | vCPU idle % (idle + iowait) | vCPU time stolen by the host % | disk await µs | requests in the disk |",
           "|---|---|---|---:|---:|---:|---:|---:|", .[]) end' "$RAW"
}

# With one fio job the client is a single thread: when fio's usr+sys reaches ~100 % of a vCPU, the client
# itself bounds the throughput, and no server, however cheap, can make that job go faster.
client_table() {
    jq -r -s --arg jobs "$JOBS" --arg servers "$SERVERS" --arg transports "$TRANSPORTS" "$JQ_MEDIAN"'
        ($jobs | split(" ")) as $J | ($servers | split(" ")) as $S | ($transports | split(" ")) as $T |
        map(select((.failed | not) and (.error == null or .error == 0) and .fio_cpu_pct != null and .transport != "local"
            and (.job | test("4k-qd32$")))) as $all |
        [ ($all | map([.job, .transport, .server]) | unique
            | sort_by(. as [$j, $t, $s] | [($J | index([$j])), ($T | index([$t])), ($S | index([$s]))]))[] as [$j, $t, $s] |
          ($all | map(select(.job == $j and .transport == $t and .server == $s))) as $r |
          "| \($j) | \($t) | \($s) | \($r | map(.iops) | med | floor) | \($r | map(.fio_cpu_pct) | med | . * 10 | floor / 10) | \($r | map(.steal_pct // 0) | med) |"
        ] | if length == 0 then empty else
          ("| job | transport | server | IOPS | fio (client) CPU % of one vCPU | vCPU time stolen by the host % |",
           "|---|---|---|---:|---:|---:|", .[]) end' "$RAW"
}

# At queue depth 1 nothing overlaps: every I/O is one NBD round trip (at least the floor server's, which
# does no device work) followed by one device I/O (at least fio's own at QD1). Their times add up, so
# 1 / (1/floor IOPS + 1/device IOPS) is the most IOPS any server can reach there, however cheap.
latency_table() {
    jq -r -s "$JQ_MEDIAN"'
        map(select((.failed | not) and (.error == null or .error == 0) and .iops != null and .iops > 0)) as $all |
        [ ($all | map(.job) | unique)[] | select(test("-qd1$")) as $j | ($all | map(select(.job == $j))) as $r |
          ($r | map(select(.server == "device")) | map(.iops) | med) as $dev |
          select($dev != null) |
          ($r | map(select(.server == "floor")) | map(.transport) | unique)[] as $t |
          ($r | map(select(.server == "floor" and .transport == $t)) | map(.iops) | med) as $fl |
          ($r | map(select(.server == "nbdfast-uring-direct" and .transport == $t)) | map(.iops) | med) as $ours |
          (1 / (1 / $fl + 1 / $dev)) as $bound |
          "| \($j) | \($t) | \($fl | floor) (\(1e6 / $fl * 10 | round / 10) µs) | \($dev | floor) (\(1e6 / $dev * 10 | round / 10) µs) | " +
          "\($bound | floor) | \($bound / $dev * 100 | round / 100) | " +
          (if $ours then "\($ours | floor) (\($ours / $bound * 100 | round / 100) of bound)" else "–" end) + " |"
        ] | if length == 0 then empty else
          ("| job | transport | floor IOPS (round trip) | device IOPS (device I/O) | latency-bound IOPS ceiling | ceiling / device | nbdfast-uring-direct IOPS |",
           "|---|---|---:|---:|---:|---:|---:|", .[]) end' "$RAW"
}

echo
echo "## Results (medians over $RUNS run(s) of ${RUNTIME}s; measuring took $ELAPSED s)"
echo
results_table
echo
echo "## Ratios (of medians)"
echo
ratio_table
BOUND=$(bound_table)
if [ -n "$BOUND" ]; then echo; echo "## O_DIRECT: CPU-budget ceiling"; echo; echo "$BOUND"; fi
LATENCY_BOUND=$(latency_table)
LOAD=$(load_table)
CLIENT=$(client_table)
if [ -n "$LOAD" ]; then echo; echo "## O_DIRECT: vCPU idle and steal"; echo; echo "$LOAD"; fi
if [ -n "$CLIENT" ]; then echo; echo "## One fio job: the client's CPU"; echo; echo "$CLIENT"; fi
if [ -n "$LATENCY_BOUND" ]; then echo; echo "## O_DIRECT at queue depth 1: latency ceiling"; echo; echo "$LATENCY_BOUND"; fi

[ "$RESULTS" != - ] || exit 0

tool_versions() {
    echo "- nbdfast: \`${NBDFAST_SRC:-n/a}\`, version $NBDFAST_VERSION (the repository was at $(git rev-parse --short HEAD 2>/dev/null || echo '?') when this report was written)"
    echo "- $(fio --version)"
    echo "- $(nbdkit --version 2>/dev/null | head -1 || echo 'nbdkit: not installed')"
    echo "- $(qemu-nbd --version 2>/dev/null | head -1 || echo 'qemu-nbd: not installed')"
    echo "- $(nbdcopy --version | tr '\n' ' ')"
    echo "- $(jq --version)"
}

{
    echo "# NbdFast vs nbdkit vs qemu-nbd"
    echo
    echo "Generated by \`bench/compare.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'); measuring took $ELAPSED s ($N measurements)."
    echo
    echo "## Machine"
    echo
    echo "- $(nproc) vCPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo)"
    echo "- kernel $(uname -r), $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
    echo "- backing file: $SIZE_MIB MiB of random data on $(df -T "$WORK" | awk 'NR==2 {print $2}') ($BACKING); the buffered file servers read it from the page cache, \`qemu-nbd-direct\` and \`device\` use O_DIRECT"
    echo "- shared, noisy VM (load average $LOAD_START at the start, $LOAD_END at the end): look at the min–max spread before trusting a difference"
    echo
    echo "## Tools"
    echo
    tool_versions
    echo
    echo "## Method"
    echo
    echo "\`RUNS=$RUNS RUNTIME=$RUNTIME TRANSPORTS=\"$TRANSPORTS\" JOBS=\"$JOBS\" SERVERS=\"$SERVERS\" bench/compare.sh\`"
    echo
    echo "- Loop order: for run, for job, for transport, for server; every measurement starts a fresh server and"
    echo "  stops it afterwards. \`*-mem\` servers are first filled with the backing file's random data via"
    echo "  \`nbdcopy BACKING URI\` (otherwise nbdfast answers reads of unwritten chunks with holes)."
    echo "- fio: \`fio --name=JOB --ioengine=nbd --uri=URI <job args> --time_based --runtime=$RUNTIME --norandommap --randrepeat=0 --group_reporting --output-format=json\`"
    echo "  with URI \`nbd+unix:///?socket=SOCK\` or \`nbd://127.0.0.1:PORT/\`; \`-nj2\` jobs add \`--numjobs=2\` (two connections, IOPS summed)."
    echo "- nbdcopy job: \`nbdcopy --no-extents URI null:\` (whole export; wall time → MiB/s). \`--no-extents\` makes it"
    echo "  read everything even where a server reports holes (nbdkit-null reports the whole disk as a hole)."
    echo "- \`device\`: \`fio --ioengine=io_uring --direct=1 --filename=BACKING\` with the same job args (the disk's limit; no server)."
    echo "  \`device-busy\`: the same while $(( $(nproc) - 1 )) nice-19 busy loop(s) keep the other vCPU(s) from idling, as an NBD client"
    echo "  and server beside the device do: on this VM the disk itself is slower when the guest's vCPUs are busy."
    echo "- \`nbdkit-null\`: reads only; a server doing no I/O work, as a reference for the client side (not a hard ceiling"
    echo "  when CPUs are few: nbdkit's own per-request CPU competes with fio)."
    echo "- \`floor\`: \`bench/floor/nbd-floor.c\`, an NBD server with no device (reads return zeroes from one static"
    echo "  buffer, write payloads are received and dropped; one recv of everything available, one sendmsg for all"
    echo "  its replies): the least server CPU per I/O, and the most fio can drive, on this machine."
    echo "  \`floor-mem\` is the same with \`-m\`: a bare memory export (READ replies point into it, WRITE payloads are"
    echo "  received into it), pre-filled like the other \`*-mem\` servers. \`floor-staged-mem\` (\`-m -t\`) receives each"
    echo "  WRITE payload into a staging buffer and copies it into place once whole, as a server must so that a payload"
    echo "  cut short by a dropped client is never applied (research/reliability.md (b) 61): the least such a memory server can do."
    echo "  \`floor-staged-file\` (\`-M BACKING -t\`) does the same with the backing file mapped MAP_SHARED as the export: one"
    echo "  copy off the socket and one into the page cache per written byte, the least a page-cache file server keeping that rule can do."
    echo "  \`floor-sr-mem\` and \`floor-sr-file\` are \`floor-staged-mem\` and \`floor-staged-file\` with \`-S\`: they accept"
    echo "  NBD_OPT_STRUCTURED_REPLY and answer READ with one OFFSET_DATA chunk, as the protocol requires of every server"
    echo "  once the client negotiated structured replies (libnbd does; nbdkit, qemu-nbd and nbdfast accept). libnbd"
    echo "  reads such a reply with four receives (16-byte start, 4 more header bytes, the 8-byte offset, the data)"
    echo "  against two for a simple reply, so when one fio job saturates its vCPU these, not the simple-reply floors,"
    echo "  are the most any real server can reach on reads."
    echo "  \`floor-pwrite-file\` (\`-M BACKING -t -S -P\`) is \`floor-sr-file\` applying each staged WRITE with pwrite(2),"
    echo "  as nbdfast, nbdkit's file plugin and qemu-nbd do: it pays the filesystem's write path per request, which the"
    echo "  mmap floors leave to writeback outside the server. The least a pwrite file server can do for WRITE."
    echo "  \`floor-direct\` (\`-f BACKING\`, bench/floor/direct.c) serves the backing file with O_DIRECT: one io_uring per"
    echo "  connection carries the socket RECV and the device READ/WRITE, one sendmsg answers each batch of completions"
    echo "  with READ replies pointing at the buffers the device filled: the least an O_DIRECT NBD server can do."
    echo "  \`floor-direct-split\` (\`-F BACKING\`, bench/floor/split.c) is the same with two threads per connection: one"
    echo "  receives and parses (blocking recv), the other owns the ring, submits the device I/O and sends the replies;"
    echo "  a lock-free queue and an eventfd (only when the device thread sleeps) join them."
    echo "- Page-cache file servers (nbdfast \`*-file\`, nbdkit-file, qemu-nbd, floor-staged-file, floor-sr-file, floor-pwrite-file) are measured"
    echo "  with the backing file wholly cached in base pages: after any O_DIRECT measurement (on this kernel even O_DIRECT"
    echo "  reads leave none of the file cached), the next of them first gets the file written back, dropped"
    echo "  (POSIX_FADV_DONTNEED) and read back in with random 4 KiB reads ($CACHE_SETTLES time(s) in this run). Otherwise"
    echo "  the next sequential read (a memory server's pre-fill, seqread1m) caches it in 2 MiB folios (ext4 large"
    echo "  folios), and then each 4 KiB buffered write walks 512 buffer heads in"
    echo "  ext4_block_write_begin: 10+ µs more CPU per write for every pwrite-based server, none for the mmap floors."
    echo "- Server CPU: utime+stime (all threads) from \`/proc/PID/stat\` just before and after each fio/nbdcopy run,"
    echo "  in ticks of 1/$CLK_TCK s, divided by the I/Os (µs/IO) or GiB moved (s/GiB) in that run."
    echo "  fio and the server share the $(nproc) vCPUs."
    echo
    echo "Jobs:"
    echo
    for j in $JOBS; do
        if [ "$j" = nbdcopy ]; then echo "- \`nbdcopy\`: nbdcopy --no-extents URI null:"
        else echo "- \`$j\`: $(job_fio_args "$j")"; fi
    done
    echo
    echo "Server command lines (paths relative to the repository root):"
    echo
    for s in $SERVERS; do
        for t in $TRANSPORTS local; do
            c=${SRV_CMD[$s/$t]:-}; c=${c//$ROOT\//}
            [ -n "$c" ] && echo "- \`$s\` ($t): \`${c% }\`"
        done
    done
    echo
    echo "## Results"
    echo
    echo "Medians over $RUNS run(s) with min–max. IOPS: higher is better; server CPU per I/O and per GiB: lower is better."
    echo
    results_table
    echo
    echo "## Ratios"
    echo
    echo "Ratio of medians. Throughput: >1 means the first server is faster. CPU per I/O (same as CPU per byte within a job): <1 means it is cheaper."
    echo
    ratio_table
    if [ -n "$BOUND" ]; then
        echo
        echo "## O_DIRECT: CPU-budget ceiling"
        echo
        echo "fio (client), the least NBD server (\`floor\`) and the device's own submission and completion work (fio's"
        echo "usr+sys in the \`device\` run) each need CPU for every I/O and share the $(nproc) vCPUs; $(nproc) vCPUs divided by their"
        echo "sum is a CPU-only estimate of the most IOPS a server in front of this O_DIRECT file can reach. It is only an"
        echo "estimate: fio's usr+sys in the device run includes fio's own bookkeeping (so the sum is too high), and it"
        echo "leaves out host steal and wake-up latency (so the estimate is too high as well). \`floor-direct\`, when measured, is the"
        echo "direct measurement of the least O_DIRECT server."
        echo
        echo "$BOUND"
    fi
    if [ -n "$LATENCY_BOUND" ]; then
        echo
        echo "## O_DIRECT at queue depth 1: latency ceiling"
        echo
        echo "With one request in flight nothing overlaps: each I/O costs at least one NBD round trip (the \`floor\` server's,"
        echo "with no device work at all) plus one device I/O (fio's own at QD1). The two times add up, so"
        echo "1 / (1/floor IOPS + 1/device IOPS) is the most any server in front of this device can reach at QD1."
        echo
        echo "$LATENCY_BOUND"
    fi
    if [ -n "$LOAD" ]; then
        echo
        echo "## O_DIRECT: vCPU idle and steal"
        echo
        echo "From \`/proc/stat\` around each run (medians). The disk is virtual: its requests are served by the host,"
        echo "which takes CPU time from this guest (steal) as the guest gets busier, and the disk slows down with it:"
        echo "\`device\` runs with one vCPU mostly idle, \`device-busy\` with the other vCPU kept busy, and every NBD"
        echo "server adds a client and a server beside the device. The last two columns come from the disk's own counters"
        echo "(\`/sys/dev/block/*/stat\`, as iostat): the mean time a request spent in the disk and the mean number of requests"
        echo "it held. Their quotient is the IOPS (Little's law), so a server can only be faster by keeping more requests in"
        echo "the disk (of the client's iodepth × jobs, the rest are in the client and the sockets) or by the disk serving them faster."
        echo
        echo "$LOAD"
    fi
    if [ -n "$CLIENT" ]; then
        echo
        echo "## One fio job: the client's CPU"
        echo
        echo "fio's own usr+sys (its JSON \`usr_cpu\` + \`sys_cpu\`) in each one-job 4k QD32 run, medians. One fio job is one"
        echo "thread, so near 100 % the client is the bottleneck: libnbd spends a fixed number of system calls on every request"
        echo "(for a write: a poll, a receive and two sends), and a server can only make that job faster by being cheaper for"
        echo "the client, not for itself. A throughput ratio against a slower peer is then bounded by this client, not by the server."
        echo
        echo "$CLIENT"
    fi
    if [ "$(jq -s 'map(select(.failed)) | length' "$RAW")" -gt 0 ]; then
        echo
        echo "## Failed measurements (left out of the tables)"
        echo
        jq -r 'select(.failed) | "- run \(.run) \(.job) \(.transport) \(.server): rc=\(.rc) \(.why)"' "$RAW"
    fi
    if [ -n "${RESULTS_NOTES:-}" ] && [ -f "$RESULTS_NOTES" ]; then echo; cat "$RESULTS_NOTES"; fi
    echo
    echo "Raw results: \`$RAW\` (not committed)."
} >"$RESULTS"
log "wrote $RESULTS"
