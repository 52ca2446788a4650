"""What the server computes, without pygls: lint a document's text with the settings of its
workspace, and build fixes and noqa edits. Runs in worker threads, never on the event loop.

One Engine per server: it keeps the Workspace (settings, exclusion, module names, the project
index), re-reads the settings when a pyproject.toml above a document changed, and hands the
engine the text as the editor has it."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ckptlint.diagnostic import Diagnostic
from ckptlint.errors import ConfigError
from ckptlint.workspace.workspace import Workspace


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


class Engine:
    def __init__(self, root: Optional[str] = None, **selection):
        """`selection`: Workspace's config, select, extend_select and ignore (the server's
        command line), applied over each document's settings."""
        self.root = Path(root or os.getcwd())
        self.workspace = Workspace(self.root, **selection)
        self._lock = threading.Lock()
        self._stamps: Dict[str, tuple] = {}

    def forget_settings(self) -> None:
        """A pyproject.toml changed (or the client says the configuration did)."""
        with self._lock:
            self.workspace.forget_settings()
            self._stamps.clear()

    def forget_project(self) -> None:
        """A saved file may define classes other files use: read the project again."""
        self.workspace.project.forget()

    def settings_for(self, path: Optional[str]):
        """Settings for a document: from the pyproject.toml governing it, re-read when any
        pyproject.toml on the way up changed. Returns (settings, config error message or None)."""
        from ckptlint.workspace.config import Settings

        target = Path(path) if path else self.root / "untitled.py"
        directory = target.parent.resolve()
        stamp = _config_stamp(directory)
        with self._lock:
            if self._stamps.get(str(directory)) != stamp:
                self.workspace.forget_settings()
                self._stamps[str(directory)] = stamp
        try:
            return self.workspace.settings_for(target), None
        except ConfigError as exc:
            return Settings(root=self.root), str(exc)

    def lint(self, path: Optional[str], text: str, fix: bool = False,
             reuse=None) -> Tuple[str, List[Diagnostic], Optional[str]]:
        """(text after safe fixes when `fix`, diagnostics, config error). `reuse`: the
        document's lsp.incremental.Document, kept between lints of the same document."""
        from ckptlint.engine.lint import lint

        if path and path.endswith(".ipynb"):
            return text, [], None  # a notebook opened as JSON text; notebooks are linted by the CLI
        settings, problem = self.settings_for(path)
        if path and self._excluded(path, settings):
            return text, [], problem  # excluded in the config: the editor agrees with the CLI
        module_name = None
        if path:
            from ckptlint.analysis.modules import module_name_for

            try:  # not the workspace's memo: an __init__.py may appear while the editor runs
                module_name = module_name_for(Path(path))
            except OSError:
                module_name = None
        result = lint(text, settings, self.workspace.project, path=path or "untitled.py",
                      module_name=module_name, fix=fix, reuse=reuse)
        return result.fixed if result.fixed is not None else text, result.diagnostics, problem

    def _excluded(self, path: str, settings) -> bool:
        from ckptlint.workspace.files import excluded_explicitly

        try:
            return excluded_explicitly(Path(path), settings)
        except (OSError, ValueError):
            return False
