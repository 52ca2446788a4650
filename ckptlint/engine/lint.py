"""Linting one file: read, triage, parse, run the rules, suppress, fix until stable."""

from __future__ import annotations

import ast
import contextlib
import gc
import os
import signal
import stat
import sys
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

from ckptlint.engine import noqa, noqa_edit
from ckptlint.engine import parse as guard
from ckptlint.diagnostic import Diagnostic, Location
from ckptlint.engine.fixes import apply_fixes
from ckptlint.rules import all_rules
from ckptlint.engine.source import SourceError, SourceFile, decode

MAX_FIX_PASSES = 10

# Codes of the diagnostics that say a file could not be checked (documented in docs/errors.md).
IO_ERROR = ("E902", "io-error")
SYNTAX_ERROR = ("E999", "syntax-error")
INTERNAL_ERROR = ("E998", "internal-error")
FIX_ERROR = ("E997", "fix-error")
TOO_LARGE = ("E903", "file-too-large")
TOO_DEEP = ("E904", "too-deeply-nested")


def error(code_name, path: str, message: str, row: Optional[int] = None, col: Optional[int] = None) -> Diagnostic:
    loc = Location(row, col) if row is not None else Location(1, 1)
    return Diagnostic(
        code=code_name[0], name=code_name[1], message=message, filename=path,
        location=loc, end_location=loc, noqa_row=loc.row,
    )


def static_rules(codes: Sequence[str]) -> list:
    rules = all_rules()
    return [rules[c]() for c in codes if rules[c].phase == "static"]


def _parse(path: str, text: str):
    """(stdlib AST, None) or (None, the E999/E904 diagnostic)."""
    try:
        # not `path`: Python re-reads a named file's line to place the column, and the file
        # on disk is not this text for a notebook cell or an editor's unsaved buffer
        tree = ast.parse(text, filename="<ckptlint>")
    except SyntaxError as exc:
        msg = exc.msg or "invalid syntax"
        row = exc.lineno or 1
        col = exc.offset or 1
        return None, error(SYNTAX_ERROR, path, f"SyntaxError: {msg}", row, max(col, 1))
    except (RecursionError, MemoryError):
        return None, error(SYNTAX_ERROR, path, "SyntaxError: too deeply nested for the parser", 1, 1)
    except ValueError as exc:  # e.g. NUL bytes that slipped through
        return None, error(SYNTAX_ERROR, path, f"SyntaxError: {exc}", 1, 1)
    try:
        guard.check_depth(tree, text)
    except guard.TooDeep as exc:
        return None, error(TOO_DEEP, path, f"not checked: nested {exc.depth} levels deep "
                           f"(ckptlint's parser stops at {guard.MAX_DEPTH})")
    return tree, None


def _syntax_error(path: str, text: str) -> Optional[Diagnostic]:
    return _parse(path, text)[1]


def lint_text(path: str, text: str, settings, rules: list, module_name: Optional[str] = None) -> List[Diagnostic]:
    """Diagnostics for one text (no fixing). Never raises for bad input."""
    with _no_gc():
        return guard.call_deep(_lint_text, path, text, settings, rules, module_name)


