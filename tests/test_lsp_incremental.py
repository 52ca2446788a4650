"""The language server's incremental lint (lsp/incremental.py) gives what a whole lint gives.

Seeded random edit sequences on a realistic training script: lines and characters inserted,
deleted and replaced in strings, comments, decorators, imports, class and function bodies
(methods and blocks inside them, which are re-parsed on their own), edits that break the
syntax and later ones that repair it; also in CRLF files with form feeds, U+2028, U+0085
and multi-byte characters. After every edit the document's lint (re-parsing only what the
edit touched, as the server does) must equal a fresh lint of the same text: the diagnostics
with their fixes (which the quick fixes are built from), the tree, and (for some seeds) the
positions of every node and the names walk."""

from __future__ import annotations

import ast
import random

import libcst as cst
import pytest

from ckptlint.analysis.names import Names
from ckptlint.analysis.project import ProjectIndex
from ckptlint.engine.lint import lint
from ckptlint.engine.positions import Positions
from ckptlint.engine.source import LineIndex
from ckptlint.lsp.incremental import Document
from ckptlint.workspace.config import Settings

# random edits spell escapes such as "\\o" that Python warns about
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::SyntaxWarning")

HEAD = '''\
"""Fine-tune a classifier."""

from __future__ import annotations

import os
import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

CKPT = "checkpoints/last.pt"  # where resume() looks


class Head(nn.Module):
    """A linear head."""

    def __init__(self, width: int):
        super().__init__()
        self.fc = nn.Linear(width, 2)

    def forward(self, x):
        return self.fc(x)

'''

BLOCK = '''
@torch.no_grad()
def evaluate_{k}(model, loader):
    model.eval()
    total = 0
    for x, y in loader:
        total += (model(x).argmax(-1) == y).sum().item()  # count hits
    return total


def resume_{k}(model: nn.Module, path=CKPT):
    state = torch.load(path)
    model.load_state_dict(state["model"], strict=False)
    return model


def save_{k}(model, out_dir):
    wrapped = DDP(model)
    torch.save(wrapped.state_dict(), os.path.join(out_dir, "m_{k}.pt"))
    torch.save(model, f"{{out_dir}}/full_{k}.pt")


class Trainer{k}:
    """Keeps the loop state."""

    def __init__(self, model):
        self.model = model
        self.step = 0

    def checkpoint(self, path):
        torch.save({{"model": self.model.state_dict(), "step": self.step}}, path)
        return torch.load(path, weights_only=False)

    def fit(self, loader, epochs=1):
        for epoch in range(epochs):
            for x, y in loader:
                loss = self.model(x).mean()
                loss.backward()
                self.step += 1
            if epoch % 2 == 0:
                self.checkpoint(f"epoch_{{epoch}}.pt")
        ckpt = torch.load("last.pt")
        self.model.load_state_dict(ckpt)
        return self.step

    @property
    def done(self):
        return self.step > 100

'''

TAIL = '''

def main():
    model = Head(16)
    resume_0(model)
    save_0(model, "out")


if __name__ == "__main__":
    main()
'''

LINES = [
    "    x = torch.load(path)\n",
    "    torch.save(model, path)\n",
    "    ckpt = torch.load(p, map_location='cpu', weights_only=True)\n",
    "import torch as T\n",
    "from torch import load\n",
    "torch = None\n",
    "@staticmethod\n",
    "@torch.no_grad()\n",
    "    # a comment\n",
    "# torch.load(path) in a comment\n",
    '    """A docstring with torch.load(p) inside."""\n',
    '"""\n',
    "def broken(:\n",
    "    return (\n",
    ")\n",
    "class Extra(nn.Module):\n",
    "    def forward(self, x): return x\n",
    "\n",
    "        deeper = 1\n",
    "load = torch.load\n",
    "    y = load(path)\n",
    "    model.load_state_dict(torch.load(p), strict=False)\n",
    "        z = torch.load(path)\n",  # in a method or a block
    "        self.step += 2\n",
    "            total += 1  # deeper\n",
]
DEEP = ["z = torch.load(path)", "total = 0", "# a note", "self.step -= 1", "torch.save(self.model, path)"]
SNIPPETS = ["(", ")", '"', "'", "#", ":", " ", "\n", "torch.", "load", "x", "=", "\\", "    ", "@", "[", ",", "strict=False"]
# what LSP does not count as a line break but str.splitlines does, CRLF, lone CR, multi-byte
ODD_LINES = ["# a \u2028 and a \x85 in a comment\n", "    s = '\u2028é😀\x85'\n", "\f\n", "\f    y = 1\n",
             "    # 😀 \f\n"]
