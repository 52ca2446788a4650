"""benchmarks/eval_generalise.py, the issue-20 evaluation harness: what its numbers rest on
(stable keys, the grep of sites, matching findings to sites, label checks). No downloads."""

import importlib.util
import json

import pytest

from tests.helpers import ROOT


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def ev():
    return _load("eval_generalise")


def _finding(path, row, code, cell=None):
    d = {"path": path, "code": code, "location": {"row": row, "column": 1}}
    if cell:
        d["cell"] = cell
    return d


def test_keys_survive_line_shifts_and_number_repeats(ev, tmp_path):
    src = "import torch\na = torch.load(p)\nb = torch.load(p)\na = torch.load(p)\n"
    (tmp_path / "m.py").write_text(src)
    found = [_finding("m.py", 2, "CKPT002"), _finding("m.py", 4, "CKPT002"), _finding("m.py", 3, "CKPT002")]
    ev._keyed(found, tmp_path)
    before = {d["row"]: d["key"] for d in found}
    assert before[2] != before[3]
    assert before[4] == before[2] + "#2"  # same line text: numbered in file order

    (tmp_path / "m.py").write_text("# a comment\n\n" + src.replace("a = ", "a  =  "))
    shifted = [_finding("m.py", 4, "CKPT002"), _finding("m.py", 6, "CKPT002"), _finding("m.py", 5, "CKPT002")]
    ev._keyed(shifted, tmp_path)
    assert {d["row"] - 2: d["key"] for d in shifted} == before  # whitespace changes do not matter


def test_grep_sees_aliases_notebooks_and_dot_folders_but_not_venvs(ev, tmp_path):
    (tmp_path / "a.py").write_text(
        "import torch as T\nfrom torch import load as tl, save\n"
        "x = T.load(f)\ny = tl(f, 'cpu')\nsave(x, g)\nm.load_state_dict(x, strict=False)\n"
        "z = json.load(f)\n# torch.load(p) in a comment\n"
        "w = torch.hub.load_state_dict_from_url(u)\n"
    )
    (tmp_path / ".mim" / "tools").mkdir(parents=True)
    (tmp_path / ".mim" / "tools" / "t.py").write_text("import torch\ntorch.load(p)\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "v.py").write_text("import torch\ntorch.load(p)\n")
    nb = {"cells": [{"cell_type": "markdown", "source": ["# torch"]},
                    {"cell_type": "code", "source": ["import torch\n", "ck = torch.load(p)\n"]}]}
    (tmp_path / "n.ipynb").write_text(json.dumps(nb))
    sites = ev.grep_sites(tmp_path)
    got = {(s["path"], s["cell"], s["row"], s["kind"]) for s in sites}
    assert got == {
        ("a.py", None, 3, "load"), ("a.py", None, 4, "load"), ("a.py", None, 5, "save"),
        ("a.py", None, 6, "lsd"), ("a.py", None, 9, "hub"),
        (".mim/tools/t.py", None, 2, "load"), ("n.ipynb", 2, 2, "load"),
    }
    by_row = {(s["path"], s["row"]): s for s in sites}
    assert ev._syntax(by_row[("a.py", 4)], tmp_path) == "map_location"  # positional
    assert ev._syntax(by_row[("a.py", 6)], tmp_path) == "strict=False"
    assert ev._syntax(by_row[("a.py", 3)], tmp_path) == "-"


def test_a_finding_counts_at_a_site_within_its_statement_and_cell(ev):
    site = {"path": "n.ipynb", "cell": 2, "row": 5, "span": 3}
    found = [_finding("n.ipynb", 7, "CKPT004", cell=2), _finding("n.ipynb", 5, "CKPT002", cell=3),
             _finding("n.ipynb", 8, "CKPT011", cell=2)]
    for d in found:
        d["row"] = d["location"]["row"]
    assert ev.reported_at(site, found) == {"CKPT004"}


def test_label_checks_catch_a_verdict_that_contradicts_the_run(ev):
    shapes, failing = ev.fix_shapes()
    assert "fairseq-ckpt" in failing and "state-dict" in shapes and "state-dict" not in failing
    data = {"findings": {"k": {"label": "maybe", "reason": "x"}},
            "fixes": {"a": {"verdict": "keeps-working", "reason": "x", "executed": "fairseq-ckpt"},
                      "b": {"verdict": "breaks", "reason": "x", "executed": "no-such-shape"},
                      "c": {"verdict": "depends", "reason": "x", "executed": "fairseq-ckpt"},
                      "d": {"verdict": "breaks", "reason": "x", "executed": "fairseq-ckpt"}},
            "sites": {"s": {"should": "CKPT002", "reason": "x"}}}
    problems = ev.check_labels("p==1", data)
    assert len(problems) == 4
    assert any("finding k" in p for p in problems) and any("site s" in p for p in problems)
    assert any("fix a" in p and "contradicts" in p for p in problems)
    assert any("fix b" in p and "not in eval_fix_shapes" in p for p in problems)


def test_the_shape_list_the_harness_reads_is_the_one_the_runner_runs(ev):
    pytest.importorskip("torch")
    shapes_mod = _load("eval_fix_shapes")
    shapes, failing = ev.fix_shapes()
    assert shapes == set(shapes_mod.SHAPES)
    assert failing == shapes_mod.EXPECTED_TO_FAIL


def test_the_split_is_fixed_spans_every_domain_and_keeps_the_old_corpora_out(ev):
    old = {n for n, _ in _load("eval_corpus").PACKAGES + _load("eval_corpus").DISTRIBUTED}
    dev, held = ev.split()
    assert (dev, held) == (ev.DEV, ev.HELDOUT)
    assert not {n for n, _, _ in dev + held} & old
    assert len(held) >= 20 and not set(dev) & set(held)
    assert {d for _, _, d in dev} == {d for _, _, d in held}
