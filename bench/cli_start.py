"""Cold start of `backrub plan --json` as a multiple of a bare `python -c pass`, same run.

The catalogue cache is warmed first (a fresh cache directory), as it is after the first run on a
machine. Runs alternate so machine noise hits both sides alike; medians are compared.

    python bench/cli_start.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    cache = Path(tempfile.mkdtemp(prefix="backrub-bench-"))
    env = {**os.environ, "BACKRUB_CACHE_DIR": str(cache)}
    bare = [sys.executable, "-c", "pass"]
    backrub_bin = Path(sys.executable).with_name("backrub")
    plan = [str(backrub_bin), "plan", "--json", "--mode", "partner", "--focus", "shoulders=8"]
    cold_cache = wall(plan, env)  # validates the catalogue and writes the cache
    base, cli = [], []
    for _ in range(runs):
        base.append(wall(bare, env))
        cli.append(wall(plan, env))
    shutil.rmtree(cache)
    b, c = statistics.median(base), statistics.median(cli)
    print(f"python -c pass           median {b * 1000:7.1f} ms")
    print(f"backrub plan --json      median {c * 1000:7.1f} ms  ({runs} runs)")
    print(f"first run (cold cache)          {cold_cache * 1000:7.1f} ms")
    print(f"ratio: {c / b:.1f}x bare Python start (aim: under 8x)")


if __name__ == "__main__":
    main()
