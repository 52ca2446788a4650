"""The project-wide index: which classes each project file defines (with their bases), what it
imports, its path constants, and its torch.save / torch.load sites.

Built with the stdlib `ast` (cheap: no LibCST parse of every file), once per project root per
process, from the files around the linted one, so a file linted alone (pre-commit) resolves
classes the same way as a whole-project run. The index is plain data (dicts, lists, strings)
so it can be serialised and cached.

Module names are the dotted names `ckptlint.files.module_name_for` gives. The file being linted
is always summarised from the text being linted, not from disk (fix passes, editors).
"""

from __future__ import annotations

import ast
import hashlib
import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ckptlint.analysis.names import canonical
from ckptlint.analysis.library import library_class_kind
from ckptlint.analysis.sites import dotted as _dotted
from ckptlint.files import module_name_for as _module_name

ROOT_MARKERS = ("pyproject.toml", ".git", "setup.py", "setup.cfg")
SKIP_DIRS = frozenset([
    "__pycache__", "venv", ".venv", "build", "dist", "node_modules", "site-packages",
    "__pypackages__", "_build", "buck-out", ".tox", ".nox", ".eggs", ".git",
])
MAX_FILES = 5000  # a bigger tree is indexed partially rather than slowly
MAX_ENTRIES = 100_000  # folder entries looked at while walking
MAX_FILE_SIZE = 1_000_000
CURRENT = "__current__"  # module key of a linted file that has no module name


# --- finding the root ------------------------------------------------------------------------
def find_root(path: str) -> Tuple[Optional[Path], bool]:
    """(root, whole tree?): the nearest folder holding a project marker, walked whole; else
    the folder above the outermost package, where only what Python could import from the
    file is indexed (its sibling modules and packages). None for an in-memory snippet."""
    start = Path(os.path.abspath(path)).parent
    if not start.is_dir():
        return None, False
    for d in (start, *start.parents):
        if any((d / m).exists() for m in ROOT_MARKERS):
            return d, True
    d = start
    while (d / "__init__.py").exists() and d.parent != d:
        d = d.parent
    return d, False


def _walk(root: Path, whole: bool) -> List[Path]:
    """Python files under root in sorted order; without `whole`, only packages below the top
    folder are entered. Bounded, so a marker in a huge folder (a home directory) stays cheap."""
    out: List[Path] = []
    seen = 0
    for dirpath, dirnames, filenames in os.walk(root):
        seen += len(dirnames) + len(filenames)
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".") and d not in SKIP_DIRS
            and not os.path.exists(os.path.join(dirpath, d, "pyvenv.cfg"))
            and (whole or os.path.exists(os.path.join(dirpath, d, "__init__.py")))
        )
        for f in sorted(filenames):
            if f.endswith(".py"):
                out.append(Path(dirpath, f))
        if len(out) >= MAX_FILES or seen >= MAX_ENTRIES:
            break
    return sorted(out)[:MAX_FILES]


# --- summarising one file ------------------------------------------------------------------
def absolute(module: str, is_package: bool, level: int, name: Optional[str]) -> str:
    """`from ..x import y` inside `module` -> the absolute module it names."""
    if level == 0:
        return name or ""
    parts = module.split(".") if module else []
    if not is_package:
        parts = parts[:-1]
    parts = parts[: len(parts) - (level - 1)] if level > 1 else parts
    if name:
        parts = parts + [name]
    return ".".join(parts)


