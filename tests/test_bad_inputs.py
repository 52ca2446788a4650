"""One test per bad input (issue 6): one clear line naming the file, exit 1 or 2, no
traceback, and the other files in the run are still linted."""

from __future__ import annotations

import codecs
import json
import os
import sys
from pathlib import Path

import pytest

from ckptlint.engine import parse as guard
from tests.helpers import run_cli, run_json

GOOD = "import torch\nstate = torch.load('m.pt')\n"
# appended to a broken file so that it is one ckptlint parses (it has something to check)
LOAD = "sd = torch.load(p)\n"


def project(tmp_path: Path, name: str, content) -> Path:
    """tmp_path with good.py (one CKPT002) and the bad file `name`."""
    (tmp_path / "good.py").write_text(GOOD)
    bad = tmp_path / name
    if isinstance(content, bytes):
        bad.write_bytes(content)
    elif content is not None:
        bad.write_text(content)
    return bad


def lint(tmp_path: Path, *paths):
    proc = run_cli(*(paths or ["."]), cwd=tmp_path)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode in (1, 2), (proc.returncode, proc.stdout, proc.stderr)
    return proc


def line_for(proc, name: str) -> str:
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(name + ":")]
    assert len(lines) == 1, proc.stdout
    return lines[0]


def good_still_linted(proc):
    assert any(ln.startswith("good.py:2:") and "CKPT002" in ln for ln in proc.stdout.splitlines()), proc.stdout


@pytest.mark.slow
def test_syntax_error(tmp_path):
    project(tmp_path, "bad.py", "def f(:\n    pass\n" + LOAD)
    proc = lint(tmp_path)
    assert "E999 SyntaxError" in line_for(proc, "bad.py:1:7")
    good_still_linted(proc)


def test_syntax_error_in_a_file_with_nothing_to_check_is_not_reported(tmp_path):
    # like ruff's rules, ckptlint parses only what it checks: no torch save/load, no parse
    project(tmp_path, "plain.py", "def f(:\n    print('no checkpoints here')\n")
    proc = run_cli(".", cwd=tmp_path)
    assert proc.returncode == 1 and "plain.py" not in proc.stdout
    good_still_linted(proc)


def test_python2_code(tmp_path):
    project(tmp_path, "old.py", "import torch\nprint 'loading'\nexec 'x = 1'\n" + LOAD)
    proc = lint(tmp_path)
    # the position is CPython's own: 3.10+ points at `print`, 3.9 at the end of the statement
    where = "old.py:2:1" if sys.version_info >= (3, 10) else "old.py:2"
    assert "E999 SyntaxError: Missing parentheses in call to 'print'" in line_for(proc, where)
    good_still_linted(proc)


def test_tab_space_mix(tmp_path):
    project(tmp_path, "tabs.py", "if True:\n\tif True:\n        x = 1\n" + LOAD)
    proc = lint(tmp_path)
    assert "inconsistent use of tabs and spaces" in line_for(proc, "tabs.py:3:1")
    good_still_linted(proc)


def test_not_utf8_without_cookie(tmp_path):
    project(tmp_path, "latin.py", "x = 'caf\xe9'\n".encode("latin-1"))
    proc = lint(tmp_path)
    line = line_for(proc, "latin.py:1:1")
    assert "E902 cannot decode: not UTF-8" in line and "coding" in line
    good_still_linted(proc)


