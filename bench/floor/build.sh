#!/usr/bin/env bash
# Build the floor NBD server (bench/floor/nbd-floor.c + direct.c + split.c) with clang -O2.
# Usage: bench/floor/build.sh [OUTPUT]   (default: bench/.work/nbd-floor; rebuilt only when the source is newer)
set -euo pipefail
cd "$(dirname "$0")"
SRC=("$PWD/nbd-floor.c" "$PWD/direct.c" "$PWD/split.c")
OUT=${1:-$PWD/../.work/nbd-floor}
mkdir -p "$(dirname "$OUT")"
if [ ! -x "$OUT" ] || [ -n "$(find . -newer "$OUT" -name "*.[ch]")" ]; then
    command -v clang >/dev/null 2>&1 || { echo "clang not found; apt-get install clang" >&2; exit 1; }
    clang -O2 -Wall -Wextra -Werror -pthread -o "$OUT" "${SRC[@]}"
fi
echo "$OUT"
