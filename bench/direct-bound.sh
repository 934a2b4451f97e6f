#!/usr/bin/env bash
# Can any NBD server in front of the O_DIRECT backing file reach 0.9x the disk's own IOPS (issue 4's target)?
#
# To serve R I/Os per second, an NBD server and its client must carry R requests per second over the socket AND
# the disk must complete R I/Os per second, on the same vCPUs. This script measures both at once without coupling
# them, for each 4k job:
#   alone     fio's own io_uring O_DIRECT job on the backing file (compare.sh's `device`): the disk's IOPS, D.
#   combined  the same disk job while fio's nbd engine drives `floor-sr-mem` (bench/floor: the least NBD server,
#             structured replies, no disk) with the same job capped at R = 0.9 x D: the socket, client and server
#             work every NBD server needs at the target rate, minus the disk.
# The combined disk job is favoured over any real server: it keeps its whole queue depth in the disk (a server
# only has what its client's requests in flight leave outside the sockets) and its I/Os wait for no socket. So if
# the disk completes fewer than R I/Os per second in the combined run while the NBD traffic runs at (at most) R,
# no server can deliver R on this machine: the target is out of reach, and the combined disk IOPS bound it.
#
# Usage:   bench/direct-bound.sh              # RUNS=3 RUNTIME=5, the six 4k QD32 jobs; writes bench/RESULTS-direct-bound.md
#          RUNS=1 RUNTIME=3 JOBS="randwrite4k-qd32-nj2" RESULTS=- bench/direct-bound.sh
# Environment: RUNS, RUNTIME, JOBS, SIZE_MIB, WORK, RESULTS as in compare.sh (same backing file and floor build).
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
RUNTIME=${RUNTIME:-5}
SIZE_MIB=${SIZE_MIB:-1024}
WORK=${WORK:-$PWD/bench/.work}
RESULTS=${RESULTS:-$PWD/bench/RESULTS-direct-bound.md}
JOBS=${JOBS:-randread4k-qd32 randread4k-qd32-nj2 randwrite4k-qd32 randwrite4k-qd32-nj2 randrw4k-qd32 randrw4k-qd32-nj2}
TARGET=0.9

log() { printf '[direct-bound %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
for tool in fio nbdcopy jq; do command -v "$tool" >/dev/null 2>&1 || die "$tool not found (./build.sh deps installs it)"; done

# Job name -> "RW NUMJOBS READ_SHARE": 4k, QD32, as in compare.sh.
job_shape() {
    case $1 in
        randread4k-qd32)      echo "randread 1 1" ;;
        randread4k-qd32-nj2)  echo "randread 2 1" ;;
        randwrite4k-qd32)     echo "randwrite 1 0" ;;
        randwrite4k-qd32-nj2) echo "randwrite 2 0" ;;
        randrw4k-qd32)        echo "randrw 1 0.7" ;;
        randrw4k-qd32-nj2)    echo "randrw 2 0.7" ;;
        *) die "unknown job '$1'" ;;
    esac
}

mkdir -p "$WORK/logs"
BACKING=$WORK/backing-${SIZE_MIB}M.img
SIZE_BYTES=$((SIZE_MIB * 1048576))
SOCK=$WORK/bound.sock
if [ ! -f "$BACKING" ] || [ "$(stat -c %s "$BACKING")" -ne "$SIZE_BYTES" ]; then
    log "creating $BACKING ($SIZE_MIB MiB of random data)"
    head -c "$SIZE_BYTES" /dev/urandom >"$BACKING"
fi
FLOOR=$(bench/floor/build.sh "$WORK/nbd-floor") || die "building the floor server failed"
# shellcheck source=bench/disk-stat.sh
. bench/disk-stat.sh

FLOOR_PID=""
cleanup() { if [ -n "$FLOOR_PID" ]; then kill "$FLOOR_PID" 2>/dev/null || true; fi; rm -f "$SOCK"; }
trap cleanup EXIT

# disk_job RW NUMJOBS OUT: fio's io_uring O_DIRECT job on the backing file (compare.sh's `device`).
disk_job() {
    fio --name=disk --ioengine=io_uring --direct=1 --filename="$BACKING" --size="$SIZE_BYTES" \
        --rw="$1" --rwmixread=70 --bs=4k --iodepth=32 --numjobs="$2" --time_based --runtime="$RUNTIME" \
        --norandommap --randrepeat=0 --group_reporting --output-format=json --output="$3" >>"$WORK/logs/fio.log" 2>&1
}
iops_of() { jq '.jobs[0] | .read.iops + .write.iops' "$1"; }

