"""Applying fixes: non-overlapping edits per pass, passes until stable (driven by the linter)."""

from __future__ import annotations

from typing import List, Tuple

from ckptlint.engine.source import LineIndex


def apply_fixes(text: str, diagnostics, unsafe_fixes: bool) -> Tuple[str, List]:
    """Apply every applicable fix that does not touch another one; return (text, applied).

    Fixes that collide with an earlier one (by position, then code) wait for the next pass,
    when they are recomputed against the new text."""
    index = LineIndex(text)
    candidates = []
    for d in diagnostics:
        if d.fix is None or not d.fix.applies(unsafe_fixes) or not d.fix.edits:
            continue
        spans = _spans(index, d.fix.edits)
        if spans is not None:
            candidates.append((spans[0][0], d.code, spans, d))
    candidates.sort(key=lambda c: (c[0], c[1]))
    chosen, taken, applied = [], [], []  # taken: (start, end) ranges already claimed
    for _, _, spans, d in candidates:
        if any(_touches(s, e, ts, te) for s, e, _ in spans for ts, te in taken):
            continue
        chosen.extend(spans)
        taken.extend((s, e) for s, e, _ in spans)
        applied.append(d)
    out, pos = [], 0
    for s, e, content in sorted(chosen):
        out.append(text[pos:s])
        out.append(content)
        pos = e
    out.append(text[pos:])
    return "".join(out), applied


def _spans(index: LineIndex, edits):
    """The edits as sorted (start, end, content) offsets; None for a broken fix (a position
    outside the text, an end before its start, edits overlapping each other), never applied."""
    spans = []
    for e in edits:
        if not all(1 <= loc.row <= index.rows and 1 <= loc.column <= len(index.line(loc.row)) + 1
                   for loc in (e.start, e.end)):
            return None
        spans.append((index.offset(e.start), index.offset(e.end), e.content))
    spans.sort()
    if any(s > e for s, e, _ in spans) or any(a[1] > b[0] for a, b in zip(spans, spans[1:])):
        return None
    return spans


def _touches(s: int, e: int, ts: int, te: int) -> bool:
    # overlapping, or meeting at one point (two inserts at the same place, an insert at the
    # edge of a replacement): order would be ambiguous, so leave it to the next pass
    return s <= te and ts <= e
