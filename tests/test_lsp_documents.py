"""The server's own document text (lsp/documents.py): LSP positions count lines at \\n, \\r\\n
and \\r only, and characters in UTF-16 code units; a form feed, U+2028 or U+0085 is text."""

from __future__ import annotations

import random
import re
from types import SimpleNamespace as NS

import pytest

from ckptlint.lsp.documents import Documents, apply_change, offset_at

ODD = ["\f", "\u2028", "\u2029", "\x85", "\x0b", "\x1c", "\r\n", "\r", "\n", "é", "😀", "x", " ", "#"]


def position(text: str, offset: int):
    """(line, UTF-16 character) of a code-point offset, counted the way an LSP client counts."""
    before = text[:offset]
    breaks = list(re.finditer(r"\r\n|\r|\n", before))
    assert not (breaks and breaks[-1].group() == "\r" and breaks[-1].end() == offset
                and text[offset:offset + 1] == "\n"), "inside a \\r\\n: no position there"
    line_start = breaks[-1].end() if breaks else 0
    return len(breaks), len(before[line_start:].encode("utf-16-le")) // 2


def _offsets(text, rng):
    ok = [i for i in range(len(text) + 1) if not (text[i - 1:i] == "\r" and text[i:i + 1] == "\n")]
    a, b = sorted((rng.choice(ok), rng.choice(ok)))
    return a, b


def test_a_form_feed_and_unicode_line_separators_do_not_start_lines():
    text = "a = 1\f\nb = '\u2028'\x85\nc = 2\n"
    assert offset_at(text, 2, 0) == text.index("c")
    assert apply_change(text, (2, 0), (2, 1), "d") == text.replace("c = 2", "d = 2")


def test_crlf_and_lone_cr_each_end_one_line():
    text = "a\r\nb\rc\nd"
    assert [offset_at(text, n, 0) for n in range(4)] == [0, 3, 5, 7]
    assert offset_at(text, 0, 99) == 1  # past the line's end: its end, before the \r\n
    assert offset_at(text, 9, 0) == len(text)  # past the last line: the end of the text


def test_columns_are_utf16_code_units():
    text = "s = '😀é'; t\n"
    assert offset_at(text, 0, 5) == text.index("😀")
    assert offset_at(text, 0, 7) == text.index("é")  # the emoji is two units
    assert offset_at(text, 0, 9, "utf-8") == text.index("é")  # the emoji is four bytes
    assert offset_at(text, 0, 6) == text.index("é")  # inside the pair: the character after it


@pytest.mark.parametrize("seed", range(20))
def test_random_edits_land_where_the_client_put_them(seed):
    rng = random.Random(seed)
    text = "".join(rng.choice(ODD) for _ in range(60))
    docs = Documents()
    docs.open("file:///t.py", "python", 1, text)
    for version in range(2, 40):
        a, b = _offsets(text, rng)
        new = "".join(rng.choice(ODD) for _ in range(rng.randint(0, 4)))
        (sl, sc), (el, ec) = position(text, a), position(text, b)
        change = NS(range=NS(start=NS(line=sl, character=sc), end=NS(line=el, character=ec)), text=new)
        docs.change("file:///t.py", version, [change])
        text = text[:a] + new + text[b:]
        assert docs.get("file:///t.py").text == text, (seed, version)
    docs.change("file:///t.py", 99, [NS(text="whole")])  # no range: the whole document
    assert docs.get("file:///t.py").text == "whole"
