"""Reading a source file exactly, and mapping between offsets and (row, column).

The text is decoded once (BOM, coding cookie), kept with its own line endings, and encoded
back the same way when a fix is written, so nothing outside an edit changes.
"""

from __future__ import annotations

import codecs
import io
import re
import tokenize
from bisect import bisect_right
from dataclasses import dataclass
from typing import List, Optional

from ckptlint.diagnostic import Location

_NEWLINE = re.compile(r"\r\n|\r|\n")


class SourceError(Exception):
    """The file cannot be turned into text. ``code``/``name`` say which error diagnostic."""

    def __init__(self, code: str, name: str, message: str, help: Optional[str] = None):
        super().__init__(message)
        self.help = help
        self.code = code
        self.name = name
        self.message = message


@dataclass
class SourceFile:
    text: str
    encoding: str  # codec used to decode (and to encode back)
    bom: bool
    data: bytes = b""  # the bytes as read: fixes are only written over these, unchanged

    def encode(self, text: str) -> bytes:
        data = text.encode(self.encoding)
        return codecs.BOM_UTF8 + data if self.bom else data


def decode(data: bytes) -> SourceFile:
    if b"\x00" in data:
        raise SourceError("E902", "io-error", "binary file (contains NUL bytes), not Python source")
    bom = data.startswith(codecs.BOM_UTF8)
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        raise SourceError(
            "E902", "io-error",
            "cannot decode: not UTF-8 and no usable `# -*- coding: ... -*-` declaration", str(exc),
        ) from None
    if encoding == "utf-8-sig":
        encoding = "utf-8"
    body = data[len(codecs.BOM_UTF8):] if bom else data
    try:
        text = body.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        reason = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
        where = f" at byte {exc.start + (3 if bom else 0)}" if isinstance(exc, UnicodeDecodeError) else ""
        raise SourceError(
            "E902",
            "io-error",
            f"not valid {encoding} text{where} ({reason})",
            "Declare the encoding with a `# -*- coding: ... -*-` line",
        ) from None
    return SourceFile(text=text, encoding=encoding, bom=bom, data=data)


def split_lines(text: str, keepends: bool = False) -> List[str]:
    """The lines of `text` split where rows are counted everywhere (at \\n, \\r\\n and \\r);
    not `str.splitlines`, which also splits at a form feed or U+2028 and so shifts rows."""
    lines = _NEWLINE.split(text) if not keepends else [m.group(0) for m in _LINE.finditer(text)]
    if not keepends and lines and lines[-1] == "":
        lines.pop()
    return lines


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


class LineIndex:
    """Offsets (code points into the text) <-> 1-based rows and columns."""

    def __init__(self, text: str):
        self.text = text
        starts: List[int] = [0]
        starts.extend(m.end() for m in _NEWLINE.finditer(text))
        self.starts = starts

    def location(self, offset: int) -> Location:
        row = bisect_right(self.starts, offset)
        return Location(row, offset - self.starts[row - 1] + 1)

    def offset(self, loc: Location) -> int:
        return self.starts[loc.row - 1] + loc.column - 1

    def line(self, row: int) -> str:
        start = self.starts[row - 1]
        end = self.starts[row] if row < len(self.starts) else len(self.text)
        return self.text[start:end]

    def newline(self, row: int) -> str:
        """The line ending of `row` (of the first line that has one when it has none)."""
        line = self.line(row)
        ending = line[len(line.rstrip("\r\n")):]
        if ending:
            return ending
        m = _NEWLINE.search(self.text)
        return m.group(0) if m else "\n"

    @property
    def rows(self) -> int:
        return len(self.starts)
