"""`--output-format full`: each finding's headline, the source it is about, and its help
(ruff's `full` form); `text` keeps one headline line per finding for scanning many."""

from __future__ import annotations

import json
import textwrap
from typing import Dict, List, Optional

from ckptlint.output import text

_SHOWN_ROWS = 4  # a finding spanning more rows shows its first ones and `...`
_WIDTH = 100


class _Sources:
    """The lines of the files findings point into, each file read once; a notebook's rows
    are relative to their cell, so its lines are the cell's."""

    def __init__(self):
        self._files: Dict[str, Optional[object]] = {}

    def lines(self, filename: str, cell: Optional[int]) -> Optional[List[str]]:
        if filename not in self._files:
            self._files[filename] = self._read(filename)
        found = self._files[filename]
        if isinstance(found, dict):
            return found.get(cell)
        return found if cell is None else None

    @staticmethod
    def _read(filename: str):
        try:
            with open(filename, encoding="utf-8-sig", errors="replace", newline="") as fh:
                body = fh.read()
        except OSError:
            return None
        if not filename.endswith(".ipynb"):
            return body.splitlines()
        try:
            cells = json.loads(body)["cells"]
            return {i: "".join(c.get("source") or "").splitlines() if isinstance(c.get("source"), list)
                    else (c.get("source") or "").splitlines() for i, c in enumerate(cells, start=1)}
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def _snippet(d, lines: List[str]) -> List[str]:
    """The finding's rows with a gutter, and carets under its span on the first row."""
    start = d.location
    end = d.end_location or start
    if not (1 <= start.row <= len(lines)):
        return []
    last = min(end.row, len(lines), start.row + _SHOWN_ROWS - 1)
    width = len(str(last))
    gutter = " " * width + " |"
    out = [gutter]
    for row in range(start.row, last + 1):
        out.append(f"{row:>{width}} | {lines[row - 1].rstrip()}")
        if row == start.row:
            first = lines[row - 1].rstrip()
            stop = end.column if end.row == row else len(first) + 1
            carets = "^" * max(1, stop - start.column)
            out.append(f"{gutter} {' ' * (start.column - 1)}{carets} {d.code}")
    if last < end.row:
        out.append(f"{' ' * width} | ...")
    out.append(gutter)
    return out


def _noted(label: str, body: str, indent: str) -> List[str]:
    """`= help: ...` wrapped to the width, continuation lines under the text; the help's own
    line breaks are kept."""
    head = f"{indent}= {label}: "
    out: List[str] = []
    for i, para in enumerate(body.splitlines() or [""]):
        first = head if i == 0 else " " * len(head)
        out += textwrap.wrap(para, _WIDTH, initial_indent=first, subsequent_indent=" " * len(head),
                             break_long_words=False, break_on_hyphens=False) or [first.rstrip()]
    return out


def block(d, report, sources: _Sources) -> List[str]:
    out = [text.line(d, report)]
    lines = sources.lines(d.filename, d.cell) if d.location is not None else None
    snippet = _snippet(d, lines) if lines else []
    out += snippet
    indent = " " * (len(snippet[0]) - 1) if snippet else "  "
    if d.help:
        out += _noted("help", d.help, indent)
    if d.fix is not None:
        how = "safe: `--fix`" if d.fix.applicability == "safe" else "unsafe: `--fix --unsafe-fixes`"
        out += _noted("fix", f"{d.fix.message} ({how})", indent)
    return out


def render(diagnostics, report) -> str:
    ordered = sorted(diagnostics, key=lambda d: d.sort_key())
    if report.statistics:
        return text.render(diagnostics, report)
    sources = _Sources()
    lines: List[str] = []
    for d in ordered:
        lines += ([""] if lines else []) + block(d, report, sources)
    if not report.quiet:
        lines.extend(([""] if lines else []) + text.summary(ordered, report, full=True))
    return "\n".join(lines) + ("\n" if lines else "")
