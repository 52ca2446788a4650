"""What the server computes, without pygls: lint a document's text with the settings of its
workspace, and build fixes and noqa edits. Runs in worker threads, never on the event loop."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import List, Optional, Tuple

from ckptlint.diagnostic import Diagnostic
from ckptlint.errors import ConfigError

_lock = threading.Lock()
_stamp: dict = {}


def _config_stamp(directory: Path) -> tuple:
    """(path, mtime, size) of every pyproject.toml above `directory`: when it changes, the
    cached config lookups are stale."""
    out = []
    for d in (directory, *directory.parents):
        p = d / "pyproject.toml"
        try:
            st = p.stat()
        except OSError:
            continue
        out.append((str(p), st.st_mtime_ns, st.st_size))
    return tuple(out)


def clear_config_cache() -> None:
    from ckptlint.workspace.config import find_config, settings_for_config

    find_config.cache_clear()
    settings_for_config.cache_clear()


def settings_for(path: Optional[str], root: Optional[str]):
    """Settings for a document: from the pyproject.toml governing it, re-read when any
    pyproject.toml on the way up changed. Returns (settings, config error message or None)."""
    from ckptlint.workspace.config import Settings, settings_for_path

    base = Path(root or os.getcwd())
    target = Path(path) if path else base / "untitled.py"
    directory = target.parent.resolve()
    stamp = _config_stamp(directory)
    with _lock:
        if _stamp.get(str(directory)) != stamp:
            clear_config_cache()
            _stamp[str(directory)] = stamp
    try:
        return settings_for_path(target, base), None
    except ConfigError as exc:
        return Settings(root=base), str(exc)


def lint(path: Optional[str], text: str, root: Optional[str], fix: bool = False) -> Tuple[str, List[Diagnostic], Optional[str]]:
    """(text after safe fixes when `fix`, diagnostics, config error)."""
    from ckptlint.engine.lint import check_text, static_rules

    if path and path.endswith(".ipynb"):
        return text, [], None  # a notebook opened as JSON text; notebooks are linted by the CLI
    settings, problem = settings_for(path, root)
    if path and _excluded(path, settings):
        return text, [], problem  # excluded in the config: the editor agrees with the CLI
    name = path or "untitled.py"
    rules = static_rules(settings.enabled_codes())
    module_name = None
    if path:
        from ckptlint.workspace.files import module_name_for

        try:
            module_name = module_name_for(Path(path))
        except OSError:
            module_name = None
    new, diags, _ = check_text(name, text, settings, rules, fix=fix, unsafe_fixes=False, module_name=module_name)
    return new, diags, problem


def _excluded(path: str, settings) -> bool:
    from ckptlint.workspace.files import _explicit_excluded

    try:
        return _explicit_excluded(Path(path), settings)
    except (OSError, ValueError):
        return False
