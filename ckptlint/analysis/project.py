"""The project-wide index: which classes each project file defines (with their bases), what it
imports, its path constants, and its torch.save / torch.load sites.

Built with the stdlib `ast` (never LibCST), lazily: the project's files are listed once per
root by the ProjectIndex that the engine is handed (a walk, which also gives their module
names), and a file is read and summarised only when a rule follows a name into its module. A file linted alone (pre-commit)
resolves classes the same way as a whole-project run. Entries are plain data (dicts, lists,
strings) so they can be serialised and cached.

Module names are the dotted names `analysis.modules.module_name_for` gives. The file being
linted is always summarised from the text being linted, not from disk (fix passes, editors).
What a lint looked up is recorded by its ProjectView (`consulted`), never in module state.
"""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from ckptlint.analysis.ast_walk import walk
from ckptlint.analysis.qnames import canonical
from ckptlint.analysis.library import library_class_kind
from ckptlint.analysis.modules import walk_modules
from ckptlint.analysis.sites import describe_value
from ckptlint.analysis.qnames import dotted as _dotted

ROOT_MARKERS = ("pyproject.toml", ".git", "setup.py", "setup.cfg")
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

    def __init__(self, tree: ast.Module, module: str, is_package: bool, path: str, sites: bool = True,
                 text: Optional[str] = None):
        self.module = module
        self.is_package = is_package
        self.entry: Dict[str, object] = {
            "path": path, "classes": {}, "attrs": {}, "imports": {}, "stars": [], "constants": {},
            "saves": [], "loads": [], "module_entries": [],
            # what `from <this module> import *` binds: module-level names -> the qualified
            # name an import gives them ("" when defined here), and `__all__` when literal
            "top": {}, "all": None,
        }
        self._collect_imports(tree)
        self._collect_top(tree.body)
        self._collect_classes(tree)
        self._collect_constants(tree)
        if sites:
            from ckptlint.analysis.sites import collect_sites

            self.entry["saves"], self.entry["loads"], self.entry["module_entries"] = collect_sites(
                tree, self.qualify, text)

    def _collect_imports(self, tree) -> None:
        imports = self.entry["imports"]
        for node in walk(tree)[0]:
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

    def _collect_top(self, body) -> None:
        """The module's own bindings, in order (the last one wins, as at run time); code under
        `if`, `try`, `with` and loops at the top level binds module names too."""
        top = self.entry["top"]
        for node in body:
            if isinstance(node, ast.Import):
                for a in node.names:
                    local = a.asname or a.name.split(".")[0]
                    top[local] = canonical(a.name if a.asname else local)
            elif isinstance(node, ast.ImportFrom):
                base = absolute(self.module, self.is_package, node.level, node.module)
                for a in node.names:
                    if a.name != "*":
                        top[a.asname or a.name] = canonical(f"{base}.{a.name}" if base else a.name)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                top[node.name] = ""
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    self._defined(t)
                if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                    self.entry["all"] = _literal_names(node.value) if isinstance(node, ast.Assign) else None
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                self._defined(node.target)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if item.optional_vars is not None:
                        self._defined(item.optional_vars)
            for block in ("body", "orelse", "finalbody"):
                if isinstance(node, (ast.If, ast.Try, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith)):
                    self._collect_top(getattr(node, block, []))
            for handler in getattr(node, "handlers", ()):
                self._collect_top(handler.body)

    def _defined(self, target) -> None:
        for n in ast.walk(target):
            if isinstance(n, ast.Name):
                self.entry["top"][n.id] = ""

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
        assigns = None
        for node in tree.body:
            for cls in _classes_in(node):
                bases = [self.qualify(_dotted(b)) or "?" for b in cls.bases]
                classes.setdefault(cls.name, bases)
                assigns = _assigns_by_function(tree) if assigns is None else assigns
                attrs = self._self_attrs(cls, assigns)
                if attrs:
                    self.entry["attrs"].setdefault(cls.name, attrs)

    def _self_attrs(self, cls: ast.ClassDef, assigns: Dict[ast.AST, List[ast.Assign]]) -> Dict[str, list]:
        """{attr: [what each `self.attr = value` in a method sets, ...]} (sites.describe_value),
        and ["ann", class] for an attribute the class body annotates with a class (a
        dataclass field, `algorithm: Policy`): its instances hold one there."""
        out: Dict[str, list] = {}
        for stmt in cls.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                annotated = self.qualify(_annotated_class(stmt.annotation))
                if annotated is not None:
                    out.setdefault(stmt.target.id, []).append(["ann", annotated])
        for fn in cls.body:
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) or not fn.args.args:
                continue
            me = fn.args.args[0].arg
            for node in assigns.get(fn, ()):
                for t in node.targets:
                    if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == me:
                        what = describe_value(node.value, self.qualify)
                        if what is not None:
                            out.setdefault(t.attr, []).append(what)
        return out

    def _collect_constants(self, tree) -> None:
        from ckptlint.analysis.sites import path_key

        consts = self.entry["constants"]
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                key = path_key(node.value, {}, self.qualify)
                if key is not None and key[0] == "lit":
                    consts[node.targets[0].id] = key[1]


