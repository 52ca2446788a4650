"""`ckptlint server` without the `lsp` extra says what to install instead of a traceback."""

from __future__ import annotations

import os

from tests.helpers import ROOT, run_cli


def test_server_without_pygls_explains_the_extra(tmp_path):
    fake = tmp_path / "pygls"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('No module named pygls (simulated)')\n")
    proc = run_cli("server", PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    assert proc.returncode == 2
    assert "pip install '.[lsp]'" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_server_rejects_unknown_arguments():
    proc = run_cli("server", "--port", "8080")
    assert proc.returncode == 2 and "unexpected arguments" in proc.stderr


def test_server_takes_the_rule_selection_of_the_command_line():
    proc = run_cli("server", "--help")
    assert proc.returncode == 0
    for option in ("--select", "--extend-select", "--ignore", "--config"):
        assert option in proc.stdout
    proc = run_cli("server", "--select", "CKPT002", "--bogus")
    assert proc.returncode == 2 and "unexpected arguments for `server`: --bogus" in proc.stderr
