"""`[tool.ckptlint]` in pyproject.toml: discovery, validation, and the effective settings."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ckptlint.errors import ConfigError
from ckptlint.versions import parse_version
from ckptlint.workspace.requirements import declared_floor, poetry_requirements, requirement_files


# key -> expected type (for the message) and a checker
_STR_LIST = ("a list of strings", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v))
_STR = ("a string", lambda v: isinstance(v, str))
_BOOL = ("a boolean", lambda v: isinstance(v, bool))
_INT = ("a positive integer", lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0)
_TABLE_OF_LISTS = (
    "a table of lists of strings",
    lambda v: isinstance(v, dict) and all(_STR_LIST[1](x) for x in v.values()),
)
_LIST_OF_TABLES = ("an array of tables", lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v))
_MODEL_NAMES = ("a list of strings or false", lambda v: v is False or _STR_LIST[1](v))
_TABLE_OF_TABLES = ("a table of tables", lambda v: isinstance(v, dict) and all(isinstance(x, dict) for x in v.values()))

SCHEMA = {
    "select": _STR_LIST,
    "ignore": _STR_LIST,
    "extend-select": _STR_LIST,
    "exclude": _STR_LIST,
    "extend-exclude": _STR_LIST,
    "per-file-ignores": _TABLE_OF_LISTS,
    "torch-version": _STR,
    "target-version": _STR,
    "model-names": _MODEL_NAMES,
    "max-file-size": _INT,
    "cache-dir": _STR,
    "runtime": _BOOL,
    "checkpoints": _LIST_OF_TABLES,
    "safe-globals": _STR_LIST,
    "explicit-weights-only": _BOOL,
    "rule-options": _TABLE_OF_TABLES,  # checked against each rule's `options` (rule_options below)
}

DEFAULT_MAX_FILE_SIZE = 10 * 1024 * 1024


@dataclass
class Settings:
    """The effective `[tool.ckptlint]` of one config file (or the defaults)."""

    root: Path
    config_file: Optional[Path] = None
    select: Optional[List[str]] = None
    ignore: List[str] = field(default_factory=list)
    extend_select: List[str] = field(default_factory=list)
    exclude: Optional[List[str]] = None  # None: the default list (see files.DEFAULT_EXCLUDE)
    extend_exclude: List[str] = field(default_factory=list)
    per_file_ignores: Dict[str, List[str]] = field(default_factory=dict)
    torch_version: Optional[Tuple[int, ...]] = None
    torch_version_source: Optional[str] = None
    target_version: Optional[Tuple[int, int]] = None
    target_version_source: Optional[str] = None
    line_length: Optional[int] = None  # from [tool.ruff] / [tool.black]: fixes keep lines within it
    model_names: Optional[object] = None  # None = built-in list, False = off, list = custom
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    cache_dir: Optional[str] = None
    runtime: bool = False
    checkpoints: list = field(default_factory=list)
    safe_globals: List[str] = field(default_factory=list)
    # CKPT002 also where the torch floor is 2.6 or newer (the omitted keyword already means
    # `True` there): for teams that want every load to say what it allows
    explicit_weights_only: bool = False
    # [tool.ckptlint.rule-options.CODE]: what the config sets of each rule's options
    # (validated; the rule's defaults fill in the rest: Rule.options_in)
    rule_options: Dict[str, Dict[str, Any]] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """Everything resolved into these settings, for caches: every field, read from the
        dataclass, so a field added later is in the key without anyone remembering to add it.
        A few never change a file's result (the cache folder, exclusion); a change to one
        costs a cache miss, never a stale result."""
        return repr(tuple((f.name, _plain(getattr(self, f.name), f.name)) for f in fields(self)))

    def enabled_codes(self) -> List[str]:
        from ckptlint.workspace.selection import resolve

        return resolve(self.select, self.extend_select, self.ignore, self.config_file)


def _plain(value, name: str):
    """`value` as plain data whose repr is the same in every process: a Path as its text,
    containers as tuples (dicts keep their order: the config's order is the config)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v, name) for v in value)
    if isinstance(value, dict):
        return tuple((k, _plain(v, name)) for k, v in value.items())
    raise TypeError(f"Settings.{name} holds a {type(value).__name__}, which the cache key cannot read")


_REQ = re.compile(r"^\s*torch\s*(\[[^\]]*\])?\s*(?P<spec>[^;]*)(;.*)?$", re.IGNORECASE)


def torch_floor(dependencies) -> Optional[Tuple[int, ...]]:
    """The lowest torch a `[project] dependencies` list admits (None when unbounded)."""
    for dep in dependencies or ():
        if not isinstance(dep, str):
            continue
        m = _REQ.match(dep)
        if not m:
            continue
        floors = []
        for spec in m.group("spec").split(","):
            spec = spec.strip().strip("()")
            for op in ("===", "==", "~=", ">="):
                if spec.startswith(op):
                    v = parse_version(spec[len(op):])
                    if v:
                        floors.append(v)
                    break
            else:
                if spec.startswith(">") and parse_version(spec[1:]):
                    floors.append(parse_version(spec[1:]))
        if floors:
            return max(floors)
    return None


def python_floor(spec) -> Optional[Tuple[int, int]]:
    """The oldest Python 3 a `requires-python` specifier admits (`>=3.7`, `~=3.8`, `>3.6,<4`),
    as ruff reads it; None when it says nothing about a lower bound."""
    if not isinstance(spec, str):
        return None
    floors = []
    for part in spec.split(","):
        m = re.match(r"\s*(>=|~=|==|>)\s*3(?:\.(\d+))?", part)
        if m:
            floors.append((3, int(m.group(2) or 0)))
    return max(floors) if floors else None


_SETUP_FILES = ("setup.cfg", "setup.py")


def _project_marker(d: Path) -> Optional[Path]:
    """setup.cfg, setup.py, or else a requirements*.txt of the folder: what says, without a
    pyproject.toml, which Python and torch the project supports."""
    found = next((d / n for n in _SETUP_FILES if (d / n).is_file()), None)
    if found is None:
        reqs = requirement_files(d)
        found = reqs[0] if reqs else None
    return found
_PYTHON_REQUIRES = {  # `python_requires = >=3.7` (setup.cfg), `python_requires=">=3.7"` (setup.py)
    "setup.cfg": re.compile(r"^\s*python_requires\s*=\s*([^\n#;]+)", re.MULTILINE),
    "setup.py": re.compile(r"python_requires\s*=\s*[\"']([^\"']+)[\"']"),
}


def setup_python_floor(folder: Path):
    """(oldest Python, where it says so) from `python_requires` in the folder's setup.cfg or
    setup.py (projects without `requires-python`), else (None, None)."""
    for name in _SETUP_FILES:
        try:
            text = (folder / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        m = _PYTHON_REQUIRES[name].search(text)
        v = python_floor(m.group(1)) if m else None
        if v is not None:
            return v, f"`python_requires` in {name}"
    return None, None


def _line_length(tool: dict) -> Optional[int]:
    """The line length the project's formatter or linter keeps (ruff, then black)."""
    for name in ("ruff", "black"):
        table = tool.get(name)
        value = table.get("line-length") if isinstance(table, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _load_toml(path: Path) -> dict:
    # imported here: a run without a pyproject.toml never needs it (start-up time)
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.9/3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, f"invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(path, f"cannot read: {exc.strerror or exc}") from None


def settings_from_file(path: Path) -> Settings:
    path = Path(path).resolve()
    return settings_from_data(_load_toml(path), path)


def settings_from_data(data: dict, path: Path) -> Settings:
    """Settings from a parsed pyproject-shaped document (`path` names it in errors)."""
    tool = data.get("tool", {})
    table = tool.get("ckptlint", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(path, "must be a table", key="tool.ckptlint")
    s = Settings(root=path.parent, config_file=path)
    for key, value in table.items():
        if key not in SCHEMA:
            known = ", ".join(sorted(SCHEMA))
            raise ConfigError(path, f"unknown key in [tool.ckptlint] (known keys: {known})", key=key)
        kind, ok = SCHEMA[key]
        if not ok(value):
            raise ConfigError(path, f"must be {kind}, got {type(value).__name__} {value!r}", key=key)
    s.select = table.get("select")
    s.ignore = table.get("ignore", [])
    s.extend_select = table.get("extend-select", [])
    s.exclude = table.get("exclude")
    s.extend_exclude = table.get("extend-exclude", [])
    s.per_file_ignores = table.get("per-file-ignores", {})
    s.model_names = table.get("model-names")
    s.max_file_size = table.get("max-file-size", DEFAULT_MAX_FILE_SIZE)
    s.cache_dir = table.get("cache-dir")
    s.runtime = table.get("runtime", False)
    s.checkpoints = table.get("checkpoints", [])
    if s.checkpoints:  # a bad entry is an error wherever the config is read, not only by verify
        from ckptlint.entries import parse_entries

        parse_entries(s.checkpoints, path)
    s.safe_globals = table.get("safe-globals", [])
    s.rule_options = rule_options(table.get("rule-options", {}), path)
    s.explicit_weights_only = table.get("explicit-weights-only", False)
    if "torch-version" in table:
        v = parse_version(table["torch-version"])
        if v is None:
            raise ConfigError(path, f"not a version: {table['torch-version']!r}", key="torch-version")
        s.torch_version, s.torch_version_source = v, "`torch-version` in " + path.name
    else:
        project = data.get("project", {})
        deps = project.get("dependencies", []) if isinstance(project, dict) else []
        v = torch_floor(deps if isinstance(deps, list) else [])
        if v is None:
            v = torch_floor(poetry_requirements(tool if isinstance(tool, dict) else {}))
        if v is not None:
            s.torch_version, s.torch_version_source = v, "the `torch` requirement in " + path.name
        else:  # setuptools metadata or pip requirement files beside it
            s.torch_version, s.torch_version_source = declared_floor(path.parent, torch_floor)
    if "target-version" in table:
        m = re.fullmatch(r"(?:py)?3\.?(\d+)", table["target-version"].strip())
        if not m:
            raise ConfigError(path, "expected e.g. `py39` or `3.9`", key="target-version")
        s.target_version, s.target_version_source = (3, int(m.group(1))), "`target-version` in " + path.name
    else:
        project = data.get("project", {})
        v = python_floor(project.get("requires-python") if isinstance(project, dict) else None)
        if v is not None:
            s.target_version, s.target_version_source = v, "`requires-python` in " + path.name
        else:
            s.target_version, s.target_version_source = setup_python_floor(path.parent)
    s.line_length = _line_length(tool if isinstance(tool, dict) else {})
    # validate code selectors now, so a typo is an error naming this file
    s.enabled_codes()
    for pattern, codes in s.per_file_ignores.items():
        from ckptlint.workspace.selection import check_selectors

        check_selectors(codes, path, f"per-file-ignores.{pattern}")
    return s


def rule_options(table: Dict[str, dict], path: Path) -> Dict[str, Dict[str, Any]]:
    """`[tool.ckptlint.rule-options]`, checked against what each rule declares (Rule.options)."""
    from ckptlint.rules import rule_class

    for code, given in table.items():
        rule = rule_class(code)
        if rule is None:
            raise ConfigError(path, "no rule has this code", key=f"rule-options.{code}")
        for name, value in given.items():
            option = rule.options.get(name)
            if option is None:
                known = ", ".join(f"`{n}`" for n in rule.options) or "none"
                raise ConfigError(path, f"{code} has no option `{name}` (its options: {known})",
                                  key=f"rule-options.{code}.{name}")
            if not option.accepts(value):
                raise ConfigError(path, f"must be {option.kind}, got {type(value).__name__} {value!r}",
                                  key=f"rule-options.{code}.{name}")
    return table


def _has_table(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return b"[tool.ckptlint" in fh.read()
    except OSError:
        return False


def find_config(directory: Path, memo: Optional[dict] = None) -> Optional[Path]:
    """Nearest pyproject.toml with a [tool.ckptlint] table above `directory`; failing that,
    the nearest pyproject.toml at all (for its torch requirement); failing that, the nearest
    setup.cfg, setup.py or requirements*.txt (for the oldest Python and torch it supports).
    `memo` (a dict the caller keeps) shares what each folder holds among the folders below it."""
    found = _configs_above(directory, {} if memo is None else memo)
    return found[0] or found[1] or found[2]


def _configs_above(d: Path, memo: dict) -> tuple:
    """(nearest pyproject.toml with the table, nearest pyproject.toml, nearest setup file)."""
    if d not in memo:
        candidate = d / "pyproject.toml"
        mine = candidate if candidate.is_file() else None
        setup = _project_marker(d)
        if mine is not None and _has_table(mine):
            memo[d] = (mine, mine, setup)
        else:
            above = _configs_above(d.parent, memo) if d.parent != d else (None, None, None)
            memo[d] = (above[0], mine or above[1], setup or above[2])
    return memo[d]


def settings_for_config(config: Optional[Path], cwd: Path) -> Settings:
    """The settings a config file found by find_config gives (`cwd` is the root without one)."""
    if config is None:
        return Settings(root=cwd)
    if config.name != "pyproject.toml":  # setup.cfg / setup.py / requirements: Python and torch floors
        s = Settings(root=cwd)
        s.target_version, s.target_version_source = setup_python_floor(config.parent)
        s.torch_version, s.torch_version_source = declared_floor(config.parent, torch_floor)
        return s
    return settings_from_file(config)
