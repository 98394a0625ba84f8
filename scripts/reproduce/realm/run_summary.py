#!/usr/bin/env python3
"""Issue 5: one phase-2 run's training side, from its metrics.csv (written by `ragl pretrain`).

Prints, per window of W steps (default 250): the mean training utility, p(∅|x) and loss and
the standard error of the utility's mean; then over the whole run: the seconds per step
(median of the step-to-step differences of `secs`, which include the held-out evaluations
only at the steps that make one), steps/s from the first and last rows, the refreshes
started and swapped in, how many steps each swap took after its start, the staleness (mean
and largest) and the mean gap between stale and fresh scores of the retrieved documents.

Usage: python3 scripts/reproduce/realm/run_summary.py RUN/metrics.csv [W]
"""
import csv
import statistics
import sys


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.strip().splitlines()[-1])
    path = sys.argv[1]
    w = int(sys.argv[2]) if len(sys.argv) == 3 else 250
    with open(path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit(f"{path}: no steps")
    print(f"{'steps':>11} {'utility':>8} {'(s.e.)':>7} {'p_null':>7} {'loss':>7}")
    for lo in range(0, int(rows[-1]["step"]), w):
        win = [r for r in rows if lo < int(r["step"]) <= lo + w]
        if not win:
            continue
        u = [float(r["utility"]) for r in win]
        se = statistics.stdev(u) / len(u) ** 0.5 if len(u) > 1 else float("nan")
        pn = statistics.mean(float(r["p_null"]) for r in win)
        loss = statistics.mean(float(r["loss"]) for r in win)
        print(f"{lo + 1:>5}-{lo + w:<5} {statistics.mean(u):8.3f} {se:7.3f} {pn:7.3f} {loss:7.2f}")
    secs = [float(r["secs"]) for r in rows]
    steps = [int(r["step"]) for r in rows]
    dt = [b - a for a, b in zip(secs, secs[1:])]
    rate = (steps[-1] - steps[0]) / (secs[-1] - secs[0]) if secs[-1] > secs[0] else float("nan")
    print(f"steps {steps[0]}-{steps[-1]}: median {statistics.median(dt):.2f} s/step, "
          f"{rate:.3f} steps/s overall")
    starts = [int(r["step"]) for r in rows if r["refresh"] == "start"]
    swaps = [(int(r["step"]), int(r["refresh"].split("@")[1]))
             for r in rows if r["refresh"].startswith("swap@")]
    lag = [s - snap for s, snap in swaps]
    stale = [int(r["staleness"]) for r in rows]
    gap = [float(r["stale_gap"]) for r in rows]
    print(f"refreshes: {len(starts)} started, {len(swaps)} swapped in", end="")
    if lag:
        print(f" ({min(lag)}-{max(lag)} steps after their snapshot, median {statistics.median(lag)})")
    else:
        print()
    print(f"staleness: mean {statistics.mean(stale):.1f}, largest {max(stale)} steps; "
          f"stale-fresh score gap: mean {statistics.mean(gap):.3f}")


if __name__ == "__main__":
    main()
