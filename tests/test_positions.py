"""ckptlint.engine.positions gives every node the span LibCST's PositionProvider gives it."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from ckptlint.diagnostic import Location
from ckptlint.engine.positions import Positions
from tests.snippets import snippets

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [pytest.param(src, id=name) for name, src, _ in snippets()]
SOURCES += [pytest.param(p.read_text(encoding="utf-8"), id=p.name) for p in sorted((ROOT / "ckptlint").rglob("*.py"))[:25]]
SOURCES += [
    pytest.param("if x:\r\n    y = 1\r\nelse:\r\n    z = (1,\r\n  2)\r\n", id="crlf"),
    pytest.param("x = 1\ry = 2\r", id="cr"),
    pytest.param("@dec\nclass A(B, metaclass=M):\n    '''doc'''\n    def f(self, *a, **k) -> int: ...\n", id="class"),
    pytest.param("with a as b, c:\n    pass\ntry:\n    pass\nexcept* E:\n    pass\n", id="try-star"),
    pytest.param("def f():\n    \"\"\"multi\n    line\"\"\"\n    return f'{x!r:>{w}}'\n", id="fstring"),
    pytest.param("x = 1 \\\n    + 2\n# trailing comment", id="continuation"),
]


@pytest.mark.parametrize("source", SOURCES)
def test_same_spans_as_position_provider(source):
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError:
        pytest.skip("not parseable by LibCST")
    expected = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    ours = Positions(module)
    for node, r in expected.items():
        want = (Location(r.start.line, r.start.column + 1), Location(r.end.line, r.end.column + 1))
        assert ours.span(node) == want, type(node).__name__
