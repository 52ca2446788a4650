"""The progress line: on stderr for long text runs in a terminal; never with JSON output."""

from __future__ import annotations

import io
import json

from ckptlint.cli import main as cli

from ckptlint.cli import progress


class _Clock:
    """The display's clock, moved by the test."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def _progress(monkeypatch, delay=None):
    clock = _Clock()
    monkeypatch.setattr(progress, "time", clock)
    stream = io.StringIO()
    return clock, stream, progress.Progress(stream, delay=delay)


def test_draws_after_the_delay_and_clears(monkeypatch):
    clock, stream, p = _progress(monkeypatch, delay=0)
    p(3, 10)
    assert "3/10 files" in stream.getvalue()
    p.close()
    assert stream.getvalue().endswith("\r\x1b[2K")


def test_silent_during_the_delay_then_redrawn_at_most_every_interval(monkeypatch):
    clock, stream, p = _progress(monkeypatch)
    clock.now += progress.DELAY * 0.9
    p(1, 4)
    assert stream.getvalue() == ""  # a short run stays silent
    clock.now += progress.DELAY
    p(2, 4)
    assert stream.getvalue().endswith("2/4 files")
    clock.now += progress.INTERVAL / 2
    p(3, 4)
    assert "3/4" not in stream.getvalue()
    p(4, 4)  # the last count is always drawn
    assert stream.getvalue().endswith("4/4 files")
    p.close()


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
