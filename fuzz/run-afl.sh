#!/usr/bin/env bash
# Runs one SharpFuzz target under afl-fuzz for a while and reports what it found. Called by
# `./build.sh fuzz`, which installs afl++, builds fuzz/NbdFast.Fuzz and instruments NbdFast.dll first.
# Usage: fuzz/run-afl.sh TARGET SECONDS INSTRUMENTED_DIR REPLAY_DLL
# Exit status: 0 when no crash and no reproducible hang was found.
set -euo pipefail

target=$1 seconds=$2 instrumented=$3 replay_dll=$4
out="artifacts/fuzz/$target"
rm -rf "$out"
mkdir -p "$out"

# afl-fuzz's environment checks assume a dedicated fuzzing box; here the target is a .NET program (no
# compiled-in instrumentation to detect), core dumps may go to a handler, and the cores are shared.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CPUFREQ=1 \
    AFL_NO_AFFINITY=1 AFL_FORKSRV_INIT_TMOUT=60000 AFL_NO_CRASH_README=1

status=0
# -V stops fuzzing after SECONDS; the timeout only guards against afl-fuzz never starting. -t 2000: an input
# runs in well under a millisecond, so two seconds is a hang, even on a loaded machine.
timeout --kill-after=10 $((seconds + 180)) \
    afl-fuzz -V "$seconds" -t 2000 -m none -x fuzz/nbd.dict -i "fuzz/corpus/$target" -o "$out" -- "$instrumented/NbdFast.Fuzz" "$target" \
    >"$out/afl-fuzz.log" 2>&1 || status=$?
stats="$out/default/fuzzer_stats"
if [ "$status" -ne 0 ] || [ ! -f "$stats" ]; then
    echo "fuzz $target: afl-fuzz failed (exit $status); last lines of $out/afl-fuzz.log:" >&2
    tail -n 20 "$out/afl-fuzz.log" >&2
    exit 1
fi

stat() { sed -nE "s/^$1[[:space:]]*: (.*)$/\1/p" "$stats"; }
execs=$(stat execs_done)
runtime=$(stat run_time)
rate=$(awk -v e="$execs" -v t="$runtime" 'BEGIN { printf "%.0f", (t > 0 ? e / t : 0) }')
crashes=$(find "$out/default/crashes" -type f -name 'id:*' 2>/dev/null | wc -l)
hangs=$(find "$out/default/hangs" -type f -name 'id:*' 2>/dev/null | wc -l)
echo "fuzz $target: $execs executions in ${runtime}s ($rate exec/s), edges $(stat edges_found) (map coverage $(stat bitmap_cvg)), corpus $(stat corpus_count) (+$(stat corpus_found) found), stability $(stat stability), crashes $crashes, hangs $hangs"

failed=0
if [ "$crashes" -gt 0 ]; then
    echo "fuzz $target: crashing inputs (replayed without instrumentation):" >&2
    dotnet "$replay_dll" replay "$target" "$out"/default/crashes/id:* >&2 || true
    failed=1
fi
# A hang on a busy machine may be a slow run; it counts only when a replay hangs too.
for hang in "$out"/default/hangs/id:*; do
    [ -f "$hang" ] || continue
    if ! timeout 30 dotnet "$replay_dll" replay "$target" "$hang" >/dev/null 2>&1; then
        echo "fuzz $target: input $hang hangs or crashes on replay" >&2
        failed=1
    fi
done
exit "$failed"
