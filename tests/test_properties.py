"""Property tests (hypothesis + hypothesmith). Few examples by default to keep the suite
fast; `benchmarks/fuzz.py --max-examples N` runs the same properties for longer."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.helpers import HANG
from tests.fuzzing import check_bytes, check_program, programs, snippet_programs, spliced_programs

pytestmark = pytest.mark.slow  # Hypothesis searches: the whole suite runs them

# hypothesmith searches the grammar (a second or more per program): few of those by default;
# the cheap snippet programs get more. CKPTLINT_FUZZ_EXAMPLES sets both.
N = int(os.environ.get("CKPTLINT_FUZZ_EXAMPLES", "0"))
GRAMMAR = settings(max_examples=N or 3, deadline=None, suppress_health_check=list(HealthCheck), database=None)
FAST = settings(max_examples=N or 60, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@GRAMMAR
@given(programs())
@example("import torch\nx = torch.load(torch.load(p))\n")
@example("import torch\ntorch.save(m, f, _use_new_zipfile_serialization=False,)\n")
@example("from torch import load as L\nx = L()\n")
def test_generated_programs(text):
    check_program(text)


@GRAMMAR
@given(spliced_programs())
def test_generated_programs_with_torch_calls(text):
    check_program(text)


@FAST
@given(snippet_programs())
def test_snippet_programs(text):
    check_program(text)


@FAST
@given(st.binary(max_size=300) | st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")))
@example(b"\xef\xbb\xbf# -*- coding: latin-1 -*-\n")
@example(b"# coding: utf-16\nx = 1\n")
@example(b"\xff\xfe")
def test_arbitrary_bytes(data):
    check_bytes(data)


def test_fuzz_script_runs():
    import subprocess
    import sys

    from tests.helpers import ROOT, cli_env

    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "fuzz.py"), "--max-examples", "5",
         "--only", "bytes", "--only", "snippets"],
        capture_output=True, text=True, env=cli_env(), timeout=HANG,
    )
    assert proc.returncode == 0, proc.stderr
    assert "bytes: 5 examples, no failure" in proc.stdout
    assert "snippets: 5 examples, no failure" in proc.stdout
