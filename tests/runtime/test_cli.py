"""The verify command line: exit codes, JSON/text output, configuration, no torch import."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from ckptlint.errors import ConfigError
from ckptlint.verify import parse_entries

from tests.helpers import HANG
from ._util import REPO, cli_env, run_cli, run_json

MODELS = textwrap.dedent('''
    import torch.nn as nn
    print("model module imported")  # user code that prints must not break JSON output


    def build(n=3):
        return nn.Linear(4, n)


    def broken():
        raise RuntimeError("factory exploded")
''')


@pytest.fixture
def proj(tmp_path, torch):
    pkg = tmp_path / "cliproj"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text(MODELS)
    (tmp_path / "weights").mkdir()
    torch.manual_seed(0)
    torch.save(torch.nn.Linear(4, 3).state_dict(), tmp_path / "weights" / "good.pt")
    torch.save(torch.nn.DataParallel(torch.nn.Linear(4, 3)).state_dict(), tmp_path / "weights" / "dp.pt")
    return tmp_path


def write_toml(root, body):
    (root / "pyproject.toml").write_text(textwrap.dedent(body))


@pytest.mark.slow
def test_clean_project_exits_0(proj):
    write_toml(proj, '''
        [[tool.ckptlint.checkpoints]]
        path = "weights/good.pt"
        model = "cliproj.models:build"
        kwargs = { n = 3 }
    ''')
    proc = run_cli(cwd=proj)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "All checks passed!" in proc.stdout


@pytest.mark.slow
def test_findings_text_json_and_exit_zero(proj):
    write_toml(proj, '''
        [project]
        dependencies = ["torch>=2.0"]

        [[tool.ckptlint.checkpoints]]
        path = "weights/*.pt"
        model = "cliproj.models:build"

        [[tool.ckptlint.checkpoints]]
        path = "weights/missing.pt"
        model = "cliproj.models:build"

        [[tool.ckptlint.checkpoints]]
        path = "weights/good.pt"
        model = "cliproj.models:broken"
    ''')
    sub = proj / "weights"  # pyproject.toml is found from a subfolder
    text = run_cli(cwd=sub)
    assert text.returncode == 1
    assert "Traceback" not in text.stdout + text.stderr
    lines = text.stdout.splitlines()
    assert any(line.startswith("dp.pt: CKPT107") and "`module.`" in line for line in lines)
    assert any(line.startswith("missing.pt: CKPT109") for line in lines)
    assert any("E910" in line and "factory exploded" in line for line in lines)
    assert lines[-2:] == ["Found 3 errors.", "Each finding's why and how: `--output-format full`."]
    assert "model module imported" not in text.stdout

    proc, data = run_json(cwd=sub)
    assert proc.returncode == 1
    assert [d["code"] for d in data] == ["E910", "CKPT107", "CKPT109"]
    for d in data:
        assert set(d) >= {"code", "name", "message", "filename", "location", "end_location", "fix", "url", "key"}
        assert d["filename"].startswith("/") and d["location"] is None and d["fix"] is None
    assert data[1]["filename"] == str(proj / "weights" / "dp.pt") and data[1]["key"] is None

    zero = run_cli("--exit-zero", cwd=sub)
    assert zero.returncode == 0 and "Found 3 errors." in zero.stdout


@pytest.mark.slow
def test_config_option_and_notes_on_stderr(proj, tmp_path_factory, torch):
    torch.save({"model_state_dict": torch.nn.Linear(4, 3).state_dict(), "epoch": 2},
               proj / "weights" / "wrapped.pt")
    cfg = proj / "ckpt.toml"
    cfg.write_text(textwrap.dedent('''
        [[tool.ckptlint.checkpoints]]
        path = "weights/wrapped.pt"
        model = "cliproj.models:build"
    '''))
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    proc = run_cli("--config", cfg, cwd=elsewhere)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "auto-detected state dict key `model_state_dict`" in proc.stderr
    assert "auto-detected" not in proc.stdout
    proc, data = run_json("--config", cfg, cwd=elsewhere)
    assert data == [] and proc.returncode == 0
    missing = run_cli("--config", proj / "nope.toml", cwd=elsewhere)
    assert missing.returncode == 2 and "nope.toml" in missing.stderr


@pytest.mark.slow
def test_verify_files_from_any_directory_ignores_entries(proj, tmp_path_factory):
    write_toml(proj, '''
        [[tool.ckptlint.checkpoints]]
        path = "weights/missing.pt"
    ''')
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    proc, data = run_json(proj / "weights" / "good.pt", proj / "weights" / "dp.pt", cwd=elsewhere)
    assert proc.returncode == 0 and data == []  # no model: prefixes are not a file-level finding
    empty = elsewhere / "empty.pt"
    empty.write_bytes(b"")
    proc, data = run_json("empty.pt", cwd=elsewhere)
    assert proc.returncode == 1
    assert [(d["code"], d["filename"]) for d in data] == [("CKPT109", str(empty))]


def test_verify_a_folder_checks_the_checkpoints_below_it(tmp_path, torch):
    """`ckptlint verify DIR` walks it like `check` walks sources: checkpoint suffixes only,
    hidden folders skipped; a folder with none is one CKPT109, not silence."""
    runs = tmp_path / "runs"
    (runs / "epoch1").mkdir(parents=True)
    (runs / ".trash").mkdir()
    torch.save(torch.nn.Linear(2, 2).state_dict(), runs / "best.pth")
    torch.save(torch.nn.Linear(2, 2), runs / "epoch1" / "full.pt")  # a whole-model pickle
    torch.save(torch.nn.Linear(2, 2), runs / ".trash" / "old.pt")  # hidden: not looked at
    (runs / "notes.txt").write_text("not a checkpoint")
    (tmp_path / "empty").mkdir()
    proc, data = run_json("runs", "empty", cwd=tmp_path)
    assert proc.returncode == 1
    found = sorted((d["code"], pathlib.Path(d["filename"]).relative_to(tmp_path).as_posix()) for d in data)
    assert found == [("CKPT101", "runs/epoch1/full.pt"), ("CKPT102", "runs/epoch1/full.pt"), ("CKPT109", "empty")]


@pytest.mark.slow
@pytest.mark.parametrize(
    "body, key",
    [
        ('[[tool.ckptlint.checkpoints]]\npath = "a.pt"\nmodle = "x:y"\n', "checkpoints.modle"),
        ('[[tool.ckptlint.checkpoints]]\npath = 3\n', "checkpoints.path"),
        ('[[tool.ckptlint.checkpoints]]\npath = "a.pt"\nmodel = "x:y"\nkwargs = 3\n', "checkpoints.kwargs"),
        ('[[tool.ckptlint.checkpoints]]\npath = "a.pt"\nstrict = "no"\n', "checkpoints.strict"),
        ('[[tool.ckptlint.checkpoints]]\nmodel = "x:y"\n', "checkpoints.path"),
        ('[tool.ckptlint]\ncheckpoints = "a.pt"\n', "checkpoints"),
    ],
)
def test_bad_configuration_exits_2_naming_the_key(tmp_path, body, key):
    """Wherever the config is read: bare `verify` (which uses the entries), `verify FILE` and
    `check` (which do not) all stop on it, as they do on any other broken setting."""
    from tests.helpers import run_cli as run_ckptlint

    (tmp_path / "pyproject.toml").write_text(body)
    (tmp_path / "a.pt").write_bytes(b"\x80\x02}q\x00.")  # an empty dict, pickled
    (tmp_path / "train.py").write_text("import torch\nsd = torch.load(path)\n")
    runs = [run_cli(*extra, cwd=tmp_path) for extra in ([], ["--exit-zero"], ["--output-format", "json"])]
    runs += [run_cli("a.pt", cwd=tmp_path), run_ckptlint("check", ".", cwd=tmp_path),
             run_ckptlint("check", "train.py", "--exit-zero", cwd=tmp_path)]
    for proc in runs:
        assert proc.returncode == 2, (proc.args, proc.stdout, proc.stderr)
        assert f"`{key}`" in proc.stderr and "pyproject.toml" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout


NOT_CHECKPOINTS = {
    "train.py": ("import torch\nx = torch.load('m.pt')\n", "Python source"),
    "model.py": ("class Net:\n    pass\n", "Python source"),
    "run": ("#!/usr/bin/env python3\nimport os\n", "Python source"),
    "config.json": ('{"lr": 0.1, "layers": [1, 2]}\n', "JSON"),
    "notes.txt": ("hello world\n", "text"),
    "README.md": ("# Weights\n\nSee below.\n", "text"),
}


def test_verify_on_files_that_are_no_checkpoint_says_what_they_are(tmp_path):
    """One CKPT109 per file, naming what it holds, and nothing read from it as if it were a
    pickle (`import torch` read as one names a module `mport torch`: no import names made up)."""
    for name, (text, _) in NOT_CHECKPOINTS.items():
        (tmp_path / name).write_text(text)
    proc, diags = run_json(*NOT_CHECKPOINTS, cwd=tmp_path)
    assert proc.returncode == 1
    said = {os.path.basename(d["filename"]): (d["code"], d["message"]) for d in diags}
    assert len(diags) == len(said) == len(NOT_CHECKPOINTS), diags
    for name, (_, kind) in NOT_CHECKPOINTS.items():
        assert said[name] == ("CKPT109", f"unreadable checkpoint: not a checkpoint ({kind})"), said[name]


def test_text_that_a_loader_would_import_from_stays_a_pickle_finding(tmp_path):
    """`click\nrequests` is also a protocol 0 pickle that imports a module named `lick`: a
    loader would try it, so it is not waved through as text."""
    (tmp_path / "requirements.txt").write_text("click\nrequests\n")
    _, diags = run_json("requirements.txt", cwd=tmp_path)
    assert "CKPT101" in [d["code"] for d in diags] and "`lick.requests`" in diags[0]["message"]


def test_parse_entries_api(tmp_path):
    cfg = tmp_path / "pyproject.toml"
    entries = parse_entries([{"path": "w/*.pt", "model": "a.b:c", "kwargs": {"n": 1}, "key": "ema",
                              "strict": False, "safe-globals": ["a.B"]}], cfg)
    (e,) = entries
    assert (e.path, e.model, e.kwargs, e.key, e.strict, e.safe_globals) == (
        "w/*.pt", "a.b:c", {"n": 1}, "ema", False, ["a.B"])
    with pytest.raises(ConfigError) as info:
        parse_entries([{"path": "x", "safe-globals": [1]}], cfg)
    assert info.value.key == "checkpoints.safe-globals"
    with pytest.raises(ConfigError):
        parse_entries([{"path": "x", "model": "not a spec"}], cfg)
    assert parse_entries(None, cfg) == []


def test_run_takes_the_arguments_after_the_command_word(tmp_path, capsys, monkeypatch):
    from ckptlint.cli.verify import run

    p = tmp_path / "empty.pt"
    p.write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert run([str(p), "--output-format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [(d["code"], d["filename"]) for d in data] == [("CKPT109", str(p))]
    assert run([str(p), "--exit-zero"]) == 0


def test_usage_error_exits_2(tmp_path):
    proc = run_cli("--output-format", "xml", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_torch_version_inferred_from_dependencies(tmp_path, torch):
    torch.save({"torch_version": "2.4.0", "sd": torch.nn.Linear(1, 1).state_dict()}, tmp_path / "w.pt")
    (tmp_path / "pyproject.toml").write_text('[project]\ndependencies = ["numpy", "torch>=2.1,<3"]\n')
    proc, data = run_json("w.pt", cwd=tmp_path)
    assert [d["code"] for d in data] == ["CKPT111"] and "2.1" in data[0]["message"]
    (tmp_path / "pyproject.toml").write_text('[tool.ckptlint]\ntorch-version = "2.4"\n')
    assert run_json("w.pt", cwd=tmp_path)[1] == []


NO_TORCH = r"""
import sys, json, pathlib
sys.path.insert(0, sys.argv[1])
block = "--block" in sys.argv
if block:  # behave as if torch were not installed
    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("No module named 'torch'")
    sys.meta_path.insert(0, Blocker())
