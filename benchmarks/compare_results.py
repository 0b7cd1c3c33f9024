"""Do two book builds print the same tables? Compare every table of two results folders.

Issue 22 (reproducible numbers): two fresh full builds on one machine must give the same
tables. This reads every ``*.csv`` under both folders (the runs' test tables, every
chapter's tables, the findings' numbers), skips the ones that hold timings, and compares
them exactly (``pandas.testing.assert_frame_equal`` with no tolerance), then every
``metrics.json``'s training history and best epoch. It prints one line per differing
file and a summary; the exit status is 1 if anything differs.

Run: ``python benchmarks/compare_results.py BUILD_A/results BUILD_B/results``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

#: Files whose content is a time measurement, not a result.
TIMINGS = ("book_timings", "throughput", "timings")
#: Keys of a run's metrics.json that are results (not wall-clock seconds or paths).
METRIC_KEYS = ("best", "steps", "stopped", "converged", "n_train_frames", "test")


def tables(root: Path) -> dict[str, Path]:
    """Relative path -> file, for every result CSV under ``root``."""
    return {
        str(p.relative_to(root)): p
        for p in sorted(root.rglob("*.csv"))
        if not any(t in p.name for t in TIMINGS) and ".book" not in p.parts
    }


def same_table(a: Path, b: Path) -> str | None:
    """None if the two CSVs hold the same table, else the first difference."""
    try:
        pd.testing.assert_frame_equal(pd.read_csv(a), pd.read_csv(b), check_exact=True)
    except AssertionError as err:
        return str(err).splitlines()[0] + " " + " ".join(str(err).splitlines()[1:4])
    return None


def same_metrics(a: Path, b: Path) -> str | None:
    """None if two runs' metrics.json agree on every result key."""
    ma, mb = json.loads(a.read_text()), json.loads(b.read_text())
    for key in METRIC_KEYS:
        if ma.get(key) != mb.get(key):
            return f"{key}: {str(ma.get(key))[:80]} != {str(mb.get(key))[:80]}"
    history = [
        [(h["epoch"], h["train_loss"], h["val_eer"]) for h in m["history"]] for m in (ma, mb)
    ]
    return None if history[0] == history[1] else "training history differs"


def main() -> int:
    """Compare the folders given on the command line; print the differences."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    args = ap.parse_args()
    ta, tb = tables(args.a), tables(args.b)
    diffs = [f"only in {args.a if k in ta else args.b}: {k}" for k in sorted(set(ta) ^ set(tb))]
    shared = sorted(set(ta) & set(tb))
    diffs += [f"{k}: {d}" for k in shared if (d := same_table(ta[k], tb[k]))]
    runs = sorted(p.relative_to(args.a) for p in args.a.rglob("metrics.json"))
    for r in runs:
        if (args.b / r).is_file() and (d := same_metrics(args.a / r, args.b / r)):
            diffs.append(f"{r}: {d}")
    for line in diffs:
        print(line)
    print(f"{len(shared)} tables and {len(runs)} runs compared: {len(diffs)} differ")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
