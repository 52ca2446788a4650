"""Third-party rules through the `ckptlint.rules` entry point group: tests/plugins/ is a plugin
package; "installing" it writes the .dist-info that pip writes (its entry points from its
pyproject.toml) on a sys.path folder, and ckptlint, run as users run it, finds its rule."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, run_cli, settings

PLUGIN = ROOT / "tests" / "plugins"
BAD = "import torch\ntorch.save(model.state_dict(), '/tmp/model.pt')\n"

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")


def install(site: Path, entry_points=None) -> str:
    """The plugin's dist-info in `site`; returns a PYTHONPATH with this ckptlint, the dist-info
    and the plugin's package on it."""
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    points = entry_points if entry_points is not None else project["entry-points"]["ckptlint.rules"]
    info = site / f"ckptlint_example_plugin-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    (info / "entry_points.txt").write_text(
        "[ckptlint.rules]\n" + "".join(f"{k} = {v}\n" for k, v in points.items()))
    return os.pathsep.join(map(str, (ROOT, site, PLUGIN)))


@pytest.mark.slow
def test_an_installed_plugin_rule_runs_like_a_built_in_one(tmp_path):
    path = install(tmp_path / "site")
    (tmp_path / "train.py").write_text(BAD)
    proc = run_cli("check", "train.py", "--output-format", "json", cwd=tmp_path, PYTHONPATH=path)
    found = {d["code"]: d for d in json.loads(proc.stdout)}
    assert proc.returncode == 1, proc.stderr
    assert "CKPT001" not in found and "EXA001" in found  # its own rule, beside ckptlint's
    assert found["EXA001"]["name"] == "save-under-tmp"
    assert found["EXA001"]["url"] == "https://example.invalid/ckptlint-example-plugin/EXA001"
    assert found["EXA001"]["location"] == {"row": 2, "column": 1}
    # selection and suppression treat it as any rule
    quiet = run_cli("check", "train.py", "--ignore", "EXA", "--output-format", "json", cwd=tmp_path, PYTHONPATH=path)
    assert "EXA001" not in {d["code"] for d in json.loads(quiet.stdout)}
    (tmp_path / "noqa.py").write_text(BAD.replace("'/tmp/model.pt')", "'/tmp/model.pt')  # noqa: EXA001"))
    proc = run_cli("check", "noqa.py", "--select", "EXA001", cwd=tmp_path, PYTHONPATH=path)
    assert proc.returncode == 0, proc.stdout
    # and it documents itself
    doc = run_cli("rule", "EXA001", cwd=tmp_path, PYTHONPATH=path)
    assert doc.returncode == 0 and "# save-under-tmp (EXA001)" in doc.stdout and "## Why is this bad?" in doc.stdout
    assert "EXA001" in run_cli("rule", "--all", cwd=tmp_path, PYTHONPATH=path).stdout


def test_without_the_plugin_installed_its_rule_is_unknown(tmp_path):
    (tmp_path / "train.py").write_text(BAD)
    proc = run_cli("check", "train.py", "--output-format", "json", cwd=tmp_path,
                   PYTHONPATH=os.pathsep.join(map(str, (ROOT, PLUGIN))))
    assert "EXA001" not in {d["code"] for d in json.loads(proc.stdout)}
    assert run_cli("rule", "EXA001", cwd=tmp_path).returncode == 2


@pytest.mark.parametrize("points,says", [
    ({"broken": "no_such_module_anywhere"}, "cannot be loaded: ModuleNotFoundError"),
    ({"clash": "clashing_plugin"}, "is already taken by ckptlint.rules.ckpt001_whole_model_save"),
])
def test_a_broken_plugin_stops_the_run_with_one_line(tmp_path, points, says):
    site = tmp_path / "site"
    path = install(site, points)
    (site / "clashing_plugin.py").write_text(
        "from ckptlint.rules import Rule\n\nclass Mine(Rule):\n    code, name, summary = 'CKPT001', 'mine', 'mine'\n")
    (tmp_path / "train.py").write_text(BAD)
    proc = run_cli("check", "train.py", cwd=tmp_path, PYTHONPATH=path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("ckptlint: error: the rule plugin") and says in proc.stderr, proc.stderr


def test_the_plugin_rules_own_examples():
    """A plugin rule's examples hold through the same engine as a built-in rule's."""
    sys.path.insert(0, str(PLUGIN))
    try:
        from ckptlint_example_plugin import SaveUnderTmp
    finally:
        sys.path.remove(str(PLUGIN))
    from ckptlint.engine.lint import lint

    def configured(example):  # rule-options as the config gives them (validated end to end below)
        s = settings()
        s.rule_options = (example.config or {}).get("rule-options", {})
        return s

    for example in SaveUnderTmp.valid:
        assert lint(example.source, configured(example), rules=[SaveUnderTmp()]).diagnostics == []
    for example in SaveUnderTmp.invalid:
        found = lint(example.source, configured(example), rules=[SaveUnderTmp()]).diagnostics
        assert [d.code for d in found] == ["EXA001"] * example.count
        assert example.message_contains is None or example.message_contains in found[0].message


@pytest.mark.slow
def test_a_plugin_rule_reads_its_options_from_the_config(tmp_path):
    """`[tool.ckptlint.rule-options.EXA001]` reaches the plugin's rule as `ctx.options`, is
    checked against what the rule declares (a mistake is a config error naming the key), and
    the rule's page documents it."""
    path = install(tmp_path / "site")
    (tmp_path / "train.py").write_text(BAD + "torch.save(model.state_dict(), '/tmp/cache/model.pt')\n")

    def run(options):
        (tmp_path / "pyproject.toml").write_text(f"[tool.ckptlint.rule-options.EXA001]\n{options}")
        return run_cli("check", "train.py", "--select", "EXA001", "--output-format", "json", cwd=tmp_path,
                       PYTHONPATH=path)

    rows = lambda proc: [d["location"]["row"] for d in json.loads(proc.stdout)]  # noqa: E731
    assert rows(run("")) == [2, 3]  # the default: none allowed
    assert rows(run("allowed-prefixes = ['/tmp/cache/']\n")) == [2]
    wrong = run("allowed-prefixes = '/tmp/cache/'\n")
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert "`rule-options.EXA001.allowed-prefixes`: must be a list of strings, got str" in wrong.stderr
    unknown = run("allowed = ['/tmp/cache/']\n")
    assert unknown.returncode == 2
    assert "`rule-options.EXA001.allowed`: EXA001 has no option `allowed` (its options: `allowed-prefixes`)" \
        in unknown.stderr
    page = run_cli("rule", "EXA001", cwd=tmp_path, PYTHONPATH=path).stdout
    assert "## Options" in page and "- `allowed-prefixes` (a list of strings, default `[]`): Folders under" in page
    assert "[tool.ckptlint.rule-options.EXA001]\nallowed-prefixes = []" in page
    listed = json.loads(run_cli("rule", "EXA001", "--output-format", "json", cwd=tmp_path, PYTHONPATH=path).stdout)
    option = listed["options"]["allowed-prefixes"]
    assert option["type"] == "a list of strings" and option["default"] == [] and option["doc"].startswith("Folders")
