"""analysis/ast_walk.py gives what the `ast` module's own helpers give, faster."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ckptlint.analysis.ast_walk import segment, walk

TEXTS = [
    "import torch\nx = torch.load(p, map_location='cpu')\n",
    "def f(a,\r\n      b):\r\n    return {'é😀': a,\r\n            'k': [b, (1,\r2)]}\r\n",
    "x = 1\n\x0cy = 2  # form feed\x0c here\nclass C:\n    def m(self): self.a = 'naïve'; return f'{self.a!r:>{10}}'\n",
    "async def g():\n    async with a as (b, c):\n        yield [i async for i in b if await c]\nz = g",
]


def _texts():
    yield from TEXTS
    for path in sorted(Path(ast.__file__).parent.glob("json/*.py")):  # real code, some of it
        yield path.read_text(encoding="utf-8")


@pytest.mark.parametrize("text", list(_texts()))
def test_walk_and_segment_match_the_ast_module(text):
    tree = ast.parse(text)
    nodes, parents = walk(tree)
    assert nodes == list(ast.walk(tree))
    assert parents == {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    assert walk(tree)[0] is nodes  # made once per tree
    for node in nodes:
        assert segment(text, node) == ast.get_source_segment(text, node)


@pytest.mark.parametrize("text", list(_texts()))
def test_assignments_by_function_are_those_ast_walk_meets_in_it(text):
    from ckptlint.analysis.project import _assigns_by_function

    tree = ast.parse(text + "\nclass K:\n    def m(self):\n        self.a = 1\n        def g():\n            self.b = self.c = 2\n"
                     "        x = [y := 1 for _ in ()]\n        self.d = lambda: 3\n")
    found = _assigns_by_function(tree)
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert found.get(fn, []) == [n for n in ast.walk(fn) if isinstance(n, ast.Assign)]
