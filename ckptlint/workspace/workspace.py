"""The Workspace: one object for what a run knows about the files around it.

Settings (the governing pyproject.toml, or --config, plus the command line's selection),
exclusion (`exclude`, `extend-exclude`, .gitignore), module names and the project walk that
the project index reads. `check`, `verify`, the language server and the project index all go
through one, so they agree on which settings govern a file and which files belong to the
project. Its caches are its own: a new Workspace (or `forget_settings`, `project.forget()`)
sees the disk anew.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Sequence, Tuple

from ckptlint.analysis.modules import ModuleNames, walk_modules
from ckptlint.diagnostic import file_error
from ckptlint.workspace import files
from ckptlint.workspace.config import Settings, find_config, settings_for_config, settings_from_file

if TYPE_CHECKING:
    from ckptlint.analysis.project import ProjectIndex
    from ckptlint.engine.lint import FileResult


class Workspace:
    def __init__(self, cwd: Path, config: Optional[str] = None, select: Optional[List[str]] = None,
                 extend_select: Sequence[str] = (), ignore: Sequence[str] = ()):
        """`config`: a pyproject-shaped file that governs every path (--config), else each
        path's nearest pyproject.toml; `select` / `extend_select` / `ignore`: the command
        line's selection, applied over whatever the config says."""
        self.cwd = Path(cwd)
        self._fixed = settings_from_file(Path(config)) if config else None
        self._select = select
        self._extend_select = list(extend_select)
        self._ignore = list(ignore)
        self._project: Optional[ProjectIndex] = None
        self.module_name = ModuleNames()
        self.forget_settings()

    @property
    def project(self) -> ProjectIndex:
        """The project index the engine is handed, walked with this workspace's exclusion.
        (Made on first use: a run served by the cache, or `verify`, never needs it.)"""
        if self._project is None:
            from ckptlint.analysis.project import ProjectIndex

            self._project = ProjectIndex(self.project_files)
        return self._project

    # --- settings ---------------------------------------------------------------------------
    def forget_settings(self) -> None:
        """Config files changed: look them up and read them again."""
        self._by_folder: Dict[Path, Settings] = {}  # resolving a path costs an lstat per component
        self._config_of: Dict[Path, Optional[Path]] = {}
        self._found: dict = {}  # the config files each folder holds (config.find_config)
        self._by_config: Dict[Optional[Path], Settings] = {}
        self._selected: Dict[int, Tuple[Settings, Settings]] = {}

    def config_settings(self, path: Path) -> Settings:
        """The settings of the config governing a file or folder (its pyproject, or --config),
        without the command line's selection. Raises ConfigError for a broken config."""
        base = self._fixed
        if base is None:
            path = Path(path)
            folder = path if path.is_dir() else path.parent
            base = self._by_folder.get(folder)
            if base is None:
                base = self._by_folder[folder] = self._settings_of_folder(folder)
        return base

    def settings_for(self, path: Path) -> Settings:
        """The effective settings of a file or folder: its pyproject (or --config) with the
        command line's selection. Raises ConfigError for a broken config."""
        base = self.config_settings(path)
        if id(base) not in self._selected:
            changes = {}
            if self._select is not None:
                changes["select"] = self._select
            if self._extend_select:
                changes["extend_select"] = list(base.extend_select) + self._extend_select
            if self._ignore:
                changes["ignore"] = list(base.ignore) + self._ignore
            self._selected[id(base)] = (base, dataclasses.replace(base, **changes) if changes else base)
        return self._selected[id(base)][1]

    def _settings_of_folder(self, folder: Path) -> Settings:
        directory = folder.resolve()
        if directory not in self._config_of:
            self._config_of[directory] = find_config(directory, self._found)
        config = self._config_of[directory]
        if config not in self._by_config:
            self._by_config[config] = settings_for_config(config, self.cwd)  # not kept when it raises
        return self._by_config[config]

    # --- files ------------------------------------------------------------------------------
    def discover(self, paths: Iterable[str], force_exclude: bool = False) -> files.Discovery:
        return files.discover(paths, self.settings_for, force_exclude=force_exclude)

    def excluded(self, path: Path) -> bool:
        """Is a file named on its own (--force-exclude, an editor's document) excluded?"""
        return files.excluded_explicitly(Path(path), self.settings_for(Path(path)))

    def project_files(self, root: Path, whole: bool) -> List[Tuple[Path, str]]:
        """The project index's walk: the Python files under `root` that a run would lint."""
        return walk_modules(root, whole, files.project_skip(root, self.settings_for))

    # --- linting ----------------------------------------------------------------------------
    def lint_file(self, path: Path, settings: Settings, codes: Sequence[str], fix: bool = False,
                  unsafe_fixes: bool = False, module_name: Optional[str] = None,
                  ignore_noqa: bool = False) -> FileResult:
        """Read one file and lint it with the engine, against this workspace's project."""
        from ckptlint.engine.lint import FileResult, lint, rules_for
        from ckptlint.engine.source import SourceError

        name = os.path.abspath(path)
        try:
            src = files.read_source(Path(path), settings)
        except SourceError as exc:
            return FileResult(name, [file_error((exc.code, exc.name), name, exc.message, help=exc.help)])
        result = lint(src.text, settings, self.project, path=name, module_name=module_name,
                      rules=rules_for(codes), fix=fix, unsafe_fixes=unsafe_fixes, ignore_noqa=ignore_noqa)
        result.source = src
        return result
