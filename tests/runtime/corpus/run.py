"""Running the real loaders (prove.py, in a subprocess) and `ckptlint verify` on the corpus."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

from tests.helpers import HANG

from .._util import run_cli

PROVE = pathlib.Path(__file__).with_name("prove.py")


def prove(jobs, workdir: pathlib.Path, processes: int = 2) -> list:
    """jobs: [(loader, path, marker)] -> [marker appeared]. The jobs are split over a few
    loader processes running side by side (each imports torch once); jobs that share a
    marker run in the same process, one after the other, or one would delete the marker
    the other just made."""
    markers = sorted({str(m) for _, _, m in jobs})
    share = [markers.index(str(m)) % processes for _, _, m in jobs]
    procs = []
    for i in range(processes):
        spec = workdir / f"jobs{i}.json"
        spec.write_text(json.dumps([[loader, str(p), str(m)] for (loader, p, m), k in zip(jobs, share) if k == i]))
        procs.append(subprocess.Popen([sys.executable, str(PROVE), str(spec)], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, cwd=str(workdir)))
    out = [None] * len(jobs)
    for i, proc in enumerate(procs):
        stdout, stderr = proc.communicate(timeout=HANG)
        assert proc.returncode == 0, stderr[-3000:]
        results = iter(json.loads(stdout))
        for j, k in enumerate(share):
            if k == i:
                out[j] = next(results)
    return out


def verify_json(paths, cwd: pathlib.Path):
    """(process, diagnostics) of one `ckptlint verify PATHS --output-format json` run."""
    cwd.mkdir(parents=True, exist_ok=True)
    proc = run_cli(*paths, "--output-format", "json", cwd=cwd)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    diags = json.loads(proc.stdout)
    assert all(len(d["message"]) <= 100 for d in diags), [d["message"] for d in diags]  # headlines
    return proc, diags


def by_file(diags) -> dict:
    out = {}
    for d in diags:
        out.setdefault(d["filename"], []).append(d)
    return out


def says(diags) -> str:
    return "\n".join(f'{d["code"]} [{d.get("severity", "no severity")}]: {d["message"]}' for d in diags) or "nothing"


def once_per_session(tmp_path_factory, name: str, compute):
    """``compute(folder)`` -> JSON-able result, run once per test session even under xdist
    (the workers share the session's temp root; a lock file makes the others wait)."""
    import fcntl
    import os

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of this session
    folder = base / f"corpus-{name}"
    done = base / f"corpus-{name}.json"
    with open(base / f"corpus-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            folder.mkdir(exist_ok=True)
            done.write_text(json.dumps(compute(folder)))
    return json.loads(done.read_text())
