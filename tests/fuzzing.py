"""Strategies and properties shared by tests/test_properties.py and benchmarks/fuzz.py.

Programs come from hypothesmith (the Python grammar), alone or with torch.load/torch.save
calls spliced in between their top-level statements, in the alias forms real code uses.
"""

from __future__ import annotations

import ast
from typing import List

import hypothesmith
from hypothesis import strategies as st

IMPORTS = [
    "import torch",
    "import torch as T",
    "from torch import load, save",
    "from torch import load as L, save as S",
    "import torch.serialization",
    "import torch.hub",
    "from torch import nn",
    "from torch.nn.parallel import DistributedDataParallel as DDP",
]

CALLS = [
    "x = torch.load(p)",
    "x = torch.load(p,)",
    "x = torch.load()",
    "x = torch.load(p, map_location='cpu')",
    "x = torch.load(p, weights_only=False)",
    "x = torch.load(p, **kw)",
    "x = torch.load(\n    p,  # comment\n    map_location=dev,\n)",
    "x = torch.load(torch.load(torch.load(p)))",
    "x = T.load(open(p, 'rb'))",
    "x = load(p); y = L(p)",
    "x = torch.serialization.load(p)",
    "x = torch.hub.load('repo', 'model')",
    "torch.save(m, f, _use_new_zipfile_serialization=False)",
    "torch.save(m, f, _use_new_zipfile_serialization=False,)",
    "T.save(m, torch.load(p), _use_new_zipfile_serialization=False, pickle_protocol=2)",
    "S(load(p), f, _use_new_zipfile_serialization=False)",
    "model.load_state_dict(torch.load(p))",
    "if ok: torch.load(p)\nelse: torch.save(m, f, _use_new_zipfile_serialization=False)",
    "def restore(p):\n    return torch.load(p)",
    "with open(p, 'rb') as fh:\n    sd = torch.load(fh)",
    "lambda p: torch.load(p)",
    "x = [torch.load(q) for q in ps]",
    # the semantic rules (whole-model save, wrappers, prefix strips), whose fixes meet others'
    "class Net(nn.Module):\n    pass",
    "model = DDP(Net())",
    "model = torch.compile(Net())",
    "torch.save(model, 'm.pt')",
    "torch.save(model.state_dict(), 'm.pt')",
    "torch.save({'model': model, 'sd': model.state_dict()}, torch.load(p))",
    "sd = {k.replace('module.', ''): v for k, v in torch.load(p).items()}",
    "sd = {k[7:]: v for k, v in sd.items()}",
    "model.load_state_dict(torch.load(p), strict=False)",
    "def save(m: nn.Module, path):\n    torch.save(m, path)",
]


def _statement_starts(text: str) -> List[int]:
    """Line numbers (1-based) where a top-level statement starts, decorators included."""
    tree = ast.parse(text)
    starts = []
    for node in tree.body:
        decorators = getattr(node, "decorator_list", [])
        starts.append(min([node.lineno] + [d.lineno for d in decorators]))
    return starts


@st.composite
def spliced_programs(draw) -> str:
    """A generated program with torch imports at the top and calls between its statements."""
    base = draw(hypothesmith.from_grammar())
    lines = base.splitlines(keepends=True)
    try:
        starts = _statement_starts(base)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        starts = []
    # insert before statement starts only when the line before ends cleanly
    slots = [s for s in starts if s == 1 or lines[s - 2].endswith("\n")]
    chosen = draw(st.lists(st.sampled_from(slots or [len(lines) + 1]), max_size=4))
    snippets = {}
    for slot in chosen:
        snippets.setdefault(slot, []).append(draw(st.sampled_from(CALLS)))
    out = [draw(st.sampled_from(IMPORTS)) + "\n", "\n".join(IMPORTS) + "\n"]
    for i, line in enumerate(lines, start=1):
        out.extend(s + "\n" for s in snippets.get(i, []))
        out.append(line)
    if lines and not lines[-1].endswith(("\n", "\r")):
        out.append("\n")
    out.extend(s + "\n" for s in snippets.get(len(lines) + 1, []))
    return "".join(out)


def programs():
    return st.one_of(hypothesmith.from_grammar(), spliced_programs())