import ckptlint.reader.reader, ckptlint.reader.pickle_scan  # noqa
import ckptlint.reader.allowlist, ckptlint.verify.check  # noqa
after_import = "torch" in sys.modules
from ckptlint.verify import verify, parse_entries
diags, _ = verify([], [sys.argv[2]], root=pathlib.Path("."), torch_version=None, safe_globals=[])
entries = parse_entries([{"path": sys.argv[3], "model": "x.y:z"}], pathlib.Path("pyproject.toml"))
with_model = verify(entries, [], root=pathlib.Path("."), torch_version=None, safe_globals=[])[0] if block else []
print(json.dumps({"after_import": after_import, "after_verify": "torch" in sys.modules,
                  "codes": [d.code for d in diags], "model": [d.message for d in with_model]}))
"""


@pytest.mark.parametrize("block", [False, True])
def test_reader_and_verify_file_do_not_import_torch(tmp_path, torch, monkeypatch, block):
    import torch.serialization as ser

    monkeypatch.setattr(ser, "location_tag", lambda storage: "cuda:0")
    p = tmp_path / "w.pt"
    torch.save(torch.nn.Linear(2, 2), p)
    monkeypatch.undo()
    sd = tmp_path / "sd.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), sd)
    args = [sys.executable, "-c", NO_TORCH, str(REPO), str(p), str(sd)] + (["--block"] if block else [])
    proc = subprocess.run(args, capture_output=True, text=True, timeout=HANG, env=cli_env())
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["after_import"] is False and out["after_verify"] is False
    assert out["codes"] == ["CKPT101", "CKPT102", "CKPT108"]
    if block:
        assert out["model"] == [out["model"][0]] and "needs torch" in out["model"][0]


def test_nothing_configured_says_nothing_was_checked_and_how_to_declare(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    proc = run_cli(cwd=tmp_path)
    assert proc.returncode == 0
    assert "All checks passed!" not in proc.stdout
    assert "Nothing to verify" in proc.stdout and "[[tool.ckptlint.checkpoints]]" in proc.stdout
    proc = run_cli("--output-format", "json", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]" and "Nothing to verify" in proc.stderr
