"""One `check` run over many files: discovery, per-file settings, the cache, linting on the
pool, writing fixes, and linting again what the fixes made stale. The CLI renders what this
returns."""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, List, Optional

from ckptlint.diagnostic import FIX_ERROR, IO_ERROR, file_error
from ckptlint.workspace.deps import ProjectStamps
from ckptlint.workspace.parallel import Task, default_jobs, lint_all
from ckptlint.workspace.workspace import Workspace

if TYPE_CHECKING:
    from ckptlint.engine.lint import FileResult


@dataclass
class Options:
    """What the command line asks of a `check` run."""

    paths: List[str]
    fix: bool = False
    unsafe_fixes: bool = False
    diff: bool = False  # compute fixes but write nothing
    select: Optional[List[str]] = None
    extend_select: List[str] = field(default_factory=list)
    ignore: List[str] = field(default_factory=list)
    config: Optional[str] = None
    force_exclude: bool = False
    jobs: Optional[int] = None  # None: every available CPU
    cache: bool = True
    cache_dir: Optional[str] = None  # --cache-dir
    progress: Optional[Callable[[int, int], None]] = None  # (done, total), for long runs
    ignore_noqa: bool = False  # report what `# noqa` comments would hide


@dataclass
class RunResult:
    """What a `check` run found and changed."""

    diagnostics: list = field(default_factory=list)
    applied: list = field(default_factory=list)  # diagnostics whose fixes were applied
    changed: List[FileResult] = field(default_factory=list)  # files whose text the fixes changed
    files_checked: int = 0
    codes: List[str] = field(default_factory=list)  # every rule selected for some file (SARIF lists them)
    workspace: Optional[Workspace] = None  # what the run read (its configs), for what follows it


def workspace_for(options: Options, cwd: Path) -> Workspace:
    return Workspace(cwd, options.config, options.select, options.extend_select, options.ignore)


def run(options: Options, cwd: Optional[Path] = None) -> RunResult:
    cwd = cwd or Path.cwd()
    workspace = workspace_for(options, cwd)
    settings_for = workspace.settings_for
    found = workspace.discover(options.paths or ["."], force_exclude=options.force_exclude)
    out = RunResult(files_checked=len(found.files), workspace=workspace)
    codes_seen = set()
    for missing in found.missing:
        out.diagnostics.append(file_error(IO_ERROR, os.path.abspath(missing), "No such file or directory"))
    for folder, message in found.unreadable:
        out.diagnostics.append(file_error(IO_ERROR, os.path.abspath(folder), message))
    fix = options.fix or options.diff
    cache = _open_cache(options, settings_for, cwd)
    project_stamps = ProjectStamps(workspace.project_files, time.time_ns())
    results: List[Optional[list]] = [None] * len(found.files)  # diagnostics per file, in order
    consulted: List[list] = [[] for _ in found.files]  # project index keys each result used
    all_tasks: List[Task] = []
    tasks, slots = [], []
    per_folder: dict = {}  # a folder's settings, and their codes: looked up once per folder
    for i, path in enumerate(found.files):
        folder = os.path.dirname(os.path.abspath(path))
        if folder not in per_folder:
            settings = settings_for(Path(folder))
            per_folder[folder] = (settings, settings.enabled_codes())
        settings, codes = per_folder[folder]
        codes_seen.update(codes)
        task = Task(path, settings, codes, workspace.module_name(path), ignore_noqa=options.ignore_noqa)
        try:
            st = os.stat(path)
            task.size = st.st_size
        except OSError:
            st = None
        all_tasks.append(task)
        hit = _cached(cache, task, st, fix, options.unsafe_fixes, project_stamps)
        if hit is not None:
            results[i], consulted[i] = hit
        else:
            tasks.append(task)
            slots.append(i)
    done = [len(found.files) - len(tasks)]

    def advance(n: int) -> None:
        done[0] += n
        if options.progress:
            options.progress(done[0], len(found.files))

    jobs = options.jobs or default_jobs()
    outcomes = lint_all(tasks, jobs, fix, options.unsafe_fixes, advance, hashing=cache is not None,
                        lint=workspace.lint_file)
    written = []
    for i, task, (result, digest, st, deps) in zip(slots, tasks, outcomes):
        results[i] = result.diagnostics
        consulted[i] = deps
        if cache is not None and digest is not None and _cacheable(result, fix, options.unsafe_fixes):
            stamps = {key: project_stamps.stamp(key) for key in deps}
            if None not in stamps.values():  # else a project file changed during the run
                cache.bucket(task.settings, task.codes, task.ignore_noqa).store(
                    os.path.abspath(task.path), st, digest, task.module_name, result.diagnostics,
                    extra={"project": stamps} if stamps else None)
        if result.fixed is None:
            continue
        out.applied.extend(result.applied)
        out.changed.append(result)
        if not options.diff:
            from ckptlint.workspace.write import write_fixed

            refused = write_fixed(task.path, result)
            if refused is not None:
                results[i] = result.diagnostics + [refused]
            else:
                written.append(task.module_name)
    if written:
        _recheck_across_files(workspace, all_tasks, results, consulted, written, jobs)
    if cache is not None:
        cache.save()
    for diags in results:
        out.diagnostics.extend(diags)
    out.codes = sorted(codes_seen) if codes_seen else _default_codes(settings_for, cwd)
    return out


