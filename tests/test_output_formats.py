"""SARIF, GitHub, json-lines and GitLab output: views of the same diagnostics as JSON."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest

from ckptlint.diagnostic import Diagnostic, Edit, Fix, Location
from ckptlint.output import Report
from ckptlint.output import github as github_format
from tests.helpers import run_cli

SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"  # OASIS, see its LICENSE.md

FIXTURE = {
    "pkg/train.py": (
        "import torch\n"
        "x = 'é😀'; sd = torch.load('m.pt')\n"
        "ckpt = torch.load('c.pt', map_location='cpu', weights_only=False)\n"
        "torch.save(sd, 'm.pt', _use_new_zipfile_serialization=False)\n"
    ),
    "pkg/broken.py": "def f(:\ntorch.load(p)\n",
    "pkg/clean.py": "import torch\nsd = torch.load('m.pt', map_location='cpu', weights_only=True)\n",
}


@pytest.fixture
def project(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    for name, text in FIXTURE.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return tmp_path


def _out(project, fmt, *args, cwd=None):
    proc = run_cli("check", "--output-format", fmt, *args, cwd=cwd or project)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout


def test_sarif_validates_and_has_what_code_scanning_reads(project):
    sarif = json.loads(_out(project, "sarif"))
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(sarif, schema)
    assert sarif["version"] == "2.1.0" and sarif["$schema"].startswith("https://")
    run = sarif["runs"][0]
    driver = run["tool"]["driver"]
    assert "ckptlint" in driver["name"] and driver["version"] and driver["informationUri"].startswith("https://")
    rules = driver["rules"]
    ids = [r["id"] for r in rules]
    # every selected rule, not only the ones that fired
    assert {"CKPT002", "CKPT003", "CKPT004", "CKPT008", "CKPT009", "CKPT012"} <= set(ids)
    for r in rules:
        assert r["shortDescription"]["text"] and r["fullDescription"]["text"]
        assert r["helpUri"].startswith("file:///") and r["helpUri"].endswith((f"/{r['id']}.md", "/errors.md"))
        assert r["help"]["text"] and r["help"]["markdown"]
    ckpt002 = rules[ids.index("CKPT002")]
    assert "## Why is this bad?" in ckpt002["help"]["markdown"]
    assert "security" in ckpt002["properties"]["tags"]
    assert isinstance(ckpt002["properties"]["security-severity"], str)
    assert float(ckpt002["properties"]["security-severity"]) > 0
    assert "security-severity" not in rules[ids.index("CKPT009")]["properties"]

    assert run["columnKind"] == "unicodeCodePoints"
    results = run["results"]
    assert {r["ruleId"] for r in results} == {"CKPT002", "CKPT003", "CKPT004", "CKPT009", "E999"}
    for r in results:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
        assert r["message"]["text"]
        uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert ":" not in uri and not uri.startswith("/")
        assert uri in ("pkg/train.py", "pkg/broken.py")
    first = next(r for r in results if r["ruleId"] == "CKPT002")
    region = first["locations"][0]["physicalLocation"]["region"]
    # `x = 'é😀'; sd = ` is 15 code points (16 UTF-16 units): the call starts at column 16
    assert (region["startLine"], region["startColumn"], region["endColumn"]) == (2, 16, 34)
    repl = first["fixes"][0]["artifactChanges"][0]["replacements"][0]
    assert repl["insertedContent"]["text"] == ", weights_only=True"
    assert repl["deletedRegion"]["startColumn"] == repl["deletedRegion"]["endColumn"] == 33
    assert "unsafe" in first["fixes"][0]["description"]["text"]


def test_sarif_paths_are_relative_to_the_repository_root(project):
    sarif = json.loads(_out(project, "sarif", ".", cwd=project / "pkg"))
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in sarif["runs"][0]["results"]}
    assert uris == {"pkg/train.py", "pkg/broken.py"}


def test_sarif_with_no_findings_is_valid(project):
    proc = run_cli("check", "--output-format", "sarif", "pkg/clean.py", cwd=project)
    assert proc.returncode == 0
    sarif = json.loads(proc.stdout)
    jsonschema.validate(sarif, json.loads(SCHEMA.read_text()))
    assert sarif["runs"][0]["results"] == []
    assert sarif["runs"][0]["tool"]["driver"]["rules"]


def test_json_lines_matches_json(project):
    as_json = json.loads(_out(project, "json"))
    lines = _out(project, "json-lines").splitlines()
    assert [json.loads(x) for x in lines] == as_json


@pytest.mark.slow
def test_gitlab_code_quality(project):
    issues = json.loads(_out(project, "gitlab"))
    assert len(issues) == len(json.loads(_out(project, "json")))
    fingerprints = [i["fingerprint"] for i in issues]
    assert len(set(fingerprints)) == len(fingerprints)
    for i in issues:
        assert i["severity"] in ("info", "minor", "major", "critical", "blocker")
        assert i["location"]["path"] in ("pkg/train.py", "pkg/broken.py")
        assert i["check_name"] in i["description"]
    assert next(i for i in issues if i["check_name"] == "CKPT003")["severity"] == "critical"
    # a finding's fingerprint does not change when lines are added above it
    train = project / "pkg/train.py"
    train.write_text("# a comment\n\n" + train.read_text(encoding="utf-8"), encoding="utf-8")
    assert {i["fingerprint"] for i in json.loads(_out(project, "gitlab"))} == set(fingerprints)


def test_github_lines_follow_the_contract(project):
    out = _out(project, "github")
    as_json = json.loads(_out(project, "json"))
    lines = out.splitlines()
    assert len(lines) == len(as_json)
    for line, d in zip(lines, as_json):
        assert line.startswith(("::error ", "::warning ", "::notice "))
        props, msg = line[len("::error "):].split("::", 1)
        fields = dict(p.split("=", 1) for p in props.split(","))
        assert fields["line"] == str(d["location"]["row"]) and fields["col"] == str(d["location"]["column"])
        assert fields["title"] == f"ckptlint ({d['code']})"
        assert d["code"] in msg


GOLDEN = (
    "::error file=odd%2Cname%3Av2.py,line=3,endLine=4,col=7,endColumn=2,title=ckptlint (CKPT002)"
    "::CKPT002 100%25 unsafe:%0Atwo lines, and a CR%0D\n"
    "::warning file=x.py,title=ckptlint (CKPT999)::CKPT999 no position\n"
)


def test_github_golden_escaping(tmp_path):
    diags = [
        Diagnostic("CKPT002", "load-without-weights-only", "100% unsafe:\ntwo lines, and a CR\r",
                   str(tmp_path / "odd,name:v2.py"), Location(3, 7), Location(4, 2)),
        Diagnostic("CKPT999", "made-up", "no position", str(tmp_path / "x.py"), severity="warning"),
    ]
    assert github_format.render(diags, Report(cwd=tmp_path)) == GOLDEN


def test_github_escapes_a_real_file_name(project):
    (project / "a,b:c.py").write_text("import torch\ntorch.load('m.pt')\n")
    out = _out(project, "github", "a,b:c.py")
    assert out.startswith("::error file=a%2Cb%3Ac.py,line=2,endLine=2,col=1,")


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["json", "json-lines", "sarif", "github", "gitlab"])
def test_machine_formats_keep_stdout_clean(project, fmt):
    proc = run_cli("check", "--output-format", fmt, "--fix", "--show-fixes", "--statistics", cwd=project)
    assert proc.returncode == 1
    if fmt == "github":
        assert all(line.startswith("::") for line in proc.stdout.splitlines())
    elif fmt == "json-lines":
        assert all(json.loads(line) for line in proc.stdout.splitlines())
    else:
        json.loads(proc.stdout)  # one document: a summary or progress line would break it
    assert proc.stdout.strip()


def test_fix_still_applies_with_a_machine_format(project):
    proc = run_cli("check", "--output-format", "sarif", "--fix", cwd=project)
    assert "_use_new_zipfile_serialization" not in (project / "pkg/train.py").read_text(encoding="utf-8")
    assert "CKPT009" not in {r["ruleId"] for r in json.loads(proc.stdout)["runs"][0]["results"]}


def test_unknown_format_is_a_usage_error(project):
    proc = run_cli("check", "--output-format", "xml", cwd=project)
    assert proc.returncode == 2 and proc.stdout == ""
