"""Writing and auditing `# noqa` comments: `--add-noqa` and the unused-noqa report (CKPT900).

Only ckptlint's own codes (CKPT...) are judged: a `# noqa: E501` or a blanket `# noqa` may
belong to flake8 or ruff, so it is never reported or rewritten away."""

from __future__ import annotations

import io
import re
import tokenize
from typing import Dict, Iterable, List, Set, Tuple

from ckptlint.engine import noqa
from ckptlint.diagnostic import SAFE, Diagnostic, Edit, Fix, Location
from ckptlint.engine.source import LineIndex, split_lines

UNUSED_NOQA = "CKPT900"
_OURS = re.compile(r"^CKPT\d+$")


def _comment_codes(match) -> List[str]:
    raw = match.group("codes")
    return [c.upper() for c in re.split(r"[\s,]+", raw) if c] if raw else []


def _noqa_comment(line: str):
    """The `# noqa...` match on a line, ignoring a file-level `# ckptlint: noqa`."""
    if "#" not in line or noqa.FILE_NOQA.match(line):
        return None
    return noqa.LINE_NOQA.search(line)


def _render(codes: List[str]) -> str:
    return "# noqa: " + ", ".join(codes)


# --- unused noqa -------------------------------------------------------------------------------
def unused_noqa(path: str, text: str, raw: List[Diagnostic], enabled: Set[str]) -> List[Diagnostic]:
    """One CKPT900 per `# noqa: CKPT...` comment naming codes that suppressed nothing in
    `raw` (the diagnostics before suppression)."""
    by_row: Dict[int, Set[str]] = {}
    for d in raw:
        if d.noqa_row is not None:
            by_row.setdefault(d.noqa_row, set()).add(d.code)
    lines = LineIndex(text)
    out = []
    for row in range(1, lines.rows + 1):
        line = lines.line(row)
        m = _noqa_comment(line)
        if m is None:
            continue
        codes = _comment_codes(m)
        unused = [c for c in codes if _OURS.match(c) and c not in by_row.get(row, set())]
        if not unused:
            continue
        kept = [c for c in codes if c not in unused]
        start, end = Location(row, m.start() + 1), Location(row, m.end() + 1)
        if kept:
            edit = Edit(start, end, _render(kept))
        else:  # drop the comment and the blanks before it
            before = len(line[: m.start()].rstrip(" \t"))
            edit = Edit(Location(row, before + 1), end, "")
        disabled = [c for c in unused if c not in enabled]
        detail = ", ".join(c for c in unused if c in enabled)
        parts = [f"unused: {detail}"] if detail else []
        if disabled:
            parts.append("non-enabled: " + ", ".join(disabled))
        out.append(Diagnostic(
            code=UNUSED_NOQA, name="unused-noqa",
            message=f"Unused `noqa` directive ({'; '.join(parts)})",
            filename=path, location=start, end_location=end,
            fix=Fix(SAFE, "Remove unused `noqa` directive" if not kept else "Remove unused codes", (edit,)),
            noqa_row=row,
        ))
    return out


# --- add noqa -----------------------------------------------------------------------------------
def _unsafe_rows(text: str) -> Set[int]:
    """Rows where a comment cannot go: inside a multi-line string, or ending in `\\`."""
    rows: Set[int] = set()
    fstring_start = getattr(tokenize, "FSTRING_START", None)  # Python 3.12+ splits f-strings
    fstring_end = getattr(tokenize, "FSTRING_END", None)
    opened: List[int] = []
    try:
        # newline="": rows end at \r too, as everywhere else
        for tok in tokenize.generate_tokens(io.StringIO(text, newline="").readline):
            if tok.type == tokenize.STRING and tok.end[0] > tok.start[0]:
                rows.update(range(tok.start[0], tok.end[0]))
            elif fstring_start is not None and tok.type == fstring_start:
                opened.append(tok.start[0])
            elif fstring_end is not None and tok.type == fstring_end and opened:
                rows.update(range(opened.pop(), tok.end[0]))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass
    for row, line in enumerate(split_lines(text), start=1):
        if line.rstrip().endswith("\\"):
            rows.add(row)
    return rows


def add_noqa(text: str, diagnostics: Iterable[Diagnostic]) -> Tuple[str, int, List[int]]:
    """Append `# noqa: CODES` to each line with a finding, merging into an existing comment.
    Returns (new text, directives added or extended, rows that had to be skipped)."""
    wanted: Dict[int, Set[str]] = {}
    for d in diagnostics:
        if d.noqa_row is None or d.code.startswith("E9") or d.code == UNUSED_NOQA:
            continue
        wanted.setdefault(d.noqa_row, set()).add(d.code)
    if not wanted:
        return text, 0, []
    unsafe = _unsafe_rows(text)
    lines = split_lines(text, keepends=True)
    count, skipped = 0, []
    for row, codes in sorted(wanted.items()):
        if row > len(lines):
            continue
        if row in unsafe:
            skipped.append(row)
            continue
        line = lines[row - 1]
        body = line.rstrip("\r\n")
        ending = line[len(body):]
        m = _noqa_comment(body)
        if m is not None:
            existing = _comment_codes(m)
            if not existing:
                continue  # a blanket noqa already covers every code
            merged = existing + sorted(codes - set(existing))
            body = body[: m.start()] + _render(merged) + body[m.end():]
        else:
            body = body.rstrip(" \t") + "  " + _render(sorted(codes))
        lines[row - 1] = body + ending
        count += 1
    return "".join(lines), count, skipped
