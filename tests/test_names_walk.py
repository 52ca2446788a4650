"""Names walks the tree itself (LibCST's visit() rebuilds every node); it must see the same
nodes in the same order, with the same parents and scopes, as LibCST's traversal."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest

from ckptlint.analysis.names import Names
from tests.snippets import snippets

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [pytest.param(src, id=name) for name, src, _ in snippets()]
SOURCES += [pytest.param(p.read_text(encoding="utf-8"), id=p.name) for p in sorted((ROOT / "ckptlint").rglob("*.py"))]
SOURCES += [pytest.param(
    "class A(B, metaclass=M):\n    x: int = 1\n    def f(self, a=lambda y: y, *b, c, **d) -> 'A':\n"
    "        global g\n        nonlocal_ = [i for i in range(3) if (j := i)]\n"
    "        with open(a) as (p, q), g:\n            pass\n        try:\n            pass\n"
    "        except* E as e:\n            pass\n        match a:\n            case {'k': [1, *rest]} | Point(x=0):\n"
    "                pass\n        return {k: v for k, v in d.items()}, {*b}, (yield), await c\n", id="forms")]


@pytest.mark.parametrize("source", SOURCES)
def test_same_traversal_as_libcst(source):
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError:
        pytest.skip("not parseable by LibCST")
    fast, slow = Names(module, "pkg.mod"), Names(module, "pkg.mod", fast=False)
    assert fast.seq == slow.seq
    assert fast.parents == slow.parents
    assert {n: s.node for n, s in fast.scopes.items()} == {n: s.node for n, s in slow.scopes.items()}
    assert [(s.kind, sorted(s.bindings)) for s in fast.all_scopes] == [(s.kind, sorted(s.bindings)) for s in slow.all_scopes]
