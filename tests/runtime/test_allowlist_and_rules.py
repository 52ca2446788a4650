"""The static allowlist matches torch's, the danger list works on dotted parts, and every
runtime code has a documented rule module."""

from __future__ import annotations

import pathlib
import re

import pytest

from ckptlint.rules import all_rules
from ckptlint.rules._base import SECTIONS
from ckptlint.reader import allowlist


def test_static_allowlist_equals_torchs(torch):
    from torch._weights_only_unpickler import _get_allowed_globals

    real = set(_get_allowed_globals())
    assert set(allowlist.WEIGHTS_ONLY_ALLOWED) == real, (
        sorted(real - allowlist.WEIGHTS_ONLY_ALLOWED), sorted(allowlist.WEIGHTS_ONLY_ALLOWED - real))


def test_no_allowed_global_counts_as_dangerous():
    assert [g for g in allowlist.WEIGHTS_ONLY_ALLOWED if allowlist.is_dangerous(g)] == []


@pytest.mark.parametrize("name", [
    "os.system", "posix.system", "nt.system", "subprocess.Popen", "builtins.eval", "builtins.exec",
    "pathlib.os.system", "builtins.exec.__call__", "builtins.getattr", "runpy._run_code",
    "<unresolved STACK_GLOBAL>", "<extension code 7>",
])
def test_dangerous(name):
    assert allowlist.is_dangerous(name)


@pytest.mark.parametrize("name", ["mypkg.models.Net", "torch.nn.modules.linear.Linear", "numpy.dtype"])
def test_not_dangerous(name):
    assert not allowlist.is_dangerous(name)


def test_classify_and_safe_globals():
    code, data = allowlist.classify(
        ["torch.FloatStorage", "a.B", "os.system", "c.D", "numpy.dtype", "tempfile._os.spawnlp"],
        ["c.D", "os.system"])
    # anything not allowed and not a reviewed data type runs code; the danger list cannot be
    # allowlisted away; reviewed data types only need allowlisting
    assert code == ["a.B", "os.system", "tempfile._os.spawnlp"]
    assert data == ["numpy.dtype"]


def test_data_types_are_neither_allowed_by_torch_nor_dangerous():
    assert not set(allowlist.DATA) & allowlist.WEIGHTS_ONLY_ALLOWED
    assert [g for g in allowlist.DATA if allowlist.is_dangerous(g)] == []
    assert all(reason.strip() for reason in allowlist.DATA.values())


def test_safe_globals_call_names_what_the_file_names(monkeypatch):
    monkeypatch.setattr(allowlist, "_numpy_major", lambda: 2)
    call = allowlist.safe_globals_call(["numpy.dtype", "numpy.core.multiarray._reconstruct"])
    assert call == ('torch.serialization.safe_globals([(numpy._core.multiarray._reconstruct, '
                    '"numpy.core.multiarray._reconstruct"), numpy.dtype])')
    monkeypatch.setattr(allowlist, "_numpy_major", lambda: 1)
    assert "(numpy._core" not in allowlist.safe_globals_call(["numpy.core.multiarray._reconstruct"])


def test_every_runtime_code_has_a_documented_rule():
    rules = {code: r for code, r in all_rules().items() if r.phase == "runtime"}
    expected = {f"CKPT{n}" for n in range(101, 112)}
    assert set(rules) == expected
    # one rule model: verify's findings are made by those rules (Rule.finding: code, name and
    # level come from the rule), every one of them, and no module spells a code itself
    import ckptlint.reader
    import ckptlint.verify

    made, spelled = set(), set()
    for package in (ckptlint.reader, ckptlint.verify):
        for source in pathlib.Path(package.__file__).parent.glob("*.py"):
            text = source.read_text()
            made |= {f"CKPT{n}" for n in re.findall(r"^from ckptlint\.rules\.ckpt(\d+)_\w+ import", text, re.M)}
            spelled |= set(re.findall(r'"(CKPT\d+)"', text))
    assert made == expected and spelled == set()
    for code, rule in rules.items():
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", rule.name)
        assert rule.fix_safety == "none" and rule.valid == () and rule.invalid == ()
        text = rule.doc_text()
        positions = [text.find(f"## {s}\n") for s in SECTIONS]
        assert all(p >= 0 for p in positions) and positions == sorted(positions), code
        example = text.split("## Example\n", 1)[1].split("## Use instead")[0]
        assert "```python" in example and "torch" in example
        compile(example.split("```python\n", 1)[1].split("```")[0], code, "exec")
    assert rules["CKPT101"].security_severity == "9.8"
    assert all(r.security_severity is None for c, r in rules.items() if c != "CKPT101")


def test_a_runtime_finding_takes_code_name_and_level_from_its_rule():
    rules = all_rules()
    shape = rules["CKPT105"].finding("`w` has shape (2,) in the checkpoint but (3,) in the model", "/m.pt", "w")
    assert shape.to_json() | {"url": None} == {
        "code": "CKPT105", "name": rules["CKPT105"].name, "severity": "error", "key": "w", "filename": "/m.pt",
        "message": "`w` has shape (2,) in the checkpoint but (3,) in the model", "location": None,
        "end_location": None, "noqa_row": None, "fix": None, "help": None, "url": None}
    assert rules["CKPT106"].finding("cast", "/m.pt").severity == "warning"
    # the milder level is the rule's: reviewed data types only (101), `strict = false` (103, 104)
    milder = {code: rules[code].finding("x", "/m.pt", milder=True).severity
              for code in ("CKPT101", "CKPT103", "CKPT104")}
    assert milder == dict.fromkeys(milder, "warning")
    assert {rules[code].finding("x", "/m.pt").severity for code in milder} == {"error"}
    with pytest.raises(ValueError, match="CKPT105 has no milder level"):
        rules["CKPT105"].finding("x", "/m.pt", milder=True)
    with pytest.raises(TypeError, match="static rule"):
        rules["CKPT002"].finding("x", "/m.pt")


def test_public_entry_points_stay_functions_after_submodules_load():
    import ckptlint.cli.verify  # noqa: F401
    import ckptlint.verify as rt
    import ckptlint.verify.check  # noqa: F401

    assert callable(rt.verify) and callable(rt.parse_entries)
    assert rt.verify.__module__ == "ckptlint.verify" and rt.parse_entries.__module__ == "ckptlint.verify"