@contextlib.contextmanager
def _no_gc():
    """The cyclic GC paused while one file is linted: a LibCST tree is ~30 objects per line
    of code, and the collections its allocation triggers (walking every tracked object
    again and again) cost 15-35% of a lint. Nothing of one lint needs collecting before it
    ends; what it leaves behind is collected by the next automatic collection."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _lint_text(path: str, text: str, settings, rules: list, module_name: Optional[str] = None) -> List[Diagnostic]:
    from ckptlint.engine import triage

    # cheap text tests first: a file nothing can fire on is never parsed (like ruff, which
    # parses only for its rules, a syntax error there is another tool's business)
    candidates = triage.by_text(text, triage.by_triggers(text, rules), module_name)
    if not candidates:
        return []
    tree, bad = _parse(path, text)
    if bad is not None:
        return [bad]
    # only rules that can fire here make the file pay for LibCST
    active = triage.by_tree(tree, candidates, module_name)
    if not active:
        return []
    import libcst as cst  # only files that can fire pay for LibCST

    from ckptlint.engine.context import FileContext

    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        # Python accepted the file (ast.parse above): say it is LibCST that refuses it
        return [error(SYNTAX_ERROR, path, f"SyntaxError: {exc.message} (from LibCST, ckptlint's parser; "
                      "Python itself accepts this file)", exc.raw_line, exc.raw_column + 1)]
    except (RecursionError, MemoryError):
        return [error(TOO_DEEP, path, "not checked: too deeply nested for ckptlint's parser")]
    except Exception as exc:  # LibCST failing on code CPython accepted: not the user's fault
        return [error(INTERNAL_ERROR, path, f"internal error parsing: {type(exc).__name__}: {exc}; please report it")]
    try:
        ctx = FileContext(path, text, module, settings, module_name, tree)
    except RecursionError:
        return [error(TOO_DEEP, path, "not checked: too deeply nested to analyse")]
    except Exception as exc:
        return [error(INTERNAL_ERROR, path, f"internal error analysing: {type(exc).__name__}: {exc}; please report it")]
    out: List[Diagnostic] = []
    for rule in active:
        ctx.rule = rule
        ctx.diagnostics = []
        try:
            result = rule.check(ctx)
            if result is not None:
                for _ in result:
                    pass
        except Exception as exc:  # one rule failing must not stop the others
            out.append(_internal_error(path, rule, exc, ctx))
            continue
        out.extend(ctx.diagnostics)
    return out


def _internal_error(path: str, rule, exc: BaseException, ctx=None) -> Diagnostic:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    loc = _crash_location(ctx, exc) if ctx is not None else None
    return error(
        INTERNAL_ERROR, path,
        f"internal error in rule {rule.code} ({rule.name}): {type(exc).__name__}: {exc}{where}; "
        "please report it",
        *(loc or ()),
    )


def _crash_location(ctx, exc: BaseException):
    """(row, col) of the innermost syntax node the failing rule was looking at, if any."""
    import libcst as cst

    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        for value in list(frame.f_locals.values()):
            if isinstance(value, cst.CSTNode):
                try:
                    start = ctx.start(value)
                except Exception:  # not a node of this file's tree
                    continue
                return start.row, start.column
    return None


def _reparses(text: str, path: str) -> bool:
    return guard.call_deep(_parses, text, path)


def _parses(text: str, path: str) -> bool:
    try:
        compile(text, path, "exec", dont_inherit=True, flags=ast.PyCF_ONLY_AST)
        import libcst as cst

        cst.parse_module(text)
    except Exception:
        return False
    return True


@dataclass
class FileResult:
    path: str
    diagnostics: List[Diagnostic] = field(default_factory=list)
    original: Optional[str] = None
    fixed: Optional[str] = None  # the new text when fixes changed it
    applied: List[Diagnostic] = field(default_factory=list)
    source: Optional[SourceFile] = None


def read_source(path: Path, settings) -> SourceFile:
    try:
        # O_NONBLOCK: opening a FIFO named x.py must not wait for a writer forever
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except IsADirectoryError:
        raise SourceError(*IO_ERROR, "is a directory, not a file") from None
    except OSError as exc:
        raise SourceError(*IO_ERROR, f"cannot read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise SourceError(*IO_ERROR, "is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise SourceError(*IO_ERROR, "not a regular file (a FIFO, socket or device)")
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as fh:
        size = st.st_size
        if size <= settings.max_file_size:
            try:
                data = fh.read(settings.max_file_size + 1)  # a file still growing stops here too
            except OSError as exc:
                raise SourceError(*IO_ERROR, f"cannot read: {exc.strerror or exc}") from None
            size = len(data)
        if size > settings.max_file_size:
            raise SourceError(
                *TOO_LARGE,
                f"not checked: {_size(size)} is over `max-file-size` ({_size(settings.max_file_size)})",
            )
    return decode(data)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n} bytes"


def lint_path(
    path: Path, settings, codes: Sequence[str], fix: bool = False, unsafe_fixes: bool = False,
    module_name: Optional[str] = None, ignore_noqa: bool = False,
) -> FileResult:
    name = os.path.abspath(path)
    result = FileResult(name)
    try:
        src = read_source(path, settings)
    except SourceError as exc:
        result.diagnostics = [error((exc.code, exc.name), name, exc.message)]
        return result
    result.source = src
    result.original = src.text
    if name.endswith(".ipynb"):
        from ckptlint.engine.notebook import NotebookError, check_notebook

        try:
            text, result.diagnostics, result.applied = check_notebook(
                name, src.text, settings, static_rules(codes), fix, unsafe_fixes, ignore_noqa
            )
        except NotebookError as exc:
            result.diagnostics = [error(IO_ERROR, name, str(exc))]
            return result
    else:
        text, result.diagnostics, result.applied = check_text(
            name, src.text, settings, static_rules(codes), fix, unsafe_fixes, module_name, ignore_noqa
        )
    if text != src.text:
        result.fixed = text
    return result


def check_text(path: str, text: str, settings, rules: list, fix: bool = False, unsafe_fixes: bool = False,
               module_name: Optional[str] = None, ignore_noqa: bool = False):
    """Lint, and with ``fix`` apply fixes pass after pass until none applies.
    Returns (final text, remaining diagnostics, diagnostics whose fixes were applied).
    ``ignore_noqa`` reports what `# noqa` comments would hide."""
    applied: List[Diagnostic] = []

    def finish(diags):
        return _finish(diags, text, settings, path, rules, ignore_noqa)

    diags = finish(lint_text(path, text, settings, rules, module_name))
    for _ in range(MAX_FIX_PASSES if fix else 0):
        new_text, done = apply_fixes(text, diags, unsafe_fixes)
        if not done:
            break
        if not _reparses(new_text, path):
            diags.append(error(FIX_ERROR, path, "fixes not applied: the fixed code would not parse; please report it"))
            break
        text = new_text
        applied.extend(done)
        diags = finish(lint_text(path, text, settings, rules, module_name))
    return text, diags, applied


def _finish(diags: List[Diagnostic], text: str, settings, path: str, rules=(), ignore_noqa: bool = False) -> List[Diagnostic]:
    from ckptlint.engine.suppress import per_file_ignored

    if not ignore_noqa:
        raw = diags
        diags = noqa.filter_diagnostics(diags, text)
        codes = {r.code for r in rules}
        if noqa_edit.UNUSED_NOQA in codes and not any(d.code.startswith("E9") for d in raw):
            diags = diags + noqa_edit.unused_noqa(path, text, raw, codes)
    ignored = per_file_ignored(path, settings)
    if ignored:
        diags = [d for d in diags if not any(d.code.startswith(c) for c in ignored)]
    return sorted(diags, key=Diagnostic.sort_key)


def write_fixed(path: Path, result: FileResult) -> Optional[Diagnostic]:
    """Write a fixed file, or say why not. Refuses when the text would not encode back to the
    bytes it came from (outside the fix) or when the file changed since it was read."""
    src = result.source
    try:
        new = src.encode(result.fixed)
        same_outside = src.encode(result.original) == src.data
    except UnicodeError as exc:
        return error(FIX_ERROR, result.path, f"fixes not written: cannot encode as {src.encoding}: {exc}")
    if not same_outside:
        return error(FIX_ERROR, result.path, f"fixes not written: {src.encoding} does not round-trip this file's bytes")
    try:
        if Path(path).read_bytes() != src.data:
            return error(FIX_ERROR, result.path, "fixes not written: the file changed on disk during the run")
        write_atomic(path, new)
    except OSError as exc:
        return error(IO_ERROR, result.path, f"cannot write fixes: {exc.strerror or exc}")
    return None


def write_atomic(path: Path, data: bytes) -> None:
    """Temporary file in the same folder, same mode, then os.replace: all old or all new."""
    from ckptlint.workspace.write import replace_file

    path = Path(path)
    target = path.resolve()
    st = target.stat()
    mode = st.st_mode & 0o7777

    def keep_mode_and_owner(tmp: str) -> None:
        os.chmod(tmp, mode)
        if hasattr(os, "chown") and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
            try:  # keep the owner too (root fixing a user's file)
                os.chown(tmp, st.st_uid, st.st_gid)
            except OSError:
                pass

    with _ctrl_c_after():
        replace_file(target, data, prefix=f".{target.name}.", suffix=".ckptlint-tmp", sync=True,
                     prepare=keep_mode_and_owner)


@contextlib.contextmanager
def _ctrl_c_after():
    """Hold a Ctrl-C until the write is done, so no temporary file is left behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    try:
        old = signal.signal(signal.SIGINT, lambda *a: caught.append(a))
    except ValueError:  # not the main interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if caught:
        if callable(old):
            old(*caught[0])  # the default handler raises KeyboardInterrupt here
        elif old == signal.SIG_DFL:
            os.kill(os.getpid(), signal.SIGINT)


if sys.version_info < (3, 9):  # pragma: no cover
    raise RuntimeError("ckptlint needs Python 3.9+")
