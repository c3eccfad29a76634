"""Guided-audio render speed and peak memory, for each voice engine, 20 and 60 minutes, with a
cold and a warm cue cache. Each case runs in a fresh process (its own peak memory, VmHWM).

Speed is a multiple of real time: the track's length divided by the time the render took
(voice loading, synthesis, mixing and ogg/vorbis encoding; not Python's start-up).

    python bench/audio_render.py [--engines espeak,neural] [--minutes 20,60]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AIMS = {"espeak": 200.0, "neural": 30.0, "warm": 300.0}
MEMORY_AIMS = {"espeak": 100.0, "neural": 400.0}


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def case(engine: str, minutes: int, cache: Path, out: Path) -> None:
    """One render, in this (child) process; prints its figures as JSON."""
    from backrub.audio.encoder import FORMATS
    from backrub.audio.render import render
    from backrub.audio.voices import choose
    from backrub.catalogue_cache import cached_catalogue
    from backrub.cli.inputs import parse_request
    from backrub.core.planner import build_plan, rules_for
    from backrub.core.safety import assess

    catalogue = cached_catalogue(cache / "catalogue")
    request = parse_request(
        catalogue,
        minutes=str(minutes),
        mode="partner",
        focus=["shoulders=8", "lower-back=6"],
        pressure="medium",
        oil=True,
    )
    verdict = assess(catalogue, [])
    plan = build_plan(catalogue, request, verdict)
    before = peak_mb()
    start = time.perf_counter()
    result = render(
        catalogue,
        plan,
        rules_for(request, verdict),
        output=out,
        fmt=FORMATS["ogg"],
        voice=choose(engine),
        cache_dir=cache,
    )
    elapsed = time.perf_counter() - start
    figures = {
        "seconds": result.seconds,
        "elapsed": elapsed,
        "synthesised": result.synthesised,
        "from_cache": result.from_cache,
        "peak_mb": peak_mb(),
        "imports_mb": before,
    }
    print(json.dumps(figures))


def run(engine: str, minutes: int, cache: Path, out: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--case", engine, str(minutes), str(cache), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engines", default="espeak,neural")
    parser.add_argument("--minutes", default="20,60")
    parser.add_argument("--case", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        engine, minutes, cache, out = args.case
        case(engine, int(minutes), Path(cache), Path(out))
        return
    print("ogg/vorbis, partner mode, ambient bed on; speed = track length / render time")
    print(
        f"{'engine':8} {'track':>6} {'cache':5} {'render':>8} {'speed':>9} {'new':>4} {'peak':>8}"
    )
    for engine in args.engines.split(","):
        peaks: dict[str, list[float]] = {"cold": [], "warm": []}
        for minutes in (int(m) for m in args.minutes.split(",")):
            work = Path(tempfile.mkdtemp(prefix="backrub-audio-bench-"))
            try:
                for label in ("cold", "warm"):
                    f = run(engine, minutes, work / "cache", work / "track.ogg")
                    speed = f["seconds"] / f["elapsed"]
                    aim = AIMS["warm" if label == "warm" else engine]
                    peaks[label].append(f["peak_mb"])
                    print(
                        f"{engine:8} {minutes:>4} m {label:5} {f['elapsed']:7.2f}s "
                        f"{speed:8.0f}x {int(f['synthesised']):>4} {f['peak_mb']:6.0f} MB"
                        f"   (aim ≥ {aim:.0f}x: {'met' if speed >= aim else 'MISSED'})"
                    )
            finally:
                shutil.rmtree(work)
        aim_mb = MEMORY_AIMS[engine]
        highest = max(max(p) for p in peaks.values())
        ratios = ", ".join(f"{k} {max(p) / min(p):.2f}x" for k, p in peaks.items())
        print(
            f"{engine}: peak memory, longest/shortest track: {ratios} "
            f"(aim: about 1x); highest {highest:.0f} MB "
            f"(aim under {aim_mb:.0f} MB: {'met' if highest < aim_mb else 'MISSED'})"
        )


if __name__ == "__main__":
    main()
