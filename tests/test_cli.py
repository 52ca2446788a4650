"""End to end through a subprocess, as a user runs `ckptlint`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import ROOT, cli_env, run_cli, run_json

BAD = "import torch\n\nsd = torch.load('m.pt')\n"
GOOD = "import torch\n\nsd = torch.load('m.pt', weights_only=True, map_location='cpu')\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.mark.slow
def test_exit_codes_and_text_format(tmp_path):
    write(tmp_path / "good.py", GOOD)
    proc = run_cli("check", "good.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "All checks passed!" in proc.stdout

    write(tmp_path / "bad.py", BAD)
    proc = run_cli("bad.py", cwd=tmp_path)  # `check` is the default command
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert "bad.py:3:6: CKPT002 `torch.load` without `weights_only=`" in lines[0]
    assert lines[1].startswith("bad.py:3:6: CKPT004 ")
    assert "[*]" not in lines[0]  # unsafe fix: not applied by --fix alone
    assert "Found 2 errors." in proc.stdout
    assert "hidden fixes can be enabled with the `--unsafe-fixes` option" in proc.stdout

    proc = run_cli("bad.py", "--unsafe-fixes", cwd=tmp_path)
    assert "CKPT002 [*] " in proc.stdout

    assert run_cli("bad.py", "--exit-zero", cwd=tmp_path).returncode == 0


def test_json_contract(tmp_path):
    write(tmp_path / "a.py", "import torch as T\nx = 1\nsd = T.load(\n    p)\n")
    proc, data = run_json("a.py", cwd=tmp_path)
    assert proc.returncode == 1
    assert [d["code"] for d in data] == ["CKPT002", "CKPT004"]
    d = data[0]
    assert set(d) >= {"code", "name", "message", "filename", "location", "end_location", "noqa_row", "fix", "help", "url"}
    assert d["filename"] == str(tmp_path / "a.py")
    assert d["location"] == {"row": 3, "column": 6}
    assert d["end_location"] == {"row": 4, "column": 7}
    assert d["noqa_row"] == 3
    # no web home for the rule pages yet, and a page of this install would be a path of this
    # machine in a report read elsewhere (test_output_formats.py: no output carries one)
    assert d["url"] is None
    fix = d["fix"]
    assert fix["applicability"] == "unsafe"
    assert fix["message"] == "Add `weights_only=True`"
    # applying the edits to the original text gives the fixed code
    text = (tmp_path / "a.py").read_text()
    lines = text.splitlines(keepends=True)
    (edit,) = fix["edits"]
    start = sum(map(len, lines[: edit["location"]["row"] - 1])) + edit["location"]["column"] - 1
    end = sum(map(len, lines[: edit["end_location"]["row"] - 1])) + edit["end_location"]["column"] - 1
    assert text[:start] + edit["content"] + text[end:] == "import torch as T\nx = 1\nsd = T.load(\n    p, weights_only=True)\n"


def test_json_columns_count_code_points(tmp_path):
    write(tmp_path / "u.py", "import torch\nx = ('é😀', torch.load('m.pt'))\n")
    _, data = run_json("u.py", "--select", "CKPT002", cwd=tmp_path)
    assert data[0]["location"] == {"row": 2, "column": 12}  # x = ('é😀', t: 12th code point


def test_json_stdout_is_only_json_when_clean(tmp_path):
    write(tmp_path / "g.py", GOOD)
    proc, data = run_json("g.py", cwd=tmp_path)
    assert proc.returncode == 0 and data == []


@pytest.mark.slow
def test_select_ignore_extend_select(tmp_path):
    write(tmp_path / "bad.py", BAD)
    _, data = run_json("bad.py", "--select", "CKPT004", cwd=tmp_path)
    assert {d["code"] for d in data} == {"CKPT004"}
    _, data = run_json("bad.py", "--ignore", "CKPT004", cwd=tmp_path)
    assert {d["code"] for d in data} == {"CKPT002"}
    _, data = run_json("bad.py", "--select", "CKPT00", "--ignore", "CKPT002,CKPT004", cwd=tmp_path)
    assert data == []
    _, data = run_json("bad.py", "--select", "CKPT003", "--extend-select", "CKPT002", cwd=tmp_path)
    assert {d["code"] for d in data} == {"CKPT002"}


def test_unknown_selector_is_usage_error(tmp_path):
    write(tmp_path / "bad.py", BAD)
    proc = run_cli("bad.py", "--select", "CKPT999", cwd=tmp_path)
    assert proc.returncode == 2
    assert "CKPT999" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [["--output-format", "yaml"], ["--no-such-option"]])
def test_bad_options_exit_2(tmp_path, args):
    proc = run_cli("check", ".", *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "error" in proc.stderr


def test_unknown_option_shows_the_usage_of_its_command(tmp_path):
    proc = run_cli("check", "--frobnicate", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage: ckptlint check ")
    assert "unrecognized arguments: --frobnicate" in proc.stderr
    proc = run_cli("rule", "--frobnicate", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("usage: ckptlint rule ")


@pytest.mark.slow
def test_mistyped_command_is_not_linted_as_a_path(tmp_path):
    write(tmp_path / "bad.py", BAD)
    proc = run_cli("chekc", "bad.py", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "`chekc` is neither a command" in proc.stderr and "did you mean `ckptlint check`" in proc.stderr
    proc = run_cli("frob", cwd=tmp_path)
    assert proc.returncode == 2 and "`frob` is neither a command" in proc.stderr
    # a folder or file of that name is linted, and a missing file is still a missing path
    write(tmp_path / "frob" / "m.py", BAD)
    assert run_cli("frob", cwd=tmp_path).returncode == 1
    proc = run_cli("gone.py", cwd=tmp_path)
    assert proc.returncode == 1 and "E902 No such file or directory" in proc.stdout


def test_concise_is_gone_with_a_reason(tmp_path):
    write(tmp_path / "bad.py", BAD)
    proc = run_cli("bad.py", "--output-format", "concise", cwd=tmp_path)
    assert proc.returncode == 2
    assert "`text` (the default) is ruff's concise form" in proc.stderr


@pytest.mark.slow
def test_select_all_includes_opt_in_rules(tmp_path):
    write(tmp_path / "t.py", "import torch\nfor epoch in range(3):\n    torch.save(model.state_dict(), 'last.pt')\n")
    proc, data = run_json("t.py", "--select", "ALL", cwd=tmp_path)
    assert "CKPT052" in {d["code"] for d in data}
    assert "note:" not in proc.stderr
    # a broad prefix selects the default rules only, and says what it left out
    proc, data = run_json("t.py", "--select", "CKPT", cwd=tmp_path)
    assert "CKPT052" not in {d["code"] for d in data}
    assert "note: CKPT leaves out the opt-in rules CKPT050, CKPT051, CKPT052, CKPT053, CKPT900" in proc.stderr
    assert "`CKPT05`" in proc.stderr
    proc, data = run_json("t.py", "--select", "CKPT05", cwd=tmp_path)
    assert {d["code"] for d in data} == {"CKPT052"} and "note:" not in proc.stderr
    proc = run_cli("t.py", "--select", "CKPT", "--extend-select", "CKPT05,CKPT900", cwd=tmp_path)
    assert "note:" not in proc.stderr


def test_rule_listing_says_how_opt_in_rules_are_selected():
    out = run_cli("rule", "--all").stdout
    assert "CKPT052" in out and "(opt-in)" in out
    assert "names its code or its group (`CKPT05`), or is `ALL`" in out


@pytest.mark.slow
def test_noqa(tmp_path):
    write(tmp_path / "n.py", """\
        import torch
        a = torch.load(p)  # noqa
        b = torch.load(p)  # noqa: CKPT002
        c = torch.load(p)  # noqa: CKPT002, CKPT004
        d = torch.load(p)  # noqa: CKPT999
        e = torch.load(  # noqa: CKPT004
            p,
        )
        """)
    _, data = run_json("n.py", cwd=tmp_path)
    assert [(d["location"]["row"], d["code"]) for d in data] == [
        (3, "CKPT004"), (5, "CKPT002"), (5, "CKPT004"), (6, "CKPT002"),
    ]


@pytest.mark.slow
def test_file_level_noqa(tmp_path):
    write(tmp_path / "all.py", "# ckptlint: noqa\nimport torch\ntorch.load(p)\n")
    write(tmp_path / "some.py", "# ckptlint: noqa: CKPT004\nimport torch\ntorch.load(p)\n")
    _, data = run_json(".", cwd=tmp_path)
    assert [(Path(d["filename"]).name, d["code"]) for d in data] == [("some.py", "CKPT002")]


@pytest.mark.slow
def test_diff_writes_nothing(tmp_path):
    f = write(tmp_path / "bad.py", "import torch\ntorch.save(sd, 'm.pt', _use_new_zipfile_serialization=False)\n")
    before = f.read_bytes()
    proc = run_cli("bad.py", "--diff", cwd=tmp_path)
    assert proc.returncode == 1
    assert "--- a/bad.py" in proc.stdout and "+++ b/bad.py" in proc.stdout and "@@" in proc.stdout
    assert "+torch.save(sd, 'm.pt')" in proc.stdout
    assert f.read_bytes() == before
    # unsafe fixes only show with --unsafe-fixes
    g = write(tmp_path / "load.py", "import torch\nx = torch.load(p)\n")
    assert run_cli("load.py", "--diff", cwd=tmp_path).stdout == ""
    assert "weights_only=True" in run_cli("load.py", "--diff", "--unsafe-fixes", cwd=tmp_path).stdout
    assert g.read_text() == "import torch\nx = torch.load(p)\n"


@pytest.mark.slow
def test_fix_and_idempotence(tmp_path):
    f = write(tmp_path / "t.py", """\
        import torch
        model.load_state_dict(torch.load('m.pt', weights_only=True))
        torch.save(sd, 'm.pt', _use_new_zipfile_serialization=False)
        x = torch.load(p)
        """)
    proc = run_cli("t.py", "--fix", cwd=tmp_path)
    assert proc.returncode == 1  # unsafe findings remain
    assert "Found 4 errors (2 fixed, 2 remaining)." in proc.stdout
    assert f.read_text() == textwrap.dedent("""\
        import torch
        model.load_state_dict(torch.load('m.pt', weights_only=True, map_location='cpu'))
        torch.save(sd, 'm.pt')
        x = torch.load(p)
        """)
    proc = run_cli("t.py", "--fix", "--unsafe-fixes", "--show-fixes", cwd=tmp_path)
    assert "x = torch.load(p, weights_only=True, map_location='cpu')" in f.read_text()  # the file's quotes
    assert proc.returncode == 0, proc.stdout
    assert "CKPT002 (load-without-weights-only)" in proc.stdout
    after = f.read_bytes()
    proc = run_cli("t.py", "--fix", "--unsafe-fixes", cwd=tmp_path)
    assert proc.returncode == 0 and f.read_bytes() == after


@pytest.mark.slow
def test_syntax_error_among_good_files(tmp_path):
    write(tmp_path / "a_bad.py", BAD)
    write(tmp_path / "b_broken.py", "def f(:\n    pass\ntorch.load(p)\n")
    write(tmp_path / "c_py2.py", "print 'hello'\ntorch.load(p)\n")
    write(tmp_path / "d_bad.py", BAD)
    proc, data = run_json(".", cwd=tmp_path)
    assert proc.returncode == 1
    by_file = {}
    for d in data:
        by_file.setdefault(Path(d["filename"]).name, []).append(d["code"])
    assert by_file["a_bad.py"] == ["CKPT002", "CKPT004"]
    assert by_file["d_bad.py"] == ["CKPT002", "CKPT004"]
    assert by_file["b_broken.py"] == ["E999"]
    assert by_file["c_py2.py"] == ["E999"]
    broken = next(d for d in data if d["filename"].endswith("b_broken.py"))
    assert broken["location"]["row"] == 1 and "SyntaxError" in broken["message"]
    text = run_cli(".", cwd=tmp_path).stdout
    assert "b_broken.py:1:" in text and "E999" in text


@pytest.mark.slow
def test_statistics(tmp_path):
    write(tmp_path / "bad.py", BAD + "y = torch.load(q)\n")
    proc = run_cli("bad.py", "--statistics", cwd=tmp_path)
    assert proc.stdout.splitlines() == [
        "2\tCKPT002\tload-without-weights-only",
        "2\tCKPT004\tload-without-map-location",
    ]


@pytest.mark.slow
def test_quiet_prints_no_summary(tmp_path):
    write(tmp_path / "bad.py", BAD)
    proc = run_cli("bad.py", "-q", cwd=tmp_path)
    assert "Found" not in proc.stdout and "CKPT002" in proc.stdout


@pytest.mark.slow
def test_missing_path_is_reported(tmp_path):
    write(tmp_path / "bad.py", BAD)
    proc = run_cli("bad.py", "nope.py", cwd=tmp_path)
    assert proc.returncode == 1
    assert "nope.py" in proc.stdout and "E902" in proc.stdout and "CKPT002" in proc.stdout


def test_version(tmp_path):
    from ckptlint import __version__

    proc = run_cli("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"ckptlint {__version__}"


@pytest.mark.slow
def test_rule_command():
    proc = run_cli("rule", "CKPT002")
    assert proc.returncode == 0
    for section in ("## What it does", "## Why is this bad?", "## Example", "## Use instead", "## Fix safety"):
        assert section in proc.stdout
    assert "load-without-weights-only (CKPT002)" in proc.stdout
    listing = run_cli("rule", "--all").stdout
    from ckptlint.rules import all_rules

    for code in all_rules():
        assert code in listing
    bad = run_cli("rule", "CKPT999")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "CKPT999" in bad.stderr
    data = json.loads(run_cli("rule", "CKPT004", "--output-format", "json").stdout)
    assert data["code"] == "CKPT004" and data["fix"] == "sometimes"


@pytest.mark.slow
def test_python_m_ckptlint_does_not_import_torch(tmp_path):
    write(tmp_path / "bad.py", BAD)
    code = (
        "import sys, runpy\n"
        "sys.argv = ['ckptlint', 'check', 'bad.py']\n"
        "try:\n    runpy.run_module('ckptlint', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'pygls', 'numpy') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=cli_env(), capture_output=True, text=True)
    assert "HEAVY []" in proc.stderr, proc.stderr
    assert "CKPT002" in proc.stdout


def test_importtime_of_cli_shows_no_torch():
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import ckptlint.cli.main"],
        env=cli_env(), capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line]
    assert "ckptlint.cli.main" in imported
    assert not [m for m in imported if m == "torch" or m.startswith("torch.")]


def test_console_script_entry_point_declared():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'ckptlint = "ckptlint.cli.main:main"' in text


def _page(uri: str):
    from urllib.parse import unquote, urlparse

    parsed = urlparse(uri)
    assert parsed.scheme == "file", uri
    page = Path(unquote(parsed.path))
    assert page.is_file(), uri
    return page


def test_every_code_links_to_a_page_that_documents_it():
    from ckptlint.diagnostic import Diagnostic
    from ckptlint.rules import all_rules

    for code, rule in all_rules().items():  # the editor's link: the docs this install ships
        page = _page(Diagnostic(code, rule.name, "m", "/x.py").local_url)
        assert page.read_text().startswith(f"# {rule.name} ({code})")
    errors = {"E902", "E903", "E904", "E910", "E997", "E998", "E999"}
    for code in errors:
        page = _page(Diagnostic(code, "e", "m", "/x.py").local_url)
        assert f"| `{code}` |" in page.read_text(), code
