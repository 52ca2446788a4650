"""Checkpoints against configured models (CKPT103-107, CKPT110) with real torch."""

from __future__ import annotations

import collections
import pathlib

import pytest

from ckptlint.verify import parse_entries, verify

from ._util import codes

MODELS = '''
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, n=3):
        super().__init__()
        self.fc = nn.Linear(4, n)
        self.bn = nn.BatchNorm1d(n)
        self.register_buffer("scratch", torch.zeros(2), persistent=False)

    def forward(self, x):
        return self.bn(self.fc(x))


class Wrapper(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = Net()


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.emb.weight


class NeedsData(nn.Module):
    """Its __init__ reads tensor values, which fails on the meta device."""

    def __init__(self):
        super().__init__()
        table = torch.arange(6.0)
        self.fc = nn.Linear(3, int(table.sum().item()) // 5)


def build(n=3):
    return Net(n)


def broken():
    raise RuntimeError("factory exploded")


def not_a_module():
    return 42
'''

PKG = "ckptlint_test_models"


@pytest.fixture
def project(tmp_path, torch):
    pkg = tmp_path / PKG
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(MODELS)
    import importlib
    import sys

    sys.path.insert(0, str(tmp_path))
    nets = importlib.import_module(f"{PKG}.nets")
    yield tmp_path, nets
    sys.path.remove(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith(PKG)]:
        del sys.modules[name]


def run(root: pathlib.Path, *entries, safe=(), tv=None):
    parsed = parse_entries(list(entries), root / "pyproject.toml")
    diags, notes = verify(parsed, [], root=root, torch_version=tv, safe_globals=list(safe))
    for d in diags:
        assert d.filename.startswith("/") and d.is_runtime
    return diags, notes


def entry(path, model=f"{PKG}.nets:build", **extra):
    e = {"path": path, "model": model}
    e.update(extra)
    return e


def trained(torch, nets, n=3):
    torch.manual_seed(0)
    return nets.Net(n)


def test_plain_state_dict_is_clean(project, torch):
    root, nets = project
    torch.save(trained(torch, nets).state_dict(), root / "w.pt")
    diags, notes = run(root, entry("w.pt"))
    assert diags == [] and notes == []


def test_legacy_format_with_model_is_clean(project, torch):
    root, nets = project
    torch.save(trained(torch, nets).state_dict(), root / "w.pt", _use_new_zipfile_serialization=False)
    assert run(root, entry("w.pt"))[0] == []


def test_full_model_pickle_is_ckpt102_never_103_104(project, torch):
    root, nets = project
    torch.save(trained(torch, nets), root / "full.pt")
    diags, _ = run(root, entry("full.pt"))
    assert codes(diags) == ["CKPT101", "CKPT102"]
    assert f"{PKG}.nets.Net" in diags[1].message


@pytest.mark.slow
@pytest.mark.parametrize(
    "wrap, remap",
    [
        ("dp", "strip `module.`"),
        ("compile", "strip `_orig_mod.`"),
        ("both", "strip `_orig_mod.` then `module.`"),
    ],
)
def test_wrapper_prefixes_are_ckpt107_only(project, torch, wrap, remap):
    root, nets = project
    model = trained(torch, nets)
    sd = model.state_dict()
    if wrap == "dp":
        sd = torch.nn.DataParallel(model).state_dict()
    elif wrap == "compile":
        sd = torch.compile(model).state_dict()
    else:
        sd = torch.compile(torch.nn.DataParallel(model)).state_dict()
    torch.save(sd, root / "w.pt")
    diags, _ = run(root, entry("w.pt"))
    assert codes(diags) == ["CKPT107"], [d.message for d in diags]
    assert remap in diags[0].message
    assert f"{len(sd)} of {len(sd)} keys" in diags[0].message
    assert diags[0].key is None


def test_adding_the_models_top_level_prefix(project, torch):
    root, nets = project
    torch.save(trained(torch, nets).state_dict(), root / "w.pt")
    diags, _ = run(root, entry("w.pt", model=f"{PKG}.nets:Wrapper"))
    assert codes(diags) == ["CKPT107"] and "add `backbone.`" in diags[0].message


