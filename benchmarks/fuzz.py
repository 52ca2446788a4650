"""Long fuzz run of the issue-6 properties (the test suite runs a handful of examples).

    python benchmarks/fuzz.py --max-examples 2000 [--only snippets|grammar|spliced|bytes]

Properties: the linter never raises, every fix result parses, fixing twice == fixing once,
each fix keeps the bytes outside its edits, CRLF stays CRLF, arbitrary bytes never crash.
Exits 1 on the first counterexample (hypothesis prints it, shrunk)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.fuzzing import (  # noqa: E402
    check_bytes, check_program, programs, snippet_programs, spliced_programs,
)

TARGETS = {
    "snippets": (snippet_programs, check_program),
    "spliced": (spliced_programs, check_program),
    "grammar": (programs, check_program),
    "bytes": (lambda: st.binary(max_size=2000), check_bytes),
}


def run(name: str, n: int) -> int:
    strategy, prop = TARGETS[name]
    count = [0]

    @settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(strategy())
    def fuzz(value):
        count[0] += 1
        prop(value)

    start = time.monotonic()
    fuzz()
    print(f"{name}: {count[0]} examples, no failure ({time.monotonic() - start:.0f} s)", flush=True)
    return count[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=500)
    parser.add_argument("--only", choices=sorted(TARGETS), action="append")
    args = parser.parse_args()
    try:
        for name in args.only or list(TARGETS):
            run(name, args.max_examples)
    except Exception as exc:  # hypothesis has printed the falsifying example
        print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
