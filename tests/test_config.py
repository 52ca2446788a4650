"""[tool.ckptlint]: discovery per linted path, validation errors, torch-version inference."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.helpers import run_cli, run_json

BAD = "import torch\nsd = torch.load('m.pt')\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.parametrize(
    "body,needle",
    [
        ("[tool.ckptlint]\nselct = ['CKPT002']\n", "selct"),
        ("[tool.ckptlint]\nselect = 'CKPT002'\n", "select"),
        ("[tool.ckptlint]\nmax-file-size = 'big'\n", "max-file-size"),
        ("[tool.ckptlint]\nselect = ['CKPT999']\n", "CKPT999"),
        ("[tool.ckptlint]\nper-file-ignores = { 'a.py' = 'CKPT002' }\n", "per-file-ignores"),
        ("[tool.ckptlint\nselect = []\n", "line 1"),
        ("[tool.ckptlint]\ntorch-version = 'latest'\n", "torch-version"),
        ("[tool.ckptlint.rule-options.CKPT999]\nx = 1\n", "`rule-options.CKPT999`: no rule has this code"),
        ("[tool.ckptlint.rule-options.CKPT001]\nx = 1\n", "`rule-options.CKPT001.x`: CKPT001 has no option `x`"),
        ("[tool.ckptlint]\nrule-options = { CKPT001 = 1 }\n", "`rule-options`: must be a table of tables"),
    ],
)
def test_config_errors_exit_2_naming_file_and_key(tmp_path, body, needle):
    write(tmp_path / "pyproject.toml", body)
    write(tmp_path / "a.py", BAD)
    proc = run_cli("a.py", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "pyproject.toml" in proc.stderr and needle in proc.stderr
    assert "Traceback" not in proc.stderr
    # --exit-zero never hides a configuration error
    assert run_cli("a.py", "--exit-zero", cwd=tmp_path).returncode == 2


def test_non_positive_max_file_size_names_what_is_wrong(tmp_path):
    write(tmp_path / "pyproject.toml", "[tool.ckptlint]\nmax-file-size = -1\n")
    write(tmp_path / "a.py", BAD)
    proc = run_cli("a.py", cwd=tmp_path)
    assert proc.returncode == 2
    assert "must be a positive integer, got int -1" in proc.stderr


@pytest.mark.slow
def test_nearest_pyproject_per_path_whatever_the_cwd(tmp_path):
    write(tmp_path / "proj_a/pyproject.toml", "[tool.ckptlint]\nignore = ['CKPT004']\n")
    write(tmp_path / "proj_a/src/x.py", BAD)
    write(tmp_path / "proj_b/pyproject.toml", "[tool.ckptlint]\nignore = ['CKPT002']\n")
    write(tmp_path / "proj_b/y.py", BAD)
    _, data = run_json("proj_a", "proj_b", cwd=tmp_path)
    got = sorted((Path(d["filename"]).name, d["code"]) for d in data)
    assert got == [("x.py", "CKPT002"), ("y.py", "CKPT004")]
    # the same from inside another folder
    _, data = run_json(str(tmp_path / "proj_a/src/x.py"), cwd=tmp_path / "proj_b")
    assert [d["code"] for d in data] == ["CKPT002"]


def test_config_option_replaces_discovery(tmp_path):
    write(tmp_path / "pyproject.toml", "[tool.ckptlint]\nignore = ['CKPT004']\n")
    write(tmp_path / "other.toml", "[tool.ckptlint]\nselect = ['CKPT004']\n")
    write(tmp_path / "a.py", BAD)
    _, data = run_json("a.py", "--config", "other.toml", cwd=tmp_path)
    assert [d["code"] for d in data] == ["CKPT004"]


def test_per_file_ignores_relative_to_the_declaring_pyproject(tmp_path):
    write(tmp_path / "repo/pyproject.toml", """\
        [tool.ckptlint]
        per-file-ignores = { "scripts/*.py" = ["CKPT004"], "tests/**" = ["CKPT00"] }
        """)
    write(tmp_path / "repo/scripts/s.py", BAD)
    write(tmp_path / "repo/tests/unit/t.py", BAD)
    write(tmp_path / "repo/lib/scripts/deep.py", BAD)
    _, data = run_json("repo", cwd=tmp_path)
    got = sorted((Path(d["filename"]).relative_to(tmp_path / "repo").as_posix(), d["code"]) for d in data)
    assert got == [
        ("lib/scripts/deep.py", "CKPT002"), ("lib/scripts/deep.py", "CKPT004"),
        ("scripts/s.py", "CKPT002"),
    ]


def test_torch_version_from_requirement_and_from_key(tmp_path):
    write(tmp_path / "old/pyproject.toml", "[project]\nname='x'\ndependencies = ['numpy', 'torch>=2.1,<3']\n")
    write(tmp_path / "old/a.py", BAD)
    write(tmp_path / "new/pyproject.toml", "[tool.ckptlint]\ntorch-version = '2.6'\nexplicit-weights-only = true\n")
    write(tmp_path / "new/a.py", BAD)
    write(tmp_path / "none/a.py", BAD)
    _, data = run_json("old", "new", "none", "--select", "CKPT002", cwd=tmp_path)
    msgs = {Path(d["filename"]).parent.name: f'{d["message"]}\n{d["help"]}' for d in data}
    assert "torch 2.1" in msgs["old"] and "means `weights_only=False`" in msgs["old"]
    assert "torch 2.6" in msgs["new"] and "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" in msgs["new"]
    assert "before torch 2.6" not in msgs["new"]
    assert "before torch 2.6" in msgs["none"]


SETUP_PY = """\
from setuptools import setup
open("setup-py-ran", "w").close()  # never run by ckptlint: read with the AST

