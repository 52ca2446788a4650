"""Fixes that fit the project they land in: its oldest Python, its line length, its quotes,
and the layout of the call they edit. Snippets in the shape of real training code."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from tests.helpers import run_cli, run_json


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


STRIP = """\
    import torch


    def load_pretrained(model, path):
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {k.replace("module.", ""): v for k, v in state.items()}
        model.load_state_dict(state)
"""


def test_requires_python_below_39_gets_the_slice_form(tmp_path):
    write(tmp_path / "pyproject.toml", '[project]\nname = "p"\nrequires-python = ">=3.7"\n')
    f = write(tmp_path / "pkg" / "load.py", STRIP)
    proc, data = run_json("pkg", cwd=tmp_path)
    (d,) = data
    assert "Python 3.7, `requires-python` in pyproject.toml, has no `removeprefix`" in d["help"]
    run_cli("pkg", "--fix", cwd=tmp_path)
    fixed = f.read_text()
    assert '{(k[len("module."):] if k.startswith("module.") else k): v' in fixed
    assert "removeprefix" not in fixed
    ast.parse(fixed, feature_version=(3, 7))


def test_target_version_wins_over_requires_python(tmp_path):
    write(tmp_path / "pyproject.toml",
          '[project]\nname = "p"\nrequires-python = ">=3.7"\n\n[tool.ckptlint]\ntarget-version = "py310"\n')
    f = write(tmp_path / "load.py", STRIP)
    run_cli("load.py", "--fix", cwd=tmp_path)
    assert '{k.removeprefix("module."): v' in f.read_text()


def test_no_floor_means_removeprefix(tmp_path):
    f = write(tmp_path / "load.py", STRIP)
    run_cli("load.py", "--fix", cwd=tmp_path)
    assert '{k.removeprefix("module."): v' in f.read_text()


def test_keyword_goes_on_its_own_line_in_a_one_argument_per_line_call(tmp_path):
    f = write(tmp_path / "infer.py", """\
        import torch


        def restore(model, ckpt_file):
            model.load_state_dict(
                torch.load(
                    ckpt_file,
                    weights_only=True,
                )
            )
    """)
    run_cli("infer.py", "--fix", cwd=tmp_path)
    assert f.read_text() == textwrap.dedent("""\
        import torch


        def restore(model, ckpt_file):
            model.load_state_dict(
                torch.load(
                    ckpt_file,
                    weights_only=True,
                    map_location="cpu",
                )
            )
    """)


def test_configured_line_length_is_kept(tmp_path):
    write(tmp_path / "pyproject.toml", "[tool.ruff]\nline-length = 79\n")
    f = write(tmp_path / "infer.py", """\
        import torch


        def restore(model, checkpoint_directory, name):
            model.load_state_dict(torch.load(checkpoint_directory / name, weights_only=True))
    """)
    run_cli("infer.py", "--fix", cwd=tmp_path)
    lines = f.read_text().splitlines()
    assert lines[4] == "    model.load_state_dict(torch.load(checkpoint_directory / name, weights_only=True,"
    assert lines[5] == "                                     map_location=\"cpu\"))"
    # without a configured length the keyword stays on the line
    write(tmp_path / "pyproject.toml", "[tool.ruff]\n")
    g = write(tmp_path / "other.py", "import torch\nm.load_state_dict(torch.load(p, weights_only=True))\n")
    run_cli("other.py", "--fix", cwd=tmp_path)
    assert g.read_text() == "import torch\nm.load_state_dict(torch.load(p, weights_only=True, map_location=\"cpu\"))\n"


@pytest.mark.slow
def test_fix_run_reports_cross_file_findings_as_they_are_after_the_fixes(tmp_path):
    """The CKPT001 fix in train.py makes evaluate.py's load consistent: the same run must not
    still list the CKPT010 that a second run would not."""
    write(tmp_path / "pyproject.toml", '[project]\nname = "cls"\n')
    write(tmp_path / "models.py", """\
        import torch.nn as nn


        class Classifier(nn.Module):
            pass
    """)
    write(tmp_path / "train.py", """\
        import torch

        from models import Classifier


        def main():
            model = Classifier()
            torch.save(model, "best.pt")
    """)
    write(tmp_path / "evaluate.py", """\
        import torch

        from models import Classifier


        def main():
            model = Classifier()
            model.load_state_dict(torch.load("best.pt", map_location="cpu", weights_only=True))
    """)
    args = (".", "--select", "CKPT001,CKPT010", "--unsafe-fixes")
    _, before = run_json(*args, cwd=tmp_path)
    assert sorted(d["code"] for d in before) == ["CKPT001", "CKPT010"]
    proc = run_cli(*args, "--fix", cwd=tmp_path)
    assert "CKPT010" not in proc.stdout, proc.stdout
    assert "Found 1 error (1 fixed, 0 remaining)." in proc.stdout
    assert proc.returncode == 0
    _, after = run_json(*args, cwd=tmp_path)
    assert after == []


@pytest.mark.slow
def test_python_requires_of_a_setup_py_project_is_its_floor(tmp_path):
    write(tmp_path / "setup.py", 'from setuptools import setup\n\nsetup(name="lavis", python_requires=">=3.7.0")\n')
    f = write(tmp_path / "lavis" / "load.py", STRIP)
    _, data = run_json("lavis", cwd=tmp_path)
    assert "Python 3.7, `python_requires` in setup.py, has no `removeprefix`" in data[0]["help"]
    run_cli("lavis", "--fix", cwd=tmp_path)
    assert "removeprefix" not in f.read_text()
    # setup.cfg, next to a pyproject.toml that says nothing about Python
    g = write(tmp_path / "other" / "load.py", STRIP)
    write(tmp_path / "other" / "pyproject.toml", '[tool.black]\nline-length = 100\n')
    write(tmp_path / "other" / "setup.cfg", "[options]\npython_requires = >=3.8\n")
    run_cli("other", "--fix", cwd=tmp_path)
    assert '(k[len("module."):] if k.startswith("module.") else k)' in g.read_text()
