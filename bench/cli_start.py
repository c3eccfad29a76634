"""Cold start of `backrub plan --json` as a multiple of a bare `python -c pass`, same run.

The catalogue cache is warmed first (a fresh cache directory), as it is after the first run on a
machine. Runs alternate so machine noise hits both sides alike; medians are compared. The data
directory is fresh too: no history, so `plan` opens no database. Then one session is saved and
`plan` timed again, learning from that history (it opens the database, as `start` does).

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
    data = Path(tempfile.mkdtemp(prefix="backrub-bench-data-"))
    env = {**os.environ, "BACKRUB_CACHE_DIR": str(cache), "BACKRUB_DATA_DIR": str(data)}
    env.pop("BACKRUB_DATABASE_URL", None)
    bare = [sys.executable, "-c", "pass"]
    backrub_bin = Path(sys.executable).with_name("backrub")
    plan = [str(backrub_bin), "plan", "--json", "--mode", "partner", "--focus", "shoulders=8"]
    cold_cache = wall(plan, env)  # validates the catalogue and writes the cache
    base, cli = [], []
    for _ in range(runs):
        base.append(wall(bare, env))
        cli.append(wall(plan, env))
    one = ["--none", "--yes", "--before", "7", "--after", "6", "--speed", "1000", "--minutes", "15"]
    subprocess.run(
        [str(backrub_bin), "start", *one], env=env, check=True, stdout=subprocess.DEVNULL
    )
    learned = [wall(plan, env) for _ in range(runs)]
    shutil.rmtree(cache)
    shutil.rmtree(data)
    b, c, h = statistics.median(base), statistics.median(cli), statistics.median(learned)
    print(f"python -c pass           median {b * 1000:7.1f} ms")
    print(f"backrub plan --json      median {c * 1000:7.1f} ms  ({runs} runs)")
    print(f"first run (cold cache)          {cold_cache * 1000:7.1f} ms")
    print(f"ratio: {c / b:.1f}x bare Python start (aim: under 8x)")
    print(f"with a history database  median {h * 1000:7.1f} ms  ({h / b:.1f}x)")


if __name__ == "__main__":
    main()
