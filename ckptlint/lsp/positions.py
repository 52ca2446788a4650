"""Code-point columns (ckptlint) <-> the client's position encoding (UTF-16 by default).

Kept free of pygls so it can be tested and reused on its own."""

from __future__ import annotations

from typing import Tuple

from ckptlint.engine.source import LineIndex


def units(text: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(text.encode("utf-8"))
    if encoding == "utf-32":
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def to_client(lines: LineIndex, row: int, column: int, encoding: str) -> Tuple[int, int]:
    """1-based row and code-point column -> 0-based (line, character) in client units."""
    row = max(1, min(row, lines.rows))
    line = lines.line(row).rstrip("\r\n")
    return row - 1, units(line[: max(column - 1, 0)], encoding)


def from_client(lines: LineIndex, line: int, character: int, encoding: str) -> Tuple[int, int]:
    """0-based (line, character) in client units -> 1-based row and code-point column."""
    row = max(1, min(line + 1, lines.rows))
    text = lines.line(row).rstrip("\r\n")
    count = 0
    for i, ch in enumerate(text):
        if count >= character:
            return row, i + 1
        count += units(ch, encoding)
    return row, len(text) + 1


def end_of(lines: LineIndex, encoding: str) -> Tuple[int, int]:
    last = lines.rows
    return last - 1, units(lines.line(last).rstrip("\r\n"), encoding)
