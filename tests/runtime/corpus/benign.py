"""Benign checkpoints written by the real libraries, the way real projects write them.

``build(root, torch)`` -> {name: path verify is given}. Lightning is used when installed
(``pytorch_lightning``), in a subprocess (its import is slow and sets global state).
"""

from __future__ import annotations

import argparse
import collections
import datetime
import importlib.util
import io
import json
import pathlib
import random
import subprocess
import sys

from tests.helpers import HANG

from . import streams


def _model(torch):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))


def build(root, torch) -> dict:
    root = pathlib.Path(root)
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    lightning = None
    if importlib.util.find_spec("pytorch_lightning"):  # slow: runs while the rest is written
        out["lightning.ckpt"] = root / "lightning.ckpt"
        lightning = subprocess.Popen([sys.executable, "-c", LIGHTNING, str(out["lightning.ckpt"])],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(root))

    def save(name, obj, **kw):
        out[name] = root / name
        torch.save(obj, out[name], **kw)

    model = _model(torch)
    sd = model.state_dict()
    save("state_dict.pt", sd)
    save("legacy.pt", sd, _use_new_zipfile_serialization=False)
    save("dataparallel.pt", torch.nn.DataParallel(model).state_dict())
    # torch.compile's wrapper names every key `_orig_mod.<key>`; importing torch._dynamo for
    # it costs seconds, and the file differs from state_dict.pt only in those names
    save("compiled.pth", collections.OrderedDict((f"_orig_mod.{k}", v) for k, v in sd.items()))
    save("half.pt", {k: v.half() if v.is_floating_point() else v for k, v in sd.items()})
    save("parameters.pt", {"w": torch.nn.Parameter(torch.ones(2)), "sizes": torch.Size([2, 3]),
                           "dtype": torch.float16, "device": torch.device("cpu")})
    _numpy(save, sd)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.randn(4, 4)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1)
    save("optimizer_scheduler.pt", {"epoch": 3, "model_state_dict": sd, "optimizer_state_dict": opt.state_dict(),
                                    "scheduler": sched.state_dict(), "best_acc": 0.9})
    save("training_args.pt", {"args": argparse.Namespace(lr=0.1, layers=[4, 3]), "state_dict": sd,
                              "saved_at": datetime.datetime(2024, 1, 2, 3, 4, 5),
                              "data_dir": pathlib.PurePosixPath("/data/train"),
                              "history": collections.defaultdict(list, {"loss": [1.0, 0.5]}),
                              "counts": collections.Counter("aab")})
    _hugging_face(root, out, torch, sd)
    out["rng_state.pth"] = root / "rng_state.pth"
    _rng_state(torch, out["rng_state.pth"])
    _joblib(root, out)
    _containers(root, out, torch, sd)
    streams.dcp_save(torch, root / "dcp")
    out["dcp"] = root / "dcp"
    out["dcp/.metadata"] = root / "dcp" / ".metadata"
    out["dcp/__0_0.distcp"] = root / "dcp" / "__0_0.distcp"
    if lightning is not None:
        _, err = lightning.communicate(timeout=HANG)
        assert lightning.returncode == 0, err[-3000:]
    return out


def _containers(root, out, torch, sd) -> None:
    """Issue 21: containers, compression and nested archives written by the real libraries."""
    import gzip
    import pickle
    import warnings

    from . import containers

    def write(name, data):
        out[name] = root / name
        out[name].write_bytes(data)

    with open(root / "pickle_dump_tensors.pkl", "wb") as f:  # tensors pickle as _load_from_bytes
        pickle.dump({"w": torch.ones(3), "step": 7}, f)
    out["pickle_dump_tensors.pkl"] = root / "pickle_dump_tensors.pkl"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lstm = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(torch.nn.LSTM(4, 3)),
                                                      {torch.nn.LSTM}, dtype=torch.qint8)
    torch.save(lstm.state_dict(), root / "quantized_lstm.pt")
    out["quantized_lstm.pt"] = root / "quantized_lstm.pt"
    with open(root / "quantized_lstm.pkl", "wb") as f:
        pickle.dump(lstm.state_dict(), f)
    out["quantized_lstm.pkl"] = root / "quantized_lstm.pkl"
    for protocol in (4, 5):
        torch.save(sd, root / f"protocol{protocol}.pt", pickle_protocol=protocol)
        out[f"protocol{protocol}.pt"] = root / f"protocol{protocol}.pt"
    containers.export_model(torch, root / "exported.pt2")
    out["exported.pt2"] = root / "exported.pt2"
    buf = io.BytesIO()
    torch.save(sd, buf)
    write("state_dict.pt.gz", gzip.compress(buf.getvalue()))
    plain = pickle.dumps(collections.OrderedDict(lr=0.1, steps=list(range(500))), protocol=4)
    write("split_members.pkl.gz", containers.split_gzip(plain))
    write("lzma_dict_32k.pkl.lzma", containers.lzma_dict_32k(plain))
    try:
        import zstandard
    except ImportError:
        pass
    else:
        write("plain.pkl.zst", zstandard.ZstdCompressor().compress(plain))
    try:
        import joblib
        import numpy as np
    except ImportError:
        return
    codecs = ["zlib", "gzip", "bz2", "xz", "lzma"] + (["lz4"] if importlib.util.find_spec("lz4") else [])
    for codec in codecs:
        name = f"arrays_{codec}.joblib"
        joblib.dump({"w": np.arange(12, dtype=np.float32).reshape(3, 4), "labels": np.array(["a", "bc"])},
                    root / name, compress=(codec, 3))
        out[name] = root / name


