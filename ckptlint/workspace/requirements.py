"""The project's torch floor from the files that declare its requirements, for a project
whose pyproject.toml names none: `setup.cfg` (`[options] install_requires`), `setup.py`
(a literal `install_requires`, read with the AST, never run) and `requirements*.txt`.

The floor is the lowest torch the project says it supports; the message names the file."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, List, Optional, Tuple

Floor = Tuple[Optional[Tuple[int, ...]], Optional[str]]


def declared_floor(folder: Path, floor_of) -> Floor:
    """(torch floor, "the `torch` requirement in FILE") from the first of setup.cfg,
    setup.py and requirements*.txt in `folder` that bounds torch from below; (None, None)
    when none does. `floor_of(requirement strings)` reads one list of requirements."""
    for name, read in (("setup.cfg", _setup_cfg), ("setup.py", _setup_py)):
        reqs = read(folder / name)
        v = floor_of(reqs) if reqs else None
        if v is not None:
            return v, f"the `torch` requirement in {name}"
    found = []  # the lowest over the requirement files: any of them may be what users install
    for path in requirement_files(folder):
        v = floor_of(_requirement_lines(path))
        if v is not None:
            found.append((v, path.name))
    if found:
        v, name = min(found)
        return v, f"the `torch` requirement in {name}"
    return None, None


def requirement_files(folder: Path) -> List[Path]:
    try:
        return sorted(p for p in folder.glob("requirements*.txt") if p.is_file())
    except OSError:
        return []


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _requirement_lines(path: Path) -> List[str]:
    """Requirement specifiers of a pip requirements file (options, comments, URLs left out)."""
    out = []
    for line in (_read(path) or "").splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            out.append(line)
    return out


def _setup_cfg(path: Path) -> List[str]:
    text = _read(path)
    if text is None or "install_requires" not in text:
        return []
    import configparser  # only for a project that has a setup.cfg

    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
        value = parser.get("options", "install_requires", fallback="")
    except configparser.Error:
        return []
    return [line.strip() for line in value.splitlines() if line.strip() and not line.strip().startswith("#")]


def _setup_py(path: Path) -> List[str]:
    """`setup(install_requires=[...])` with a literal list, or a name bound to one at the
    top level of setup.py (`REQUIRED = [...]`); nothing else is evaluated."""
    text = _read(path)
    if text is None or "install_requires" not in text:
        return []
    import ast  # only for a project whose setup.py names its requirements (start-up)

    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return []
    assigned = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            assigned[stmt.targets[0].id] = stmt.value
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "install_requires":
                    value = assigned.get(kw.value.id) if isinstance(kw.value, ast.Name) else kw.value
                    return _strings(value)
    return []


def _strings(node) -> List[str]:
    import ast

    try:
        value = ast.literal_eval(node) if node is not None else None
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return []
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return []


def poetry_requirements(tool: dict) -> Iterable[str]:
    """`[tool.poetry.dependencies] torch = "^2.1"` (or `{version = ">=2.1"}`) as a PEP 508
    requirement; caret and tilde ranges start at their version."""
    deps = (tool.get("poetry") or {}).get("dependencies") if isinstance(tool.get("poetry"), dict) else None
    value = deps.get("torch") if isinstance(deps, dict) else None
    if isinstance(value, dict):
        value = value.get("version")
    if not isinstance(value, str):
        return []
    spec = value.strip()
    if spec.startswith(("^", "~")) and not spec.startswith("~="):
        spec = ">=" + spec.lstrip("^~")
    elif spec and spec[0].isdigit():
        spec = "==" + spec
    return [f"torch {spec}"]
