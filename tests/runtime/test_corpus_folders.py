"""Issue 12: `ckptlint verify DIR` sniffs content whatever the file name (hostile `.pkl`,
`.pickle`, `.joblib`, extension-less and DCP files are each reported) and says on stderr how
many files it skipped and why.
"""

from __future__ import annotations

import importlib.util
import json
import re

import pytest

import gzip

from .corpus import containers, ops, streams, zips
from .corpus.run import says
from ._util import run_cli

pytestmark = pytest.mark.slow  # servers, subprocesses, corpora: the whole suite runs them

TEXT_FILES = {"README.md": "# run 3\n", "train.py": "print('hi')\n", "notes.txt": "lr 0.1\n",
              "loss.csv": "step,loss\n1,0.5\n"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder-corpus")
    runs = root / "runs"
    markers = root / "markers"
    markers.mkdir()
    hostile = {}

    def add(rel, data):
        path = runs / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        hostile[rel] = path

    add("model.pkl", ops.hostile(markers / "pkl"))
    add("model.pickle", ops.hostile(markers / "pickle"))
    add("scaler.joblib", ops.hostile(markers / "joblib"))
    add("sub/checkpoint", ops.hostile(markers / "noext"))
    add("sub/weights.data", zips.build(zips.torch_records(ops.hostile(markers / "zip"))))
    add("old/legacy", streams.legacy({3: ops.hostile(markers / "legacy")}))
    # issue 21: found by content wherever a loader would find them
    add("notes/late_payload", containers.late_protocol0(markers / "late"))  # no PROTO, payload after 64 KiB
    add("notes/late_payload.gz", gzip.compress(containers.late_protocol0(markers / "late_gz")))
    add("polyglot/bzh", containers.bzh_pickle(markers / "bzh"))
    add("polyglot/model.safetensors", containers.safetensors_head_pickle(markers / "st_head"))
    for name, text in TEXT_FILES.items():
        (runs / name).write_text(text)
    dcp = None
    if importlib.util.find_spec("torch") is not None:
        import torch

        dcp = runs / "dcp_step_10"
        streams.dcp_save(torch, dcp)
        archive = zips.build(zips.torch_records(ops.hostile(markers / "distcp")))
        hostile["dcp_step_10/__0_0.distcp"] = streams.dcp_replace_item(dcp, "extra.name", archive)
    cwd = root / "fresh-cwd"
    cwd.mkdir()
    as_json = run_cli(runs, "--output-format", "json", cwd=cwd)
    as_text = run_cli(runs, cwd=cwd)
    return {"hostile": hostile, "json": as_json, "text": as_text, "markers": markers}


def test_folder_run_exits_1_and_runs_nothing(folder):
    assert folder["json"].returncode == 1
    assert "Traceback" not in folder["json"].stderr + folder["text"].stderr
    assert list(folder["markers"].iterdir()) == []


@pytest.mark.parametrize("rel", ["model.pkl", "model.pickle", "scaler.joblib", "sub/checkpoint",
                                 "sub/weights.data", "old/legacy", "dcp_step_10/__0_0.distcp",
                                 "notes/late_payload", "notes/late_payload.gz", "polyglot/bzh",
                                 "polyglot/model.safetensors"])
def test_every_hostile_file_in_the_folder_is_reported_by_content(folder, rel):
    if rel not in folder["hostile"]:
        pytest.skip("the DCP folder needs torch")
    diags = json.loads(folder["json"].stdout)
    path = str(folder["hostile"][rel])
    mine = [d for d in diags if d["filename"] == path]
    assert any(d["code"] == "CKPT101" and "runs code" in d["message"] for d in mine), (
        f"{rel}: verify said:\n{says(mine)}\n(all files: {sorted({d['filename'] for d in diags})})")


def test_stderr_says_how_many_files_were_skipped_and_why(folder):
    lines = [ln for ln in folder["text"].stderr.splitlines() if "skip" in ln.lower()]
    assert lines, f"nothing on stderr about skipped files: {folder['text'].stderr!r}"
    # the four text files are not checkpoints, whatever else the folder holds
    assert any(re.search(rf"\b{len(TEXT_FILES)}\b", ln) for ln in lines), lines
    assert any(len(ln.split()) > 3 for ln in lines), "the count comes without a reason"