def _annotated_class(ann) -> Optional[str]:
    """The dotted class an annotation names: `Policy`, `nets.Policy`, `"Policy"`,
    `Optional[Policy]`, `Policy | None`; None for anything else (`List[Policy]`, `int`)."""
    if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
        try:
            ann = ast.parse(ann.value, mode="eval").body
        except SyntaxError:
            return None
    if isinstance(ann, ast.Subscript) and _dotted(ann.value) in ("Optional", "typing.Optional"):
        ann = ann.slice
    if isinstance(ann, ast.BinOp) and isinstance(ann.op, ast.BitOr):
        if isinstance(ann.right, ast.Constant) and ann.right.value is None:
            ann = ann.left
    name = _dotted(ann)
    return name if name and name not in _NOT_CLASSES else None


_NOT_CLASSES = {"int", "float", "str", "bool", "bytes", "dict", "list", "tuple", "set", "None", "Any",
                "typing.Any", "object"}


def _literal_names(node) -> Optional[List[str]]:
    """`__all__ = ["a", "b"]` -> ["a", "b"]; None when it is not a literal list of strings."""
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return None
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _assigns_by_function(tree) -> Dict[ast.AST, List[ast.Assign]]:
    """function -> the assignments in it (nested code included), in the order ast.walk(function)
    meets them: the file's walk, restricted to a subtree, is that subtree's walk."""
    nodes, parents = walk(tree)
    out: Dict[ast.AST, List[ast.Assign]] = {}
    for node in nodes:
        if isinstance(node, ast.Assign):
            p = parents.get(node)
            while p is not None:
                if isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    out.setdefault(p, []).append(node)
                p = parents.get(p)
    return out


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


def summarise(text: str, module: str, is_package: bool, path: str, tree=None,
              sites: bool = True) -> Optional[dict]:
    """A file's entry; without `sites`, its save/load sites are left out (following a class or
    a constant into a file does not need them, and they cost a second walk)."""
    if tree is None:
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
    try:
        # only files that mention torch can save or load with it
        sites = sites and "torch" in text and ("save" in text or "load" in text)
        entry = _Summary(tree, module, is_package, path, sites, text).entry
    except RecursionError:
        return None
    entry["hash"] = text_hash(text)  # lets a cache tell an unchanged file
    return entry


def text_hash(text: str) -> str:
    import hashlib  # OpenSSL costs start-up; only a summary needs it

    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


