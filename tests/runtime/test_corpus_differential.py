"""Issue 12, the differential test: for every zip variant, the records torch really reads
(each candidate record runs a payload touching its own marker, then names a missing global
so torch stops right there) must be among the records `ckptlint verify` scans (each
record's unique global, `diffmark_<v>_<i>.x`, appears in verify's CKPT101 message).
"""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

from .corpus import differential
from .corpus.run import by_file, once_per_session, prove, says, verify_json

pytestmark = pytest.mark.slow  # servers, subprocesses, corpora: the whole suite runs them


def _run(folder: pathlib.Path) -> dict:
    found = differential.variants(folder)
    proc, diags = verify_json([p for _, p, _ in found], cwd=folder / "fresh-cwd")
    files = by_file(diags)
    out = {}
    for name, path, tags in found:
        out[name] = {"path": str(path), "tags": tags, "diags": files.get(str(path), []),
                     "ran_under_verify": [t for t, (_, m) in tags.items() if pathlib.Path(m).exists()]}
    if importlib.util.find_spec("torch") is not None:
        jobs = [("torch", path, pathlib.Path(m)) for _, path, tags in found for _, m in tags.values()]
        ran = iter(prove(jobs, folder))
        for name, _, tags in found:
            out[name]["torch_reads"] = [t for t in tags if next(ran)]
    return out


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return once_per_session(tmp_path_factory, "differential", _run)


@pytest.mark.parametrize("variant", differential.names())
def test_verify_scans_every_record_torch_reads(results, variant):
    r = results[variant]
    if "torch_reads" not in r:
        pytest.skip("needs torch")
    torch_reads = r["torch_reads"]
    if variant not in differential.TORCH_REFUSES:
        assert len(torch_reads) == 1, f"torch read {torch_reads} (expected exactly one record)"
    assert not r["ran_under_verify"]
    text = " ".join(f'{d["message"]} {d["help"]}' for d in r["diags"] if d["code"] == "CKPT101")
    scanned = [t for t in r["tags"] if f"`diffmark_{t}.x`" in text]
    missed = {t: r["tags"][t][0] for t in torch_reads if t not in scanned}
    assert not missed, f"torch reads {missed}, verify did not scan it; verify said:\n{says(r['diags'])}"


@pytest.mark.parametrize("variant", differential.names())
def test_verify_scans_every_candidate_record(results, variant):
    """Stronger than the subset: every record torch could open under some layout (any
    data.pkl-like name, any duplicate) is scanned, and the run names them all."""
    r = results[variant]
    text = " ".join(f'{d["message"]} {d["help"]}' for d in r["diags"] if d["code"] == "CKPT101")
    missed = {t: rec for t, (rec, _) in r["tags"].items() if f"`diffmark_{t}.x`" not in text}
    assert not missed, f"records not scanned: {missed}; verify said:\n{says(r['diags'])}"
