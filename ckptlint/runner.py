"""One run over many files: discovery, per-file settings, linting, writing fixes.

The CLI renders what this returns; the LSP server and tests call `lint_path` directly."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

from ckptlint.config import Settings, settings_for_path, settings_from_file
from ckptlint.files import discover, module_name_for
from ckptlint.linter import INTERNAL_ERROR, IO_ERROR, FileResult, error, lint_path, write_fixed


@dataclass
class Options:
    paths: List[str]
    fix: bool = False
    unsafe_fixes: bool = False
    diff: bool = False  # compute fixes but write nothing
    select: Optional[List[str]] = None
    extend_select: List[str] = field(default_factory=list)
    ignore: List[str] = field(default_factory=list)
    config: Optional[str] = None
    force_exclude: bool = False
    ignore_noqa: bool = False  # report what `# noqa` comments would hide


@dataclass
class RunResult:
    diagnostics: list = field(default_factory=list)
    applied: list = field(default_factory=list)  # diagnostics whose fixes were applied
    changed: List[FileResult] = field(default_factory=list)  # files whose text the fixes changed
    files_checked: int = 0
    codes: List[str] = field(default_factory=list)  # every rule selected for some file (SARIF lists them)


def settings_resolver(options: Options, cwd: Path) -> Callable[[Path], Settings]:
    """path -> effective settings: its pyproject (or --config) plus the command line's selection."""
    fixed = settings_from_file(Path(options.config)) if options.config else None
    memo = {}

    def resolve(path: Path) -> Settings:
        base = fixed or settings_for_path(Path(path), cwd)
        if id(base) not in memo:
            changes = {}
            if options.select is not None:
                changes["select"] = options.select
            if options.extend_select:
                changes["extend_select"] = list(base.extend_select) + options.extend_select
            if options.ignore:
                changes["ignore"] = list(base.ignore) + options.ignore
            memo[id(base)] = (base, dataclasses.replace(base, **changes) if changes else base)
        return memo[id(base)][1]

    return resolve


def run(options: Options, cwd: Optional[Path] = None) -> RunResult:
    cwd = cwd or Path.cwd()
    settings_for = settings_resolver(options, cwd)
    found = discover(options.paths or ["."], settings_for, force_exclude=options.force_exclude)
    out = RunResult(files_checked=len(found.files))
    codes = set()
    for missing in found.missing:
        out.diagnostics.append(error(IO_ERROR, os.path.abspath(missing), "No such file or directory"))
    for folder, message in found.unreadable:
        out.diagnostics.append(error(IO_ERROR, os.path.abspath(folder), message))
    fix = options.fix or options.diff
    for path in found.files:
        settings = settings_for(path)
        codes.update(settings.enabled_codes())
        try:
            result = lint_path(
                path, settings, settings.enabled_codes(), fix=fix,
                unsafe_fixes=options.unsafe_fixes, module_name=module_name_for(path),
                ignore_noqa=options.ignore_noqa,
            )
        except Exception as exc:  # a bug on one file must not end the run for the others
            result = FileResult(os.path.abspath(path), [error(
                INTERNAL_ERROR, os.path.abspath(path), f"internal error: {type(exc).__name__}: {exc}; please report it")])
        out.diagnostics.extend(result.diagnostics)
        if result.fixed is None:
            continue
        out.applied.extend(result.applied)
        out.changed.append(result)
        if not options.diff:
            refused = write_fixed(path, result)
            if refused is not None:
                out.diagnostics.append(refused)
    out.codes = sorted(codes) if codes else _default_codes(settings_for, cwd)
    return out


def _default_codes(settings_for, cwd: Path) -> List[str]:
    """The selection a run with no files would have used (SARIF still lists the rules)."""
    from ckptlint.errors import ConfigError

    try:
        return sorted(settings_for(cwd).enabled_codes())
    except ConfigError:
        return []
