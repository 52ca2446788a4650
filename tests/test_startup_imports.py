"""What start-up imports: no LibCST, pygls or torch on a file without triggers, and none
of them on a cache hit (checked with `python -X importtime`, not with timings)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.helpers import HANG, cli_env

HEAVY = ("libcst", "pygls", "torch", "lsprotocol")


def _imported(*args, cwd):
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "ckptlint", *args],
                          cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=HANG)
    assert "Traceback" not in proc.stderr, proc.stderr
    return {m.group(1).strip() for m in re.finditer(r"^import time:.*\|\s*(\S+)\s*$", proc.stderr, re.M)}


def _heavy(modules):
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def test_file_without_triggers_imports_nothing_heavy(tmp_path):
    (tmp_path / "plain.py").write_text("def f(x):\n    return x + 1\n")
    assert _heavy(_imported("check", "plain.py", cwd=tmp_path)) == []
    assert _heavy(_imported("check", "plain.py", "--no-cache", cwd=tmp_path)) == []


def test_cache_hit_imports_nothing_heavy(tmp_path):
    # a path no other file can save: a literal one would make the result depend on every
    # file of the folder, whose fresh mtimes (< 2 s) are not cached
    (tmp_path / "bad.py").write_text("import torch\nsd = torch.load(path)\n")
    cold = _imported("check", "bad.py", cwd=tmp_path)
    assert "libcst" in {m.split(".")[0] for m in cold}  # the test can see the import
    warm = _imported("check", "bad.py", cwd=tmp_path)
    assert _heavy(warm) == []