ODD_SNIPPETS = ["\f", "\u2028", "\x85", "é", "😀", "\r\n", "\r", "\u2029", "\x0b"]


def script(blocks: int = 5) -> str:
    return HEAD + "".join(BLOCK.format(k=k) for k in range(blocks)) + TAIL


def edit(text: str, rng: random.Random, odd: bool = False) -> str:
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if "\r\n" in text else "\n"
    choices, snippets = (LINES + ODD_LINES, SNIPPETS + ODD_SNIPPETS) if odd else (LINES, SNIPPETS)
    op = rng.random()
    at = rng.randrange(len(lines) + 1)
    deep = [i for i, line in enumerate(lines) if line.startswith(" " * 8) and line.strip()]
    if op < 0.12 and deep:  # a line in a block inside a method, at its indentation
        i = rng.choice(deep)
        indent = lines[i][:len(lines[i]) - len(lines[i].lstrip())]
        return "".join(lines[:i] + [indent + rng.choice(DEEP) + newline] + lines[i:])
    if op < 0.25:  # insert a line
        return "".join(lines[:at] + [rng.choice(choices).replace("\n", newline)] + lines[at:])
    if op < 0.4 and lines:  # delete a line
        del lines[min(at, len(lines) - 1)]
        return "".join(lines)
    if op < 0.55 and lines:  # replace a line
        lines[min(at, len(lines) - 1)] = rng.choice(choices).replace("\n", newline)
        return "".join(lines)
    pos = rng.randrange(len(text) + 1)
    if op < 0.8:  # insert characters (in strings, comments, decorators, anywhere)
        return text[:pos] + rng.choice(snippets) + text[pos:]
    return text[:pos] + text[pos + rng.randint(1, 4):]  # delete characters


def positions_equal(module: cst.Module, lines: LineIndex, doc: Document) -> bool:
    whole, pieces = Positions(module), doc.positions(module, lines)
    for node in _walk(module):
        if whole.span(node) != pieces.span(node):
            return False
    return True


def names_equal(module: cst.Module, doc: Document) -> bool:
    kept = Names(module, "train", False, walks=doc.walks(module, "train", False))
    return _names(kept) == _names(Names(module, "train", False))


def _names(names: Names):
    """Everything a Names holds, with scopes told apart by their node (not their identity)."""
    def scope(sc):
        binds = {k: [(b.name, b.kind, b.seq, id(b.node), b.qname, id(b.value)) for b in v]
                 for k, v in sc.bindings.items()}
        return (sc.kind, id(sc.node), id(sc.parent.node) if sc.parent else None, list(binds.items()),
                sorted(sc.global_names), sorted(sc.nonlocal_names), sc.star_imports)

    return ([scope(sc) for sc in names.all_scopes], names.seq, list(names.seq), names.parents,
            {n: id(sc.node) for n, sc in names.scopes.items()})


def _walk(node):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(n.children)


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return True


def _run(seed: int, edits: int, settings, check_positions: bool, odd: bool = False):
    """(statements re-parsed alone, re-parsed inside a method or a block) over the edits."""
    path = str(settings.root / "train.py")
    project = ProjectIndex()
    rng = random.Random(seed)
    doc = Document()
    start = script() if not odd else ODD_HEAD + script().replace("\n", "\r\n")
    good = text = start
    spliced = deep = 0
    for i in range(edits):
        if rng.random() < 0.05:
            text = start  # start again
        elif not _parses(text) and rng.random() < 0.6:
            text = good  # repair what the last edits broke (as undo would)
        else:
            text = edit(text, rng, odd)
        if _parses(text):
            good = text
        mine = lint(text, settings, project, path=path, module_name="train", reuse=doc)
        fresh = lint(text, settings, project, path=path, module_name="train")
        assert mine.diagnostics == fresh.diagnostics, f"seed {seed}, edit {i}:\n{text}"
        if doc.text == text:  # parsed by LibCST this time (not stopped by a syntax error)
            assert doc.module.deep_equals(cst.parse_module(text)), f"seed {seed}, edit {i}"
            if check_positions:
                assert positions_equal(doc.module, LineIndex(text), doc), f"seed {seed}, edit {i}"
                assert names_equal(doc.module, doc), f"seed {seed}, edit {i}"
            spliced += doc.spliced
            deep += doc.spliced and doc.depth >= 2
    return spliced, deep


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_random_edits_lint_as_a_whole_lint_does(seed, tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.ckptlint]\n")  # the project is this folder
    settings = Settings(root=tmp_path, select=["ALL"])
    spliced, deep = _run(seed, 75, settings, check_positions=seed < 2)
    # the incremental path is what was tested: most edits re-parse only a few statements,
    # some of them inside a method or a block
    assert spliced >= 30, spliced
    assert deep >= 1, deep


