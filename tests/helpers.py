"""Shared test helpers: run the real CLI in a subprocess, lint a snippet in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# seconds: a subprocess still running then is stuck, not slow. Only a guard against hangs:
# no test measures speed (the suite must pass on a loaded machine).
HANG = 600


def cli_env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("CKPTLINT_DEBUG", None)
    env.update(extra)
    return env


def run_cli(*args, cwd=None, input=None, **env):
    """`python -m ckptlint ARGS` as a user runs it; returns CompletedProcess (text)."""
    return subprocess.run(
        [sys.executable, "-m", "ckptlint", *map(str, args)],
        cwd=cwd, env=cli_env(**env), capture_output=True, text=True, input=input, timeout=HANG,
    )


def run_json(*args, cwd=None):
    proc = run_cli(*args, "--output-format", "json", cwd=cwd)
    assert "Traceback" not in proc.stderr, proc.stderr
    diags = json.loads(proc.stdout)
    assert all(len(d["message"]) <= 100 for d in diags), [d["message"] for d in diags]  # headlines
    return proc, diags


def settings(config=None, root=None):
    from ckptlint.workspace.config import settings_from_data

    root = Path(root or ROOT)
    return settings_from_data({"tool": {"ckptlint": dict(config or {})}}, root / "pyproject.toml")


def check(source: str, codes=None, config=None, fix=False, unsafe=False, path="/virtual/example.py",
          module_name=None):
    """(final text, remaining diagnostics, applied) for one snippet."""
    from ckptlint.engine.lint import lint, rules_for

    s = settings(config)
    result = lint(source, s, path=path, module_name=module_name, rules=rules_for(codes or s.enabled_codes()),
                  fix=fix, unsafe_fixes=unsafe)
    return result.fixed if result.fixed is not None else source, result.diagnostics, result.applied


def copy_working_tree(dst: Path) -> None:
    """This repository's files as they are in the working tree (tracked, and untracked ones
    git does not ignore) copied into `dst`: a fresh clone that includes uncommitted edits."""
    import shutil

    def listed(*extra):
        out = subprocess.run(["git", "ls-files", "-z", *extra], cwd=ROOT, capture_output=True, text=True, check=True)
        return out.stdout.split("\0")

    for name in filter(None, listed() + listed("--others", "--exclude-standard")):
        src = ROOT / name
        if not src.is_file():
            continue  # deleted in the working tree
        (dst / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst / name)
