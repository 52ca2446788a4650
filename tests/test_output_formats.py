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
        assert "helpUri" not in r  # no web home: the rule's full text is in `help`
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


def test_links_go_to_the_web_home_only(monkeypatch, tmp_path):
    """Without a web home, JSON's `url` is null and SARIF has no `helpUri` (the rule's text is
    embedded in `help`); with one (diagnostic.WEB_HOME), both link to its page there."""
    from ckptlint import diagnostic
    from ckptlint.output import sarif

    rule = Diagnostic("CKPT002", "load-without-weights-only", "m", str(tmp_path / "a.py"), Location(1, 1))
    error = Diagnostic("E999", "syntax-error", "m", str(tmp_path / "b.py"), Location(1, 1))

    def descriptors():
        run = json.loads(sarif.render([rule, error], Report(cwd=tmp_path)))["runs"][0]
        return {r["id"]: r for r in run["tool"]["driver"]["rules"]}

    found = descriptors()
    assert rule.to_json()["url"] is None and error.to_json()["url"] is None
    assert "helpUri" not in found["CKPT002"] and "helpUri" not in found["E999"]
    assert "## Why is this bad?" in found["CKPT002"]["help"]["markdown"]
    assert "The file is not valid Python" in found["E999"]["help"]["text"]  # docs/errors.md's row
    assert rule.local_url.startswith("file:///") and rule.local_url.endswith("/rules/CKPT002.md")

    monkeypatch.setattr(diagnostic, "WEB_HOME", "https://ckptlint.example/docs/")
    found = descriptors()
    assert rule.to_json()["url"] == found["CKPT002"]["helpUri"] == "https://ckptlint.example/docs/rules/CKPT002.md"
    assert error.to_json()["url"] == found["E999"]["helpUri"] == "https://ckptlint.example/docs/errors.md"
    assert rule.local_url == rule.url  # the editor links to the web page too


def _verify_scene(folder: Path) -> None:
    """Checkpoints of every kind verify reports on: a benign one, a hostile pickle, a broken
    one, and an entry whose model cannot be imported."""
    from tests.runtime.handmade import save_zip, small_state

    (folder / "weights").mkdir(parents=True)
    save_zip(small_state(), folder / "weights" / "model.pt")
    command = b"touch ran"
    (folder / "cache.pkl").write_bytes(b"\x80\x02cposix\nsystem\nX" + len(command).to_bytes(4, "little")
                                       + command + b"\x85R.")
    (folder / "weights" / "broken.pt").write_bytes((folder / "weights" / "model.pt").read_bytes()[:300])
    (folder / "pyproject.toml").write_text(
        '[[tool.ckptlint.checkpoints]]\npath = "weights/model.pt"\nmodel = "nowhere.models:build"\n')


@pytest.mark.slow
def test_no_output_carries_a_path_of_this_machine(project, tmp_path_factory):
    """What a run prints names the user's files and nothing of the machine it ran on: not the
    home folder, not the environment ckptlint is installed in, not its site-packages, not the
    checkout it runs from (its docs/ hold the rule pages), no `file:` URI. `filename` in JSON
    stays absolute: that is the user's file (OUTPUT.md)."""
    import os
    import sys

    from ckptlint.output import FORMATS
    from tests.helpers import ROOT

    machine = {str(Path.home()), sys.prefix, os.path.realpath(sys.prefix), str(ROOT), "site-packages"}
    machine |= {Path(m).as_uri() for m in machine if m.startswith("/")} | {"file://"}
    verify_dir = tmp_path_factory.mktemp("verify")
    for where in (project, verify_dir):
        if any(str(where).startswith(m) for m in machine):
            pytest.skip(f"the temporary folders are under {where}: cannot tell the user's paths apart")
    _verify_scene(verify_dir)
    runs = [("check", project, ["check", "."]), ("verify", verify_dir, ["verify", "."]),
            ("verify", verify_dir, ["verify"])]
    seen = set()
    for command, cwd, args in runs:
        for fmt in FORMATS:
            proc = run_cli(*args, "--output-format", fmt, cwd=cwd)
            assert proc.returncode == 1 and "Traceback" not in proc.stderr, (args, fmt, proc.stderr)
            out = proc.stdout
            if fmt in ("json", "json-lines"):  # the user's own file, absolute by contract
                docs = json.loads(out) if fmt == "json" else [json.loads(x) for x in out.splitlines()]
                out = json.dumps([dict(d, filename=os.path.relpath(d["filename"], cwd)) for d in docs])
                seen |= {d["code"] for d in docs}
            leaked = [m for m in machine if m in out]
            assert not leaked, (args, fmt, leaked, out[:3000])
    # the scenes made the kinds of finding they are for
    assert {"CKPT002", "E999", "CKPT101", "CKPT109", "E910"} <= seen, seen