class _Summary:
    """What one file contributes to the index."""

    def __init__(self, tree: ast.Module, module: str, is_package: bool, path: str, sites: bool = True):
        self.module = module
        self.is_package = is_package
        self.entry: Dict[str, object] = {
            "path": path, "classes": {}, "imports": {}, "stars": [], "constants": {},
            "saves": [], "loads": [],
        }
        self._collect_imports(tree)
        self._collect_classes(tree)
        self._collect_constants(tree)
        if sites:  # only files that mention torch can save or load with it
            from ckptlint.analysis.sites import collect_sites

            self.entry["saves"], self.entry["loads"] = collect_sites(tree, self.qualify)

    def _collect_imports(self, tree) -> None:
        imports = self.entry["imports"]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        imports.setdefault(a.asname, a.name)
                    else:
                        top = a.name.split(".")[0]
                        imports.setdefault(top, top)
            elif isinstance(node, ast.ImportFrom):
                base = absolute(self.module, self.is_package, node.level, node.module)
                for a in node.names:
                    if a.name == "*":
                        if base not in self.entry["stars"]:
                            self.entry["stars"].append(base)
                        continue
                    imports.setdefault(a.asname or a.name, f"{base}.{a.name}" if base else a.name)

    def qualify(self, dotted: Optional[str]) -> Optional[str]:
        """A dotted name as written in this file -> its qualified name."""
        if not dotted:
            return None
        head, _, rest = dotted.partition(".")
        target = self.entry["imports"].get(head)
        if target is None:
            target = f"{self.module or CURRENT}.{head}"
        return canonical(f"{target}.{rest}" if rest else target)

    def _collect_classes(self, tree) -> None:
        classes = self.entry["classes"]
        for node in tree.body:
            for cls in _classes_in(node):
                bases = [self.qualify(_dotted(b)) or "?" for b in cls.bases]
                classes.setdefault(cls.name, bases)

    def _collect_constants(self, tree) -> None:
        from ckptlint.analysis.sites import path_key

        consts = self.entry["constants"]
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                key = path_key(node.value, {}, self.qualify)
                if key is not None and key[0] == "lit":
                    consts[node.targets[0].id] = key[1]


def _classes_in(node):
    """Top-level classes, also those defined under `if`/`try` (optional imports)."""
    if isinstance(node, ast.ClassDef):
        yield node
    elif isinstance(node, (ast.If, ast.Try)):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                yield from _classes_in(child)
        for h in getattr(node, "handlers", ()):
            for child in h.body:
                yield from _classes_in(child)


def summarise(text: str, module: str, is_package: bool, path: str, tree=None) -> Optional[dict]:
    if tree is None:
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
    try:
        sites = "torch" in text and ("save" in text or "load" in text)
        entry = _Summary(tree, module, is_package, path, sites).entry
    except RecursionError:
        return None
    entry["hash"] = text_hash(text)  # lets a cache tell an unchanged file
    return entry


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


# --- the index ---------------------------------------------------------------------------------
def build_index(root: Path, whole: bool = True) -> dict:
    """{"root": str, "modules": {module: entry}, "ambiguous": {module: [entry, ...]}}"""
    modules: Dict[str, dict] = {}
    ambiguous: Dict[str, List[dict]] = {}
    for file in _walk(root, whole):
        try:
            if file.stat().st_size > MAX_FILE_SIZE:
                continue
            text = file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        name = _module_name(file)
        rel = file.relative_to(root).as_posix()
        entry = summarise(text, name, file.name == "__init__.py", rel)
        if entry is None:
            continue
        if name in ambiguous:
            ambiguous[name].append(entry)
        elif name in modules:
            ambiguous[name] = [modules.pop(name), entry]
        else:
            modules[name] = entry
    return {"root": str(root), "modules": modules, "ambiguous": ambiguous}


_INDEXES: Dict[str, dict] = {}
# Index keys consulted since the runner last cleared this: a result that used the index
# depends on other files, and the result cache records which projects it depends on.
USED: List[str] = []


def index_for_root(root: Optional[Path], whole: bool = True) -> dict:
    """Built once per root per process."""
    if root is None:
        return {"root": "", "modules": {}, "ambiguous": {}}
    key = f"{root}|{whole}"
    USED.append(key)
    if key not in _INDEXES:
        _INDEXES[key] = build_index(root, whole)
    return _INDEXES[key]


def clear() -> None:
    _INDEXES.clear()


