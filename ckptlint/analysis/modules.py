"""Module names of files (for relative imports and the project index) and the walk of a
project's Python files that gives them.

The mechanism lives here, below the workspace, so the engine can index a project on its own;
the workspace hands `walk_modules` its exclusion (`exclude`, .gitignore) as `skip`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

# Folders that hold no project source: the default `exclude` of a run, and never indexed.
# ruff's fixed list of excluded folders (its `exclude` default), and `__pycache__`, which
# holds no source. Other folders, dot-folders included (`.mim/`, `.github/`), are walked.
DEFAULT_EXCLUDE = [
    ".bzr", ".direnv", ".eggs", ".git", ".git-rewrite", ".hg", ".ipynb_checkpoints", ".mypy_cache",
    ".nox", ".pants.d", ".pyenv", ".pytest_cache", ".pytype", ".ruff_cache", ".svn", ".tox", ".venv",
    ".vscode", "__pypackages__", "_build", "buck-out", "dist", "node_modules", "site-packages", "venv",
    "__pycache__",
]
MAX_FILES = 5000  # a bigger tree is indexed partially rather than slowly
MAX_ENTRIES = 100_000  # folder entries looked at while walking


def resolve_path(path: Path) -> Path:
    """path.resolve(), or the absolute path when a symlink loop stops it."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13)
        return Path(os.path.abspath(path))


def module_name_for(path: Path) -> str:
    """Dotted module name from the folders holding __init__.py (for relative imports)."""
    path = resolve_path(path)
    parts = [path.stem] if path.stem != "__init__" else []
    d = path.parent
    while (d / "__init__.py").exists():
        parts.append(d.name)
        d = d.parent
    return ".".join(reversed(parts))


class ModuleNames:
    """module_name_for, with the __init__.py look-ups shared by the files of one folder."""

    def __init__(self):
        self._dirs: Dict[str, str] = {}

    def __call__(self, path: Path) -> str:
        full = os.path.abspath(path)  # strings, not Paths: a run asks this for every file
        d, name = os.path.split(full)
        if d not in self._dirs:
            self._dirs[d] = module_name_for(Path(d, "__init__.py"))
        package = self._dirs[d]
        stem = os.path.splitext(name)[0]
        if stem == "__init__":
            return package
        if os.path.islink(full):
            return module_name_for(Path(full))  # follows the link, as module_name_for does
        return f"{package}.{stem}" if package else stem


def walk_modules(root: Path, whole: bool,
                 skip: Optional[Callable[[Path, bool], bool]] = None) -> List[Tuple[Path, str]]:
    """(file, module name) for the Python files under root, sorted by path; without `whole`,
    only packages below the top folder are entered. Virtual environments and DEFAULT_EXCLUDE
    are never entered, nor what `skip(path, is_dir)` says. Bounded, so a
    marker in a huge folder (a home directory) stays cheap. Module names are
    module_name_for's, worked out from the walk (which folders hold an __init__.py) instead
    of a stat per folder per file."""
    out: List[Tuple[Path, str]] = []
    seen = 0
    package: Dict[str, Optional[str]] = {}  # folder -> its dotted name when it is a package
    for dirpath, dirnames, filenames in os.walk(root):
        seen += len(dirnames) + len(filenames)
        if "__init__.py" not in filenames:
            package[dirpath] = None
        elif dirpath == str(root):
            package[dirpath] = module_name_for(root / "__init__.py")  # may sit inside a package
        else:
            parent = package.get(os.path.dirname(dirpath))
            base = os.path.basename(dirpath)
            package[dirpath] = f"{parent}.{base}" if parent else base
        dirnames[:] = sorted(
            d for d in dirnames
            if d not in _NEVER
            and not os.path.exists(os.path.join(dirpath, d, "pyvenv.cfg"))
            and (whole or os.path.exists(os.path.join(dirpath, d, "__init__.py")))
            and not (skip and skip(Path(dirpath, d), True))
        )
        prefix = package[dirpath]
        for f in sorted(filenames):
            if f.endswith(".py"):
                path = Path(dirpath, f)
                if skip and skip(path, False):
                    continue
                stem = f[:-3]
                if stem == "__init__":
                    name = prefix or ""
                else:
                    name = f"{prefix}.{stem}" if prefix else stem
                if os.path.islink(path):  # named after where it points, like module_name_for
                    name = module_name_for(path)
                out.append((path, name))
        if len(out) >= MAX_FILES or seen >= MAX_ENTRIES:
            break
    return sorted(out, key=lambda item: (item[0].parts, item[1]))[:MAX_FILES]  # Path order, faster


_NEVER = frozenset(DEFAULT_EXCLUDE)
