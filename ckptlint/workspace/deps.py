"""What a cached result depends on beyond its own file: other project files.

A rule that follows a class or a constant into another file makes the file's result depend
on that file; one that pairs saves and loads across the project depends on every file. The
engine's result says what it consulted (`FileResult.dependencies`: a module of a project
tree, or the whole tree) and the cache stores a stamp of each with the result:

- a module: the (path, mtime, size) of the files that bear its name, so editing, adding or
  removing such a file re-lints the results that looked the module up, and nothing else;
- the whole tree: the (path, mtime, size) of every file in it;
- a file: the (path, mtime, size) of a checkpoint file a rule read (CKPT002 and CKPT003 on a
  load that names one).

A later run reuses the result only while every stamp is the same. No stamp is taken (so
nothing is cached) while a file is newer than the start of the run less the mtime
granularity: a file changed during the run would otherwise be stamped with results from
before. Cheap: one walk per project root and a stat per file stamped, no read, no parse.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional

from ckptlint.workspace.cache import RACY_NS, content_hash


class ProjectStamps:
    def __init__(self, walk, since_ns: int):
        self.walk = walk  # (root, whole) -> [(file, module)]: the walk the run's project index uses
        self.since_ns = since_ns  # the start of the run
        self._stamps: Dict[str, Optional[str]] = {}
        self._modules: Dict[str, Dict[str, List[Path]]] = {}

    def stamp(self, key: str) -> Optional[str]:
        """None when a file is too fresh for its mtime to tell a later change apart."""
        if key not in self._stamps:
            parts = key.split("\0")
            if len(parts) != 3:  # not a key this version writes
                return "?"
            kind, tree_key, module = parts
            if kind == "file":  # a checkpoint file a rule read (rules/_checkpoint_file.py)
                files = [Path(tree_key)]
            elif kind == "module":
                files = self._tree(tree_key).get(module, [])
            else:
                files = sorted((f for fs in self._tree(tree_key).values() for f in fs), key=lambda f: f.parts)
            self._stamps[key] = _stamp(files, self.since_ns)
        return self._stamps[key]

    def _tree(self, tree_key: str) -> Dict[str, List[Path]]:
        if tree_key not in self._modules:
            root, _, whole = tree_key.rpartition("|")
            modules: Dict[str, List[Path]] = {}
            for file, name in self.walk(Path(root), whole == "True"):
                modules.setdefault(name, []).append(file)
            self._modules[tree_key] = modules
        return self._modules[tree_key]


def _stamp(files: List[Path], since_ns: int) -> Optional[str]:
    parts = []
    for file in files:
        try:
            st = os.stat(file)
        except OSError:
            parts.append(f"{file}\0-")
            continue
        if st.st_mtime_ns >= since_ns - RACY_NS:
            return None
        parts.append(f"{file}\0{st.st_mtime_ns}\0{st.st_size}")
    return content_hash("\n".join(parts).encode("utf-8", "surrogatepass"))

