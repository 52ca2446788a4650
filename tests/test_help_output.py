"""Every finding is a headline (at most 100 characters) and a help text: each output format
shows both the way its readers look for them (shared OUTPUT.md)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest

from ckptlint.diagnostic import HEADLINE, Diagnostic, Location, fit_headline
from ckptlint.output import Report
from ckptlint.output import full as full_format
from tests.helpers import run_cli, run_json

SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"
TRAIN = "import torch\n\nsd = torch.load('m.pt')\nckpt = torch.load('c.pt', map_location='cpu', weights_only=False)\n"


@pytest.fixture
def project(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "train.py").write_text(TRAIN, encoding="utf-8")
    return tmp_path


def _json(project):
    _, data = run_json("check", "train.py", cwd=project)
    assert [d["code"] for d in data] == ["CKPT002", "CKPT004", "CKPT003"]
    return data


def test_json_has_a_short_message_and_the_help(project):
    for d in _json(project):
        assert len(d["message"]) <= HEADLINE and d["help"] and d["help"] != d["message"]
    ckpt002 = _json(project)[0]
    assert ckpt002["message"] == "`torch.load` without `weights_only=`: a file can run code on torch < 2.6"
    assert "before torch 2.6 it means `weights_only=False`" in ckpt002["help"]
    assert ckpt002["help"].endswith("pass `weights_only=True`")


def test_json_lines_carry_the_help_too(project):
    proc = run_cli("check", "--output-format", "json-lines", "train.py", cwd=project)
    assert [json.loads(x)["help"] for x in proc.stdout.splitlines()] == [d["help"] for d in _json(project)]


def test_sarif_message_leads_with_the_headline_and_validates(project):
    proc = run_cli("check", "--output-format", "sarif", "train.py", cwd=project)
    sarif = json.loads(proc.stdout)
    jsonschema.validate(sarif, json.loads(SCHEMA.read_text()))
    by_rule = {d["code"]: d for d in _json(project)}
    run = sarif["runs"][0]
    for result in run["results"]:
        d = by_rule[result["ruleId"]]
        # the first sentence is the headline (SARIF viewers and GitHub show it where space is short)
        assert result["message"]["text"] == f"{d['message']}. {d['help']}"
        assert result["message"]["markdown"] == f"{d['message']}\n\n{d['help']}"
    # the rule's whole explanation stays in the rule's help
    rule = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "CKPT002")
    assert "## Why is this bad?" in rule["help"]["markdown"]


def test_github_annotation_is_the_headline_then_the_help(project):
    proc = run_cli("check", "--output-format", "github", "train.py", cwd=project)
    first = proc.stdout.splitlines()[0]
    body = first.split("::", 2)[2].replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")
    d = _json(project)[0]
    assert body == f"CKPT002 {d['message']}\n\n{d['help']}"


def test_gitlab_issue_content_is_the_help(project):
    proc = run_cli("check", "--output-format", "gitlab", "train.py", cwd=project)
    issues = json.loads(proc.stdout)
    assert [i["description"] for i in issues] == [f"{d['code']} {d['message']}" for d in _json(project)]
    assert [i["content"]["body"] for i in issues] == [d["help"] for d in _json(project)]


def test_text_shows_headlines_and_says_where_the_help_is(project):
    proc = run_cli("check", "train.py", cwd=project)
    lines = proc.stdout.splitlines()
    assert lines[0] == "train.py:3:6: CKPT002 `torch.load` without `weights_only=`: a file can run code on torch < 2.6"
    assert not any("before torch 2.6 it means" in line for line in lines)
    assert lines[-1] == "Each finding's why and how: `--output-format full`."


def test_full_shows_the_source_line_the_help_and_the_fix(project):
    proc = run_cli("check", "--output-format", "full", "train.py", cwd=project)
    assert proc.returncode == 1
    block = proc.stdout.split("\n\n")[0].splitlines()
    assert block[:5] == [
        "train.py:3:6: CKPT002 `torch.load` without `weights_only=`: a file can run code on torch < 2.6",
        "  |",
        "3 | sd = torch.load('m.pt')",
        "  |      ^^^^^^^^^^^^^^^^^^ CKPT002",
        "  |",
    ]
    help_lines = [line for line in block[5:] if not line.startswith("  = fix:")]
    assert help_lines[0].startswith("  = help: Without it, before torch 2.6")
    assert all(len(line) <= 100 for line in help_lines)
    assert " ".join(line.strip() for line in help_lines)[len("= help: "):] == _json(project)[0]["help"]
    assert block[-1] == "  = fix: Add `weights_only=True` (unsafe: `--fix --unsafe-fixes`)"
    assert "Each finding's why and how" not in proc.stdout  # it is shown already
    assert proc.stdout.rstrip().endswith("hidden fixes can be enabled with the `--unsafe-fixes` option).")


def test_full_in_a_notebook_shows_the_cell_line(tmp_path):
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# title\n"]},
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
         "source": ["import torch\n", "%matplotlib inline\n", "sd = torch.load('m.pt', map_location='cpu')\n"]},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "nb.ipynb").write_text(json.dumps(nb, indent=1), encoding="utf-8")
    proc = run_cli("check", "--output-format", "full", "nb.ipynb", cwd=tmp_path)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("nb.ipynb:cell 2:3:6: CKPT002 ")
    assert lines[2] == "3 | sd = torch.load('m.pt', map_location='cpu')"


def test_full_without_a_position_shows_headline_and_help(tmp_path):
    d = Diagnostic("CKPT101", "unsafe-pickled-global", "`m.pt` names `posix.system`", str(tmp_path / "m.pt"),
                   help="Loading it runs that function; re-save it as a state dict", is_runtime=True)
    out = full_format.render([d], Report(cwd=tmp_path, quiet=True))
    assert out == ("m.pt: CKPT101 `m.pt` names `posix.system`\n"
                   "  = help: Loading it runs that function; re-save it as a state dict\n")


def test_a_long_message_is_cut_and_kept_whole_in_the_help():
    long = "a plugin's finding " + "that says a great deal " * 8
    headline, help = fit_headline(long, "and how to fix it")
    assert len(headline) <= HEADLINE and headline.endswith("…") and " " + headline[:-1] in " " + long
    assert help == f"{long}\n\nand how to fix it"
    assert fit_headline("short", None) == ("short", None)


def test_the_help_survives_the_cache(project):
    """A second run reads the findings from the cache: the help must come back whole."""
    past = time.time_ns() - 100 * 10**9  # old enough to be cached (fresh files are not)
    os.utime(project / "train.py", ns=(past, past))
    first = _json(project)
    assert list((project / ".ckptlint_cache").rglob("*.json"))
    assert _json(project) == first
