"""The wheel: every package, and the docs findings link to (docs/ shipped as ckptlint/docs)."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from tests.helpers import HANG, ROOT

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib


def test_the_package_list_is_every_package_and_the_docs():
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "ckptlint").rglob("__init__.py")}
    assert set(listed) == found | {"ckptlint.docs", "ckptlint.docs.rules"}


@pytest.mark.slow
def test_the_wheel_ships_the_docs_and_findings_link_to_them(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=HANG, cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr
    wheel = next(tmp_path.glob("ckptlint-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    pages = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert {"ckptlint/" + p for p in pages} <= names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = ("from ckptlint.diagnostic import Diagnostic\n"
             "print(Diagnostic('CKPT002', 'n', 'm', '/x.py').local_url)\n")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (site / "ckptlint/docs/rules/CKPT002.md").resolve().as_uri()
