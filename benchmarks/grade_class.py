"""Time `saattn grade --all` on a class of N submissions of exercise 01 (default 30: 20 solutions, 10 stubs).

    PYTHONPATH=. python benchmarks/grade_class.py --n 30 --jobs 2

Prints the wall time of the batch, the slowest submission and the per-submission mean; checks one CSV row per
file. Not a unit test: it takes minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=30, help="submissions (default: 30)")
    p.add_argument("--jobs", type=int, default=2, help="saattn grade --jobs (default: 2)")
    args = p.parse_args(argv)
    if args.n < 1 or args.jobs < 1:
        raise SystemExit(f"--n and --jobs must be positive, got {args.n} and {args.jobs}")
    with tempfile.TemporaryDirectory() as tmp:
        subs = Path(tmp) / "subs"
        subs.mkdir()
        for k in range(args.n):
            src = ROOT / ("exercises" if k % 3 == 2 else "solutions") / "01_patterns.ipynb"
            (subs / f"learner{k:02d}_01_patterns.ipynb").write_bytes(src.read_bytes())
        report, table = Path(tmp) / "r.json", Path(tmp) / "g.csv"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "saattn_edu.cli", "grade", "--all", str(subs), "--report", str(report),
                        "--csv", str(table), "--jobs", str(args.jobs)], check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp)
        wall = time.perf_counter() - start
        rows = list(csv.DictReader(table.open()))
        seconds = [n["seconds"] for n in json.loads(report.read_text())["notebooks"]]
    assert len(rows) == args.n, f"{len(rows)} rows for {args.n} submissions"
    full = sum(r["total"] == "24" for r in rows)
    print(f"{args.n} submissions, --jobs {args.jobs}: {wall:.1f} s wall; per submission mean "
          f"{sum(seconds) / len(seconds):.1f} s, slowest {max(seconds):.1f} s; {full} with full points; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
