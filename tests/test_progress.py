"""The progress line: on stderr for long text runs in a terminal; never with JSON output."""

from __future__ import annotations

import io
import json

from ckptlint.cli import main as cli

from ckptlint.cli import progress


def test_draws_after_the_delay_and_clears():
    stream = io.StringIO()
    p = progress.Progress(stream, delay=0)
    p(3, 10)
    assert "3/10 files" in stream.getvalue()
    p.close()
    assert stream.getvalue().endswith("\r\x1b[2K")


def test_silent_during_the_delay():
    stream = io.StringIO()
    p = progress.Progress(stream, delay=60)
    p(1, 2)
    p.close()
    assert stream.getvalue() == ""


def _run(tmp_path, monkeypatch, capsys, fmt):
    (tmp_path / "a.py").write_text("import torch\ntorch.load(p)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_stderr_is_tty", lambda: True)
    monkeypatch.setattr(progress, "DELAY", 0)
    cli.main(["check", ".", "--no-cache", "--output-format", fmt])
    return capsys.readouterr()


def test_text_output_in_a_terminal_shows_progress(tmp_path, monkeypatch, capsys):
    out = _run(tmp_path, monkeypatch, capsys, "text")
    assert "1/1 files" in out.err and "files" not in out.out.split("\n")[0]


def test_json_output_never_shows_progress(tmp_path, monkeypatch, capsys):
    out = _run(tmp_path, monkeypatch, capsys, "json")
    assert "files" not in out.err
    assert json.loads(out.out)
