#!/usr/bin/env bash
# Build, test, package, benchmark and run NbdFast. Works on a fresh Debian 12 machine as root.
# Usage: ./build.sh help
set -euo pipefail

cd "$(dirname "$0")"

export DOTNET_CLI_TELEMETRY_OPTOUT=1
export DOTNET_NOLOGO=1
export DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export DEBIAN_FRONTEND=noninteractive

# The SDK lives here on the project's machines even when it is not on PATH (e.g. a bare CI shell).
if ! command -v dotnet >/dev/null 2>&1 && [ -x /usr/share/dotnet/dotnet ]; then
    export PATH="/usr/share/dotnet:$PATH"
fi

SOLUTION=NbdFast.sln
LIBRARY=src/NbdFast/NbdFast.csproj
CLI=src/NbdFast.Cli/NbdFast.Cli.csproj
BENCH=bench/NbdFast.Benchmarks
TEST_PROJECTS=(native-tests/NbdFast.Tests native-tests/NbdFast.Interop.Tests)
RID=linux-x64
BINARY=artifacts/nbdfast

# Debian packages: real NBD peers for the tests (nbdkit, libnbd's nbdinfo/nbdsh/nbdcopy and its Python
# binding, qemu-img/qemu-io, fio's nbd engine), what native AOT links with (clang, zlib), and the fuzzer the
# fuzz command (and the test command's fuzz smoke run) drives SharpFuzz targets with (afl++).
APT_PACKAGES=(nbdkit libnbd-bin python3-libnbd qemu-utils fio clang zlib1g-dev openssl util-linux afl++)

FUZZ_PROJECT=fuzz/NbdFast.Fuzz
FUZZ_TARGETS=(options requests)

log() { printf '==> %s\n' "$*" >&2; }

usage() {
    cat <<'EOF'
Usage: ./build.sh COMMAND [ARGS]

Commands:
  deps        install missing Debian packages (apt-get) and restore NuGet packages
  build       dotnet build NbdFast.sln -c Release
  pack        pack the library into artifacts/packages
  publish     publish the native-AOT CLI to artifacts/publish and artifacts/nbdfast
              (fails on any AOT/trim warning)
  test        deps, build, publish, then run every test project and a short fuzz smoke run of each
              fuzz target (FUZZ_SMOKE_SECONDS, default 15); prints "N passed, M failed"
  fuzz SECONDS [TARGET]
              coverage-guided fuzzing with SharpFuzz + afl-fuzz: build fuzz/NbdFast.Fuzz, instrument
              NbdFast.dll, fuzz TARGET (options or requests; both when omitted) for SECONDS each from
              the seed corpus in fuzz/corpus/TARGET; prints executions, exec/s, edges and crashes, and
              fails when a crash (or a reproducible hang) is found. Findings: artifacts/fuzz/TARGET
  bench [ARGS]
              run the BenchmarkDotNet micro-benchmarks (extra ARGS go to BenchmarkDotNet,
              e.g. --job short, --job dry, --filter '*Request*')
  soak MINUTES
              publish if stale, then bench/soak.sh: fio randrw --verify=crc32c over 4 connections plus a
              client dropping connections at random, against a file export, for MINUTES (e.g. 3 or 0.25);
              reports verify errors, I/Os, the server's RSS and fds; fails on errors or growth
  run [ARGS]  publish if stale, then run artifacts/nbdfast ARGS; with no ARGS serve a 1 GiB
              writable RAM disk on 127.0.0.1:10809
  help        show this text
EOF
}

# Installs whichever of the given Debian packages are missing.
ensure_apt_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        # dpkg -s also succeeds for removed-but-configured packages; check the status line.
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing missing Debian packages: ${missing[*]}"
        apt-get update
        apt-get install -y --no-install-recommends "${missing[@]}"
    else
        log "Debian packages already installed: $*"
    fi
}

cmd_deps() {
    ensure_apt_packages "${APT_PACKAGES[@]}"
    if ! command -v dotnet >/dev/null 2>&1; then
        echo "error: the .NET SDK (dotnet) is not installed; see global.json for the version" >&2
        exit 1
    fi
    log "dotnet restore $SOLUTION"
    dotnet restore "$SOLUTION"
}

