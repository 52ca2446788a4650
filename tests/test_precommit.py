"""The pre-commit hooks, run by the real pre-commit against a copy of this repository.

pre-commit builds its own virtualenv and pip-installs ckptlint from the copy (that needs
PyPI for libcst and friends), so the environment is cached per test session."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.doc_refs import HOME_REPO, missing_ref, precommit_snippets, snippet_rev
from tests.helpers import ROOT, copy_working_tree

PRE_COMMIT = shutil.which("pre-commit") or str(Path(sys.executable).with_name("pre-commit"))
GIT = shutil.which("git")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.version_info < (3, 11), reason="the pre-commit test runs on Python 3.11+"),
    pytest.mark.skipif(not GIT, reason="git is not installed"),
    pytest.mark.skipif(not Path(PRE_COMMIT).exists(), reason="pre-commit is not installed"),
]

BAD = "import torch\n\nstate = torch.load('model.pt')\n"
CLEAN = "import torch\n\nstate = torch.load('model.pt', map_location='cpu', weights_only=True)\n"
LEGACY = "import torch\n\ntorch.save({}, 'm.pt', _use_new_zipfile_serialization=False)\n"
LEGACY_FIXED = "import torch\n\ntorch.save({}, 'm.pt')\n"


def _git(cwd, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
    return subprocess.run([GIT, *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory):
    """This repository's tracked files as they are in the working tree, committed in a fresh
    repo, so the test also covers uncommitted changes. Returns (path, sha)."""
    repo = tmp_path_factory.mktemp("hook-repo")
    copy_working_tree(repo)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "snapshot")
    return repo, _git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory):
    return tmp_path_factory.mktemp("pre-commit-home")


def _project(tmp_path: Path, files: dict, hook_repo, args=None, hook_id="ckptlint") -> Path:
    project = tmp_path / "project"
    project.mkdir()
    _git(project, "init", "-q")
    for name, content in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            (project / name).write_bytes(content)
        else:
            (project / name).write_text(content)
    repo, sha = hook_repo
    hook = f"      - id: {hook_id}\n" + (f"        args: {args}\n" if args else "")
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {repo}\n    rev: {sha}\n    hooks:\n{hook}"
    )
    _git(project, "add", "-A")
    return project


def _run(project: Path, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PRE_COMMIT_HOME=str(home), PRE_COMMIT_COLOR="never")
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [PRE_COMMIT, "run", "--all-files"], cwd=project, env=env, capture_output=True, text=True, timeout=900,
    )
    if "An unexpected error has occurred" in proc.stdout + proc.stderr and "pip" in proc.stdout + proc.stderr:
        log = home / "pre-commit.log"
        pytest.skip("pre-commit could not install ckptlint (no package index?): "
                    + (log.read_text()[-800:] if log.exists() else proc.stdout[-800:]))
    return proc


def test_manifest_validates():
    proc = subprocess.run([PRE_COMMIT, "validate-manifest", str(ROOT / ".pre-commit-hooks.yaml")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (ROOT / ".pre-commit-hooks.yaml").read_text()
    assert "- id: ckptlint\n" in text and "- id: ckptlint-verify\n" in text


def test_bad_file_fails_with_the_code(tmp_path, hook_repo, pre_commit_home):
    project = _project(tmp_path, {"train.py": BAD}, hook_repo)
    proc = _run(project, pre_commit_home)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "CKPT002" in out, out
    assert "train.py:3:9: CKPT002" in out, out
    assert (project / "train.py").read_text() == BAD  # no --fix: nothing written


def test_clean_file_passes(tmp_path, hook_repo, pre_commit_home):
    project = _project(tmp_path, {"train.py": CLEAN, "notes.txt": "torch.load('x')\n"}, hook_repo)
    proc = _run(project, pre_commit_home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Passed" in proc.stdout


def test_fix_rewrites_and_pre_commit_reports_it(tmp_path, hook_repo, pre_commit_home):
    project = _project(tmp_path, {"save.py": LEGACY}, hook_repo, args="[--fix]")
    proc = _run(project, pre_commit_home)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "files were modified by this hook" in out, out
    assert (project / "save.py").read_text() == LEGACY_FIXED
    # a second run finds nothing left
    _git(project, "add", "-A")
    again = _run(project, pre_commit_home)
    assert again.returncode == 0, again.stdout + again.stderr


def test_force_exclude_applies_config_excludes_to_named_files(tmp_path, hook_repo, pre_commit_home):
    project = _project(
        tmp_path,
        {"vendored.py": BAD, "pyproject.toml": '[tool.ckptlint]\nextend-exclude = ["vendored.py"]\n'},
        hook_repo,
    )
    proc = _run(project, pre_commit_home)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _hostile_pickle(marker: str) -> bytes:
    command = f"touch {marker}".encode()
    return b"\x80\x02cposix\nsystem\nX" + len(command).to_bytes(4, "little") + command + b"\x85R."


def test_verify_hook_fails_on_a_committed_hostile_file_without_any_config(tmp_path, hook_repo,
                                                                         pre_commit_home):
    from tests.runtime.handmade import save_zip, small_state

    marker = tmp_path / "ran"
    project = _project(tmp_path, {
        "assets/cache": _hostile_pickle(str(marker)),  # no suffix: found by content
        "notes.txt": "click\nrequests\n",
        "train.py": CLEAN,
    }, hook_repo, hook_id="ckptlint-verify")
    (project / "weights").mkdir()
    save_zip(small_state(), project / "weights" / "good.pt")
    _git(project, "add", "-A")
    proc = _run(project, pre_commit_home)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "assets/cache: CKPT101" in out and "runs code" in out, out
    assert "good.pt" not in out and "notes.txt" not in out and "train.py" not in out, out
    assert not marker.exists()


def test_verify_hook_passes_benign_checkpoints(tmp_path, hook_repo, pre_commit_home):
    from tests.runtime.handmade import save_zip, small_state

    project = _project(tmp_path, {"train.py": CLEAN, "README.md": "# model\n"}, hook_repo,
                       hook_id="ckptlint-verify")
    (project / "weights").mkdir()
    save_zip(small_state(), project / "weights" / "good.pt")
    _git(project, "add", "-A")
    proc = _run(project, pre_commit_home)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _snippets():
    """Every `.pre-commit-config.yaml` snippet of README.md and docs/*.md, as written."""
    return [pytest.param(block, id=name) for name, block in precommit_snippets()]


@pytest.mark.parametrize("snippet", _snippets())
def test_documented_snippet_runs_as_written(snippet, tmp_path, pre_commit_home):
    """The snippet as written, `rev:` included, with only `repo:` pointed at this checkout
    (which holds main's history, as the published repository does), runs under the real
    pre-commit and fails on a load that runs code and on a hostile pickle."""
    rev = snippet_rev(snippet)
    assert snippet.count(HOME_REPO) == 1 and rev, snippet
    problem = missing_ref(rev)
    if problem:  # tests/test_doc_refs.py fails on it
        pytest.skip(f"the snippet's rev cannot be installed from this checkout: {problem}")
    project = tmp_path / "project"
    project.mkdir()
    _git(project, "init", "-q")
    (project / "train.py").write_text(BAD)
    (project / "assets").mkdir()
    (project / "assets" / "cache").write_bytes(_hostile_pickle(str(tmp_path / "ran")))
    (project / ".pre-commit-config.yaml").write_text(snippet.replace(HOME_REPO, str(ROOT)))
    _git(project, "add", "-A")
    proc = _run(project, pre_commit_home)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    ids = re.findall(r"- id: ([\w-]+)", snippet)
    if "ckptlint" in ids:
        assert "train.py:3:9: CKPT002" in out, out
    if "ckptlint-verify" in ids:
        assert "assets/cache: CKPT101" in out, out
    assert not (tmp_path / "ran").exists()
