"""Issue 12: every file of the hostile corpus runs code under a real loader (proved in a
subprocess: its payload creates a marker file), and `ckptlint verify` calls it an error
that says it runs code, without running it (the marker never appears), exit 1.

One session-wide run does the work: build the corpus, run `ckptlint verify` on all of it in
a fresh cwd (recording which markers exist right after), then the real loaders. The tests
read that record, one per file.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import pathlib

import pytest

from .corpus import hostile
from .corpus.run import by_file, once_per_session, prove, says, verify_json

pytestmark = pytest.mark.slow  # servers, subprocesses, corpora: the whole suite runs them

NAMES = hostile.names()
GROUPS = sorted({c.group for c in hostile.build_scratch_groups()})


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _run(folder: pathlib.Path) -> dict:
    cases = hostile.build(folder, torch=_torch())
    proc, diags = verify_json([c.path for c in cases], cwd=folder / "fresh-cwd")
    ran_under_verify = [c.name for c in cases if c.marker.exists()]
    proofs = {}
    if importlib.util.find_spec("torch") is not None:
        jobs = [(loader, c.load_path if loader == "dcp" else c.path, c.marker)
                for c in cases for loader in c.loaders]
        for (loader, _, marker), ran in zip(jobs, prove(jobs, folder)):
            proofs[f"{marker.name} {loader}"] = ran
    return {"cases": [{k: str(v) if isinstance(v, pathlib.Path) else v
                       for k, v in dataclasses.asdict(c).items()} for c in cases],
            "returncode": proc.returncode, "diags": by_file(diags), "ran_under_verify": ran_under_verify,
            "proofs": proofs}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return once_per_session(tmp_path_factory, "hostile", _run)


def _case(corpus, name) -> dict:
    for c in corpus["cases"]:
        if c["name"] == name:
            return c
    pytest.skip(f"{name} needs {hostile.OPTIONAL.get(name)}, not installed")


def _proofs(corpus):
    if not corpus["proofs"]:
        pytest.skip("the real loaders need torch")
    return corpus["proofs"]


@pytest.mark.parametrize("name", [n for n in NAMES if n not in hostile.GROUPED])
def test_hostile_file_runs_code_under_the_real_loader(corpus, name):
    case = _case(corpus, name)
    proofs = _proofs(corpus)
    for loader in case["loaders"]:
        assert proofs[f"{name} {loader}"], f"{name}: the payload did not run under {loader}"


@pytest.mark.parametrize("group", GROUPS)
def test_one_of_the_alternatives_runs_code_under_torch(corpus, group):
    proofs = _proofs(corpus)
    members = [c["name"] for c in corpus["cases"] if c["group"] == group]
    assert len(members) >= 2
    assert any(proofs[f"{n} torch"] for n in members), f"torch ran none of {members}"


def test_verify_exits_1_on_the_corpus(corpus):
    assert corpus["returncode"] == 1


@pytest.mark.parametrize("name", NAMES)
def test_verify_says_the_file_runs_code_and_never_runs_it(corpus, name):
    case = _case(corpus, name)
    assert name not in corpus["ran_under_verify"], "verify ran the payload"
    diags = corpus["diags"].get(case["path"], [])
    # exit 1 means a finding; one file alone would exit 1 only with a finding of its own
    assert diags, "verify reported nothing on this file (exit 0 on its own)"
    runs = [d for d in diags if d["code"] == "CKPT101" and "runs code" in d["message"]]
    assert runs, f"no CKPT101 saying 'runs code'; verify said:\n{says(diags)}"
    assert f"`{case['calls']}`" in " ".join(f'{d["message"]} {d["help"]}' for d in runs), (
        f"the call that runs, `{case['calls']}`, is not named:\n{says(diags)}")
    assert any(d.get("severity") == "error" for d in runs), f"not an error:\n{says(diags)}"