def test_prefix_and_shape_mismatch_report_after_the_remap(project, torch):
    root, nets = project
    torch.save(torch.nn.DataParallel(trained(torch, nets, n=5)).state_dict(), root / "w.pt")
    diags, _ = run(root, entry("w.pt"))
    got = codes(diags)
    assert got.count("CKPT107") == 1 and set(got) == {"CKPT105", "CKPT107"}
    shape = {d.key: d.message for d in diags if d.code == "CKPT105"}
    assert "fc.weight" in shape and "(5, 4)" in shape["fc.weight"] and "(3, 4)" in shape["fc.weight"]


def test_missing_unexpected_and_shape(project, torch):
    root, nets = project
    sd = trained(torch, nets).state_dict()
    del sd["fc.bias"]
    sd["extra.weight"] = torch.zeros(2)
    sd["bn.weight"] = torch.zeros(7)
    torch.save(sd, root / "w.pt")
    diags, _ = run(root, entry("w.pt"))
    assert [(d.code, d.key) for d in diags] == [
        ("CKPT103", "fc.bias"), ("CKPT104", "extra.weight"), ("CKPT105", "bn.weight")]
    assert "`fc.bias`" in diags[0].message and "`extra.weight`" in diags[1].message


def test_strict_false_makes_key_findings_warnings(project, torch):
    root, nets = project
    sd = trained(torch, nets).state_dict()
    del sd["fc.bias"]
    torch.save(sd, root / "w.pt")
    diags, _ = run(root, entry("w.pt", strict=False))
    assert [(d.code, d.severity) for d in diags] == [("CKPT103", "warning")]


def test_half_precision_is_ckpt106_naming_dtypes(project, torch):
    root, nets = project
    torch.save(trained(torch, nets).half().state_dict(), root / "w.pt")
    diags, _ = run(root, entry("w.pt"))
    assert set(codes(diags)) == {"CKPT106"}
    by_key = {d.key: d.message for d in diags}
    assert "torch.float16" in by_key["fc.weight"] and "torch.float32" in by_key["fc.weight"]
    assert "bn.num_batches_tracked" not in by_key  # integer buffers are not halved


def test_batchnorm_num_batches_tracked_follows_metadata_version(project, torch):
    root, nets = project
    sd = trained(torch, nets).state_dict()
    del sd["bn.num_batches_tracked"]
    old = collections.OrderedDict(sd)
    old._metadata = {k: dict(v) for k, v in sd._metadata.items()}
    old._metadata["bn"]["version"] = 1
    torch.save(old, root / "v1.pt")
    torch.save(sd, root / "v2.pt")  # version 2 metadata: the buffer is expected
    diags, _ = run(root, entry("v1.pt"), entry("v2.pt"))
    assert [(pathlib.Path(d.filename).name, d.code, d.key) for d in diags] == [
        ("v2.pt", "CKPT103", "bn.num_batches_tracked")]


def test_saved_non_persistent_buffer_is_unexpected(project, torch):
    root, nets = project
    model = trained(torch, nets)
    sd = model.state_dict()
    sd["scratch"] = model.scratch
    torch.save(sd, root / "w.pt")
    diags, _ = run(root, entry("w.pt"))
    assert [(d.code, d.key) for d in diags] == [("CKPT104", "scratch")]


def test_tied_weights(project, torch):
    root, nets = project
    model = nets.Tied()
    sd = model.state_dict()
    assert set(sd) == {"emb.weight", "head.weight"}
    torch.save(sd, root / "both.pt")
    one = dict(sd)
    del one["head.weight"]
    torch.save(one, root / "one.pt")
    diags, _ = run(root, entry("both.pt", model=f"{PKG}.nets:Tied"), entry("one.pt", model=f"{PKG}.nets:Tied"))
    assert [(pathlib.Path(d.filename).name, d.code, d.key) for d in diags] == [
        ("one.pt", "CKPT103", "head.weight")]


def test_meta_fallback_for_init_that_reads_data(project, torch):
    root, nets = project
    torch.save(nets.NeedsData().state_dict(), root / "w.pt")
    assert run(root, entry("w.pt", model=f"{PKG}.nets:NeedsData"))[0] == []


