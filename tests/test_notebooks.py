"""Notebooks: cell-by-cell positions, masked IPython syntax, a broken cell, exact --fix."""

from __future__ import annotations

import json

import pytest

from tests.helpers import run_cli, run_json


def _cell(kind, lines, **extra):
    cell = {"cell_type": kind, "metadata": {}, "source": lines}
    if kind == "code":
        cell.update({"execution_count": None, "outputs": []})
    cell.update(extra)
    return cell


def _nbformat(nb) -> str:
    # what nbformat.write produces
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False, separators=(",", ": ")) + "\n"


NOTEBOOK = {
    "cells": [
        _cell("markdown", ["# Loading — a title\n", "`torch.load('x.pt')` in markdown is not code\n"]),
        _cell("code", ["import torch\n", "%matplotlib inline\n", "!pip list\n", "files = !ls\n", "torch.load?"]),
        _cell("code", ["def broken(:\n", "    pass"]),
        _cell("code", ["x = 'é😀'\n", "sd = torch.load('m.pt', map_location='cpu')\n", "print(x)"],
              outputs=[{"name": "stdout", "output_type": "stream", "text": ["é😀\n"]}], execution_count=3),
        _cell("code", ["%%time\n", "torch.save(sd, 'm.pt', _use_new_zipfile_serialization=False)\n", "sd?"]),
        _cell("code", ["%%bash\n", "echo torch.load not python\n"]),
    ],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def _write(tmp_path, nb=NOTEBOOK, name="nb.ipynb"):
    path = tmp_path / name
    path.write_text(_nbformat(nb), encoding="utf-8")
    return path


def test_positions_are_cell_relative(tmp_path):
    _write(tmp_path)
    _, diags = run_json("check", "nb.ipynb", cwd=tmp_path)
    got = [(d["code"], d["cell"], d["location"]["row"], d["location"]["column"]) for d in diags]
    assert got == [
        ("E999", 3, 1, 12),
        ("CKPT002", 4, 2, 6),  # `torch` imported in cell 2 resolves here
        ("CKPT009", 5, 2, 1),
    ]
    assert all(d["filename"] == str(tmp_path / "nb.ipynb") for d in diags)
    fix = next(d for d in diags if d["code"] == "CKPT009")["fix"]
    assert fix["edits"][0]["location"]["row"] == 2  # edits in the same cell coordinates


def test_text_output_names_the_cell(tmp_path):
    _write(tmp_path)
    proc = run_cli("check", "nb.ipynb", cwd=tmp_path)
    assert proc.returncode == 1
    assert "nb.ipynb:cell 4:2:6: CKPT002 " in proc.stdout
    assert "nb.ipynb:cell 3:1:12: E999 " in proc.stdout


@pytest.mark.slow
def test_fix_rewrites_only_the_fixed_line(tmp_path):
    path = _write(tmp_path)
    before = path.read_text(encoding="utf-8")
    proc = run_cli("check", "--fix", "nb.ipynb", cwd=tmp_path)
    assert proc.returncode == 1  # CKPT002 (unsafe) and the broken cell remain
    after = path.read_text(encoding="utf-8")
    old = '"torch.save(sd, \'m.pt\', _use_new_zipfile_serialization=False)\\n",'
    assert before.count(old) == 1
    assert after == before.replace(old, '"torch.save(sd, \'m.pt\')\\n",')
    _, diags = run_json("check", "nb.ipynb", cwd=tmp_path)
    assert [(d["code"], d["cell"]) for d in diags] == [("E999", 3), ("CKPT002", 4)]


def test_unsafe_fix_in_a_notebook_and_final_newline_kept(tmp_path):
    path = tmp_path / "nb.ipynb"
    nb = {"cells": [_cell("code", ["import torch\n"]), _cell("code", "sd = torch.load('m.pt', map_location='cpu')")],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(_nbformat(nb)[:-1], encoding="utf-8")  # no final newline
    proc = run_cli("check", "--fix", "--unsafe-fixes", "nb.ipynb", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    text = path.read_text(encoding="utf-8")
    assert not text.endswith("\n")
    cells = json.loads(text)["cells"]
    assert cells[1]["source"] == "sd = torch.load('m.pt', map_location='cpu', weights_only=True)"
    assert cells[0]["source"] == ["import torch\n"]


def test_a_name_not_imported_in_any_cell_does_not_resolve(tmp_path):
    nb = {"cells": [_cell("code", ["sd = torch.load('m.pt', map_location='cpu')\n"])],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    _write(tmp_path, nb)
    _, diags = run_json("check", "nb.ipynb", cwd=tmp_path)
    assert diags == []


def test_notebooks_are_discovered_and_noqa_works_in_cells(tmp_path):
    nb = {"cells": [_cell("code", ["import torch\n"]),
                    _cell("code", ["sd = torch.load('m.pt', map_location='cpu')  # noqa: CKPT002\n",
                                   "sd = torch.load('m.pt', map_location='cpu')\n"])],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub", nb, "a.ipynb")
    _, diags = run_json("check", ".", cwd=tmp_path)
    assert [(d["code"], d["cell"], d["location"]["row"]) for d in diags] == [("CKPT002", 2, 2)]


def test_invalid_notebook_is_reported_not_skipped(tmp_path):
    (tmp_path / "bad.ipynb").write_text("{not json", encoding="utf-8")
    _, diags = run_json("check", "bad.ipynb", cwd=tmp_path)
    assert [d["code"] for d in diags] == ["E902"] and "notebook" in diags[0]["message"]


def test_add_noqa_in_a_notebook(tmp_path):
    path = _write(tmp_path)
    proc = run_cli("check", "--add-noqa", "nb.ipynb", cwd=tmp_path)
    assert proc.returncode == 0 and "Added 2 noqa directives." in proc.stderr
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    assert cells[3]["source"][1] == "sd = torch.load('m.pt', map_location='cpu')  # noqa: CKPT002\n"
    assert cells[4]["source"][1].endswith("=False)  # noqa: CKPT009\n")
    _, diags = run_json("check", "nb.ipynb", cwd=tmp_path)
    assert [d["code"] for d in diags] == ["E999"]


def test_fixed_notebook_is_what_nbformat_writes(tmp_path):
    """The claim checked against the real nbformat (installed with the `test` extra)."""
    import copy

    import pytest

    nbformat = pytest.importorskip("nbformat")
    nb = copy.deepcopy(NOTEBOOK)
    for i, cell in enumerate(nb["cells"]):
        cell["id"] = f"cell-{i}"  # nbformat 4.5 wants ids; it would add them otherwise
    path = tmp_path / "nb.ipynb"
    nbformat.write(nbformat.from_dict(nb), str(path))
    before = path.read_text(encoding="utf-8")
    run_cli("check", "--fix", "nb.ipynb", cwd=tmp_path)
    after = path.read_text(encoding="utf-8")
    assert after != before
    rewritten = tmp_path / "again.ipynb"
    nbformat.write(nbformat.read(str(path), as_version=4), str(rewritten))
    assert rewritten.read_text(encoding="utf-8") == after
