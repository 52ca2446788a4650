"""`per-file-ignores`: globs relative to the folder of the pyproject.toml that declares them."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, List

if TYPE_CHECKING:
    import pathspec



@lru_cache(maxsize=None)
def _spec(pattern: str) -> pathspec.PathSpec:
    import pathspec  # lazily: only per-file-ignores need it

    return pathspec.PathSpec.from_lines("gitwildmatch", [pattern])


def per_file_ignored(path: str, settings) -> List[str]:
    if not settings.per_file_ignores:
        return []
    rel = os.path.relpath(path, settings.root).replace(os.sep, "/")
    out: List[str] = []
    for pattern, codes in settings.per_file_ignores.items():
        if _spec(pattern).match_file(rel):
            out.extend(c.upper() for c in codes)
    return out
