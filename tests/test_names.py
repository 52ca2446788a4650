"""Qualified-name resolution: by what a name is bound to, never by its spelling."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from ckptlint.analysis.names import Names


def qnames(source: str, module: str = "", is_package: bool = False):
    """Qualified name of every call in the source, in order."""
    tree = cst.parse_module(textwrap.dedent(source))
    names = Names(tree, module, is_package)
    return [names.qualified_name(n.func) for n in names.seq if isinstance(n, cst.Call)]


@pytest.mark.parametrize(
    "source,expected",
    [
        ("import torch\ntorch.load(p)\n", "torch.load"),
        ("import torch as T\nT.load(p)\n", "torch.load"),
        ("from torch import load as L\nL(p)\n", "torch.load"),
        ("import torch.serialization\ntorch.serialization.load(p)\n", "torch.load"),
        ("from torch import serialization as s\ns.load(p)\n", "torch.load"),
        ("import torch\nload = torch.load\nload(p)\n", "torch.load"),
        ("from torch.utils.model_zoo import load_url\nload_url(u)\n", "torch.hub.load_state_dict_from_url"),
        ("try:\n    import torch\nexcept ImportError:\n    torch = None\ntorch.load(p)\n", "torch.load"),
        ("import torch\ndef f():\n    return torch.load(p)\n", "torch.load"),
        ("import torch\nclass A:\n    torch = 1\n    def f(self):\n        return torch.load(p)\n", "torch.load"),
        ("import torch\ndef f(torch):\n    return torch.load(p)\n", None),
        ("def load(p):\n    pass\nload(p)\n", None),
        ("import torch\ntorch = make()\ntorch.load(p)\n", None),
        ("import torch\ndef f():\n    global torch\n    torch = 1\n    torch.load(p)\n", None),
        ("import torch.jit\ntorch.jit.load(p)\n", "torch.jit.load"),
        ("[torch.load(p) for torch in xs]\n", None),
    ],
)
def test_resolution(source, expected):
    assert qnames(source)[-1] == expected


def test_relative_imports_in_modules_and_packages():
    src = "from .models import Net\nfrom ..common import Base\nNet()\nBase()\n"
    assert qnames(src, "pkg.sub.train") == ["pkg.sub.models.Net", "pkg.common.Base"]
    # in pkg/sub/__init__.py one dot is pkg.sub itself
    assert qnames(src, "pkg.sub", is_package=True) == ["pkg.sub.models.Net", "pkg.common.Base"]
    # a top-level file's sibling (namespace package); above the top package stays as written
    assert qnames("from .m import x\nx()\n", "top") == ["m.x"]
    assert qnames("from ...m import x\nx()\n", "pkg.train") == ["...m.x"]
