"""`ckptlint check --runtime` / `runtime = true`: both phases, one report, one exit code."""

from __future__ import annotations

import json

import pytest

from tests.helpers import run_cli


def _project(tmp_path, torch, runtime_key=""):
    torch.save(torch.nn.DataParallel(torch.nn.Linear(2, 2)).state_dict(), tmp_path / "w.pt")
    (tmp_path / "models.py").write_text(
        "import torch\n\ndef build():\n    return torch.nn.Linear(2, 2)\n", encoding="utf-8"
    )
    (tmp_path / "pyproject.toml").write_text(
        "[tool.ckptlint]\n" + runtime_key
        + '[[tool.ckptlint.checkpoints]]\npath = "w.pt"\nmodel = "models:build"\n',
        encoding="utf-8",
    )
    (tmp_path / "train.py").write_text("import torch\nsd = torch.load('w.pt')\n", encoding="utf-8")


@pytest.mark.slow
def test_check_runtime_reports_both_phases(tmp_path, torch):
    _project(tmp_path, torch)
    proc = run_cli("check", "train.py", "--runtime", "--output-format", "json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    got = sorted((d["code"], d["filename"].rsplit("/", 1)[-1]) for d in data)
    assert got == [("CKPT002", "train.py"), ("CKPT004", "train.py"), ("CKPT107", "w.pt")]
    runtime = next(d for d in data if d["code"] == "CKPT107")
    assert "module." in runtime["message"] and "key" in runtime


@pytest.mark.slow
def test_runtime_true_in_config_and_exit_zero(tmp_path, torch):
    _project(tmp_path, torch, runtime_key="runtime = true\n")
    proc = run_cli("check", "models.py", cwd=tmp_path)
    assert proc.returncode == 1
    assert "w.pt: CKPT107" in proc.stdout
    assert run_cli("check", "models.py", "--exit-zero", cwd=tmp_path).returncode == 0
    # without the flag or the key, the static pass alone runs
    (tmp_path / "pyproject.toml").write_text(
        (tmp_path / "pyproject.toml").read_text().replace("runtime = true\n", ""), encoding="utf-8"
    )
    proc = run_cli("check", "models.py", cwd=tmp_path)
    assert proc.returncode == 0 and "CKPT107" not in proc.stdout


@pytest.mark.slow
def test_verify_honours_ignore(tmp_path, torch):
    _project(tmp_path, torch, runtime_key='ignore = ["CKPT107"]\n')
    proc = run_cli("verify", "--output-format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout) == []
