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
    known = sorted(p.stem for p in here.glob("bench_*.py"))
    if any(arg in ("-h", "--help") for arg in argv):
        print(f"usage: python -m benchmarks [NAME ...]\n\n{__doc__.strip()}\n\nNAME: {', '.join(known)}")
        return 0
    unknown = [name for name in argv if name not in known]
    if unknown:
        print(f"no benchmark {', '.join(unknown)}: the benchmarks are {', '.join(known)}", file=sys.stderr)
        return 2
    names = argv or known
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
