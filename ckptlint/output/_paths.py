"""Where a CI system expects paths: relative to the repository root (or the cwd outside git)."""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Optional


@lru_cache(maxsize=None)
def repo_root(cwd: Path) -> Path:
    from ckptlint.workspace.files import git_root

    return git_root(cwd) or cwd


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")


def is_url(filename: str) -> bool:
    """A finding on a checkpoint read where it lives (`s3://...`, `https://...`): shown as is."""
    return _URL.match(filename) is not None


def repo_relative(filename: str, cwd: Path) -> str:
    """POSIX path relative to the repository root; the absolute path when on another drive;
    a URL as it is."""
    if is_url(filename):
        return filename
    root = repo_root(Path(os.path.abspath(cwd)))
    try:
        rel = os.path.relpath(filename, root)
    except ValueError:
        return Path(filename).as_posix()
    return Path(rel).as_posix()


def rule_for(code: str) -> Optional[type]:
    from ckptlint.rules import all_rules

    return all_rules().get(code)