def _recheck_across_files(workspace: Workspace, tasks: List[Task], results: list, consulted: List[list],
                          written: List[str], jobs: int) -> None:
    """Lint again the files whose results looked at other project files, now that fixes have
    rewritten some: a CKPT010 about a save site that a CKPT001 fix just changed in another
    file is gone, and a report must not show it. Results that consulted only modules none of
    the rewritten files define stay as they are."""
    changed = set(written)
    again = [i for i, keys in enumerate(consulted) if any(
        k.startswith("tree\0") or (k.startswith("module\0") and k.rsplit("\0", 1)[-1] in changed) for k in keys)]
    if not again:
        return
    workspace.project.forget()  # its entries were read before the fixes
    redo = [tasks[i] for i in again]
    for i, (result, _, _, _) in zip(again, lint_all(redo, jobs, False, False, None, hashing=False,
                                                    lint=workspace.lint_file)):
        if not any(d.code == FIX_ERROR[0] for d in results[i]):
            results[i] = result.diagnostics


def _default_codes(settings_for, cwd: Path) -> List[str]:
    """The selection a run with no files would have used (SARIF still lists the rules)."""
    from ckptlint.errors import ConfigError

    try:
        return sorted(settings_for(cwd).enabled_codes())
    except ConfigError:
        return []


def _cacheable(result, fix: bool, unsafe_fixes: bool) -> bool:
    """Only what a plain check of the file as it is on disk would report."""
    if not fix:
        return True
    return result.fixed is None and not any(
        d.code == FIX_ERROR[0] or (d.fix is not None and d.fix.applies(unsafe_fixes)) for d in result.diagnostics)


def _open_cache(options: Options, settings_for, cwd: Path):
    if not options.cache:
        return None
    from ckptlint.workspace.cache import Cache, resolve_cache_dir

    try:
        base = settings_for(cwd)
    except Exception:  # a broken config is reported per file; the cache falls back to cwd
        base = None
    return Cache(resolve_cache_dir(options.cache_dir, base, cwd))


def _cached(cache, task: Task, st, fix: bool, unsafe_fixes: bool, project_stamps) -> Optional[tuple]:
    """(The file's diagnostics, the project keys they depend on) from the cache, or None to
    lint it."""
    if cache is None or st is None or not stat.S_ISREG(st.st_mode):
        return None
    name = os.path.abspath(task.path)
    entry = cache.bucket(task.settings, task.codes, task.ignore_noqa).lookup(
        name, st, task.module_name, read=lambda: Path(task.path).read_bytes())
    if entry is None:
        return None
    # a result that used the project index holds only while the project is as it was
    for key, stamp in ((entry.get("extra") or {}).get("project") or {}).items():
        if project_stamps.stamp(key) != stamp:
            return None
    from ckptlint.workspace.cache import load_diagnostic

    diags = [load_diagnostic(v, name) for v in entry["diagnostics"]]
    if fix and any(d.fix is not None and d.fix.applies(unsafe_fixes) for d in diags):
        return None  # something to fix: lint it for real
    return diags, list((entry.get("extra") or {}).get("project") or {})
