"""The result cache: where it lives, what it holds, and that it never serves stale results."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from ckptlint.workspace.cache import RACY_NS
from tests.helpers import HANG, run_cli, run_json

# a path no save in the project can pair with: the result depends on this file alone (a
# literal path makes CKPT002 look for where the project saves it, i.e. at every file)
BAD = "import torch\nsd = torch.load(path)\n"


def _project(tmp_path, config=""):
    (tmp_path / "pyproject.toml").write_text(f"[tool.ckptlint]\n{config}")
    (tmp_path / "a.py").write_text(BAD)
    (tmp_path / "b.py").write_text("x = 1\n")
    return tmp_path


def _old(path, seconds=60):
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_cache_folder_layout(tmp_path):
    _project(tmp_path)
    proc, first = run_json("check", ".", cwd=tmp_path)
    cache = tmp_path / ".ckptlint_cache"
    assert (cache / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (cache / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    buckets = list(cache.glob("*/*.json"))
    assert len(buckets) == 1
    data = json.loads(buckets[0].read_text())  # JSON: loading a cache runs no code
    assert str(tmp_path / "a.py") in data["entries"]
    _, second = run_json("check", ".", cwd=tmp_path)
    assert first == second and first


@pytest.mark.slow
def test_no_cache_and_cache_dir(tmp_path, monkeypatch):
    _project(tmp_path)
    run_json("check", ".", "--no-cache", cwd=tmp_path)
    assert not (tmp_path / ".ckptlint_cache").exists()
    run_json("check", ".", "--cache-dir", "elsewhere", cwd=tmp_path)
    assert (tmp_path / "elsewhere" / "CACHEDIR.TAG").exists()
    assert not (tmp_path / ".ckptlint_cache").exists()


def test_env_and_config_key(tmp_path):
    _project(tmp_path, 'cache-dir = "from-config"\n')
    run_json("check", ".", cwd=tmp_path)
    assert (tmp_path / "from-config" / "CACHEDIR.TAG").exists()
    proc = run_cli("check", ".", "--output-format", "json", cwd=tmp_path, CKPTLINT_CACHE_DIR=str(tmp_path / "env"))
    assert (tmp_path / "env" / "CACHEDIR.TAG").exists()
    assert json.loads(proc.stdout)


def _same_size_edit(path, old, new, keep_mtime):
    st = path.stat()
    text = path.read_text().replace(old, new)
    assert len(text) == st.st_size
    path.write_text(text)
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


class _Clock:
    """The run's clock, set by the test: `time.time_ns()` for the cache."""

    def __init__(self, ns: int):
        self.ns = ns

    def time_ns(self) -> int:
        return self.ns