class ProjectView:
    """The index as seen from one linted file (whose own entry comes from its current text)."""

    def __init__(self, index, current: Optional[dict], module: str, rel_path: str):
        self._index = index  # the index, or a function that builds it (only when a rule needs it)
        self.module = module or CURRENT
        self.current = current
        self.rel_path = rel_path

    @property
    def index(self) -> dict:
        if callable(self._index):
            self._index = self._index()
        return self._index

    # --- entries ------------------------------------------------------------------------------
    def entry(self, module: str, from_path: str = "") -> Optional[dict]:
        if module == self.module and self.current is not None:
            return self.current
        found = self.index["modules"].get(module)
        if found is not None:
            return found
        options = self.index["ambiguous"].get(module)
        if options:
            # several files share the name (scripts in different folders): the one next to
            # the importing file, else unknown
            here = os.path.dirname(from_path)
            near = [e for e in options if os.path.dirname(e["path"]) == here]
            return near[0] if len(near) == 1 else None
        return None

    def entries(self) -> List[Tuple[str, dict]]:
        """Every file's entry (the linted file's from its text), in a fixed order."""
        out = []
        seen_current = False
        for name in sorted(self.index["modules"]):
            if name == self.module and self.current is not None:
                out.append((name, self.current))
                seen_current = True
            else:
                e = self.index["modules"][name]
                if e["path"] != self.rel_path:
                    out.append((name, e))
        for name in sorted(self.index["ambiguous"]):
            for e in self.index["ambiguous"][name]:
                if e["path"] != self.rel_path:
                    out.append((name, e))
        if not seen_current and self.current is not None:
            out.append((self.module, self.current))
        return out

    # --- names -------------------------------------------------------------------------------------
    def find(self, qname: str, from_path: str = "", _depth: int = 0) -> Optional[Tuple[str, str, dict]]:
        """Follow imports, re-exports and star imports to the (module, name, entry) defining
        `qname` in the project; None when it is not a project name."""
        if _depth > 12 or not qname:
            return None
        parts = qname.split(".")
        for i in range(len(parts) - 1, 0, -1):
            mod = ".".join(parts[:i])
            entry = self.entry(mod, from_path)
            if entry is None:
                continue
            rest = parts[i:]
            if len(rest) != 1:
                return None
            name = rest[0]
            if name in entry["classes"] or name in entry["constants"]:
                return mod, name, entry
            target = entry["imports"].get(name)
            if target is not None and target != qname:
                return self.find(target, entry["path"], _depth + 1)
            for star in entry["stars"]:
                found = self.find(f"{star}.{name}", entry["path"], _depth + 1)
                if found is not None:
                    return found
            return None
        return None

    def class_kind(self, qname: Optional[str], from_path: str = "", _depth: int = 0) -> Optional[str]:
        """"module" / "wrapper:<kind>" / "other" (known not to be a module) / None (unknown)."""
        if not qname or _depth > 12:
            return None
        qname = canonical(qname)
        lib = library_class_kind(qname)
        if lib is not None:
            return lib
        found = self.find(qname, from_path or self.rel_path)
        if found is None:
            return None
        mod, name, entry = found
        bases = entry["classes"].get(name)
        if bases is None:
            return None  # a constant, not a class
        if not bases:
            return "other"
        kinds = [self.class_kind(b, entry["path"], _depth + 1) for b in bases]
        for k in kinds:
            if k == "module" or (k or "").startswith("wrapper:"):
                return "module"
        if all(k == "other" for k in kinds) or all(b in ("object", "builtins.object") for b in bases):
            return "other"
        return None

    def defined_in(self, qname: Optional[str]) -> Optional[str]:
        """The project file (relative path) that defines `qname`, for messages."""
        found = self.find(qname, self.rel_path) if qname else None
        return found[2]["path"] if found is not None else None

    def constant(self, qname: str) -> Optional[str]:
        found = self.find(qname, self.rel_path)
        if found is None:
            return None
        _, name, entry = found
        return entry["constants"].get(name)


def project_view(path: str, text: str, module_name: Optional[str], tree=None) -> ProjectView:
    root, whole = find_root(path)
    abspath = Path(os.path.abspath(path))
    rel = abspath.name
    if root is not None:
        try:
            rel = abspath.relative_to(root).as_posix()
        except ValueError:
            pass
    module = module_name or CURRENT
    # the linted file's own entry always comes from the text being linted; the rest of the
    # project is read only when a rule needs a name from another file
    current = summarise(text, module, abspath.name == "__init__.py", rel, tree)
    return ProjectView(lambda: index_for_root(root, whole), current, module, rel)
