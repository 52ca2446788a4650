"""The open documents' text, kept by the server itself with LSP's rules.

LSP counts lines at `\\n`, `\\r\\n` and `\\r` only. pygls' document model splits with
`str.splitlines`, which also breaks at a form feed, U+2028, U+0085 and a few more: below such
a character every incremental edit then lands on the wrong line and the server's text drifts
from the editor's. Positions are in the client's units (UTF-16 by default). Free of pygls so
it can be tested on its own."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Tuple

_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass
class OpenDocument:
    uri: str
    language_id: str
    version: Optional[int]
    text: str


def offset_at(text: str, line: int, character: int, encoding: str = "utf-16") -> int:
    """Code-point offset of an LSP position. A line past the end means the end of the text; a
    character past the line's end, its end (the spec's rule); one inside a surrogate pair (or
    a UTF-8 sequence), the character after it."""
    start = 0
    for _ in range(max(line, 0)):
        m = _BREAK.search(text, start)
        if m is None:
            return len(text)
        start = m.end()
    m = _BREAK.search(text, start)
    end = m.start() if m is not None else len(text)
    if encoding == "utf-32":
        return min(start + max(character, 0), end)
    count, at = 0, start
    while at < end and count < character:
        ch = text[at]
        count += (len(ch.encode("utf-8")) if encoding == "utf-8"
                  else (2 if ord(ch) > 0xFFFF else 1))
        at += 1
    return at


def apply_change(text: str, start: Tuple[int, int], end: Tuple[int, int], new: str,
                 encoding: str = "utf-16") -> str:
    """`text` with the range from `start` to `end` ((line, character) pairs) replaced."""
    a = offset_at(text, *start, encoding)
    b = offset_at(text, *end, encoding)
    if b < a:
        a, b = b, a
    return text[:a] + new + text[b:]


class Documents:
    """uri -> OpenDocument, updated from didOpen / didChange / didClose."""

    def __init__(self):
        self._docs: Dict[str, OpenDocument] = {}

    def open(self, uri: str, language_id: str, version: Optional[int], text: str) -> OpenDocument:
        doc = self._docs[uri] = OpenDocument(uri, language_id, version, text)
        return doc

    def change(self, uri: str, version: Optional[int], changes: Iterable, encoding: str = "utf-16") -> Optional[OpenDocument]:
        """Apply LSP content changes in order: each has `text`, and `range` (with `start` and
        `end`, each with `line` and `character`) unless it replaces the whole document."""
        doc = self._docs.get(uri)
        if doc is None:
            return None
        text = doc.text
        for change in changes:
            rng = getattr(change, "range", None)
            if rng is None:
                text = change.text
            else:
                text = apply_change(text, (rng.start.line, rng.start.character),
                                    (rng.end.line, rng.end.character), change.text, encoding)
        doc.text, doc.version = text, version
        return doc

    def close(self, uri: str) -> None:
        self._docs.pop(uri, None)

    def get(self, uri: str) -> Optional[OpenDocument]:
        return self._docs.get(uri)

    def __contains__(self, uri: str) -> bool:
        return uri in self._docs

    def __iter__(self):
        return iter(list(self._docs))