FILLER = ["pass", "y = 1", "# a comment", '"""doc"""', "z = (1,\n     2)", "del y", "x = f(g(h()))"]


def _indent(block: str, prefix: str) -> str:
    return "".join(prefix + ln if ln.strip() else ln for ln in block.splitlines(keepends=True))


@st.composite
def snippet_programs(draw) -> str:
    """Cheap programs (no grammar search): imports, then the torch calls and filler nested
    in functions, classes and ifs. Fast enough for many examples in the default run."""
    parts = [draw(st.sampled_from(IMPORTS)) for _ in range(draw(st.integers(1, 3)))]
    for _ in range(draw(st.integers(1, 6))):
        stmt = draw(st.sampled_from(CALLS + FILLER))
        for _ in range(draw(st.integers(0, 2))):
            header = draw(st.sampled_from(["def f(p):", "class C:", "if p:", "for p in ps:", "try:"]))
            tail = "\nexcept E:\n    pass" if header == "try:" else ""
            stmt = header + "\n" + _indent(stmt, "    ") + tail
        parts.append(stmt)
    return "\n".join(parts) + draw(st.sampled_from(["\n", "", "\n\n"]))


def _could_fire(text: str) -> bool:
    from ckptlint.engine import triage
    from ckptlint.rules import all_rules

    rules = [r() for r in all_rules().values() if r.phase == "static" and r.default_enabled]
    return bool(triage.by_text(text, triage.by_triggers(text, rules)))


def check_program(text: str) -> None:
    """The properties of issue 6 for one program (assertions)."""
    from ckptlint.engine.fixes import apply_fixes
    from tests.helpers import check

    text_once, remaining, applied = check(text, fix=True, unsafe=True)
    codes = [d.code for d in remaining]
    try:
        compile(text, "<generated>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        assert text_once == text  # untouched
        # reported, unless nothing in it could fire (such a file is never parsed)
        assert codes[:1] in (["E999"], ["E904"]) or (codes == [] and not _could_fire(text))
        return
    assert "E998" not in codes, [d.message for d in remaining if d.code == "E998"]
    assert "E997" not in codes, "a fix produced code that does not parse"
    compile(text_once, "<fixed>", "exec", dont_inherit=True)  # every fix result parses
    assert [d for d in remaining if d.fix is not None] == []  # nothing fixable is left

    twice, _, applied_twice = check(text_once, fix=True, unsafe=True)
    assert twice == text_once and applied_twice == []  # fixing twice == fixing once

    # each fix alone: stays inside its diagnostic's span, keeps every byte outside its edits
    _, first, _ = check(text)
    from ckptlint.engine.source import LineIndex

    index = LineIndex(text)
    for d in first:
        if d.fix is None:
            continue
        lo, hi = index.offset(d.location), index.offset(d.end_location)
        out, done = apply_fixes(text, [d], unsafe_fixes=True)
        assert done == [d]
        spans = sorted((index.offset(e.start), index.offset(e.end)) for e in d.fix.edits)
        assert lo <= spans[0][0] and spans[-1][1] <= hi, (d.code, spans, (lo, hi))
        start, end = spans[0][0], spans[-1][1]
        assert out[:start] == text[:start]
        assert out[len(out) - (len(text) - end):] == text[end:]
        compile(out, "<one fix>", "exec", dont_inherit=True)

    if "\r" not in text:  # the same program with CRLF endings keeps them
        crlf = text.replace("\n", "\r\n")
        fixed_crlf, _, _ = check(crlf, fix=True, unsafe=True)
        assert fixed_crlf.replace("\r\n", "") .count("\n") == 0
        assert fixed_crlf.replace("\r\n", "\n") == text_once


def check_bytes(data: bytes) -> None:
    """Arbitrary bytes: decoding either works or raises SourceError; linting never raises."""
    from ckptlint.engine.source import SourceError, decode
    from tests.helpers import check

    try:
        src = decode(data)
    except SourceError as exc:
        assert exc.code == "E902" and exc.message
        return
    assert src.encode(src.text) == data  # decoding loses nothing
    _, remaining, _ = check(src.text, fix=True, unsafe=True)
    assert "E998" not in [d.code for d in remaining]
