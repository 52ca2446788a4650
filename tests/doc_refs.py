"""The refs README.md and docs/*.md tell users to install ckptlint from: each pre-commit
`rev:` of the repository and each `pip install "ckptlint @ git+...@REF"`.

Only the commits of main travel with the repository (a tag made on a clone does not), so
each ref must be a full commit id in this checkout's history. A checkout without that
history (a shallow clone, an unpacked archive) cannot tell: `missing_ref` then says so."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import List, NamedTuple, Optional, Tuple

from tests.helpers import ROOT

HOME_REPO = "https://github.com/ckptlint/ckptlint"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMIT = re.compile(r"[0-9a-f]{40}")
_PIP_REF = re.compile(re.escape(f"git+{HOME_REPO}") + r"@([^\s\"'`]+)")
_YAML = re.compile(r"```yaml\n(.*?)```", re.S)
_REPO = re.compile(r"-\s+repo:\s*(\S+)\s*\n\s+rev:\s*(\S+)")


class Ref(NamedTuple):
    doc: str
    ref: str
    hooks: Tuple[str, ...]  # the hook ids a pre-commit snippet uses; () for a pip install


def precommit_snippets() -> List[Tuple[str, str]]:
    """(doc name, block) of every `.pre-commit-config.yaml` snippet, as written."""
    return [(doc.name, block) for doc in DOCS for block in _YAML.findall(doc.read_text(encoding="utf-8"))
            if "repos:" in block]


def snippet_rev(block: str) -> Optional[str]:
    """The `rev:` the snippet gives this repository."""
    revs = [rev for repo, rev in _REPO.findall(block) if repo == HOME_REPO]
    return revs[0] if len(revs) == 1 else None


def documented_refs() -> List[Ref]:
    out = []
    for name, block in precommit_snippets():
        for repo, rev in _REPO.findall(block):
            if repo == HOME_REPO:
                out.append(Ref(name, rev, tuple(re.findall(r"-\s+id:\s*([\w-]+)", block))))
    for doc in DOCS:
        for ref in _PIP_REF.findall(doc.read_text(encoding="utf-8")):
            out.append(Ref(doc.name, ref, ()))
    return out


def _git(*args: str, root: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)


def missing_ref(ref: str, root: Path = ROOT) -> Optional[str]:
    """None when `ref` is a commit in the history of the checkout's HEAD; else why not, in
    words that say whether the ref is wrong or the checkout cannot tell."""
    if shutil.which("git") is None:
        return "git is not installed: cannot check that the documented commits exist"
    top = _git("rev-parse", "--show-toplevel", root=root)
    if top.returncode != 0:
        return (f"{root} is not a git checkout (an unpacked archive?): cannot check that the "
                "documented commits exist; run the tests in a clone of the repository")
    shallow = _git("rev-parse", "--is-shallow-repository", root=root).stdout.strip() == "true"
    found = _git("cat-file", "-e", f"{ref}^{{commit}}", root=root).returncode == 0
    if found and _git("merge-base", "--is-ancestor", ref, "HEAD", root=root).returncode == 0:
        return None
    if shallow:
        return (f"this clone is shallow: {ref} is not in the history it holds, so the test cannot "
                "tell whether the docs name a real commit; `git fetch --unshallow` and run it again")
    if not found:
        return f"{ref} is not a commit of this repository"
    return f"{ref} is a commit, but not one of the history of HEAD (main)"


def hooks_at(ref: str) -> List[str]:
    """The hook ids .pre-commit-hooks.yaml declares at that commit."""
    text = _git("show", f"{ref}:.pre-commit-hooks.yaml").stdout
    return re.findall(r"^- id:\s*([\w-]+)", text, re.M)
