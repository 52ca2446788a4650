"""Linting many files on several cores: one process pool per run, not per file.

A few files (a pre-commit chunk, the editor) are linted in-process: starting workers costs
more than it saves. Results come back in the order of the tasks, so output does not depend
on the number of jobs. Each worker gets the run's lint function (a Workspace's lint_file,
with the project index it fills) once, when the pool starts it, not with every chunk.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Optional

from ckptlint.diagnostic import INTERNAL_ERROR, file_error

# Below this much source, starting worker processes costs more than it saves
# (syntax-checking 256 KiB takes ~25 ms; starting a pool about as long).
MIN_PARALLEL_BYTES = 256 * 1024


@dataclass
class Task:
    """One file to lint, with its settings and enabled codes."""

    path: Path
    settings: object
    codes: List[str]
    module_name: str
    size: int = 0
    ignore_noqa: bool = False


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def lint_task(task: Task, fix: bool, unsafe_fixes: bool, hashing: bool, lint: Callable):
    """(FileResult, content hash or None, os.stat_result or None, project index keys the
    lint consulted) for one file; the hash and stat only with `hashing` (for the cache).
    `lint(path, settings, codes, fix=..., ...)` is a Workspace's lint_file."""
    try:
        before = os.stat(task.path)
    except OSError:
        before = None
    try:
        result = lint(task.path, task.settings, task.codes, fix=fix, unsafe_fixes=unsafe_fixes,
                      module_name=task.module_name, ignore_noqa=task.ignore_noqa)
    except Exception as exc:  # a bug on one file must not end the run for the others
        from ckptlint.engine.lint import FileResult

        name = os.path.abspath(task.path)
        result = FileResult(name, [file_error(
            INTERNAL_ERROR, name, f"internal error: {type(exc).__name__}: {exc}", help="Please report it")])
        return result, None, None, []
    deps = result.dependencies
    data = getattr(result.source, "data", None)  # the bytes that were linted
    digest = None
    if hashing and data is not None and before is not None and stat.S_ISREG(before.st_mode):
        from ckptlint.workspace.cache import content_hash

        digest = content_hash(data)
    if result.fixed is None:
        # the texts only matter to --diff/--fix; don't ship them between processes
        result.original = result.source = None
    return result, digest, before, deps


_WORKER: dict = {}  # in a pool worker process: the run's lint function (set by _adopt)


def _adopt(lint: Callable) -> None:
    _WORKER["lint"] = lint


def _run_chunk(args):
    tasks, fix, unsafe_fixes, hashing = args
    return [lint_task(t, fix, unsafe_fixes, hashing, _WORKER["lint"]) for t in tasks]


def _context():
    import multiprocessing

    # fork: workers inherit the imported modules and start in milliseconds (Linux)
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def lint_all(tasks: List[Task], jobs: int, fix: bool, unsafe_fixes: bool,
             progress: Optional[Callable[[int], None]], hashing: bool, lint: Callable) -> Iterator:
    """Yields lint_task results in task order."""
    total = sum(t.size for t in tasks)
    if jobs <= 1 or len(tasks) < 2 or total < MIN_PARALLEL_BYTES:
        for t in tasks:
            result = lint_task(t, fix, unsafe_fixes, hashing, lint)
            if progress:
                progress(1)
            yield result
        return
    from concurrent.futures import ProcessPoolExecutor

    # Biggest files first, so no worker is left with a huge one at the end, in chunks of
    # about 1/(32 jobs) of the source: a big file goes alone (the few files LibCST parses are
    # among the biggest, and a chunk of them on one worker was the critical path), small
    # ones share an IPC round trip. Idle workers take the next chunk; results are put back
    # in task order.
    order = sorted(range(len(tasks)), key=lambda i: -tasks[i].size)
    budget = max(1, total // (jobs * 32))
    chunks: List[List[int]] = []
    current: List[int] = []
    size = 0
    for i in order:
        current.append(i)
        size += tasks[i].size
        if size >= budget or len(current) >= 64:
            chunks.append(current)
            current, size = [], 0
    if current:
        chunks.append(current)
    results: List = [None] * len(tasks)
    # fork (Linux): the workers inherit `lint` and its workspace as they are; elsewhere they are
    # pickled once per worker
    with ProcessPoolExecutor(max_workers=min(jobs, len(chunks)), mp_context=_context(),
                             initializer=_adopt, initargs=(lint,)) as pool:
        futures = [pool.submit(_run_chunk, ([tasks[i] for i in c], fix, unsafe_fixes, hashing)) for c in chunks]
        next_out = 0
        for chunk, fut in zip(chunks, futures):
            for i, r in zip(chunk, fut.result()):
                results[i] = r
            if progress:
                progress(len(chunk))
            while next_out < len(tasks) and results[next_out] is not None:
                yield results[next_out]
                results[next_out] = None
                next_out += 1
        while next_out < len(tasks):  # pragma: no cover - all yielded above
            yield results[next_out]
            next_out += 1
