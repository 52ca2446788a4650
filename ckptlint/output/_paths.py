"""Where a CI system expects paths: relative to the repository root (or the cwd outside git)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Optional


@lru_cache(maxsize=None)
def repo_root(cwd: Path) -> Path:
    from ckptlint.workspace.files import git_root

    return git_root(cwd) or cwd


def repo_relative(filename: str, cwd: Path) -> str:
    """POSIX path relative to the repository root; the absolute path when on another drive."""
    root = repo_root(Path(os.path.abspath(cwd)))
    try:
        rel = os.path.relpath(filename, root)
    except ValueError:
        return Path(filename).as_posix()
    return Path(rel).as_posix()


def rule_for(code: str) -> Optional[type]:
    from ckptlint.rules import all_rules

    return all_rules().get(code)
