"""What a cached result depends on beyond its own file: the project index.

A rule that consults the project-wide index (classes defined in other files) makes the
file's result depend on those files. The cache stores, with such a result, a stamp of the
project: the (path, mtime, size) of every file the index reads. A later run reuses the
result only while the stamp is the same. No stamp is taken (so nothing is cached) while a
project file is newer than the start of the run less the mtime granularity: a file changed
during the run would otherwise be stamped with results from before. Coarse (any change in
the project re-lints the files that used the index) but cheap: a walk and a stat per file,
no parse, and only for projects some result depended on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional

from ckptlint.cache import RACY_NS, content_hash


class ProjectStamps:
    def __init__(self, since_ns: int):
        self.since_ns = since_ns  # the start of the run
        self._stamps: Dict[str, Optional[str]] = {}
        self._roots: Dict[str, str] = {}

    def key_for(self, path: Path) -> Optional[str]:
        """The index key (as project.index_for_root makes it) a file would consult."""
        folder = os.path.dirname(os.path.abspath(path))
        if folder not in self._roots:
            from ckptlint.analysis.project import find_root

            root, whole = find_root(str(path))
            self._roots[folder] = f"{root}|{whole}" if root is not None else ""
        return self._roots[folder] or None

    def stamp(self, key: str) -> Optional[str]:
        """None when a file is too fresh for its mtime to tell a later change apart."""
        if key not in self._stamps:
            self._stamps[key] = _stamp(key, self.since_ns)
        return self._stamps[key]


def _stamp(key: str, since_ns: int) -> Optional[str]:
    from ckptlint.analysis.project import _walk

    root, _, whole = key.rpartition("|")
    parts = []
    for file in _walk(Path(root), whole == "True"):
        try:
            st = file.stat()
        except OSError:
            parts.append(f"{file}\0-")
            continue
        if st.st_mtime_ns >= since_ns - RACY_NS:
            return None
        parts.append(f"{file}\0{st.st_mtime_ns}\0{st.st_size}")
    return content_hash("\n".join(parts).encode("utf-8", "surrogatepass"))
