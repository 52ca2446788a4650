"""The engine's entry point: `lint(source, settings, project)` lints one file's text.

Pure: nothing is read from or written to disk here except what the project index reads of
other files, and no state outlives a call. The workspace (files, cache, pool) and the language
server compose it: they read the text, hand in the settings and a project index they keep,
and use what the result says it consulted to know when it goes stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, List, Optional, Sequence

from ckptlint.diagnostic import IO_ERROR, Diagnostic, file_error
from ckptlint.engine.passes import check_text
from ckptlint.engine.source import SourceFile
from ckptlint.rules import all_rules

if TYPE_CHECKING:
    from ckptlint.analysis.project import ProjectIndex


@dataclass
class FileResult:
    path: str
    diagnostics: List[Diagnostic] = field(default_factory=list)
    original: Optional[str] = None  # the text that was linted
    fixed: Optional[str] = None  # the new text when fixes changed it
    applied: List[Diagnostic] = field(default_factory=list)
    # what the lint looked up in the project index (other files' modules, or the whole tree):
    # the result holds only while those are unchanged (workspace/deps.py)
    dependencies: List[str] = field(default_factory=list)
    source: Optional[SourceFile] = None  # the file the text was read from (set by the workspace)


def rules_for(codes: Sequence[str]) -> list:
    """The static rules of these codes, ready to run."""
    rules = all_rules()
    return [rules[c]() for c in codes if rules[c].phase == "static"]


def lint(source: str, settings, project: Optional[ProjectIndex] = None, *, path: str = "untitled.py",
         module_name: Optional[str] = None, rules: Optional[list] = None, fix: bool = False,
         unsafe_fixes: bool = False, ignore_noqa: bool = False, reuse=None) -> FileResult:
    """Lint the text of the file at `path` (a notebook's JSON for an .ipynb) with `settings`.

    `project` is the index of the files around it, which the caller keeps between calls
    (without one, a fresh index is used: same results, nothing shared). `rules` default to
    the settings' selection. With `fix`, fixes are applied until none applies (unsafe ones
    too with `unsafe_fixes`) and the result holds the fixed text. Never raises for bad input.

    `reuse` (the language server's, lsp/incremental.py) parses the text and places nodes
    from what it kept of the previous lint of the same document: `parse_module(text)` must
    return a tree equal to `libcst.parse_module(text)`, `positions(module, lines)` spans
    equal to engine.positions.Positions'."""
    if project is None:
        from ckptlint.analysis.project import ProjectIndex  # hashlib: only lints that need it

        project = ProjectIndex()
    rules = rules if rules is not None else rules_for(settings.enabled_codes())
    consulted: set = set()
    result = FileResult(path, original=source)
    if path.endswith(".ipynb"):
        from ckptlint.engine import notebook

        try:
            text, result.diagnostics, result.applied = notebook.check_notebook(
                path, source, settings, rules, fix, unsafe_fixes, ignore_noqa, project, consulted)
        except notebook.NotebookError as exc:
            result.diagnostics = [file_error(IO_ERROR, path, str(exc))]
            return result
    else:
        text, result.diagnostics, result.applied = check_text(
            path, source, settings, rules, fix, unsafe_fixes, module_name, ignore_noqa, project, consulted, reuse)
    if text != source:
        result.fixed = text
    result.dependencies = sorted(consulted)
    return result