cmd_build() {
    log "dotnet build $SOLUTION -c Release"
    dotnet build "$SOLUTION" -c Release
}

cmd_pack() {
    log "dotnet pack $LIBRARY"
    dotnet pack "$LIBRARY" -c Release -o artifacts/packages
}

cmd_publish() {
    log "dotnet publish $CLI -r $RID (native AOT)"
    mkdir -p artifacts
    local out=artifacts/publish.log status=0 produced
    dotnet publish "$CLI" -c Release -r "$RID" -o artifacts/publish 2>&1 | tee "$out" || status=$?
    if [ "$status" -ne 0 ]; then
        echo "error: publish failed (exit $status)" >&2
        exit "$status"
    fi
    # Zero AOT/trim warnings is a requirement (IL2026, IL3050, ...). The summary line "0 Warning(s)"
    # is not a warning; anything else mentioning "warning" is.
    if grep -i 'warning' "$out" | grep -viE '^[[:space:]]*0 Warning\(s\)' | grep -q .; then
        echo "error: publish printed warnings (zero AOT/trim warnings is required):" >&2
        grep -i 'warning' "$out" | grep -viE '^[[:space:]]*0 Warning\(s\)' >&2
        exit 1
    fi
    # The CLI project names its native binary nbdfast (its assembly is NbdFast.Cli, since assembly
    # names are case-insensitive and NbdFast is the library); take whichever the publish produced.
    for produced in artifacts/publish/nbdfast artifacts/publish/NbdFast.Cli ""; do
        [ -n "$produced" ] && [ -x "$produced" ] && break
    done
    if [ -z "$produced" ]; then
        echo "error: publish produced no native binary in artifacts/publish" >&2
        exit 1
    fi
    cp -f "$produced" "$BINARY"
    log "published $BINARY ($(du -h "$BINARY" | cut -f1))"
}

# Counts come from each project's trx file (Counters element); the console summary ("Passed: X",
# "Failed: Y") is the fallback. A project that fails without reporting a failed test (build error,
# test host crash) counts as one failure, so the total cannot read as green.
count_from_trx() { # FILE ATTRIBUTE
    sed -nE "s/.*<Counters[^>]*[[:space:]]$2=\"([0-9]+)\".*/\1/p" "$1" | head -n1
}

count_from_console() { # FILE WORD
    sed -nE "s/.*(^|[^A-Za-z])$2:[[:space:]]*([0-9]+).*/\2/p" "$1" | tail -n1
}

