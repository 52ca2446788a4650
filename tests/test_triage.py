"""The triage (text triggers, names, modules) changes no result: every
snippet gives the same diagnostics and fixes with and without it."""

from __future__ import annotations

import pytest

from ckptlint.engine import triage
from tests.helpers import check
from tests.snippets import snippets

CASES = [pytest.param(src, cfg, id=name) for name, src, cfg in snippets()]


def _no_triage(monkeypatch):
    # every rule on every file: no triggers, no names, no modules
    monkeypatch.setattr(triage, "by_triggers", lambda text, rules: rules)
    monkeypatch.setattr(triage, "by_text", lambda text, rules, module_name=None: rules)
    monkeypatch.setattr(triage, "by_tree", lambda tree, rules, module_name=None: rules)


def _as_json(result):
    # syntax errors are left out: they are reported only for files the triage parses
    # (tests/test_bad_inputs.py), which is the point of it
    text, diags, applied = result
    return (text, [d.to_json() for d in diags if d.code not in ("E999", "E904")],
            [d.to_json() for d in applied])


@pytest.mark.parametrize("source,config", CASES)
@pytest.mark.parametrize("fix", [False, True])
def test_same_with_and_without_triage(monkeypatch, source, config, fix):
    for path, module in (("/virtual/example.py", None), ("/virtual/torch/hub.py", "torch.hub")):
        fast = _as_json(check(source, config=config, fix=fix, unsafe=True, path=path, module_name=module))
        with monkeypatch.context() as m:
            _no_triage(m)
            slow = _as_json(check(source, config=config, fix=fix, unsafe=True, path=path, module_name=module))
        assert fast == slow


def test_has_word():
    assert triage.has_word("torch.load(p)", "load")
    assert triage.has_word("load", "load")
    assert not triage.has_word("download(p); loader; load_state_dict", "load")
    assert triage.has_word("x.loadé load", "load")  # a later whole word counts


def test_names_drop_only_rules_that_cannot_fire():
    from ckptlint.rules import all_rules

    rules = [r() for r in all_rules().values() if r.phase == "static"]
    text = "import json\n# torch.load(p)\njson.dumps(x)\n"
    kept = {r.code for r in triage.by_names(text, triage.by_triggers(text, rules))}
    assert "CKPT002" not in kept  # `load` only in a comment
    text = "import torch\nx = torch.load\n"
    kept = {r.code for r in triage.by_names(text, triage.by_triggers(text, rules))}
    assert {"CKPT002", "CKPT004"} <= kept


@pytest.mark.parametrize("text", [
    "from .basics import *\n\nload('m.pt')\n",  # basics: `from torch import load`
    "from .basics import *\n\ntorch.load('m.pt')\n",  # basics: `import torch`
    "from .basics import *\nT.load('m.pt')\n",  # basics: `import torch as T`
])
def test_a_star_import_keeps_the_rules_it_may_feed(text):
    """A star import may bind `load`, `torch` or any alias: triage cannot drop the rule."""
    from ckptlint.rules import all_rules

    rules = [r() for r in all_rules().values() if r.phase == "static"]
    kept = {r.code for r in triage.by_names(text, triage.by_triggers(text, rules), module_name="pkg.train")}
    assert {"CKPT002", "CKPT004"} <= kept
    # without the star import the same bare name cannot be torch.load
    plain = text.replace("from .basics import *", "from .basics import helper")
    kept = {r.code for r in triage.by_names(plain, triage.by_triggers(plain, rules), module_name="pkg.train")}
    assert "CKPT002" not in kept


def test_text_triggers_come_from_what_a_rule_fires_on():
    from ckptlint.rules import Rule, all_rules

    class OnLoad(Rule):
        code, name, summary = "XTST001", "on-load", "test"
        qualnames = ("torch.load",)

    class OnKeyword(OnLoad):
        code = "XTST002"
        requires_text = ("weights_only",)

    # the names a file must spell for torch.load, every spelling (torch.serialization.load)
    assert OnLoad.names == ("load",) and OnLoad.modules == ("torch",)
    assert OnLoad.text_triggers == ("load",)
    assert OnKeyword.text_triggers == ("weights_only",)  # what it asks for besides the call
    for rule in all_rules().values():
        assert set(rule.text_triggers) <= set(rule.requires_text) | set(rule.names), rule.code


def test_a_call_spelled_with_a_space_is_not_skipped():
    # `torch.save (m, p)`: a text trigger `save(` skipped it; the derived one does not
    src = 'import torch\nmodel = torch.nn.Linear(2, 2)\ntorch.save (model, "m.pt")\n'
    assert "CKPT001" in [d.code for d in check(src)[1]]
