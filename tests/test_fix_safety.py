"""`--fix` keeps every byte it does not mean to change, writes atomically, and converges."""

from __future__ import annotations

import codecs
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import check, cli_env, run_cli, run_json


def fix(tmp_path, *args):
    proc = run_cli(".", "--fix", "--unsafe-fixes", *args, cwd=tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_latin1_crlf_and_missing_final_newline_are_kept(tmp_path):
    src = (
        "# -*- coding: latin-1 -*-\r\n"
        "import torch\r\n"
        "name = 'caf\xe9'; sd = torch.load(name)\r\n"
        "torch.save(sd, f, _use_new_zipfile_serialization=False)"
    )
    f = tmp_path / "m.py"
    f.write_bytes(src.encode("latin-1"))
    proc = fix(tmp_path)
    assert proc.returncode == 0, proc.stdout
    assert f.read_bytes() == (
        "# -*- coding: latin-1 -*-\r\n"
        "import torch\r\n"
        "name = 'caf\xe9'; sd = torch.load(name, weights_only=True, map_location='cpu')\r\n"
        "torch.save(sd, f)"
    ).encode("latin-1")


def test_single_bom_and_mode_are_kept(tmp_path):
    f = tmp_path / "m.py"
    f.write_bytes(codecs.BOM_UTF8 + b"import torch\nsd = torch.load(p, map_location='cpu')\n")
    f.chmod(0o751)
    assert fix(tmp_path).returncode == 0
    assert f.read_bytes() == codecs.BOM_UTF8 + b"import torch\nsd = torch.load(p, map_location='cpu', weights_only=True)\n"
    assert stat.S_IMODE(f.stat().st_mode) == 0o751


def test_every_byte_outside_the_fix_is_kept(tmp_path):
    # mixed line endings, a form feed, tabs, trailing blanks, non-ASCII, a lone CR
    head = "import torch  \r\n\x0c\n# caf\u00e9 \u2603 \U0001F600\r"
    tail = "\n    pass\t# tab\t \r\n\r\n   \n"
    # (into load_state_dict: a function returning what it loads gets no fix, see CKPT002)
    call = "def f(m, p):\n    if 1: m.load_state_dict(torch.load( p ,  map_location = 'cpu' ))"
    f = tmp_path / "m.py"
    f.write_bytes((head + call + tail).encode())
    assert fix(tmp_path).returncode == 0
    fixed = call.replace("'cpu' ))", "'cpu', weights_only=True ))")
    assert f.read_bytes() == (head + fixed + tail).encode()


def test_files_without_applied_fixes_are_not_touched(tmp_path):
    clean = tmp_path / "clean.py"
    clean.write_text("x = 1\n")
    unsafe_only = tmp_path / "unsafe_only.py"  # CKPT002's fix is unsafe: not applied by --fix
    unsafe_only.write_text("import torch\nsd = torch.load(p, map_location='cpu')\n")
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n")
    old = 1_000_000_000
    before = {}
    for f in (clean, unsafe_only, broken):
        os.utime(f, ns=(old, old))
        before[f] = (f.stat().st_ino, f.stat().st_mtime_ns)
    proc = run_cli(".", "--fix", cwd=tmp_path)
    assert proc.returncode == 1
    for f in (clean, unsafe_only, broken):
        assert (f.stat().st_ino, f.stat().st_mtime_ns) == before[f], f
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".ckptlint-tmp")]


