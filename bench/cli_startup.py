"""How long `mason --help` takes, against a bare `python -c pass` baseline in the same run.

    python bench/cli_startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def _time(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    base = _time([sys.executable, "-c", "pass"], args.repeat)
    help_ = _time([sys.executable, "-m", "mason", "--help"], args.repeat)
    imp = _time([sys.executable, "-c", "import mason"], args.repeat)
    print(f"python -c pass      {base * 1000:7.0f} ms (baseline)")
    print(f"python -c 'import mason' {imp * 1000:7.0f} ms  ({imp / base:.1f}x baseline)")
    print(f"mason --help        {help_ * 1000:7.0f} ms  ({help_ / base:.1f}x baseline; target <= 500 ms)")


if __name__ == "__main__":
    main()