# --- the index ---------------------------------------------------------------------------------
class Tree:
    """One project root: its files and their module names from a walk (no file is read); a
    file is read and summarised the first time a rule asks for its module, so a run reads
    only what its findings depend on (the files a class or constant is followed through),
    not every file of the project."""

    def __init__(self, root: Path, whole: bool = True, files: Optional[List[Tuple[Path, str]]] = None):
        self.root = root
        self.key = tree_key(root, whole)
        self.modules: Dict[str, List[Path]] = {}
        for file, name in walk_modules(root, whole) if files is None else files:
            self.modules.setdefault(name, []).append(file)
        self._entries: Dict[Path, Optional[dict]] = {}
        self._words: Dict[Path, Tuple[bool, bool]] = {}  # (may save, may load)
        self._with_sites: set = set()

    def _read(self, file: Path) -> Optional[str]:
        try:
            st = file.stat()
            if st.st_size > MAX_FILE_SIZE or not stat.S_ISREG(st.st_mode):
                return None  # a FIFO named x.py would block the read
            return file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    def entry_of(self, file: Path, module: str, text: Optional[str] = None, sites: bool = False) -> Optional[dict]:
        """The file's entry, read and summarised once (again only to add the sites)."""
        if file not in self._entries or (sites and file not in self._with_sites):
            text = self._read(file) if text is None else text
            rel = file.relative_to(self.root).as_posix()
            self._entries[file] = None if text is None else summarise(
                text, module, file.name == "__init__.py", rel, sites=sites)
            if sites:
                self._with_sites.add(file)
        return self._entries[file]

    def entries(self, module: str) -> List[dict]:
        """The entries of the files named `module` (several for same-named scripts)."""
        out = []
        for file in self.modules.get(module, ()):
            entry = self.entry_of(file, module)
            if entry is not None:
                out.append(entry)
        return out

    def site_entries(self, kind: str = "saves") -> List[Tuple[str, dict]]:
        """(module, entry) of every file that has `torch.save` sites (kind "saves") or
        `torch.load` sites ("loads"), in a fixed order. Depends on every file of the tree."""
        want = 0 if kind == "saves" else 1
        out = []
        for module in sorted(self.modules):
            for file in self.modules[module]:
                text = None
                if file not in self._words:
                    text = self._read(file) or ""
                    self._words[file] = ("torch" in text and "save" in text, "torch" in text and "load" in text)
                if not self._words[file][want]:
                    continue  # not read for the other kind either until it is asked for
                entry = self.entry_of(file, module, text, sites=True)
                if entry is not None and entry[kind]:
                    out.append((module, entry))
        return out


def tree_key(root: Path, whole: bool) -> str:
    return f"{root}|{whole}"


def dep_key(kind: str, tree_key: str, module: str = "") -> str:
    """What a cached result depends on: a module of a tree, or the whole tree (deps.py)."""
    return f"{kind}\0{tree_key}\0{module}"


def build_index(root: Path, whole: bool = True) -> dict:
    """Every file's entry at once (tests, tools): {"root", "modules": {module: entry},
    "ambiguous": {module: [entry, ...]}}. A run uses Tree, which reads files on demand."""
    tree = Tree(root, whole)
    modules: Dict[str, dict] = {}
    ambiguous: Dict[str, List[dict]] = {}
    for name in sorted(tree.modules):
        found = [e for e in (tree.entry_of(f, name) for f in tree.modules[name]) if e is not None]
        if len(found) == 1:
            modules[name] = found[0]
        elif found:
            ambiguous[name] = found
    return {"root": str(root), "modules": modules, "ambiguous": ambiguous}


Walk = Callable[[Path, bool], List[Tuple[Path, str]]]


class ProjectIndex:
    """What the engine is handed: one Tree per project root, walked once and read on demand,
    and the view of it from each linted file. The workspace makes one per run (its walk skips
    what the run excludes) or per editor session; the engine makes a fresh one for a text
    linted on its own. Nothing of it is module state."""

    def __init__(self, walk: Optional[Walk] = None):
        self._walk = walk or walk_modules
        self._trees: Dict[str, Tree] = {}

    def walk(self, root: Path, whole: bool) -> List[Tuple[Path, str]]:
        """The (file, module name) pairs of a tree as they are on disk now."""
        return self._walk(root, whole)

    def tree(self, root: Optional[Path], whole: bool = True) -> Optional[Tree]:
        """Walked once per root; entries filled in as rules ask."""
        if root is None:
            return None
        key = tree_key(root, whole)
        if key not in self._trees:
            self._trees[key] = Tree(root, whole, self._walk(root, whole))
        return self._trees[key]

    def forget(self) -> None:
        """Drop what was walked and read: files changed on disk (fixes written, a save)."""
        self._trees.clear()

    def view(self, path: str, text: str, module_name: Optional[str], tree=None,
             consulted: Optional[set] = None) -> "ProjectView":
        """The project as seen from the file at `path` whose text is `text` (`tree`: its
        stdlib AST, when the caller has it). What the view looks up is added to `consulted`."""
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
        return ProjectView(lambda: self.tree(root, whole), current, module, rel, consulted)


