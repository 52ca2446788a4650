"""Every ref the docs install ckptlint from resolves in this repository: a pre-commit `rev:`
or a `pip install "ckptlint @ git+...@REF"` naming a tag that was never published fails for
the user (`pathspec 'v0.2.0' did not match`). tests/test_precommit.py runs the snippets."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.doc_refs import COMMIT, documented_refs, hooks_at, missing_ref

REFS = documented_refs()


def test_the_docs_name_refs_to_install_from():
    assert {r.doc for r in REFS} >= {"README.md", "integrations.md", "guide.md", "runtime.md"}
    assert any(r.hooks for r in REFS) and any(not r.hooks for r in REFS)


@pytest.mark.parametrize("ref", REFS, ids=[f"{r.doc}-{r.ref[:12]}" for r in REFS])
def test_each_ref_is_a_commit_of_main_with_the_hooks_the_snippet_uses(ref):
    # a full id: pre-commit wants an immutable ref, and a short one can become ambiguous
    assert COMMIT.fullmatch(ref.ref), f"{ref.doc}: `{ref.ref}` is not a full commit id"
    problem = missing_ref(ref.ref)
    if problem:
        pytest.fail(f"{ref.doc}: {problem}", pytrace=False)
    declared = hooks_at(ref.ref)
    assert set(ref.hooks) <= set(declared), (ref.doc, ref.hooks, declared)


def _commit(repo, message):
    (repo / "f").write_text(message)
    for args in (["add", "f"], ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.mark.skipif(not shutil.which("git"), reason="git is not installed")
def test_a_missing_ref_and_a_clone_that_cannot_tell_are_said_apart(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    old, new = _commit(repo, "one"), _commit(repo, "two")
    assert missing_ref(old, root=repo) is None and missing_ref(new, root=repo) is None
    assert "not a commit of this repository" in missing_ref("0" * 40, root=repo)
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", repo.as_uri(), str(shallow)], check=True,
                   capture_output=True)
    assert missing_ref(new, root=shallow) is None
    assert "this clone is shallow" in missing_ref(old, root=shallow)
    (tmp_path / "unpacked").mkdir()  # pytest's temporary folders are in no repository
    assert "not a git checkout" in missing_ref(old, root=tmp_path / "unpacked")
