"""Parsing one text: the stdlib `ast` first (syntax errors, nesting depth), LibCST after, and
keeping deeply nested code from crashing the process.

LibCST's parser is native (Rust): a stack overflow there is a segfault, not an exception,
and its Python visitors hit the recursion limit on code CPython compiles fine. So parsing and
the rules run on a thread with a large stack and a raised recursion limit, and code nested
deeper than MAX_DEPTH (estimated from the `ast` tree, which CPython builds first) is not
handed to LibCST at all.
"""

from __future__ import annotations

import ast
import re
import sys
import threading
from typing import Callable, Optional, Tuple, TypeVar

from ckptlint.diagnostic import SYNTAX_ERROR, TOO_DEEP, Diagnostic, file_error

T = TypeVar("T")

# Real code nests a few dozen levels; 1000 is far beyond it and well inside what
# STACK_SIZE holds (checked by tests/test_bad_inputs.py up to the limit).
# CPython 3.12 counts C-level recursion against a fixed limit that sys.setrecursionlimit does
# not raise, and LibCST's visitors run out of it between 700 and 850 levels (measured on
# 3.12.1): past that every rule would fail with E998, so stop earlier there.
MAX_DEPTH = 600 if sys.version_info[:2] == (3, 12) else 1000
STACK_SIZE = 128 * 1024 * 1024  # virtual; code at MAX_DEPTH needs < 16 MB (measured)
RECURSION_LIMIT = 60_000

_lock = threading.Lock()  # the recursion limit is per interpreter: one deep call at a time


class TooDeep(Exception):
    def __init__(self, depth: int):
        super().__init__(depth)
        self.depth = depth


def nesting_depth(tree: ast.AST, text: Optional[str] = None) -> int:
    """How deep LibCST's tree for this code gets (an upper estimate, computed without
    recursion). `a and b and c` is one node in `ast` but a chain in LibCST, so a boolean
    operation counts once per operand.

    With the source text, subtrees that are too short to reach MAX_DEPTH are skipped: every
    nesting level costs at least one character (`-` of `---x`, `.b` of `a.b.b`, ...), plus a
    few levels at the leaves (Load, arguments, ...), so a node spanning fewer characters than
    the depth still allowed cannot exceed it. That keeps the walk off ordinary code, where it
    cost as much as the parse. The result is then exact only for code near or over the limit."""
    spans = _line_spans(text) if text is not None else None
    deepest = 0
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        depth += len(node.values) - 1 if isinstance(node, ast.BoolOp) else 1
        if depth > deepest:
            deepest = depth
        for child in ast.iter_child_nodes(node):
            if spans is not None and getattr(child, "end_lineno", None) is not None:
                if depth + spans(child.lineno, child.end_lineno) + _LEAF_SLACK <= MAX_DEPTH:
                    continue
            stack.append((child, depth))
    return deepest


_LEAF_SLACK = 16  # levels a leaf can add without characters of its own (ctx, arguments, ...)


def _line_spans(text: str):
    """(first line, last line) -> characters of those whole lines: an upper bound on the
    length of any node on them."""
    starts = [0]
    starts.extend(m.end() for m in re.finditer(r"\r\n|\r|\n", text))
    starts.append(len(text))

    def span(first: int, last: int) -> int:
        return starts[min(last, len(starts) - 1)] - starts[first - 1]

    return span


def check_depth(tree: ast.AST, text: Optional[str] = None) -> None:
    depth = nesting_depth(tree, text)
    if depth > MAX_DEPTH:
        raise TooDeep(depth)


def call_deep(fn: Callable[..., T], *args, **kwargs) -> T:
    """fn(*args, **kwargs) on a thread with a large stack; its exception is re-raised here.

    The thread is started once per process and reused: starting a thread with a 128 MB
    stack for every file cost ~5 ms each (over a second on timm)."""
    if threading.current_thread().name == "ckptlint-deep":
        return fn(*args, **kwargs)  # already on the deep thread
    box = {}
    done = threading.Event()
    with _lock:
        old_limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(old_limit, RECURSION_LIMIT))
        try:
            tasks = _worker_queue()
            if tasks is None:  # no big thread on this system: MAX_DEPTH still guards
                sys.setrecursionlimit(old_limit)
                return fn(*args, **kwargs)
            tasks.put((fn, args, kwargs, box, done))
            done.wait()
        finally:
            sys.setrecursionlimit(old_limit)
    if "error" in box:
        raise box["error"]
    return box["value"]


_worker = {"pid": None, "queue": None}


def _serve(tasks) -> None:
    while True:
        fn, args, kwargs, box, done = tasks.get()
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc
        finally:
            done.set()


def _worker_queue():
    """The deep thread's task queue, started on first use in this process (a forked pool
    worker does not inherit its parent's thread, hence the pid check)."""
    import os
    import queue

    if _worker["pid"] == os.getpid():
        return _worker["queue"]
    tasks = queue.SimpleQueue()
    if _start(lambda: _serve(tasks)) is None:
        return None
    _worker["pid"], _worker["queue"] = os.getpid(), tasks
    return tasks


def _start(target):
    """A started thread with the largest stack the system grants (None if none)."""
    old_size = threading.stack_size()
    for size in (STACK_SIZE, STACK_SIZE // 8):
        try:
            threading.stack_size(size)
            worker = threading.Thread(target=target, name="ckptlint-deep", daemon=True)
            worker.start()
            return worker
        except (ValueError, RuntimeError, MemoryError):  # size refused, or ulimit -v
            continue
        finally:
            threading.stack_size(old_size)
    return None


def parse_python(path: str, text: str) -> Tuple[Optional[ast.Module], Optional[Diagnostic]]:
    """(stdlib AST, None) or (None, the E999/E904 diagnostic)."""
    try:
        # not `path`: Python re-reads a named file's line to place the column, and the file
        # on disk is not this text for a notebook cell or an editor's unsaved buffer
        tree = ast.parse(text, filename="<ckptlint>")
    except SyntaxError as exc:
        msg = exc.msg or "invalid syntax"
        row = exc.lineno or 1
        col = exc.offset or 1
        return None, file_error(SYNTAX_ERROR, path, f"SyntaxError: {msg}", row, max(col, 1))
    except (RecursionError, MemoryError):
        return None, file_error(SYNTAX_ERROR, path, "SyntaxError: too deeply nested for the parser", 1, 1)
    except ValueError as exc:  # e.g. NUL bytes that slipped through
        return None, file_error(SYNTAX_ERROR, path, f"SyntaxError: {exc}", 1, 1)
    try:
        check_depth(tree, text)
    except TooDeep as exc:
        return None, file_error(TOO_DEEP, path, f"not checked: nested {exc.depth} levels deep "
                                f"(ckptlint's parser stops at {MAX_DEPTH})")
    return tree, None


def syntax_error(path: str, text: str) -> Optional[Diagnostic]:
    return parse_python(path, text)[1]


def reparses(text: str, path: str) -> bool:
    """Do both parsers accept `text` (fixed code, before it is used)?"""
    return call_deep(_parses, text, path)


def _parses(text: str, path: str) -> bool:
    try:
        compile(text, path, "exec", dont_inherit=True, flags=ast.PyCF_ONLY_AST)
        import libcst as cst

        cst.parse_module(text)
    except Exception:
        return False
    return True