ODD_HEAD = '"""Form feeds, U+2028, U+0085 and CRLF line ends: text to LSP, line breaks to str.splitlines."""\r\n\f\r\n'


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_random_edits_with_odd_line_breaks_and_multibyte_text_lint_as_a_whole_lint_does(seed, tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.ckptlint]\n")
    settings = Settings(root=tmp_path, select=["ALL"])
    spliced, deep = _run(100 + seed, 60, settings, check_positions=True, odd=True)
    assert spliced >= 20 and deep >= 1, (spliced, deep)


CLASSY = '''\
import torch


class Loop:
    def first(self, path):
        a = 1
        b = torch.load(path, weights_only=True)
        return a, b

    def middle(self, path):
        x = 1
        y = 2
        z = 3
        return x + y + z

    def last(self, path):
        return torch.load(path, weights_only=True)


def run(path, flag):
    if flag:
        a = 1
        b = 2
        c = 3
    return path
'''


@pytest.mark.parametrize("where, edit, depth", [
    ("        y = 2\n", "        y = torch.load(path)\n", 2),  # a statement of a method
    ("        b = 2\n", "        b = torch.load(path)\n", 2),  # a statement of a block of a function
])
def test_an_edit_inside_a_method_or_a_block_reparses_only_around_it(where, edit, depth, tmp_path):
    doc = Document()
    settings = Settings(root=tmp_path, select=["ALL"])
    path = str(tmp_path / "train.py")
    lint(CLASSY, settings, path=path, reuse=doc)
    before = doc.module
    changed = CLASSY.replace(where, edit)
    result = lint(changed, settings, path=path, reuse=doc)
    assert doc.spliced and doc.depth == depth
    assert result.diagnostics == lint(changed, settings, path=path).diagnostics
    assert [d.code for d in result.diagnostics].count("CKPT002") == 1
    assert doc.module.deep_equals(cst.parse_module(changed))
    # everything the edit did not touch is the same objects: the other methods, statements
    old_class, new_class = before.body[1], doc.module.body[1]
    kept = [n is o for n, o in zip(new_class.body.body, old_class.body.body)]
    assert kept == ([True, False, True] if "y =" in where else [True, True, True])
    assert positions_equal(doc.module, LineIndex(changed), doc) and names_equal(doc.module, doc)


def test_an_edit_in_a_function_reuses_the_other_statements(tmp_path):
    text = script()
    doc = Document()
    settings = Settings(root=tmp_path, select=["ALL"])
    before = lint(text, settings, path=str(tmp_path / "train.py"), reuse=doc)
    module = doc.module
    where = "def evaluate_2(model, loader):\n"
    changed = text.replace(where, where + "    x = torch.load(path)\n")
    after = lint(changed, settings, path=str(tmp_path / "train.py"), reuse=doc)
    assert doc.spliced
    kept = sum(new is old for new, old in zip(doc.module.body, module.body))
    assert kept == len(module.body) - 1  # all but the edited function
    assert after.diagnostics == lint(changed, settings, path=str(tmp_path / "train.py")).diagnostics
    assert len(after.diagnostics) > len(before.diagnostics)


@pytest.mark.parametrize("where", ["top", "bottom"])
def test_edits_near_the_ends_parse_the_whole_text(where, tmp_path):
    text = script()
    doc = Document()
    settings = Settings(root=tmp_path, select=["ALL"])
    lint(text, settings, path=str(tmp_path / "train.py"), reuse=doc)
    changed = "# header\n" + text if where == "top" else text + "x = torch.load(p)\n"
    result = lint(changed, settings, path=str(tmp_path / "train.py"), reuse=doc)
    assert not doc.spliced
    assert result.diagnostics == lint(changed, settings, path=str(tmp_path / "train.py")).diagnostics