def test_declared_latin1_is_honoured(tmp_path):
    # the cookie is honoured: the file is linted, columns count characters, not bytes
    src = "# -*- coding: latin-1 -*-\nimport torch\nname = 'caf\xe9'; sd = torch.load(name)\n"
    (tmp_path / "latin.py").write_bytes(src.encode("latin-1"))
    proc = run_cli("latin.py", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "latin.py:3:21: CKPT002" in proc.stdout


def test_unknown_declared_coding(tmp_path):
    project(tmp_path, "weird.py", b"# -*- coding: no-such-codec -*-\nx = 1\n")
    proc = lint(tmp_path)
    assert "E902 cannot decode" in line_for(proc, "weird.py:1:1")
    good_still_linted(proc)


def test_utf8_bom(tmp_path):
    (tmp_path / "bom.py").write_bytes(codecs.BOM_UTF8 + GOOD.encode())
    proc = run_cli("bom.py", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "bom.py:2:9: CKPT002" in proc.stdout  # the BOM is not a column


def test_nul_bytes(tmp_path):
    project(tmp_path, "nul.py", b"import torch\x00\ntorch.load('x')\n")
    proc = lint(tmp_path)
    assert "E902 binary file (contains NUL bytes)" in line_for(proc, "nul.py:1:1")
    good_still_linted(proc)


def test_binary_file_named_py(tmp_path):
    project(tmp_path, "image.py", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    proc = lint(tmp_path)
    assert "E902" in line_for(proc, "image.py:1:1")
    good_still_linted(proc)


@pytest.mark.slow
@pytest.mark.parametrize("content", ["", "\n", "# just a comment", "\ufeff"])
def test_empty_file_is_valid(tmp_path, content):
    (tmp_path / "empty.py").write_text(content, encoding="utf-8")
    proc = run_cli("empty.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "All checks passed!" in proc.stdout
    proc, data = run_json("empty.py", cwd=tmp_path)
    assert data == [] and proc.returncode == 0


@pytest.mark.slow
def test_50mb_generated_file_is_not_parsed(tmp_path, monkeypatch, capsys):
    from ckptlint.cli import main as cli
    from ckptlint.engine import lint as engine

    chunk = "x = torch.load('m.pt')  # " + "#" * 60 + "\n"
    with open(tmp_path / "huge.py", "w") as fh:
        fh.write("import torch\n")
        fh.write(chunk * (50 * 1024 * 1024 // len(chunk) + 1))
    project(tmp_path, "huge.py", None)
    linted = []  # what the engine is handed (in this process: --jobs 1)
    real_lint = engine.lint
    monkeypatch.setattr(engine, "lint", lambda *a, **k: linted.append(k.get("path")) or real_lint(*a, **k))
    monkeypatch.chdir(tmp_path)
    rc = cli.main([".", "--jobs", "1"])
    out = capsys.readouterr().out
    assert rc == 1
    line = [ln for ln in out.splitlines() if ln.startswith("huge.py:1:1:")]
    assert len(line) == 1 and "E903" in line[0] and "max-file-size" in line[0] and "52.4 MB" in line[0], out
    assert any(ln.startswith("good.py:2:") and "CKPT002" in ln for ln in out.splitlines()), out
    # its size said no before any parse: only good.py reached the engine
    assert [os.path.basename(p) for p in linted] == ["good.py"]


def test_max_file_size_is_configurable(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.ckptlint]\nmax-file-size = 100\n")
    project(tmp_path, "big.py", "x = 1\n" * 100)
    proc = lint(tmp_path)
    assert "E903" in line_for(proc, "big.py:1:1")
    good_still_linted(proc)  # 52 bytes: under the limit


@pytest.mark.slow
def test_deeply_nested_expression(tmp_path):
    # LibCST's native parser used to segfault on this (ast keeps `and` chains flat)
    project(tmp_path, "deep.py", "import torch\ntorch.load(p)\nok = a" + " and a" * 20000 + "\n")
    (tmp_path / "parens.py").write_text("x = " + "(" * 300 + "1" + ")" * 300 + "\n" + LOAD)
    (tmp_path / "sums.py").write_text("x = 1" + " + 1" * 100000 + "\n" + LOAD)
    proc = lint(tmp_path)
    assert "E904 not checked: nested 20004 levels deep" in line_for(proc, "deep.py:1:1")
    assert "E999 SyntaxError: too many nested parentheses" in line_for(proc, "parens.py:1:205")
    # 3.11 and 3.13 build this ast under ckptlint's raised recursion limit (E904); 3.12's
    # fixed C recursion limit makes CPython itself refuse it (E999, documented as such)
    assert "sums.py:1:1: E90" in proc.stdout or "sums.py:1:1: E999 SyntaxError: too deeply nested" in proc.stdout
    good_still_linted(proc)


UNDER = guard.MAX_DEPTH - 10


@pytest.mark.slow
@pytest.mark.parametrize("shape", [
    "a" + " and a" * UNDER, "not " * UNDER + "a", "a" + ".b" * UNDER, "a" + "[0]" * UNDER,
    "'s' " * UNDER, "x" + " + 1" * UNDER, "1 if a else " * UNDER + "2",
])
def test_nesting_under_the_limit_is_linted(tmp_path, shape):
    (tmp_path / "nested.py").write_text("import torch\nsd = torch.load(p)\nv = " + shape + "\n")
    proc = run_cli("nested.py", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "nested.py:2:6: CKPT002" in proc.stdout


def test_unreadable_file_monkeypatched(tmp_path, monkeypatch, capsys):
    # tests run as root, which reads any file: make os.open refuse this one, as it would for a user
    from ckptlint.cli import main as cli

    project(tmp_path, "secret.py", GOOD)
    real_open = os.open

    def refusing_open(path, *args, **kwargs):
        if str(path).endswith("secret.py"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["."])
    out = capsys.readouterr().out
    assert rc == 1
    assert "secret.py:1:1: E902 cannot read: Permission denied" in out
    assert "good.py:2:9: CKPT002" in out


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_permissions(tmp_path):
    bad = project(tmp_path, "secret.py", GOOD)
    bad.chmod(0)
    proc = lint(tmp_path)
    assert "E902 cannot read: Permission denied" in line_for(proc, "secret.py:1:1")
    good_still_linted(proc)


def test_fifo_named_py_does_not_hang(tmp_path):
    # reading a FIFO blocks until someone writes: the run used to hang here
    project(tmp_path, "pipe.py", None)
    os.mkfifo(tmp_path / "pipe.py")
    proc = lint(tmp_path, ".", "pipe.py")
    assert "E902 not a regular file" in line_for(proc, "pipe.py:1:1")
    good_still_linted(proc)


@pytest.mark.slow
def test_broken_symlink(tmp_path):
    project(tmp_path, "gone.py", None)
    (tmp_path / "gone.py").symlink_to(tmp_path / "nowhere.py")
    proc = lint(tmp_path)  # found by the walk
    assert "E902 cannot read: No such file or directory" in line_for(proc, "gone.py:1:1")
    good_still_linted(proc)
    proc = lint(tmp_path, "gone.py", "good.py")  # named explicitly
    assert "E902 No such file or directory" in line_for(proc, "gone.py:1:1")
    good_still_linted(proc)


@pytest.mark.slow
def test_symlink_loops(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "model.py").write_text(GOOD)
    (pkg / "again").symlink_to(pkg)  # directory loop
    (pkg / "sub").mkdir()
    (pkg / "sub" / "up").symlink_to(tmp_path)  # loop through the parent
    (tmp_path / "self.py").symlink_to(tmp_path / "self.py")  # a file link to itself
    proc = run_cli(".", cwd=tmp_path, )
    assert "Traceback" not in proc.stderr and proc.returncode == 1
    findings = [ln for ln in proc.stdout.splitlines() if "CKPT002" in ln]
    assert findings == [ln for ln in findings if ln.startswith("pkg/model.py:2:9:")] and len(findings) == 1
    assert "E902 cannot read: Too many levels of symbolic links" in line_for(proc, "self.py:1:1")
    proc, data = run_json(".", cwd=tmp_path)
    assert sorted(d["code"] for d in data) == ["CKPT002", "CKPT004", "E902"]


def test_missing_path(tmp_path):
    project(tmp_path, "x.py", None)
    proc = lint(tmp_path, "good.py", "no_such_file.py", "no_such_dir")
    assert "E902 No such file or directory" in line_for(proc, "no_such_file.py:1:1")
    assert "E902 No such file or directory" in line_for(proc, "no_such_dir:1:1")
    good_still_linted(proc)


def test_directory_where_a_file_was_expected(tmp_path):
    project(tmp_path, "model.py", None)
    (tmp_path / "model.py").mkdir()
    (tmp_path / "model.py" / "inner.py").write_text(GOOD)
    proc = lint(tmp_path, "model.py", "good.py")
    assert "E902 is a directory, not a file" in line_for(proc, "model.py:1:1")
    good_still_linted(proc)


def test_file_deleted_during_the_run(tmp_path, monkeypatch, capsys):
    from ckptlint.cli import main as cli
    from ckptlint.workspace.workspace import Workspace

    project(tmp_path, "b_later.py", GOOD)
    (tmp_path / "a_first.py").write_text("x = 1\n")
    real = Workspace.lint_file

    def lint_then_delete(self, path, *args, **kwargs):
        result = real(self, path, *args, **kwargs)
        if Path(path).name == "a_first.py":
            (tmp_path / "b_later.py").unlink()  # discovered, gone before it is read
        return result

    monkeypatch.setattr(Workspace, "lint_file", lint_then_delete)
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["."])
    out = capsys.readouterr().out
    assert rc == 1
    assert "b_later.py:1:1: E902 cannot read: No such file or directory" in out
    assert "good.py:2:9: CKPT002" in out


def test_file_changed_during_fix_is_not_overwritten(tmp_path, monkeypatch, capsys):
    from ckptlint.cli import main as cli
    from ckptlint.workspace.workspace import Workspace

    bad = project(tmp_path, "edited.py", GOOD)
    real = Workspace.lint_file

    def lint_then_edit(self, path, *args, **kwargs):
        result = real(self, path, *args, **kwargs)
        if Path(path).name == "edited.py":
            bad.write_text("# the user saved a new version meanwhile\n" + GOOD)
        return result

    monkeypatch.setattr(Workspace, "lint_file", lint_then_edit)
    monkeypatch.chdir(tmp_path)
    rc = cli.main([".", "--fix", "--unsafe-fixes"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "edited.py:1:1: E997 fixes not written: the file changed on disk" in out
    assert bad.read_text().startswith("# the user saved")
    assert "weights_only=True" in (tmp_path / "good.py").read_text()  # the others are fixed


def test_internal_error_in_one_rule(tmp_path, monkeypatch, capsys):
    from ckptlint.cli import main as cli
    from ckptlint.rules import get_rule

    rule = get_rule("CKPT002")

    def crash(self, ctx):
        for call in ctx.calls_to("torch.load"):
            raise ZeroDivisionError("boom")  # `call` is what the rule was looking at

    monkeypatch.setattr(rule, "check", crash)
    (tmp_path / "model.py").write_text(GOOD)
    (tmp_path / "other.py").write_text(GOOD)
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["."])
    out = capsys.readouterr().out
    assert rc == 1
    for name in ("model.py", "other.py"):
        assert (
            f"{name}:2:9: E998 internal error in rule CKPT002 (load-without-weights-only): "
            "ZeroDivisionError: boom" in out
        ), out
        assert f"{name}:2:9: CKPT004" in out  # the other rules still ran


def test_internal_error_outside_the_rules(tmp_path, monkeypatch, capsys):
    from ckptlint.cli import main as cli
    from ckptlint.engine import noqa

    def broken(*args, **kwargs):
        raise RuntimeError("bug in the noqa filter")

    (tmp_path / "model.py").write_text(GOOD)
    monkeypatch.setattr(noqa, "filter_diagnostics", broken)
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["."])
    out = capsys.readouterr().out
    assert rc == 1
    assert "model.py:1:1: E998 internal error: RuntimeError: bug in the noqa filter" in out


def test_json_stays_one_array_with_every_bad_file(tmp_path):
    files = {
        "syntax.py": b"def f(:\n" + LOAD.encode(),
        "latin.py": "x = '\xe9'\n".encode("latin-1"),
        "nul.py": b"x = 1\x00\n",
        "binary.py": bytes(range(256)),
        "deep.py": ("x = a" + " and a" * 5000 + "\n" + LOAD).encode(),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "link.py").symlink_to(tmp_path / "missing.py")
    proc, data = run_json(".", "absent.py", cwd=tmp_path)
    assert proc.returncode == 1
    by_file = {}
    for d in data:
        by_file.setdefault(Path(d["filename"]).name, []).append(d["code"])
        assert os.path.isabs(d["filename"])
        assert d["location"] == {"row": d["location"]["row"], "column": d["location"]["column"]}
    assert by_file["syntax.py"] == ["E999"]
    assert by_file["latin.py"] == ["E902"] and by_file["nul.py"] == ["E902"]
    assert by_file["binary.py"] == ["E902"] and by_file["deep.py"] == ["E904"]
    assert by_file["link.py"] == ["E902"] and by_file["absent.py"] == ["E902"]
    assert sorted(by_file["good.py"]) == ["CKPT002", "CKPT004"]
    assert json.loads(proc.stdout) == data  # nothing but the array on stdout


def test_unreadable_folder_is_reported(tmp_path, monkeypatch, capsys):
    from ckptlint.cli import main as cli

    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "hidden.py").write_text(GOOD)
    real_scandir = os.scandir

    def refusing_scandir(path="."):
        if Path(path).name == "private":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", refusing_scandir)
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["."])
    out = capsys.readouterr().out
    assert rc == 1
    assert "private:1:1: E902 cannot list folder: Permission denied" in out
    assert "good.py:2:9: CKPT002" in out


def test_no_big_stack_thread_available(monkeypatch):
    # e.g. under `ulimit -v`: linting goes on in the calling thread, MAX_DEPTH still guards
    import threading

    from ckptlint.engine import parse as guard
    from tests.helpers import check

    def refuse(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    _, diags, _ = check("import torch\nx = torch.load(p)\n")
    assert [d.code for d in diags] == ["CKPT002", "CKPT004"]
    _, diags, _ = check("x = a" + " and a" * 5000 + "\n" + LOAD)
    assert [d.code for d in diags] == ["E904"]
    assert guard.call_deep(lambda: 7) == 7


def test_file_growing_while_read_is_cut_at_max_file_size(tmp_path, monkeypatch):
    # the size seen by fstat is stale: the read itself stops past `max-file-size`
    from ckptlint.workspace.workspace import Workspace
    from tests.helpers import settings

    f = tmp_path / "growing.py"
    f.write_text("x = 1\n" * 1000)
    real_fstat = os.fstat

    class Stale:
        def __init__(self, st):
            self._st = st

        def __getattr__(self, name):
            return 10 if name == "st_size" else getattr(self._st, name)

    monkeypatch.setattr(os, "fstat", lambda fd: Stale(real_fstat(fd)))
    s = settings({"max-file-size": 100})
    result = Workspace(tmp_path).lint_file(f, s, s.enabled_codes())
    assert [d.code for d in result.diagnostics] == ["E903"]
    assert "over `max-file-size` (100 bytes)" in result.diagnostics[0].message


@pytest.mark.slow
def test_broken_notebooks(tmp_path):
    bad = {
        "json.ipynb": b"{not json",
        "empty.ipynb": b"",
        "nul.ipynb": b"\x00\x01",
        "no_cells.ipynb": b'{"cells": 5}',
        "int_source.ipynb": b'{"cells": [{"cell_type": "code", "source": 7}]}',
        "mixed_source.ipynb": b'{"cells": [{"cell_type": "code", "source": ["x = 1", 2]}]}',
    }
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "good.py").write_text(GOOD)
    proc, data = run_json(".", cwd=tmp_path)
    assert proc.returncode == 1
    codes = {Path(d["filename"]).name: d["code"] for d in data if not d["filename"].endswith("good.py")}
    assert codes == dict.fromkeys(bad, "E902"), data
    proc = lint(tmp_path)
    assert "not a valid notebook (a cell's `source` is not text)" in line_for(proc, "int_source.ipynb:1:1")
    good_still_linted(proc)