def _check_in_process(monkeypatch, capsys, clock_ns: int) -> list:
    from ckptlint.cli import main as cli
    from ckptlint.workspace import cache

    monkeypatch.setattr(cache, "time", _Clock(clock_ns))
    cli.main(["check", ".", "--output-format", "json"])
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("age, edit_seen", [(0, True), (RACY_NS // 2, True), (RACY_NS, False)])
def test_racy_file_is_hashed_not_stamped(tmp_path, monkeypatch, capsys, age, edit_seen):
    """A file whose mtime is within the timestamp granularity of the run that cached it
    (git's racy rule) is checked by content next time: an edit within that granularity,
    which leaves the size and the mtime as they were, is still seen. An older file is
    trusted by its stamp, as ruff and git trust it. The run's clock is the test's, so
    how long a run takes on a busy machine does not matter."""
    _project(tmp_path)
    monkeypatch.chdir(tmp_path)
    mtime = (tmp_path / "a.py").stat().st_mtime_ns
    first = _check_in_process(monkeypatch, capsys, mtime + age)
    assert [d["code"] for d in first] == ["CKPT002", "CKPT004"]
    _same_size_edit(tmp_path / "a.py", "torch.load", "torch.lxad", keep_mtime=True)
    second = _check_in_process(monkeypatch, capsys, mtime + age + 1)
    assert second == ([] if edit_seen else first)


@pytest.mark.slow
def test_changed_mtime_same_size_is_seen(tmp_path):
    _project(tmp_path)
    _old(tmp_path / "a.py")
    _, first = run_json("check", ".", cwd=tmp_path)
    assert first
    _same_size_edit(tmp_path / "a.py", "torch.load", "torch.lxad", keep_mtime=False)
    _, second = run_json("check", ".", cwd=tmp_path)
    assert second == []
    # and a touch without a change is a hit that gives the same result
    (tmp_path / "a.py").write_text(BAD)
    _old(tmp_path / "a.py", 30)
    _, third = run_json("check", ".", cwd=tmp_path)
    assert third == first


@pytest.mark.slow
def test_settings_and_rules_are_part_of_the_key(tmp_path):
    _project(tmp_path)
    _, all_rules = run_json("check", ".", cwd=tmp_path)
    _, only = run_json("check", ".", "--select", "CKPT004", cwd=tmp_path)
    assert {d["code"] for d in all_rules} == {"CKPT002", "CKPT004"}
    assert {d["code"] for d in only} == {"CKPT004"}
    (tmp_path / "pyproject.toml").write_text('[tool.ckptlint]\nignore = ["CKPT004"]\n')
    _, ignored = run_json("check", ".", cwd=tmp_path)
    assert {d["code"] for d in ignored} == {"CKPT002"}


@pytest.mark.slow
def test_corrupt_cache_is_ignored(tmp_path):
    _project(tmp_path)
    _, first = run_json("check", ".", cwd=tmp_path)
    for bucket in (tmp_path / ".ckptlint_cache").glob("*/*.json"):
        bucket.write_text("{not json")
    _, second = run_json("check", ".", cwd=tmp_path)
    assert first == second


@pytest.mark.slow
def test_fix_runs_do_not_leave_stale_results(tmp_path):
    _project(tmp_path)
    run_json("check", ".", cwd=tmp_path)  # cache the unfixed file
    proc = run_cli("check", ".", "--fix", "--unsafe-fixes", cwd=tmp_path)
    assert "weights_only=True" in (tmp_path / "a.py").read_text()
    _, after = run_json("check", ".", cwd=tmp_path)
    _, fresh = run_json("check", ".", "--no-cache", cwd=tmp_path)
    assert after == fresh
    assert "CKPT002" not in {d["code"] for d in after}


@pytest.mark.slow
def test_concurrent_runs_leave_a_readable_cache(tmp_path):
    import subprocess
    import sys

    from tests.helpers import cli_env

    _project(tmp_path)
    for i in range(20):
        (tmp_path / f"m{i}.py").write_text(BAD if i % 2 else "y = 2\n")
    procs = [subprocess.Popen([sys.executable, "-m", "ckptlint", "check", ".", "--output-format", "json"],
                              cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(4)]
    outs = [json.loads(p.communicate(timeout=HANG)[0]) for p in procs]
    assert all(o == outs[0] for o in outs)
    for bucket in (tmp_path / ".ckptlint_cache").glob("*/*.json"):
        json.loads(bucket.read_text())
    assert not list((tmp_path / ".ckptlint_cache").rglob("*.tmp"))
    _, warm = run_json("check", ".", cwd=tmp_path)
    assert warm == outs[0]


@pytest.mark.slow
def test_result_that_used_the_project_index_follows_other_files(tmp_path):
    """b.py's finding depends on a class defined in a.py: editing a.py must re-lint b.py."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("import torch\nclass Net(torch.nn.Module):\n    pass\n")
    (pkg / "b.py").write_text("import torch\nfrom pkg.a import Net\nm = Net()\ntorch.save(m, 'x.pt')\n")
    for p in (tmp_path / "pyproject.toml", pkg / "__init__.py", pkg / "a.py", pkg / "b.py"):
        _old(p)
    _, first = run_json("check", ".", cwd=tmp_path)
    _, second = run_json("check", ".", cwd=tmp_path)
    assert [d["code"] for d in first] == [d["code"] for d in second] == ["CKPT001"]
    buckets = list((tmp_path / ".ckptlint_cache").glob("*/*.json"))
    entry = json.loads(buckets[0].read_text())["entries"][str(pkg / "b.py")]
    assert entry["extra"]["project"]  # b.py's result records the project it depended on
    (pkg / "a.py").write_text("import torch\nclass Net:\n    pass\n")
    _old(pkg / "a.py", 30)
    _, third = run_json("check", ".", cwd=tmp_path)
    _, fresh = run_json("check", ".", "--no-cache", cwd=tmp_path)
    assert third == fresh == []


def test_editing_a_file_relints_only_the_results_that_looked_it_up(tmp_path, monkeypatch, capsys):
    """b.py followed `Net` into a.py; c.py loads a checkpoint and looks nothing up; d.py is
    unrelated. Editing d.py re-lints d.py alone; editing a.py re-lints a.py and b.py."""
    from ckptlint.cli import main as cli
    from ckptlint.workspace.workspace import Workspace

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    files = {
        "__init__.py": "",
        "a.py": "import torch\nclass Net(torch.nn.Module):\n    pass\n",
        "b.py": "import torch\nfrom pkg.a import Net\nm = Net()\ntorch.save(m, 'x.pt')\n",
        "c.py": "import torch\nsd = torch.load('m.pt', map_location='cpu', weights_only=True)\n",
        "d.py": "class Other:\n    pass\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
        _old(pkg / name)
    (tmp_path / "pyproject.toml").touch()
    _old(tmp_path / "pyproject.toml")
    linted = []
    real = Workspace.lint_file
    monkeypatch.setattr(Workspace, "lint_file",
                        lambda self, path, *a, **k: linted.append(Path(path).name) or real(self, path, *a, **k))
    monkeypatch.chdir(tmp_path)

    def run():
        linted.clear()
        rc = cli.main(["check", ".", "-j", "1", "--output-format", "json"])
        return rc, [d["code"] for d in json.loads(capsys.readouterr().out)], sorted(linted)

    assert run() == (1, ["CKPT001"], ["__init__.py", "a.py", "b.py", "c.py", "d.py"])
    assert run() == (1, ["CKPT001"], [])
    (pkg / "d.py").write_text("class Other:\n    x = 1\n")
    _old(pkg / "d.py", 30)
    # b.py's finding names the project's readers of `x.pt`, which any file could add
    assert run() == (1, ["CKPT001"], ["b.py", "d.py"])
    (pkg / "a.py").write_text("import torch\nclass Net:\n    pass\n")
    _old(pkg / "a.py", 20)
    assert run() == (0, [], ["a.py", "b.py"])


# --- the key is every resolved setting ----------------------------------------------------------
# each key of [tool.ckptlint], set to something other than its default
CHANGED = {
    "select": ["CKPT001"], "ignore": ["CKPT002"], "extend-select": ["CKPT050"], "exclude": ["build"],
    "extend-exclude": ["generated"], "per-file-ignores": {"tests/*": ["CKPT002"]}, "torch-version": "2.1",
    "target-version": "py310", "model-names": False, "max-file-size": 1000, "cache-dir": "elsewhere",
    "runtime": True, "checkpoints": [{"path": "weights/model.pt"}], "safe-globals": ["argparse.Namespace"],
    "explicit-weights-only": True,
    "rule-options": {"CKPT001": {}},  # no built-in rule has options (tests/test_plugins.py: one that has)
}
# and what else a config file resolves into settings
ELSEWHERE = {
    "torch requirement": {"project": {"dependencies": ["torch>=2.1"]}},
    "requires-python": {"project": {"requires-python": ">=3.10"}},
    "ruff's line length": {"tool": {"ruff": {"line-length": 100}}},
}


def test_every_setting_is_in_the_cache_key(tmp_path):
    """Change each setting in turn: each change gives another cache bucket. Between them the
    changes touch every field of Settings, so a new setting without a change here fails."""
    from dataclasses import fields

    from ckptlint.workspace.cache import Cache
    from ckptlint.workspace.config import SCHEMA, Settings, settings_from_data

    assert set(CHANGED) == set(SCHEMA), "give each new [tool.ckptlint] key a changed value here"
    cache = Cache(tmp_path / "cache")

    def resolved(data, folder="project"):
        (tmp_path / folder).mkdir(exist_ok=True)
        s = settings_from_data(data, tmp_path / folder / "pyproject.toml")
        return s, cache.bucket(s, ["CKPT002"]).path

    base, base_key = resolved({"project": {"name": "demo"}})
    variants = {key: {"project": {"name": "demo"}, "tool": {"ckptlint": {key: value}}} for key, value in CHANGED.items()}
    for name, data in ELSEWHERE.items():
        variants[name] = {"project": dict({"name": "demo"}, **data.get("project", {})), "tool": data.get("tool", {})}
    touched = set()
    for name, data in variants.items():
        changed, key = resolved(data)
        touched |= {f.name for f in fields(Settings) if getattr(changed, f.name) != getattr(base, f.name)}
        assert key != base_key, f"{name} is not in the cache key"
    # the same config in another folder: another root (per-file-ignores are relative to it)
    moved, key = resolved({"project": {"name": "demo"}}, "other")
    touched |= {f.name for f in fields(Settings) if getattr(moved, f.name) != getattr(base, f.name)}
    assert key != base_key
    assert touched == {f.name for f in fields(Settings)}, "a setting no change above reaches"
    # and the same settings read twice give the same key
    assert resolved({"project": {"name": "demo"}})[1] == base_key