def test_fix_that_would_not_parse_is_refused(tmp_path, monkeypatch, capsys):
    from ckptlint.cli import main as cli
    from ckptlint.engine.context import FileContext

    real = FileContext.add_keyword
    monkeypatch.setattr(FileContext, "add_keyword", lambda self, call, kw: real(self, call, kw + " +"))
    f = tmp_path / "m.py"
    original = b"import torch\nsd = torch.load(p)\n"
    f.write_bytes(original)
    monkeypatch.chdir(tmp_path)
    rc = cli.main([".", "--fix", "--unsafe-fixes"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "m.py:1:1: E997 fixes not applied: the fixed code would not parse" in out
    assert f.read_bytes() == original


@pytest.mark.slow
def test_second_fix_run_changes_nothing_and_no_fix_remains(tmp_path):
    src = (
        "import torch\n"
        "import torch as T\n"
        "from torch import load, save as S\n"
        "a = torch.load(p)\n"
        "b = T.load(torch.load(q), map_location='cpu')\n"
        "c = load()\n"
        "d = torch.load(p,)\n"
        "e = torch.load(\n    p,  # keep me\n)\n"
        "S(load(p), f, _use_new_zipfile_serialization=False)\n"
        "torch.save(torch.load(p), f, _use_new_zipfile_serialization=False, pickle_protocol=2)\n"
        "torch.save(x, torch.load(p, weights_only=True), _use_new_zipfile_serialization=False,)\n"
        "g = torch.hub.load('repo', 'model')\n"
    )
    (tmp_path / "m.py").write_text(src)
    fix(tmp_path)
    once = (tmp_path / "m.py").read_bytes()
    compile(once, "m.py", "exec")
    mtime = (tmp_path / "m.py").stat().st_mtime_ns
    proc = fix(tmp_path)
    assert (tmp_path / "m.py").read_bytes() == once
    assert (tmp_path / "m.py").stat().st_mtime_ns == mtime
    assert "fixed" not in proc.stdout
    proc, data = run_json(".", "--unsafe-fixes", cwd=tmp_path)
    assert [d for d in data if d["fix"] is not None] == []
    assert b"load(weights_only=True, map_location='cpu')" in once  # the file's quotes
    assert b"# keep me" in once and b"_use_new_zipfile_serialization" not in once


def test_overlapping_fixes_converge_in_bounded_passes():
    # both rules insert at the same point of each call; nested calls add more collisions
    src = "import torch\nx = torch.load(torch.load(torch.load(torch.load(p))))\n"
    text, remaining, applied = check(src, fix=True, unsafe=True)
    assert len(applied) == 8 and [d for d in remaining if d.fix] == []
    compile(text, "x", "exec")
    again, _, applied_again = check(text, fix=True, unsafe=True)
    assert again == text and applied_again == []


def test_fix_passes_are_bounded(monkeypatch):
    # a rule whose fix never satisfies it must not loop forever
    from ckptlint.engine import passes
    from ckptlint.engine.context import FileContext

    monkeypatch.setattr(FileContext, "add_keyword", lambda self, call, kw: self.insert_at(
        self.offset(self.end(call)) - 1, " "))
    text, remaining, applied = check("import torch\nx = torch.load(p)\n", fix=True, unsafe=True)
    assert len(applied) <= 2 * passes.MAX_FIX_PASSES
    compile(text, "x", "exec")


def _fixture_files(root: Path, n: int):
    body = "import torch\n" + "".join(f"m{i} = torch.load(p{i})\n" for i in range(40))
    for i in range(n):
        (root / f"f{i:03}.py").write_text(body)
    return body


# Runs `ckptlint --fix` with os.replace gated: at the K-th fixed file, with its temporary
# file written and not yet renamed over it, the run tells the test (READY) and waits until
# the test has sent SIGINT and says GO. No sleep: the interrupt lands at that point.
GATED_FIX = r"""
import os, sys
ready, go, k = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
real, count = os.replace, [0]
def gated(src, dst, *args, **kwargs):
    if str(src).endswith(".ckptlint-tmp"):
        count[0] += 1
        if count[0] == k:
            os.write(ready, b"r")
            os.read(go, 1)  # SIGINT arrives while this waits
    return real(src, dst, *args, **kwargs)
os.replace = gated
from ckptlint.cli.main import main
sys.exit(main([".", "--fix", "--unsafe-fixes", "--jobs", "1"]))
"""


@pytest.mark.slow
def test_ctrl_c_mid_fix_leaves_files_old_or_new(tmp_path):
    """Ctrl-C while a fixed file is being written: that write completes (the interrupt is
    held until the file is replaced), no later file is touched, no temporary file is left,
    and the run says it was interrupted (exit 130)."""
    probe = tmp_path / "probe"
    probe.mkdir()
    body = _fixture_files(probe, 1)
    run_cli(".", "--fix", "--unsafe-fixes", cwd=probe)
    fixed = (probe / "f000.py").read_text()
    assert fixed != body
    work = tmp_path / "work"
    work.mkdir()
    _fixture_files(work, 30)
    k = 12
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-c", GATED_FIX, str(ready_w), str(go_r), str(k)], cwd=work, env=cli_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, pass_fds=(ready_w, go_r),
    )
    os.close(ready_w)
    os.close(go_r)
    try:
        reached = os.read(ready_r, 1)  # b"" if the run ended without reaching the K-th write
        mid_write = [p for p in os.listdir(work) if p.endswith(".ckptlint-tmp")]
        proc.send_signal(signal.SIGINT)
        os.write(go_w, b"g")
    finally:
        os.close(go_w)
        os.close(ready_r)
        out, err = proc.communicate()
    assert reached == b"r", err
    assert len(mid_write) == 1, mid_write  # interrupted with a temporary file on disk
    assert proc.returncode == 130, (proc.returncode, err)
    assert "interrupted" in err and "Traceback" not in err, err
    states = [(work / f"f{i:03}.py").read_text() for i in range(30)]
    assert states.count(fixed) == k and states.count(body) == 30 - k
    assert (work / (mid_write[0].split(".py.")[0][1:] + ".py")).read_text() == fixed  # its write completed
    assert sorted(os.listdir(work)) == [f"f{i:03}.py" for i in range(30)]


def test_json_fix_output_matches_what_fix_writes(tmp_path):
    # the edits in JSON, applied by hand, give what --fix writes (one pass, no collisions)
    src = "import torch\nsd = torch.load(p, map_location='cpu')\ntorch.save(sd, f, _use_new_zipfile_serialization=False)\n"
    (tmp_path / "m.py").write_text(src)
    _, data = run_json(".", "--unsafe-fixes", cwd=tmp_path)
    lines = src.splitlines(keepends=True)
    for d in sorted(data, key=lambda d: (d["location"]["row"], d["location"]["column"]), reverse=True):
        for e in reversed(d["fix"]["edits"]):
            row, col = e["location"]["row"], e["location"]["column"]
            end_row, end_col = e["end_location"]["row"], e["end_location"]["column"]
            assert row == end_row
            line = lines[row - 1]
            lines[row - 1] = line[: col - 1] + e["content"] + line[end_col - 1:]
    fix(tmp_path)
    assert (tmp_path / "m.py").read_text() == "".join(lines)
    assert json.loads(json.dumps(data))  # plain JSON


def test_fix_through_a_symlink_keeps_the_link_and_the_owner(tmp_path):
    real = tmp_path / "real.py"
    real.write_text("import torch\nsd = torch.load(p, map_location='cpu')\n")
    if os.geteuid() == 0:
        os.chown(real, 1234, 5678)
    (tmp_path / "link.py").symlink_to(real)
    assert fix(tmp_path).returncode == 0
    assert (tmp_path / "link.py").is_symlink()
    assert "weights_only=True" in real.read_text()
    if os.geteuid() == 0:
        assert (real.stat().st_uid, real.stat().st_gid) == (1234, 5678)


def test_write_failure_is_reported_and_the_file_kept(tmp_path, monkeypatch, capsys):
    import tempfile

    from ckptlint.cli import main as cli

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    f = tmp_path / "m.py"
    original = b"import torch\nsd = torch.load(p, map_location='cpu')\n"
    f.write_bytes(original)
    monkeypatch.setattr(tempfile, "mkstemp", no_space)
    monkeypatch.chdir(tmp_path)
    rc = cli.main([".", "--fix", "--unsafe-fixes"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "m.py:1:1: E902 cannot write fixes: No space left on device" in out
    assert f.read_bytes() == original


def test_fix_corpus_counts_lines_like_git_diff():
    # the comparison benchmarks/fix_corpus.py relies on: which original rows changed, +/-
    import importlib.util

    from tests.helpers import ROOT

    spec = importlib.util.spec_from_file_location("fix_corpus", ROOT / "benchmarks" / "fix_corpus.py")
    fc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fc)
    old = b"a\r\nb(x)\nc(\n  y,\n  z=False,\n)\n"
    new = b"a\r\nb(x, w=True)\nc(\n  y,\n)\n"
    assert fc.changed_rows(old, new) == ({2, 5}, 1, 2)
    diags = [
        {"filename": "f", "fix": {"edits": [{"location": {"row": 2, "column": 4}, "end_location": {"row": 2, "column": 4}}]}},
        {"filename": "f", "fix": {"edits": [{"location": {"row": 4, "column": 4}, "end_location": {"row": 5, "column": 11}}]}},
        {"filename": "f", "fix": None},
    ]
    assert fc.touched_rows(diags) == {"f": [{2}, {4, 5}]}


def test_broken_fix_from_a_rule_is_never_applied(monkeypatch):
    # a rule bug (edit past the end, end before start, edits overlapping) must not corrupt text
    from ckptlint.engine.context import FileContext
    from ckptlint.diagnostic import Edit, Location

    src = "import torch\nx = torch.load(p)\n"
    broken = [
        lambda self, call, kw: Edit(Location(9, 1), Location(9, 1), "x"),
        lambda self, call, kw: Edit(Location(2, 99), Location(2, 99), "x"),
        lambda self, call, kw: Edit(Location(2, 10), Location(2, 5), "x"),
    ]
    for make in broken:
        monkeypatch.setattr(FileContext, "add_keyword", make)
        text, remaining, applied = check(src, fix=True, unsafe=True)
        assert text == src and applied == []
        assert sorted(d.code for d in remaining) == ["CKPT002", "CKPT004"]

    def overlapping(self, call, message, edits=(), *args, **kwargs):
        edits = [Edit(Location(2, 5), Location(2, 10), "a"), Edit(Location(2, 8), Location(2, 12), "b")]
        return real_report(self, call, message, edits, *args, **kwargs)

    monkeypatch.undo()
    real_report = FileContext.report
    monkeypatch.setattr(FileContext, "report", overlapping)
    text, remaining, applied = check(src, fix=True, unsafe=True)
    assert text == src and applied == []
