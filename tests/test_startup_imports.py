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


# the modules a run has loaded when it exits (a deferred stand-in, ckptlint.lazy, is not loaded);
# importlib.import_module, which the rule registry uses, is not seen by -X importtime
LOADED = (
    "import atexit, json, runpy, sys\n"
    "atexit.register(lambda: print(json.dumps(sorted(n for n, m in list(sys.modules.items())\n"
    "    if type(m).__name__ != '_Deferred')), file=sys.stderr))\n"
    "sys.argv = ['ckptlint'] + sys.argv[1:]\n"
    "runpy.run_module('ckptlint', run_name='__main__')\n"
)


def _loaded(*args, cwd):
    import json

    proc = subprocess.run([sys.executable, "-c", LOADED, *args], cwd=cwd, env=cli_env(), capture_output=True,
                          text=True, timeout=HANG)
    assert "Traceback" not in proc.stderr, proc.stderr
    return set(json.loads(proc.stderr.strip().splitlines()[-1]))


def test_cache_hit_imports_no_rule_and_no_parser(tmp_path):
    """A run served by the cache needs the rule codes (rules.rule_index), not the rule
    modules, and no Python parser of any kind: start-up is what such a run costs."""
    (tmp_path / "bad.py").write_text("import torch\nsd = torch.load(path)\n")
    cold = _loaded("check", "bad.py", cwd=tmp_path)
    assert any(m.startswith("ckptlint.rules.ckpt") for m in cold) and "ast" in cold  # seen when used
    warm = _loaded("check", "bad.py", "--output-format", "json", cwd=tmp_path)
    assert [m for m in warm if m.startswith("ckptlint.rules.ckpt")] == []
    assert not {"ast", "inspect", "tokenize", "ckptlint.engine.source", "ckptlint.workspace.write"} & warm


def test_rule_options_load_only_the_rules_they_name(tmp_path):
    """Reading `[tool.ckptlint.rule-options.CODE]` (checked against the rule on every run)
    imports that rule's module, not the other rules, on a run the cache serves."""
    (tmp_path / "pyproject.toml").write_text("[tool.ckptlint.rule-options.CKPT001]\n")
    (tmp_path / "bad.py").write_text("import torch\nsd = torch.load(path)\n")
    _loaded("check", "bad.py", cwd=tmp_path)
    warm = _loaded("check", "bad.py", "--output-format", "json", cwd=tmp_path)
    assert [m for m in warm if m.startswith("ckptlint.rules.ckpt")] == ["ckptlint.rules.ckpt001_whole_model_save"]