def test_optimizer_matching_and_mismatching(project, torch):
    root, nets = project
    model = trained(torch, nets)
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 4)).sum().backward()
    opt.step()
    torch.save({"model_state_dict": model.state_dict(), "optimizer_state_dict": opt.state_dict()}, root / "ok.pt")
    other = torch.nn.Linear(4, 4)
    opt2 = torch.optim.SGD(other.parameters(), lr=0.1, momentum=0.9)
    other(torch.randn(2, 4)).sum().backward()
    opt2.step()
    torch.save({"model": model.state_dict(), "optim": opt2.state_dict()}, root / "count.pt")
    # same count, wrong shapes: a model with 5 outputs, whose Adam state is saved beside ours
    big = nets.Net(5)
    opt3 = torch.optim.Adam(big.parameters())
    big(torch.randn(4, 4)).sum().backward()
    opt3.step()
    torch.save({"state_dict": model.state_dict(), "optimizer": opt3.state_dict()}, root / "shape.pt")
    diags, notes = run(root, entry("ok.pt"), entry("count.pt"), entry("shape.pt"))
    got = [(pathlib.Path(d.filename).name, d.code, d.key) for d in diags]
    assert got == [("count.pt", "CKPT110", None)] + [
        ("shape.pt", "CKPT110", k) for k in ("fc.weight", "fc.bias", "bn.weight", "bn.bias")]
    assert "2 parameters" in diags[0].message and "4" in diags[0].message
    assert "exp_avg" in diags[1].message and "(5, 4)" in diags[1].message
    assert any("auto-detected state dict key `model_state_dict`" in n for n in notes)
    assert any("auto-detected state dict key `model`" in n for n in notes)


def test_cuda_tagged_with_model_is_ckpt108_only(project, torch, monkeypatch):
    import torch.serialization as ser

    root, nets = project
    monkeypatch.setattr(ser, "location_tag", lambda storage: "cuda:1")
    torch.save(trained(torch, nets).state_dict(), root / "w.pt")
    monkeypatch.undo()
    diags, _ = run(root, entry("w.pt"))
    assert codes(diags) == ["CKPT108"] and "`cuda:1`" in diags[0].message


def test_explicit_key_and_missing_key(project, torch):
    root, nets = project
    torch.save({"weights": {"net": trained(torch, nets).state_dict()}}, root / "w.pt")
    assert run(root, entry("w.pt", key="weights.net"))[0] == []
    diags, _ = run(root, entry("w.pt", key="ema"))
    assert [(d.code, d.key) for d in diags] == [("CKPT109", "ema")]
    assert "`weights`" in diags[0].message


def test_nested_state_dict_is_auto_detected_and_non_dicts_are_explained(project, torch):
    root, nets = project
    torch.save({"epoch": 3, "model": {"state_dict": trained(torch, nets).state_dict()}}, root / "n.pt")
    torch.save(torch.zeros(3), root / "t.pt")
    diags, notes = run(root, entry("n.pt"), entry("t.pt"))
    assert any("auto-detected state dict key `model.state_dict`" in n for n in notes)
    assert [(pathlib.Path(d.filename).name, d.code) for d in diags] == [("t.pt", "CKPT109")]
    assert "single tensor" in diags[0].message


def test_key_pointing_at_a_pickled_module_deeper_down(project, torch):
    root, nets = project
    torch.save({"run": {"net": trained(torch, nets)}}, root / "deep.pt")
    diags, _ = run(root, entry("deep.pt", key="run.net"))
    assert [(d.code, d.key) for d in diags if d.code != "CKPT101"] == [("CKPT102", "run.net")]


def test_model_errors_are_one_line_and_other_entries_still_run(project, torch):
    root, nets = project
    sd = trained(torch, nets).state_dict()
    del sd["fc.bias"]
    torch.save(sd, root / "w.pt")
    diags, _ = run(
        root,
        entry("w.pt", model="no_such_module_xyz:build"),
        entry("w.pt", model=f"{PKG}.nets:broken"),
        entry("w.pt", model=f"{PKG}.nets:not_a_module"),
        entry("w.pt", model=f"{PKG}.nets:nope"),
        entry("missing.pt"),
        entry("w.pt"),
    )
    e910 = [d for d in diags if d.code == "E910"]
    assert len(e910) == 4
    text = " | ".join(d.message for d in e910)
    assert "no_such_module_xyz" in text and "factory exploded" in text and "int" in text and "nope" in text
    assert all(d.filename == str(root / "pyproject.toml") for d in e910)
    assert [(pathlib.Path(d.filename).name, d.code) for d in diags if d.code != "E910"] == [
        ("missing.pt", "CKPT109"), ("w.pt", "CKPT103")]