def _numpy(save, sd) -> None:
    try:
        import numpy as np
    except ImportError:
        return
    save("numpy_metadata.pt", {"state_dict": sd, "meta": {
        "mean": np.float64(0.5), "count": np.int64(3), "hist": np.arange(3), "table": np.zeros((2, 2), np.float32),
        "dtype": np.dtype("float32"), "flag": np.bool_(True)}})


def _joblib(root, out) -> None:
    """joblib writes array bytes inside the pickle stream (numeric arrays raw, aligned;
    object arrays as a nested pickle)."""
    try:
        import joblib
        import numpy as np
    except ImportError:
        return
    out["arrays.joblib"] = root / "arrays.joblib"
    joblib.dump({"w": np.arange(12, dtype=np.float32).reshape(3, 4), "ids": np.arange(5),
                 "labels": np.array(["a", "bc"]), "objects": np.array([1, "x", None], dtype=object),
                 "scalar": np.float64(2.5)}, out["arrays.joblib"])


def _rng_state(torch, path) -> None:
    """What the Hugging Face Trainer writes to rng_state.pth (Trainer._save_rng_state) on a CPU host."""
    import numpy as np

    torch.save({"python": random.getstate(), "numpy": np.random.get_state(),
                "cpu": torch.random.get_rng_state()}, path)


def _hugging_face(root, out, torch, sd) -> None:
    """`save_pretrained` layouts: pytorch_model.bin (torch.save of the state dict), safetensors,
    and sharded checkpoints with their *.index.json."""
    out["pytorch_model.bin"] = root / "pytorch_model.bin"
    torch.save(sd, out["pytorch_model.bin"])
    keys = sorted(sd)
    halves = {k: (1 if i < len(keys) // 2 else 2) for i, k in enumerate(keys)}
    shard_dir = root / "sharded_bin"
    shard_dir.mkdir()
    index = {"metadata": {"total_size": 0}, "weight_map": {}}
    for n in (1, 2):
        name = f"pytorch_model-0000{n}-of-00002.bin"
        torch.save({k: v for k, v in sd.items() if halves[k] == n}, shard_dir / name)
        index["weight_map"].update({k: name for k in keys if halves[k] == n})
    (shard_dir / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    out["pytorch_model.bin.index.json"] = shard_dir / "pytorch_model.bin.index.json"
    try:
        from safetensors.torch import save_file
    except ImportError:
        return
    tensors = {k: v.contiguous() for k, v in sd.items()}
    out["model.safetensors"] = root / "model.safetensors"
    save_file(tensors, out["model.safetensors"], metadata={"format": "pt"})
    st_dir = root / "sharded_safetensors"
    st_dir.mkdir()
    index = {"metadata": {"total_size": 0}, "weight_map": {}}
    for n in (1, 2):
        name = f"model-0000{n}-of-00002.safetensors"
        save_file({k: v for k, v in tensors.items() if halves[k] == n}, st_dir / name, metadata={"format": "pt"})
        index["weight_map"].update({k: name for k in keys if halves[k] == n})
    (st_dir / "model.safetensors.index.json").write_text(json.dumps(index))
    out["model.safetensors.index.json"] = st_dir / "model.safetensors.index.json"


LIGHTNING = r"""
import sys, torch, pytorch_lightning as pl

class Classifier(pl.LightningModule):
    def __init__(self, lr=0.1):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Linear(4, 2)

    def training_step(self, batch, i):
        return self.net(batch[0]).sum()

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        return [opt], [torch.optim.lr_scheduler.StepLR(opt, 1)]

data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 4)), batch_size=4)
trainer = pl.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, accelerator="cpu", devices=1)
trainer.fit(Classifier(), data)
trainer.save_checkpoint(sys.argv[1])
"""

