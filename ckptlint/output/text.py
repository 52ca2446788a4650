"""`path:row:col: CODE [*] message` lines, then a summary (ruff's wording): one headline per
finding, for a person scanning many; `full` (output/full.py) adds the source and the help."""

from __future__ import annotations

import os
from collections import Counter
from typing import List

from ckptlint.output._paths import is_url


def display_path(filename: str, cwd) -> str:
    if is_url(filename):
        return filename
    try:
        rel = os.path.relpath(filename, cwd)
    except ValueError:  # another drive on Windows
        return filename
    return filename if rel.startswith("..") else rel


def fixable(d, report) -> bool:
    return d.fix is not None and d.fix.applies(report.unsafe_fixes)


def line(d, report) -> str:
    path = display_path(d.filename, report.cwd)
    mark = "[*] " if fixable(d, report) else ""
    if d.location is None:
        return f"{path}: {d.code} {mark}{d.message}"
    cell = f"cell {d.cell}:" if d.cell is not None else ""
    return f"{path}:{cell}{d.location.row}:{d.location.column}: {d.code} {mark}{d.message}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _found(diagnostics, fixed: int) -> str:
    """`3 errors`, or `2 errors and 1 warning` when some findings are warnings."""
    warnings = sum(1 for d in diagnostics if d.severity == "warning")
    errors = len(diagnostics) - warnings + fixed
    if not warnings:
        return _plural(errors, "error")
    if not errors:
        return _plural(warnings, "warning")
    return f"{_plural(errors, 'error')} and {_plural(warnings, 'warning')}"


def statistics(diagnostics, report) -> List[str]:
    counts = Counter(d.code for d in diagnostics)
    names = {d.code: d.name for d in diagnostics}
    fixes = {d.code for d in diagnostics if fixable(d, report)}
    width = max((len(str(n)) for n in counts.values()), default=1)
    return [
        f"{n:>{width}}\t{code}\t{'[*] ' if code in fixes else ''}{names[code]}"
        for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def summary(diagnostics, report, full: bool = False) -> List[str]:
    out: List[str] = []
    n = len(diagnostics)
    fixed = report.fixed_count
    if report.show_fixes and report.applied:
        out.append("")
        out.append(f"Fixed {_plural(fixed, 'error')}:")
        by_file = {}
        for d in report.applied:
            by_file.setdefault(d.filename, Counter())[(d.code, d.name)] += 1
        for filename in sorted(by_file):
            out.append(f"- {display_path(filename, report.cwd)}:")
            for (code, name), k in sorted(by_file[filename].items()):
                out.append(f"    {k} × {code} ({name})")
    if n == 0 and fixed == 0:
        out.append("All checks passed!")
        return out
    if fixed:
        out.append(f"Found {_found(diagnostics, fixed)} ({fixed} fixed, {n} remaining).")
    else:
        out.append(f"Found {_found(diagnostics, 0)}.")
    can_fix = sum(1 for d in diagnostics if d.fix is not None and d.fix.applies(report.unsafe_fixes))
    hidden = sum(1 for d in diagnostics if d.fix is not None and not d.fix.applies(report.unsafe_fixes))
    if can_fix and not report.fix:
        extra = f" ({hidden} hidden fixes can be enabled with the `--unsafe-fixes` option)" if hidden else ""
        out.append(f"[*] {can_fix} fixable with the `--fix` option{extra}.")
    elif hidden:
        out.append(f"No fixes available ({hidden} hidden fixes can be enabled with the `--unsafe-fixes` option).")
    if not full and any(d.help for d in diagnostics):
        out.append("Each finding's why and how: `--output-format full`.")
    return out


def render(diagnostics, report) -> str:
    ordered = sorted(diagnostics, key=lambda d: d.sort_key())
    if report.statistics:
        lines = statistics(ordered, report)
    else:
        lines = [line(d, report) for d in ordered]
    if not report.quiet and not report.statistics:
        lines.extend(summary(ordered, report))
    return "\n".join(lines) + ("\n" if lines else "")