cmd_test() {
    cmd_deps
    cmd_build
    cmd_publish

    export NBDFAST_BINARY="$PWD/$BINARY"
    local passed=0 failed=0 overall=0 project name logfile results trx status p f
    rm -rf artifacts/test-results
    mkdir -p artifacts/test-results
    for project in "${TEST_PROJECTS[@]}"; do
        name=$(basename "$project")
        logfile="artifacts/test-results/$name.log"
        results="$PWD/artifacts/test-results/$name"
        log "dotnet test $project"
        status=0
        dotnet test "$project" -c Release \
            --logger "console;verbosity=normal" --logger "trx;LogFileName=$name.trx" \
            --results-directory "$results" 2>&1 | tee "$logfile" || status=$?
        trx="$results/$name.trx"
        if [ -f "$trx" ]; then
            p=$(count_from_trx "$trx" passed)
            f=$(count_from_trx "$trx" failed)
        else
            p=$(count_from_console "$logfile" Passed)
            f=$(count_from_console "$logfile" Failed)
        fi
        p=${p:-0}
        f=${f:-0}
        if [ "$status" -ne 0 ]; then
            overall=1
            if [ "$f" -eq 0 ]; then f=1; fi
        fi
        passed=$((passed + p))
        failed=$((failed + f))
    done
    # Fuzz smoke runs: each target counts as one test; a crash (or a failure to fuzz at all) fails it.
    local smoke="${FUZZ_SMOKE_SECONDS:-15}" target
    if fuzz_prepare; then
        for target in "${FUZZ_TARGETS[@]}"; do
            if fuzz_run "$target" "$smoke"; then
                passed=$((passed + 1))
            else
                failed=$((failed + 1))
                overall=1
            fi
        done
    else
        echo "error: building or instrumenting the fuzz targets failed" >&2
        failed=$((failed + ${#FUZZ_TARGETS[@]}))
        overall=1
    fi
    echo
    echo "$passed passed, $failed failed"
    return "$overall"
}

# Builds the fuzz targets, copies them aside and instruments that copy of NbdFast.dll (the normal build
# output stays uninstrumented, for replaying crashes).
FUZZ_BUILT=artifacts/build/bin/NbdFast.Fuzz/release
FUZZ_INSTRUMENTED=artifacts/fuzz/bin
# Each step checks its status: cmd_test calls this inside an `if`, where set -e does not apply.
fuzz_prepare() {
    ensure_apt_packages afl++ || return 1
    log "dotnet build $FUZZ_PROJECT -c Release"
    dotnet build "$FUZZ_PROJECT" -c Release -nologo -v quiet || return 1
    rm -rf "$FUZZ_INSTRUMENTED"
    mkdir -p artifacts/fuzz
    cp -r "$FUZZ_BUILT" "$FUZZ_INSTRUMENTED" || return 1
    dotnet tool restore >/dev/null || return 1
    log "instrumenting $FUZZ_INSTRUMENTED/NbdFast.dll (sharpfuzz)"
    dotnet sharpfuzz "$FUZZ_INSTRUMENTED/NbdFast.dll" >/dev/null || return 1
}

fuzz_run() { # TARGET SECONDS
    log "afl-fuzz $1 for ${2}s"
    fuzz/run-afl.sh "$1" "$2" "$FUZZ_INSTRUMENTED" "$FUZZ_BUILT/NbdFast.Fuzz.dll"
}

cmd_fuzz() {
    local seconds="${1:-}" targets=() target failed=0
    if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
        echo "usage: ./build.sh fuzz SECONDS [TARGET]  (TARGET: ${FUZZ_TARGETS[*]})" >&2
        exit 2
    fi
    if [ -n "${2:-}" ]; then
        [[ " ${FUZZ_TARGETS[*]} " == *" $2 "* ]] || { echo "error: unknown fuzz target '$2' (${FUZZ_TARGETS[*]})" >&2; exit 2; }
        targets=("$2")
    else
        targets=("${FUZZ_TARGETS[@]}")
    fi
    fuzz_prepare
    for target in "${targets[@]}"; do
        fuzz_run "$target" "$seconds" || failed=1
    done
    return "$failed"
}

cmd_bench() {
    log "dotnet run -c Release --project $BENCH"
    dotnet run -c Release --project "$BENCH" -- --filter '*' "$@"
}

binary_is_stale() {
    [ ! -x "$BINARY" ] && return 0
    [ -n "$(find src -type f -newer "$BINARY" -print -quit)" ]
}

cmd_soak() {
    if [ "$#" -ne 1 ]; then
        echo "usage: ./build.sh soak MINUTES" >&2
        exit 2
    fi
    if binary_is_stale; then
        cmd_publish >&2
    fi
    NBDFAST="$PWD/$BINARY" bench/soak.sh "$1"
}

cmd_run() {
    if binary_is_stale; then
        cmd_publish >&2
    fi
    if [ "$#" -eq 0 ]; then
        cat <<'EOF'
Serving a 1 GiB writable RAM disk (Ctrl-C to stop)
  NBD URI:  nbd://127.0.0.1:10809/
  Try:      nbdinfo nbd://127.0.0.1
            qemu-img info nbd://127.0.0.1:10809
EOF
        exec "$BINARY" --memory 1G --writable --bind 127.0.0.1
    fi
    exec "$BINARY" "$@"
}

main() {
    local command="${1:-help}"
    [ "$#" -gt 0 ] && shift
    case "$command" in
        deps) cmd_deps ;;
        build) cmd_build ;;
        pack) cmd_pack ;;
        publish) cmd_publish ;;
        test) cmd_test ;;
        fuzz) cmd_fuzz "$@" ;;
        bench) cmd_bench "$@" ;;
        soak) cmd_soak "$@" ;;
        run) cmd_run "$@" ;;
        help | -h | --help) usage ;;
        *)
            echo "error: unknown command '$command'" >&2
            usage >&2
            exit 2
            ;;
    esac
}

main "$@"
