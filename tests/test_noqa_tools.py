"""--add-noqa, --ignore-noqa and the unused-noqa report (CKPT900), through the real CLI."""

from __future__ import annotations

import pytest

from tests.helpers import check, run_cli, run_json

SOURCE = (
    "import torch\n"
    "a = torch.load('m.pt')\n"
    "b = torch.load('m.pt', map_location='cpu')  # noqa: E501\n"
    "c = torch.load('m.pt', map_location='cpu')  # noqa: CKPT004\n"
    "d = torch.load('''x\n"
    "y''', map_location='cpu')\n"
    "torch.save({}, 'm.pt', _use_new_zipfile_serialization=False)\n"
)


@pytest.mark.slow
def test_add_noqa_appends_merges_and_is_idempotent(tmp_path):
    f = tmp_path / "t.py"
    f.write_text(SOURCE)
    proc = run_cli("check", "--add-noqa", "t.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Added 4 noqa directives." in proc.stderr
    assert proc.stdout == ""
    lines = f.read_text().splitlines()
    assert lines[1] == "a = torch.load('m.pt')  # noqa: CKPT002, CKPT004"
    assert lines[2] == "b = torch.load('m.pt', map_location='cpu')  # noqa: E501, CKPT002"
    assert lines[3] == "c = torch.load('m.pt', map_location='cpu')  # noqa: CKPT004, CKPT002"
    assert lines[4] == "d = torch.load('''x"  # a comment here would land inside the string
    assert lines[6].endswith("  # noqa: CKPT009")
    # everything is suppressed now (the string line could not take a comment: reported)
    _, diags = run_json("check", "t.py", cwd=tmp_path)
    assert [(d["code"], d["location"]["row"]) for d in diags] == [("CKPT002", 5)]
    assert "t.py:5: cannot add `# noqa`" in proc.stderr
    again = run_cli("check", "--add-noqa", "t.py", cwd=tmp_path)
    assert "Added 0 noqa directives." in again.stderr


def test_add_noqa_refuses_fix(tmp_path):
    (tmp_path / "t.py").write_text(SOURCE)
    proc = run_cli("check", "--add-noqa", "--fix", "t.py", cwd=tmp_path)
    assert proc.returncode == 2 and "cannot be combined" in proc.stderr


@pytest.mark.slow
def test_ignore_noqa_shows_suppressed(tmp_path):
    (tmp_path / "t.py").write_text(
        "import torch\nx = torch.load('m.pt', map_location='cpu')  # noqa: CKPT002\n"
        "y = torch.load('m.pt', map_location='cpu')  # noqa\n"
    )
    _, plain = run_json("check", "t.py", cwd=tmp_path)
    assert plain == []
    _, shown = run_json("check", "--ignore-noqa", "t.py", cwd=tmp_path)
    assert [(d["code"], d["location"]["row"]) for d in shown] == [("CKPT002", 2), ("CKPT002", 3)]


@pytest.mark.slow
def test_unused_noqa_is_opt_in_and_fixable(tmp_path):
    f = tmp_path / "t.py"
    f.write_text(
        "import torch\n"
        "x = torch.load('m.pt', map_location='cpu', weights_only=True)  # noqa: CKPT002\n"
        "y = torch.load('m.pt', map_location='cpu')  # noqa: CKPT002, CKPT009, E501\n"
        "z = 1  # noqa\n"
    )
    _, default = run_json("check", "t.py", cwd=tmp_path)
    assert default == []
    _, diags = run_json("check", "--extend-select", "CKPT900", "t.py", cwd=tmp_path)
    assert [(d["code"], d["location"]["row"]) for d in diags] == [("CKPT900", 2), ("CKPT900", 3)]
    assert "unused: CKPT002" in diags[0]["message"]
    assert "CKPT009" in diags[1]["message"] and "CKPT002" not in diags[1]["message"]
    assert diags[0]["fix"]["applicability"] == "safe"
    proc = run_cli("check", "--extend-select", "CKPT900", "--fix", "t.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    assert f.read_text() == (
        "import torch\n"
        "x = torch.load('m.pt', map_location='cpu', weights_only=True)\n"
        "y = torch.load('m.pt', map_location='cpu')  # noqa: CKPT002, E501\n"
        "z = 1  # noqa\n"
    )


def test_unused_noqa_reports_non_enabled_codes():
    _, diags, _ = check("x = 1  # noqa: CKPT003\n", ["CKPT900", "CKPT002"])
    assert [d.message for d in diags] == ["Unused `noqa` directive (non-enabled: CKPT003)"]


def test_unused_noqa_quiet_on_a_file_that_does_not_parse():
    _, diags, _ = check("def f(:\n    x = 1  # noqa: CKPT002\n", ["CKPT900", "CKPT002"])
    assert [d.code for d in diags] == ["E999"]


def test_rule_docs_for_unused_noqa():
    proc = run_cli("rule", "CKPT900")
    assert proc.returncode == 0
    assert "# unused-noqa (CKPT900)" in proc.stdout and "--extend-select CKPT900" in proc.stdout


@pytest.mark.slow
def test_noqa_rows_count_lines_as_findings_do(tmp_path):
    """A form feed or U+2028 inside a line is not a line break for Python, LibCST or the
    diagnostics' rows: `# noqa` and `--add-noqa` count rows the same way."""
    source = (
        "import torch\n"
        "\x0c\n"  # a page break, as some old projects have between sections
        "note = 'a\u2028b'\n"
        "a = torch.load('m.pt', map_location='cpu')  # noqa: CKPT002\n"
        "b = torch.load('m.pt', map_location='cpu')\n"
    )
    _, diags, _ = check(source, ["CKPT002"])
    assert [d.location.row for d in diags] == [5]
    f = tmp_path / "t.py"
    f.write_bytes(source.encode("utf-8"))  # as is: write_text would translate newlines
    proc = run_cli("check", "--add-noqa", "--select", "CKPT002", "t.py", cwd=tmp_path)
    assert "Added 1 noqa directive." in proc.stderr
    lines = f.read_text(encoding="utf-8").split("\n")
    assert lines[4] == "b = torch.load('m.pt', map_location='cpu')  # noqa: CKPT002"
    assert lines[2] == "note = 'a\u2028b'"
    _, left = run_json("check", "--select", "CKPT002", "t.py", cwd=tmp_path)
    assert left == []
