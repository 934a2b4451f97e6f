#!/usr/bin/env python3
"""Pools the runs of several bench/compare.sh passes and compares server CPU per I/O with confidence intervals.

One pass of compare.sh gives a ratio of medians over its 3-11 runs, and on this shared 2-vCPU VM the
denominator (nbdkit) moves by tens of percent from run to run, so a row near a target can land on either side
of it from one pass to the next. This script takes the raw results of several passes (the .jsonl files
compare.sh writes, or the trimmed copy kept in bench/runs-*.jsonl) and prints, per job and transport:
  - the ratio of the pooled medians (what a single RESULTS file reports, over more runs);
  - the median of the per-run ratios, pairing the servers measured back to back inside one run,
    with a 95 % bootstrap interval (4000 resamples, fixed seed, so the output is reproducible).

Usage: bench/pool-runs.py [--servers A,B,FLOOR] FILE.jsonl...
       (default servers: nbdfast-uring-mem,nbdkit-mem,floor-sr-mem)
"""
import collections
import json
import random
import statistics
import sys


def bootstrap_interval(values, resamples=4000, seed=7):
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples))
    return medians[int(0.025 * resamples)], medians[int(0.975 * resamples)]


def main(argv):
    servers = ["nbdfast-uring-mem", "nbdkit-mem", "floor-sr-mem"]
    if len(argv) > 1 and argv[0] == "--servers":
        servers = argv[1].split(",")
        argv = argv[2:]
    if len(servers) != 3 or not argv:
        sys.exit(__doc__)
    a, b, floor = servers
    per_run = collections.defaultdict(dict)          # (job, transport, pass, run) -> server -> µs/IO
    pooled = collections.defaultdict(list)           # (job, transport, server) -> µs/IO of every run
    for path in argv:
        for line in open(path):
            r = json.loads(line)
            if r.get("error") or r["server"] not in servers or not r.get("ios"):
                continue
            us = r["cpu_s"] * 1e6 / r["ios"]
            pass_id = r.get("pass", path)
            per_run[(r["job"], r["transport"], pass_id, r["run"])][r["server"]] = us
            pooled[(r["job"], r["transport"], r["server"])].append(us)
    rows = sorted({(job, transport) for job, transport, _, _ in per_run})
    print(f"| job | transport | runs | {a} / {b}: ratio of medians | per run, median (95 % interval) "
          f"| {floor} / {b}: ratio of medians | per run | {a} / {floor} per run |")
    print("|---|---|---|---|---|---|---|---|")
    for job, transport in rows:
        runs = [v for (j, t, _, _), v in per_run.items() if (j, t) == (job, transport) and len(v) == 3]
        if not runs:
            continue
        med = {s: statistics.median(pooled[(job, transport, s)]) for s in servers}
        cells = []
        for num, den in ((a, b), (floor, b), (a, floor)):
            ratios = [v[num] / v[den] for v in runs]
            low, high = bootstrap_interval(ratios)
            cells.append(f"{statistics.median(ratios):.3f} ({low:.3f}–{high:.3f})")
        print(f"| {job} | {transport} | {len(runs)} | {med[a] / med[b]:.3f} | {cells[0]} "
              f"| {med[floor] / med[b]:.3f} | {cells[1]} | {cells[2]} |")


if __name__ == "__main__":
    main(sys.argv[1:])
