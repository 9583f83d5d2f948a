"""Run every benchmarks/bench_*.py (or those named on the command line) and print name=value lines.

Each benchmark starts and stops the real services it measures and reports ratios against a
baseline measured in the same run, never absolute wall-clock verdicts.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    names = argv or sorted(p.stem for p in here.glob("bench_*.py"))
    failed = 0
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"# {name}: {(module.__doc__ or '').strip().splitlines()[0]}", flush=True)
        try:
            figures = module.run()
        except Exception as exc:  # one failing benchmark must not hide the others' figures
            print(f"# {name} failed: {exc!r}", flush=True)
            failed += 1
            continue
        for key, value in figures.items():
            print(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
