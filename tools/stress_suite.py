"""Run the whole test suite (README's `python -m pytest -q -n 2`) several times in a row on a
machine kept busy on purpose, to show that no test depends on timing.

    python tools/stress_suite.py [--runs 3] [--busy 4] [--log benchmarks/RESULTS-stress.md]

Run it from the environment README's test command makes (.venv-test), or any environment
with the test extras. `--busy N` starts N processes that spin on the CPU (like
`stress --cpu N`) for the length of the runs, then stops them. Each run's pytest summary, its
exit status, how long it took and the load average seen during it (sampled every 15 s) are
printed and, with --log, appended to that file as a table row. Exits 0 only when every run
passed (pytest exit status 0)."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPIN = "while True:\n    pass\n"


class LoadSampler(threading.Thread):
    """The 1-minute load average, every `every` seconds, until stopped."""

    def __init__(self, every: float = 15.0):
        super().__init__(daemon=True)
        self.every, self.samples, self.done = every, [], threading.Event()

    def run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self.done.wait(self.every):
                return


def run_suite(pytest_args: list) -> tuple:
    """(exit status, the summary line, seconds, [load averages], FAILED lines) of one run."""
    sampler = LoadSampler()
    sampler.start()
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", *pytest_args], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.monotonic() - start
    sampler.done.set()
    sampler.join()
    lines = proc.stdout.strip().splitlines()
    summary = next((ln for ln in reversed(lines) if re.search(r"\d+ (passed|failed|error)", ln)),
                   lines[-1] if lines else "(no output)")
    failed = [ln for ln in lines if ln.startswith(("FAILED", "ERROR"))]
    return proc.returncode, summary.strip("= "), seconds, sampler.samples, failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs in a row (default 3)")
    ap.add_argument("--busy", type=int, default=4, help="CPU-spinning processes during the runs (default 4)")
    ap.add_argument("--log", help="append one markdown table row per run to this file")
    ap.add_argument("pytest_args", nargs="*", default=["-q", "-n", "2"],
                    help="what to pass to pytest (default: README's `-q -n 2`)")
    args = ap.parse_args()
    busy = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.busy)]
    results = []
    try:
        for i in range(1, args.runs + 1):
            rc, summary, seconds, loads, failed = run_suite(args.pytest_args)
            peak = max(loads) if loads else float("nan")
            mean = sum(loads) / len(loads) if loads else float("nan")
            results.append(rc)
            row = (f"| {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} | {i}/{args.runs} | {args.busy} "
                   f"| {os.cpu_count()} | {mean:.1f} (max {peak:.1f}) | {seconds / 60:.1f} min | {rc} | {summary} |")
            print(row, flush=True)
            for line in failed:
                print(f"    {line}", flush=True)
            if args.log:
                with open(args.log, "a", encoding="utf-8") as fh:
                    fh.write(row + "\n")
                    fh.writelines(f"|   |   |   |   |   |   |   | {line} |\n" for line in failed)
    finally:
        for p in busy:
            p.kill()
            p.wait()
    return 0 if results and all(rc == 0 for rc in results) else 1


if __name__ == "__main__":
    sys.exit(main())