class ProjectView:
    """The project as seen from one linted file (whose own entry comes from its current text)."""

    def __init__(self, tree, current: Optional[dict], module: str, rel_path: str,
                 consulted: Optional[set] = None):
        self._tree = tree  # the Tree, or a function giving it (walked only when a rule needs it)
        self.module = module or CURRENT
        self.current = current
        self.rel_path = rel_path
        # dep_key()s of what was looked up: a result is valid while those files are unchanged
        self.consulted = consulted if consulted is not None else set()
        self._derived: Dict[str, object] = {}

    def derived(self, name: str, compute):
        """`compute()`, once per view: what rules derive from the whole project (it records
        what it consulted the first time, which holds for the rest of this file's lint)."""
        if name not in self._derived:
            self._derived[name] = compute()
        return self._derived[name]

    @property
    def tree(self) -> Optional[Tree]:
        if callable(self._tree):
            self._tree = self._tree()
        return self._tree

    # --- entries ------------------------------------------------------------------------------
    def entry(self, module: str, from_path: str = "") -> Optional[dict]:
        if module == self.module and self.current is not None:
            return self.current
        tree = self.tree
        options = []
        if tree is not None:
            self.consulted.add(dep_key("module", tree.key, module))
            options = tree.entries(module)
        if len(options) == 1:
            return options[0]
        if options:
            # several files share the name (scripts in different folders): the one next to
            # the importing file, else unknown
            here = os.path.dirname(from_path)
            near = [e for e in options if os.path.dirname(e["path"]) == here]
            return near[0] if len(near) == 1 else None
        return None

    def entries(self, kind: str = "saves") -> List[Tuple[str, dict]]:
        """(module, entry) of every file that could save a checkpoint (kind "saves") or load
        one ("loads"), the linted file's from its text, in a fixed order."""
        out = []
        seen_current = False
        tree = self.tree
        if tree is not None:
            self.consulted.add(dep_key("tree", tree.key))
        for name, e in (tree.site_entries(kind) if tree is not None else []):
            if e["path"] == self.rel_path and self.current is not None:
                if not seen_current:
                    out.append((self.module, self.current))
                    seen_current = True
            else:
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

    def star_export(self, name: str) -> Optional[str]:
        """The qualified name `name` has in the linted file when only its star imports bind it
        (`from .basics import *`, where basics does `import torch`): what Python binds, the
        last star import first, through chains, honouring `__all__`; None when no project
        module exports it (a star import of another package tells nothing)."""
        if self.current is None:
            return None
        for star in reversed(self.current["stars"]):
            found = self._exported(star, name, self.rel_path, 0)
            if found is not None:
                return found
        return None

    def _exported(self, module: str, name: str, from_path: str, depth: int) -> Optional[str]:
        entry = self.entry(module, from_path) if depth < 12 else None
        if entry is None:
            return None
        listed = entry.get("all")
        if (name not in listed) if listed is not None else name.startswith("_"):
            return None
        bound = entry.get("top", {}).get(name)
        if bound is not None:
            return bound or canonical(f"{module}.{name}")
        for star in reversed(entry["stars"]):
            found = self._exported(star, name, entry["path"], depth + 1)
            if found is not None:
                return found
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

    def chain_kind(self, class_qname: str, chain) -> Optional[str]:
        """"module" when `obj.a.b` of an instance of the class holds one: each attribute but
        the last set to an instance of one project class, the last to a module."""
        for attr in chain[:-1]:
            found = self.find(canonical(class_qname), self.rel_path)
            if found is None:
                return None
            _, name, entry = found
            sets = (entry.get("attrs") or {}).get(name, {}).get(attr) or []
            classes = {tuple(s[1:]) for s in sets}
            if len(classes) != 1 or sets[0][0] not in ("call", "ann"):
                return None
            class_qname = sets[0][1]
        found = self.attr_kind(class_qname, chain[-1]) if chain else None
        return found[0] if found else None

    def attr_kind(self, class_qname: Optional[str], attr: str, _depth: int = 0) -> Optional[Tuple[str, str, str]]:
        """("module", file, how) when every `self.<attr> = ...` of the project class (or a
        base of it in the project) sets an nn.Module, or the class body annotates the
        attribute with an nn.Module class (how: "set" or "annotated"); None when unknown."""
        found = self.find(canonical(class_qname), self.rel_path) if class_qname and _depth < 8 else None
        if found is None:
            return None
        _, name, entry = found
        sets = (entry.get("attrs") or {}).get(name, {}).get(attr)
        if not sets:
            for base in entry["classes"].get(name) or ():
                inherited = self.attr_kind(base, attr, _depth + 1)
                if inherited is not None:
                    return inherited
            return None
        for what in sets:
            if what[0] == "module":
                continue
            if what[0] in ("call", "ann") and self.class_kind(what[1], entry["path"]) == "module":
                continue
            return None
        return "module", entry["path"], "annotated" if all(w[0] == "ann" for w in sets) else "set"

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
