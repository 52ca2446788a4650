"""The fast path for plain exclude names matches exactly what pathspec (gitignore syntax) does."""

from __future__ import annotations

from pathlib import Path

import pathspec
import pytest

from ckptlint.workspace import files
from ckptlint.workspace.config import Settings

PATHS = ["a.py", "venv", "venv/x.py", "src/venv/x.py", "src/build", "build.py", "mybuild/x.py", "x/.tox/y.py",
         ".git", "pkg/__pycache__/m.py", "dist-info/x.py", "dist", "node_modules/a/b.py", "a/b/c/d.py", ".eggs"]


@pytest.mark.parametrize("rel", PATHS)
@pytest.mark.parametrize("is_dir", [False, True])
def test_plain_names_match_like_pathspec(tmp_path, rel, is_dir):
    settings = Settings(root=tmp_path)
    path = tmp_path / rel
    spec = pathspec.GitIgnoreSpec.from_lines(files.DEFAULT_EXCLUDE)
    assert files._plain_names(tuple(files.DEFAULT_EXCLUDE)) is not None
    assert files.excluded(path, settings, is_dir) == spec.match_file(rel + ("/" if is_dir else ""))


def test_patterns_with_globs_still_use_pathspec(tmp_path):
    settings = Settings(root=tmp_path, exclude=["gen_*.py", "!keep.py", "docs/"])
    assert files._plain_names(("gen_*.py",)) is None
    assert files.excluded(tmp_path / "gen_a.py", settings, False)
    assert not files.excluded(tmp_path / "a.py", settings, False)
    assert files.excluded(tmp_path / "docs", settings, True)


def test_outside_the_root_uses_the_name(tmp_path):
    settings = Settings(root=tmp_path / "proj")
    assert files.excluded(Path("/elsewhere/dist"), settings, True)
    assert not files.excluded(Path("/build/elsewhere.py"), settings, False)
