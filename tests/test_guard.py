"""The nesting guard's shortcut (skipping subtrees too short to be deep) never changes its verdict."""

from __future__ import annotations

import ast

import pytest

from ckptlint.engine import parse as guard

N = guard.MAX_DEPTH


@pytest.mark.parametrize("source", [
    "x = " + "-" * (N + 5) + "1\n",
    "x = (1\n" + " + 1\n" * (N + 5) + ")\n",
    "def f():\n    if a:\n        y = a" + ".b" * (N + 5) + "\n",
    "x = (a" + "\n and a" * (N + 5) + ")\n",
    "class C:\n    def f(self):\n        return " + "not " * (N + 5) + "x\n",
    "x = " + "-" * (N - 40) + "1\n",
    "x = (1\n" + " + 1\n" * (N - 40) + ")\n",
    "import torch\n\ndef f(p):\n    return torch.load(p)\n" * 50,
])
def test_shortcut_gives_the_same_verdict(source):
    tree = ast.parse(source)
    full = guard.nesting_depth(tree)
    quick = guard.nesting_depth(tree, source)
    assert (quick > N) == (full > N)
    if full > N:
        assert quick == full  # the E904 message names the real depth
