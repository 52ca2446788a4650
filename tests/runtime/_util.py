"""Shared helpers for the runtime tests: building checkpoints and running the CLI."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

from tests.helpers import HANG

REPO = pathlib.Path(__file__).resolve().parents[2]


def cli_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_cli(*args, cwd=None, timeout=HANG) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ckptlint", "verify", *map(str, args)],
        cwd=str(cwd) if cwd else None, env=cli_env(), capture_output=True, text=True, timeout=timeout,
    )


def run_json(*args, cwd=None):
    proc = run_cli(*args, "--output-format", "json", cwd=cwd)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    data = json.loads(proc.stdout)
    assert isinstance(data, list)
    assert all(len(d["message"]) <= 100 for d in data), [d["message"] for d in data]
    return proc, data


def codes(diags) -> list:
    return sorted(d["code"] if isinstance(d, dict) else d.code for d in diags)


def write_project(root: pathlib.Path, models_src: str, toml: str) -> None:
    (root / "proj_models").mkdir(parents=True, exist_ok=True)
    (root / "proj_models" / "__init__.py").write_text("")
    (root / "proj_models" / "nets.py").write_text(models_src)
    (root / "pyproject.toml").write_text(toml)
