"""CKPT002/CKPT003 on a load whose checkpoint file is in the project: the file is read with
the torch-free reader, and the fix is the exact `safe_globals([...])` it needs, proven by
loading the fixed code with real torch (weights_only=True)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import HANG, ROOT

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")


class Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def run(cwd, *args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "ckptlint", "check", *args, "--no-cache"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=HANG)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "weights").mkdir()
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    torch.save({"w": torch.zeros(2)}, tmp_path / "weights" / "plain.pt")
    torch.save({"w": torch.zeros(2), "mean": np.float64(0.5), "hist": np.arange(3),
                "args": argparse.Namespace(lr=0.1)}, tmp_path / "weights" / "data.pt")
    torch.save({"w": torch.zeros(2), "hook": Payload(tmp_path / "ran")}, tmp_path / "weights" / "evil.pt")
    return tmp_path


def findings(project, source, *extra):
    (project / "load.py").write_text(textwrap.dedent(source))
    proc = run(project, "load.py", "--select", "CKPT002,CKPT003", "--output-format", "json", *extra)
    return {d["location"]["row"]: d for d in json.loads(proc.stdout)}


def test_each_file_gets_what_it_needs(project):
    got = findings(project, '''
        import torch

        def load_all():
            a = torch.load("weights/plain.pt")
            b = torch.load("weights/data.pt", map_location="cpu")
            c = torch.load("weights/evil.pt")
            d = torch.load("weights/data.pt", weights_only=False)
            return a, b, d
    ''')
    assert "holds only tensors" in got[5]["help"] and got[5]["fix"]["applicability"] == "unsafe"
    assert "safe_globals([" in got[6]["help"] and "numpy.dtypes.Int64DType" in got[6]["help"]
    assert got[7]["fix"] is None and "`posix.system`" in got[7]["help"] and "re-save it" in got[7]["help"]
    assert got[8]["code"] == "CKPT003" and got[8]["fix"] is not None
    assert not (project / "ran").exists()  # the file was read, never run


@pytest.mark.slow
def test_the_fixed_code_loads_with_weights_only_true(project):
    (project / "load.py").write_text(textwrap.dedent('''
        import torch

        def load_all():
            a = torch.load("weights/plain.pt")
            b = torch.load("weights/data.pt", map_location="cpu")
            d = torch.load("weights/data.pt", weights_only=False)
            return a, b, d
    '''))
    proc = run(project, "load.py", "--select", "CKPT002,CKPT003", "--fix", "--unsafe-fixes")
    assert "3 fixed" in proc.stdout, proc.stdout + proc.stderr
    fixed = (project / "load.py").read_text()
    assert fixed.count("with torch.serialization.safe_globals(") == 2 and "weights_only=False" not in fixed
    probe = ("import sys, load\n"
             "a, b, d = load.load_all()\n"
             "print(sorted(a), sorted(b), b['args'].lr)\n")
    proof = subprocess.run([sys.executable, "-c", probe], cwd=project, capture_output=True, text=True, timeout=HANG)
    assert proof.returncode == 0, proof.stderr[-2000:]
    assert "['w'] ['args', 'hist', 'mean', 'w'] 0.1" in proof.stdout
    again = run(project, "load.py", "--select", "CKPT002,CKPT003")
    assert again.returncode == 0, again.stdout


def test_no_wrap_where_the_load_is_in_a_compound_header(project):
    got = findings(project, '''
        import torch

        for key in torch.load("weights/data.pt"):
            print(key)
    ''')
    assert "safe_globals([" in got[4]["help"] and got[4]["fix"] is None


def test_a_configured_checkpoint_entry_and_its_safe_globals(project):
    (project / "pyproject.toml").write_text(
        "[project]\nname = 'demo'\n\n[[tool.ckptlint.checkpoints]]\npath = 'weights/data.pt'\n"
        "safe-globals = ['argparse.Namespace', 'numpy.*']\n")
    got = findings(project, '''
        import torch

        state = torch.load("weights/data.pt")
    ''')
    assert "holds only tensors" in got[4]["help"]  # what the entry allows counts as allowed


@pytest.mark.slow
def test_the_result_follows_the_file(project):
    """The cached result depends on the checkpoint file: re-saved, it is read again."""
    (project / "load.py").write_text("import torch\n\nstate = torch.load('weights/plain.pt')\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def cached():
        proc = subprocess.run([sys.executable, "-m", "ckptlint", "check", "load.py", "--select", "CKPT002",
                               "--output-format", "json"], cwd=project, env=env, capture_output=True, text=True)
        return json.loads(proc.stdout)[0]["help"]

    import time

    past = time.time_ns() - 100 * 10**9  # old enough to be cached (fresh files are not)
    for f in (project / "load.py", project / "weights" / "plain.pt"):
        os.utime(f, ns=(past, past))
    assert "holds only tensors" in cached()
    assert list((project / ".ckptlint_cache").rglob("*.json")), "the result was cached"
    assert "holds only tensors" in cached()  # from the cache
    torch.save({"w": torch.zeros(2), "hook": Payload(project / "ran")}, project / "weights" / "plain.pt")
    later = past + 50 * 10**9
    os.utime(project / "weights" / "plain.pt", ns=(later, later))
    assert "`posix.system`" in cached()  # the file changed: read again, not the cached verdict


@pytest.mark.slow
def test_a_cached_result_follows_the_settings_the_rule_reads(project):
    """Allowing the globals a finding asks for (`safe-globals`, or a checkpoint entry's) takes
    effect on the next run that uses the cache, not only with --no-cache."""
    (project / "load.py").write_text("import torch\n\nstate = torch.load('weights/data.pt')\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    import time

    past = time.time_ns() - 100 * 10**9  # old enough to be cached (fresh files are not)
    for f in (project / "load.py", project / "weights" / "data.pt"):
        os.utime(f, ns=(past, past))

    def cached(config):
        (project / "pyproject.toml").write_text("[project]\nname = 'demo'\n" + config)
        proc = subprocess.run([sys.executable, "-m", "ckptlint", "check", "load.py", "--select", "CKPT002",
                               "--output-format", "json"], cwd=project, env=env, capture_output=True, text=True)
        return json.loads(proc.stdout)[0]["help"]

    assert "safe_globals([" in cached("")
    assert "safe_globals([" in cached("")  # from the cache
    assert list((project / ".ckptlint_cache").rglob("*.json")), "the result was cached"
    allowed = "safe-globals = ['argparse.Namespace', 'numpy.*']\n"
    assert "holds only tensors" in cached("[tool.ckptlint]\n" + allowed)
    assert "safe_globals([" in cached("")
    entry = "[[tool.ckptlint.checkpoints]]\npath = 'weights/data.pt'\n" + allowed
    assert "holds only tensors" in cached(entry)