def test_glob_entry_reports_each_file(project, torch):
    root, nets = project
    (root / "ckpts").mkdir()
    good = trained(torch, nets).state_dict()
    torch.save(good, root / "ckpts" / "a.pt")
    bad = dict(good)
    del bad["fc.weight"]
    torch.save(bad, root / "ckpts" / "b.pt")
    (root / "ckpts" / "c.pt").write_bytes(b"")
    diags, _ = run(root, entry("ckpts/*.pt"))
    assert [(d.filename, d.code) for d in diags] == [
        (str(root / "ckpts" / "b.pt"), "CKPT103"), (str(root / "ckpts" / "c.pt"), "CKPT109")]
    diags, _ = run(root, entry("nothing/*.pt"))
    assert codes(diags) == ["CKPT109"] and "no file matches" in diags[0].message


def test_safetensors_and_sharded_against_model(project, torch):
    import json

    from safetensors.torch import save_file

    root, nets = project
    sd = {k: v.contiguous() for k, v in trained(torch, nets).state_dict().items()}
    save_file(sd, str(root / "m.safetensors"))
    keys = sorted(sd)
    save_file({k: sd[k] for k in keys[:3]}, str(root / "s1.safetensors"))
    save_file({k: sd[k] for k in keys[3:-1]}, str(root / "s2.safetensors"))  # one key lost
    wm = {k: "s1.safetensors" for k in keys[:3]}
    wm.update({k: "s2.safetensors" for k in keys[3:-1]})
    (root / "m.safetensors.index.json").write_text(json.dumps({"weight_map": wm}))
    diags, _ = run(root, entry("m.safetensors"), entry("m.safetensors.index.json"))
    assert [(pathlib.Path(d.filename).name, d.code, d.key) for d in diags] == [
        ("m.safetensors.index.json", "CKPT103", keys[-1])]


def test_lightning_optimizer_states_are_compared(project, torch):
    """Lightning saves `optimizer_states`, a list with one state per optimizer; resuming calls
    `optimizer.load_state_dict` on each, which fails on a state from another model."""
    root, nets = project
    model = trained(torch, nets)
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 4)).sum().backward()
    opt.step()
    base = {"epoch": 1, "global_step": 10, "state_dict": model.state_dict(), "lr_schedulers": []}
    torch.save({**base, "optimizer_states": [opt.state_dict()]}, root / "ok.ckpt")
    big = nets.Net(5)
    wrong = torch.optim.Adam(big.parameters())
    big(torch.randn(4, 4)).sum().backward()
    wrong.step()
    torch.save({**base, "optimizer_states": [wrong.state_dict()]}, root / "wrong.ckpt")
    # a GAN-style pair: two optimizers over parts of the model
    heads = torch.optim.SGD([model.fc.weight, model.fc.bias], lr=0.1, momentum=0.9)
    norm = torch.optim.SGD([model.bn.weight, model.bn.bias], lr=0.1, momentum=0.9)
    model(torch.randn(4, 4)).sum().backward()
    heads.step()
    norm.step()
    torch.save({**base, "optimizer_states": [heads.state_dict(), norm.state_dict()]}, root / "pair.ckpt")
    torch.save({**base, "optimizer_states": [heads.state_dict(), wrong.state_dict()]}, root / "bad_pair.ckpt")
    diags, _ = run(root, *(entry(n) for n in ("ok.ckpt", "wrong.ckpt", "pair.ckpt", "bad_pair.ckpt")))
    got = sorted({(pathlib.Path(d.filename).name, d.code) for d in diags})
    assert got == [("bad_pair.ckpt", "CKPT110"), ("wrong.ckpt", "CKPT110")], diags
    bad_pair = [d.message for d in diags if d.filename.endswith("bad_pair.ckpt")]
    assert any("optimizer_states[1]" in m and "(5, 4)" in m for m in bad_pair), bad_pair
    assert any("cover 6 parameters but the model has 4" in m for m in bad_pair), bad_pair