RAW=$WORK/direct-bound-$(date -u +%Y%m%d-%H%M%S).jsonl
: >"$RAW"
START=$(date +%s)
for run in $(seq "$RUNS"); do
    for job in $JOBS; do
        read -r rw nj share <<<"$(job_shape "$job")"
        log "run $run: $job alone"
        d0=$(disk_snapshot); disk_job "$rw" "$nj" "$WORK/bound-alone.json"; d1=$(disk_snapshot)
        alone=$(iops_of "$WORK/bound-alone.json")
        read -r alone_await alone_depth <<<"$(disk_share "$d0" "$d1")"
        target=$(jq -n "$alone * $TARGET")
        # fio caps reads and writes separately, per job: split R by the job's read share and its job count.
        rate=$(jq -rn --argjson r "$target" --argjson s "$share" --argjson n "$nj" \
            '[($r * $s / $n | ceil), ($r * (1 - $s) / $n | ceil)] | map(if . < 1 then 1 else . end) | join(",")')
        rm -f "$SOCK"
        "$FLOOR" -s "$SIZE_BYTES" -m -t -S -U "$SOCK" >>"$WORK/logs/bound-floor.log" 2>&1 &
        FLOOR_PID=$!
        for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
        nbdcopy "$BACKING" "nbd+unix:///?socket=$SOCK" >>"$WORK/logs/nbdcopy.log" 2>&1 || die "pre-filling floor-sr-mem failed"
        log "run $run: $job combined with floor-sr-mem traffic capped at $rate IOPS per job (reads,writes)"
        fio --name=nbd --ioengine=nbd --uri="nbd+unix:///?socket=$SOCK" --rw="$rw" --rwmixread=70 --bs=4k --iodepth=32 \
            --numjobs="$nj" --rate_iops="$rate" --time_based --runtime=$((RUNTIME + 2)) --norandommap --randrepeat=0 \
            --group_reporting --output-format=json --output="$WORK/bound-nbd.json" >>"$WORK/logs/fio.log" 2>&1 &
        nbd_pid=$!
        sleep 1
        d0=$(disk_snapshot); disk_job "$rw" "$nj" "$WORK/bound-combined.json"; d1=$(disk_snapshot)
        wait "$nbd_pid" || die "the nbd traffic failed (see $WORK/logs/fio.log)"
        kill "$FLOOR_PID"; wait "$FLOOR_PID" 2>/dev/null || true; FLOOR_PID=""
        combined=$(iops_of "$WORK/bound-combined.json")
        read -r combined_await combined_depth <<<"$(disk_share "$d0" "$d1")"
        jq -cn --argjson run "$run" --arg job "$job" --argjson alone "$alone" --argjson target "$target" \
            --argjson combined "$combined" --argjson nbd "$(iops_of "$WORK/bound-nbd.json")" \
            --argjson aa "$alone_await" --argjson ad "$alone_depth" --argjson ca "$combined_await" --argjson cd "$combined_depth" \
            '{run:$run, job:$job, alone:$alone, target:$target, combined:$combined, nbd:$nbd,
              alone_await_us:$aa, alone_depth:$ad, combined_await_us:$ca, combined_depth:$cd}' | tee -a "$RAW" >&2
    done
done
ELAPSED=$(( $(date +%s) - START ))

TABLE=$(jq -r -s 'def med: sort | if length == 0 then null elif length % 2 == 1 then .[length/2|floor] else (.[length/2 - 1] + .[length/2]) / 2 end;
    def n: if . == null then "–" else (. | floor | tostring) end;
    [ (map(.job) | unique)[] as $j | map(select(.job == $j)) as $r |
      ($r | map(.alone) | med) as $a | ($r | map(.combined) | med) as $c |
      "| \($j) | \($r | length) | \($a | n) | \($a * '"$TARGET"' | n) | \($r | map(.nbd) | med | n) | \($c | n) | \($c / $a * 100 | round / 100) | " +
      "\($r | map(.alone_await_us // empty) | med | n) / \($r | map(.combined_await_us // empty) | med | n) | " +
      "\($r | map(.alone_depth // empty) | med // "–") / \($r | map(.combined_depth // empty) | med // "–") | " +
      (if $c < $a * '"$TARGET"' then "out of reach" else "not excluded" end) + " |" ] | .[]' "$RAW")
{
    echo "| job | runs | disk alone IOPS (D) | target 0.9 × D | NBD traffic reached (floor-sr-mem, capped at 0.9 × D) | disk IOPS beside that traffic | ÷ D | disk await µs alone / beside | requests in the disk alone / beside | 0.9 × D for any server |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    echo "$TABLE"
} >"$WORK/direct-bound-table.md"
cat "$WORK/direct-bound-table.md"
[ "$RESULTS" != - ] || exit 0
{
    echo "# O_DIRECT: can any NBD server reach 0.9 × the disk?"
    echo
    echo "Generated by \`bench/direct-bound.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') (RUNS=$RUNS RUNTIME=${RUNTIME}s, medians; took $ELAPSED s)"
    echo "on $(nproc) vCPUs, kernel $(uname -r); backing file $BACKING ($SIZE_MIB MiB, $(df -T "$WORK" | awk 'NR==2 {print $2}'))."
    echo
    echo "To serve R I/Os per second an NBD server and its client must carry R requests per second over the socket"
    echo "and the disk must complete R I/Os per second, on the same vCPUs. Each job runs twice per round: the disk"
    echo "alone (fio io_uring O_DIRECT, QD32, as compare.sh's \`device\`), giving D; then the same disk job while fio's nbd"
    echo "engine drives \`floor-sr-mem\` (the least NBD server, no disk) with the same job capped at 0.9 × D. The disk job"
    echo "is favoured over any real server there: its whole queue depth stays in the disk and its I/Os never wait for"
    echo "a socket. When the disk then completes fewer than 0.9 × D I/Os per second, no server can deliver 0.9 × D here."
    echo "The await and depth columns are the disk's own counters (\`/sys/dev/block/*/stat\`, as iostat): they show"
    echo "whether, beside the NBD traffic, the disk held fewer requests or took longer over each (IOPS = depth / await)."
    echo
    cat "$WORK/direct-bound-table.md"
    echo
    echo "Raw results: \`$RAW\` (not committed)."
} >"$RESULTS"
log "wrote $RESULTS"
