"""One job, several jobs and a warm cache give the same diagnostics, in the same order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ckptlint.workspace import parallel
from ckptlint.workspace.run import Options, run
from tests.helpers import run_cli
from tests.snippets import snippets

pytestmark = pytest.mark.slow  # servers, subprocesses, corpora: the whole suite runs them


def _corpus(root: Path) -> Path:
    """The snippets as a package tree (with and without a config of their own)."""
    for i, (name, src, cfg) in enumerate(snippets()):
        folder = root / "pkg" / f"d{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "__init__.py").write_text("")
        (folder / f"{name.replace('-', '_').lower()}.py").write_text(src, encoding="utf-8")
    (root / "pyproject.toml").write_text('[project]\ndependencies = ["torch>=2.1"]\n[tool.ckptlint]\n')
    return root


def _json(proc):
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def test_jobs_and_cache_give_identical_results(tmp_path):
    root = _corpus(tmp_path)
    # enough source that the pool really starts (MIN_PARALLEL_BYTES)
    (root / "pkg" / "big.py").write_text("x = 1\n" * (parallel.MIN_PARALLEL_BYTES // 6 + 1))
    serial = _json(run_cli("check", ".", "-j", "1", "--no-cache", "--output-format", "json", cwd=root))
    several = _json(run_cli("check", ".", "-j", "3", "--no-cache", "--output-format", "json", cwd=root))
    cold = _json(run_cli("check", ".", "--cache-dir", "c", "--output-format", "json", cwd=root))
    warm = _json(run_cli("check", ".", "--cache-dir", "c", "--output-format", "json", cwd=root))
    assert serial, "the corpus should produce findings"
    assert {d["code"] for d in serial} >= {"CKPT002", "CKPT003", "CKPT004", "E999"}
    assert serial == several == cold == warm


@pytest.mark.parametrize("fix", [False, True])
def test_pool_in_process_keeps_task_order(tmp_path, monkeypatch, fix):
    root = _corpus(tmp_path)
    monkeypatch.setattr(parallel, "MIN_PARALLEL_BYTES", 0)
    started = []
    real = parallel.lint_all

    def spy(tasks, jobs, *a, **k):
        started.append(jobs)
        return real(tasks, jobs, *a, **k)

    monkeypatch.setattr("ckptlint.workspace.run.lint_all", spy)
    results = []
    for jobs in (1, 2, 4):
        out = run(Options(paths=[str(root)], jobs=jobs, cache=False, diff=fix, unsafe_fixes=True), cwd=root)
        results.append(([d.to_json() for d in out.diagnostics], [(r.path, r.fixed) for r in out.changed]))
    assert started == [1, 2, 4]
    assert results[0] == results[1] == results[2]


def test_jobs_must_be_positive(tmp_path):
    proc = run_cli("check", ".", "-j", "0", cwd=tmp_path)
    assert proc.returncode == 2 and "jobs" in proc.stderr
