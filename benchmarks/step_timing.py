"""Time the D step, the G step and the whole iteration of every method: `lipgan bench`, as a script.

    python benchmarks/step_timing.py --arch sngan-cnn --batch 64 --n-dis 5 --repeats 10 --json bench.json

It takes the same flags as `lipgan bench` (see `--help`) and runs the same function,
`lipgan.experiments.bench.bench`; docs/performance.md records its tables and how to read them.
"""

from __future__ import annotations

import sys

from lipgan.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", *sys.argv[1:]]))
