"""docs/integrations.md and docs/editors.md: the snippets name hooks, formats and options
that exist, so copying them works."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml

from ckptlint.cli.main import build_parser
from tests.helpers import ROOT

INTEGRATIONS = (ROOT / "docs/integrations.md").read_text(encoding="utf-8")
EDITORS = (ROOT / "docs/editors.md").read_text(encoding="utf-8")


def _blocks(text, lang):
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def _commands(text):
    """Every `ckptlint ...` command line in the docs' code blocks."""
    out = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        for line in block.splitlines():
            m = re.search(r"(?:^|run: |- |\$ )(ckptlint (?:check|rule|verify)\b[^>#]*)", line)
            if m:
                out.append(m.group(1).strip())
    return out


def test_pre_commit_snippet_uses_the_manifest_ids():
    manifest = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    ids = {h["id"] for h in manifest}
    assert ids == {"ckptlint", "ckptlint-verify"}
    config = next(yaml.safe_load(b) for b in _blocks(INTEGRATIONS, "yaml") if "repos:" in b)
    used = {h["id"] for repo in config["repos"] for h in repo["hooks"]}
    assert used <= ids and "ckptlint" in used


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_docs_show_only_hook_usage_and_name_the_shipped_hooks():
    """.pre-commit-hooks.yaml is the one definition: the docs' snippets only use its ids, at
    a full commit id (test_doc_refs.py: one of main), and what the prose says a hook runs is
    its `entry`."""
    from tests.doc_refs import COMMIT

    manifest = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    said = 0
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for block in _blocks(text, "yaml"):
            if "repos:" not in block:
                assert "entry:" not in block and "language:" not in block, f"{doc.name} defines a hook"
                continue
            for repo in yaml.safe_load(block)["repos"]:
                assert COMMIT.fullmatch(repo["rev"]), doc.name
                for hook in repo["hooks"]:
                    assert set(hook) <= {"id", "args", "additional_dependencies"}, (doc.name, hook)
                    assert hook["id"] in manifest, (doc.name, hook["id"])
        # "`ckptlint-verify` runs `ckptlint verify --pre-commit`", "hook (...) runs\n`...`"
        for hook_id, entry in re.findall(r"`([\w-]+)`(?: hook)?(?: \([^)]*\))?\s+runs\s+`(ckptlint [^`]*)`", text):
            assert hook_id in manifest, (doc.name, hook_id)
            assert entry == manifest[hook_id]["entry"], (doc.name, hook_id, entry)
            said += 1
    assert said >= 3  # integrations.md (both hooks) and runtime.md


def test_workflow_snippets_are_valid_yaml():
    docs = [yaml.safe_load(b) for b in _blocks(INTEGRATIONS, "yaml")]
    workflow = next(d for d in docs if "jobs" in d)
    steps = workflow["jobs"]["ckptlint"]["steps"]
    assert any("upload-sarif" in s.get("uses", "") for s in steps)
    assert workflow["permissions"]["security-events"] == "write"


@pytest.mark.parametrize("command", _commands(INTEGRATIONS))
def test_documented_commands_parse(command):
    argv = shlex.split(command)[1:]
    if argv[0] == "verify":
        return  # the runtime phase parses its own options
    build_parser().parse_args(argv)  # exits (SystemExit) on an unknown option or format


def test_there_are_documented_commands():
    formats = {c.split("--output-format ")[1].split()[0] for c in _commands(INTEGRATIONS) if "--output-format" in c}
    assert {"sarif", "github", "gitlab"} <= formats


def test_editor_docs_cover_the_clients_and_start_the_server():
    for name in ("VS Code", "Neovim 0.11", "Neovim 0.8", "Helix", "eglot"):
        assert name in EDITORS
    assert EDITORS.count('"server"') >= 4
    assert "source.fixAll.ckptlint" in EDITORS
