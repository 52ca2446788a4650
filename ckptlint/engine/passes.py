"""Lint passes over one Python text: triage, parse, run the rules, suppress; with fixes, apply
them and lint again until nothing more applies. Pure: text, settings and the project index in,
diagnostics out (engine.lint.lint is the entry point)."""

from __future__ import annotations

import contextlib
import gc
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

from ckptlint.diagnostic import FIX_ERROR, INTERNAL_ERROR, SYNTAX_ERROR, TOO_DEEP, Diagnostic, file_error
from ckptlint.analysis.ast_walk import forget
from ckptlint.engine import noqa, noqa_edit, triage
from ckptlint.engine.fixes import apply_fixes
from ckptlint.engine.parse import call_deep, parse_python, reparses
from ckptlint.engine.suppress import per_file_ignored

if TYPE_CHECKING:
    from ckptlint.analysis.project import ProjectIndex

MAX_FIX_PASSES = 10


def lint_text(path: str, text: str, settings, rules: list, module_name: Optional[str] = None,
              project: Optional[ProjectIndex] = None, consulted: Optional[set] = None, reuse=None) -> List[Diagnostic]:
    """Diagnostics for one text (no fixing). Never raises for bad input. What the rules
    looked up in `project` is added to `consulted`; `reuse`: see engine.lint.lint."""
    with _no_gc():
        return call_deep(_lint_text, path, text, settings, rules, module_name, project, consulted, reuse)


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



def _lint_text(path: str, text: str, settings, rules: list, module_name: Optional[str], project,
               consulted: Optional[set], reuse=None) -> List[Diagnostic]:
    # cheap text tests first: a file nothing can fire on is never parsed (like ruff, which
    # parses only for its rules, a syntax error there is another tool's business)
    candidates = triage.by_text(text, triage.by_triggers(text, rules), module_name)
    if not candidates:
        return []
    tree, bad = parse_python(path, text)
    if bad is not None:
        return [bad]
    # only rules that can fire here make the file pay for LibCST
    active = triage.by_tree(tree, candidates, module_name)
    if not active:
        return []
    import libcst as cst  # only files that can fire pay for LibCST

    from ckptlint.engine.context import FileContext

    try:
        module = cst.parse_module(text) if reuse is None else reuse.parse_module(text)
    except cst.ParserSyntaxError as exc:
        # Python accepted the file (ast.parse above): say it is LibCST that refuses it
        return [file_error(SYNTAX_ERROR, path, f"SyntaxError: {exc.message} (from LibCST, ckptlint's parser)",
                           exc.raw_line, exc.raw_column + 1,
                           help="Python itself accepts this file: LibCST, the parser ckptlint's rules read, "
                                "does not")]
    except (RecursionError, MemoryError):
        return [file_error(TOO_DEEP, path, "not checked: too deeply nested for ckptlint's parser")]
    except Exception as exc:  # LibCST failing on code CPython accepted: not the user's fault
        return [file_error(INTERNAL_ERROR, path, f"internal error parsing: {type(exc).__name__}: {exc}",
                           help="Please report it")]
    try:
        ctx = FileContext(path, text, module, settings, module_name, tree, project, consulted, reuse)
    except RecursionError:
        return [file_error(TOO_DEEP, path, "not checked: too deeply nested to analyse")]
    except Exception as exc:
        return [file_error(INTERNAL_ERROR, path, f"internal error analysing: {type(exc).__name__}: {exc}",
                           help="Please report it")]
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
    ctx.close()
    forget(tree)
    return out


def _internal_error(path: str, rule, exc: BaseException, ctx=None) -> Diagnostic:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    loc = _crash_location(ctx, exc) if ctx is not None else None
    return file_error(
        INTERNAL_ERROR, path,
        f"internal error in rule {rule.code} ({rule.name}): {type(exc).__name__}: {exc}",
        *(loc or ()),
        help=f"Raised at {where.strip(' ()')}; please report it" if where else "Please report it",
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


def check_text(path: str, text: str, settings, rules: list, fix: bool = False, unsafe_fixes: bool = False,
               module_name: Optional[str] = None, ignore_noqa: bool = False,
               project: Optional[ProjectIndex] = None, consulted: Optional[set] = None, reuse=None):
    """Lint, and with ``fix`` apply fixes pass after pass until none applies.
    Returns (final text, remaining diagnostics, diagnostics whose fixes were applied).
    ``ignore_noqa`` reports what `# noqa` comments would hide."""
    applied: List[Diagnostic] = []

    def finish(diags):
        return _finish(diags, text, settings, path, rules, ignore_noqa)

    diags = finish(lint_text(path, text, settings, rules, module_name, project, consulted, reuse))
    for _ in range(MAX_FIX_PASSES if fix else 0):
        new_text, done = apply_fixes(text, diags, unsafe_fixes)
        if not done:
            break
        if not reparses(new_text, path):
            diags.append(file_error(FIX_ERROR, path, "fixes not applied: the fixed code would not parse; please report it"))
            break
        text = new_text
        applied.extend(done)
        diags = finish(lint_text(path, text, settings, rules, module_name, project, consulted, reuse))
    return text, diags, applied


def _finish(diags: List[Diagnostic], text: str, settings, path: str, rules=(), ignore_noqa: bool = False) -> List[Diagnostic]:
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