REQUIRED = ["numpy", "torch>=1.13,<3"]

setup(name="p", install_requires=REQUIRED)
"""


@pytest.mark.parametrize("files,source", [
    ({"setup.py": SETUP_PY}, "setup.py"),
    ({"setup.py": 'from setuptools import setup\nsetup(name="p", install_requires=["torch >= 1.13"])\n'},
     "setup.py"),
    ({"setup.cfg": "[metadata]\nname = p\n\n[options]\ninstall_requires =\n    numpy\n    torch>=1.13\n"},
     "setup.cfg"),
    # every requirement file may be what users install: the lowest bound counts
    ({"requirements.txt": "-r requirements-base.txt\ntorch>=2.2  # training\n",
      "requirements-base.txt": "--index-url https://example.org\ntorch==1.13\n"}, "requirements-base.txt"),
    # pyproject.toml without a torch requirement: the files beside it still say it
    ({"pyproject.toml": "[project]\nname = 'p'\ndynamic = ['dependencies']\n",
      "requirements.txt": "torch>=1.13\n"}, "requirements.txt"),
    ({"pyproject.toml": "[tool.poetry.dependencies]\npython = '^3.9'\ntorch = '^1.13'\n"}, "pyproject.toml"),
])
def test_torch_floor_from_each_requirements_file(tmp_path, files, source):
    for name, text in files.items():
        write(tmp_path / name, text)
    write(tmp_path / "pkg/a.py", BAD)
    _, data = run_json("pkg", "--select", "CKPT002", cwd=tmp_path)
    assert [d["message"] for d in data] == ["`torch.load` without `weights_only=`: the file can run code on torch 1.13"]
    assert data[0]["help"].startswith(f"Without it, on torch 1.13 (the `torch` requirement in {source}) it means")
    assert not (tmp_path / "setup-py-ran").exists()


@pytest.mark.parametrize("files", [
    {"requirements.txt": "torch>=2.6\n"},
    {"setup.py": 'from setuptools import setup\nsetup(install_requires=["torch>=2.7"])\n'},
    {"pyproject.toml": "[project]\nname = 'p'\ndependencies = ['torch>=2.6']\n"},
])
def test_no_ckpt002_where_the_floor_is_2_6_unless_asked(tmp_path, files):
    for name, text in files.items():
        write(tmp_path / name, text)
    write(tmp_path / "pkg/a.py", BAD)
    _, data = run_json("pkg", cwd=tmp_path)
    assert [d["code"] for d in data] == ["CKPT004"]  # the other rules still run
    # the hygiene check, on request: it says what the omitted keyword means there
    config = tmp_path / "ckptlint.toml"
    config.write_text("[tool.ckptlint]\nexplicit-weights-only = true\ntorch-version = '2.6'\n")
    _, data = run_json("pkg", "--config", config, "--select", "CKPT002", cwd=tmp_path)
    assert [d["code"] for d in data] == ["CKPT002"]
    assert "before torch 2.6" not in data[0]["message"] + data[0]["help"]
    assert "means `weights_only=True`, but only while `TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD` is unset" in data[0]["help"]


@pytest.mark.slow
def test_exclude_and_extend_exclude(tmp_path):
    write(tmp_path / "pyproject.toml", "[tool.ckptlint]\nextend-exclude = ['generated/', 'legacy_*.py']\n")
    for name in ("generated/g.py", "legacy_a.py", "keep.py", "dist/b.py", "venv2/lib.py", ".tox/t.py",
                 ".mim/tools/h.py", "build/c.py"):
        write(tmp_path / name, BAD)
    write(tmp_path / "venv2/pyvenv.cfg", "home = /usr\n")
    _, data = run_json(".", cwd=tmp_path)
    # as ruff walks: its default excludes are left out, other folders (dot-folders too) are not
    assert {Path(d["filename"]).name for d in data} == {"keep.py", "h.py", "c.py"}
    # files named explicitly are linted anyway, unless --force-exclude
    _, data = run_json("legacy_a.py", "dist/b.py", cwd=tmp_path)
    assert {Path(d["filename"]).name for d in data} == {"legacy_a.py", "b.py"}
    _, data = run_json("legacy_a.py", "dist/b.py", "--force-exclude", cwd=tmp_path)
    assert data == []


def test_show_files_lists_what_is_checked_and_what_is_skipped_and_why(tmp_path):
    import subprocess

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    write(tmp_path / ".gitignore", "scratch/\n")
    write(tmp_path / "pyproject.toml", "[tool.ckptlint]\nextend-exclude = ['generated/', 'legacy_*.py']\n")
    for name in ("generated/g.py", "legacy_a.py", "keep.py", "dist/b.py", "venv2/lib.py", ".mim/h.py",
                 "scratch/s.py", "sub/nb.ipynb"):
        write(tmp_path / name, BAD)
    write(tmp_path / "venv2/pyvenv.cfg", "home = /usr\n")
    proc = run_cli("--show-files", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        ".mim/h.py\nkeep.py\nsub/nb.ipynb\nSkipped 6 (not checked):\n"
        "  .git/  in ruff's default excludes\n"
        "  dist/  in ruff's default excludes\n"
        "  generated/  `extend-exclude`\n"
        "  legacy_a.py  `extend-exclude`\n"
        "  scratch/  .gitignore\n"
        "  venv2/  a virtual environment (pyvenv.cfg)\n"
    )
    # `exclude` replaces the default list: what it names is said to be its doing
    write(tmp_path / "pyproject.toml", "[tool.ckptlint]\nexclude = ['keep.py']\n")
    proc = run_cli("--show-files", cwd=tmp_path)
    assert "  keep.py  `exclude`\n" in proc.stdout and "dist/b.py\n" in proc.stdout


@pytest.mark.slow
def test_gitignore_is_respected_inside_a_repo(tmp_path):
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    write(tmp_path / ".gitignore", "ignored/\n*.gen.py\n")
    write(tmp_path / "sub/.gitignore", "local.py\n")
    for name in ("ignored/a.py", "x.gen.py", "sub/local.py", "sub/kept.py"):
        write(tmp_path / name, BAD)
    _, data = run_json(".", cwd=tmp_path)
    assert {Path(d["filename"]).name for d in data} == {"kept.py"}
    _, data = run_json("sub", cwd=tmp_path)
    assert {Path(d["filename"]).name for d in data} == {"kept.py"}
    _, data = run_json("sub/local.py", cwd=tmp_path)
    assert {Path(d["filename"]).name for d in data} == {"local.py"}
