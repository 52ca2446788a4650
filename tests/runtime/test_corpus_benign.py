"""Issue 12: benign checkpoints written by the real libraries are never called code-running
and never unreadable: no CKPT101 error, no message saying "runs code", never CKPT109.
(Data types that only need allowlisting may get a CKPT101 warning.)
"""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

from .corpus import benign
from .corpus.run import by_file, once_per_session, says, verify_json

pytestmark = pytest.mark.slow  # servers, subprocesses, corpora: the whole suite runs them

NAMES = ["state_dict.pt", "legacy.pt", "dataparallel.pt", "compiled.pth", "half.pt", "parameters.pt",
         "numpy_metadata.pt", "optimizer_scheduler.pt", "training_args.pt", "pytorch_model.bin",
         "pytorch_model.bin.index.json", "model.safetensors", "model.safetensors.index.json",
         "rng_state.pth", "dcp", "dcp/.metadata", "dcp/__0_0.distcp", "lightning.ckpt", "arrays.joblib",
         # issue 21: containers, compression, nested archives
         "pickle_dump_tensors.pkl", "quantized_lstm.pt", "quantized_lstm.pkl", "protocol4.pt", "protocol5.pt",
         "exported.pt2", "state_dict.pt.gz", "split_members.pkl.gz", "lzma_dict_32k.pkl.lzma", "plain.pkl.zst",
         "arrays_zlib.joblib", "arrays_gzip.joblib", "arrays_bz2.joblib", "arrays_xz.joblib", "arrays_lzma.joblib",
         "arrays_lz4.joblib"]


def _run(folder: pathlib.Path) -> dict:
    if importlib.util.find_spec("torch") is None:
        return {}
    import torch

    built = benign.build(folder / "files", torch)
    proc, diags = verify_json(list(built.values()), cwd=folder / "fresh-cwd")
    files = by_file(diags)
    out = {}
    for name, path in built.items():
        # a folder's findings carry the names of the files below it
        out[name] = [d for f, ds in files.items() for d in ds
                     if f == str(path) or f.startswith(str(path) + "/")]
    return out


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    found = once_per_session(tmp_path_factory, "benign", _run)
    if not found:
        pytest.skip("needs torch")
    return found


@pytest.mark.parametrize("name", NAMES)
def test_benign_checkpoint_is_not_called_code_running_or_unreadable(results, name):
    if name not in results:
        pytest.skip(f"{name}: the library that writes it is not installed")
    diags = results[name]
    assert all("severity" in d for d in diags), f"no severity in the JSON:\n{says(diags)}"
    assert not [d for d in diags if d["code"] == "CKPT109"], says(diags)
    assert not [d for d in diags if "runs code" in d["message"]], says(diags)
    assert not [d for d in diags if d["code"] == "CKPT101" and d["severity"] == "error"], says(diags)
