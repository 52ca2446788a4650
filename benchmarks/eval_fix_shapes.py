"""Run fixed loads against files shaped like the labelled code bases' own saves (issue 20).

Each shape below rebuilds, with real torch and tiny tensors, what a code base's save site
writes (the labels' `exec:` tag names the shape); the load is then run as the unsafe fix
leaves it (`weights_only=True`, `map_location="cpu"`) followed by the reads the code does.
A shape whose load fails prints FAILS: the fix verdict for it must be `breaks`.

    python benchmarks/eval_fix_shapes.py            # every shape
    python benchmarks/eval_fix_shapes.py audiolm-pkg
"""

from __future__ import annotations

import argparse
import io
import pickle
import sys
from collections import OrderedDict
from typing import Callable, Dict

import numpy as np
import torch
from torch import nn


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def _optim(net: nn.Module) -> torch.optim.Optimizer:
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.randn(5, 3)).sum().backward()
    opt.step()
    return opt


def _roundtrip(obj, reads: Callable) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True, map_location="cpu")
    reads(loaded)


def list_of_int_ids() -> None:
    """super-gradients coco_segmentation.py:159 -> :77"""
    _roundtrip([9, 25, 30], lambda ids: [int(i) for i in ids])


def state_dict() -> None:
    """a plain state dict read with .items() / .size() and load_state_dict"""
    net = _net()

    def reads(sd):
        fresh = _net()
        own = fresh.state_dict()
        own.update({k: v for k, v in sd.items() if own[k].size() == v.size()})
        fresh.load_state_dict(own)

    _roundtrip(net.state_dict(), reads)


def sg_trainer_ckpt() -> None:
    """super-gradients Trainer._save_checkpoint: state dicts and plain values"""
    net = _net()
    opt = _optim(net)
    scaler = torch.amp.GradScaler("cpu")
    sched = torch.optim.lr_scheduler.StepLR(opt, 3)
    state = {
        "net": net.state_dict(), "acc": 0.5, "epoch": 3,
        "metrics": {"tracked_metric_name": "mAP", "valid": {"mAP": 0.5}},
        "packages": {"torch": "2.13.0"}, "_best_ckpt_metrics": {},
        "optimizer_state_dict": opt.state_dict(), "scaler_state_dict": scaler.state_dict(),
        "ema_net": net.state_dict(),
        "processing_params": {"image_processor": {"ComposeProcessing": {"processings": [
            {"StandardizeImage": {"max_value": 255.0}}]}}, "class_names": ["a", "b"]},
        "torch_scheduler_state_dict": sched.state_dict(),
    }
    _roundtrip(state, lambda ck: (_net().load_state_dict(ck["net"]), dict(**ck["processing_params"])))


def audiolm_pkg() -> None:
    """audiolm-pytorch trainers / SoundStream.save: state dicts, a pickled config (bytes), version"""
    net = _net()
    pkg = dict(model=net.state_dict(), optim=_optim(net).state_dict(),
               config=pickle.dumps({"codebook_size": 4}), version="2.4.0", ema_model=net.state_dict())

    def reads(p):
        _net().load_state_dict(p["model"])
        assert pickle.loads(p["config"]) == {"codebook_size": 4}

    _roundtrip(pkg, reads)


def sg_averaging_snapshots() -> None:
    """super-gradients weight_averaging_utils.py:52 (fix withheld there): numpy arrays"""
    _roundtrip({"snapshot0": None, "snapshots_metric": np.inf * np.ones(3)}, lambda d: d["snapshots_metric"])


def fairseq_ckpt() -> None:
    """fairseq releases (vq-wav2vec, HuBERT) read by audiolm-pytorch: `args` is a Namespace"""
    import argparse

    ck = {"args": argparse.Namespace(arch="wav2vec", dim=4), "model": _net().state_dict(),
          "optimizer_history": [{"criterion_name": "x", "optimizer_name": "Adam", "num_updates": 1}]}
    _roundtrip(ck, lambda c: c["model"])


def lightning_hparams_ckpt() -> None:
    """a Lightning checkpoint whose hyper_parameters hold a config object (pytorch-tabular's
    pl_load callers); OmegaConf's DictConfig when installed, else an argparse Namespace"""
    try:
        from omegaconf import OmegaConf

        hp = {"config": OmegaConf.create({"task": "regression", "learning_rate": 1e-3})}
    except ImportError:
        import argparse

        hp = {"config": argparse.Namespace(task="regression", learning_rate=1e-3)}
    ck = {"state_dict": _net().state_dict(), "epoch": 1, "global_step": 10,
          "pytorch-lightning_version": "2.4.0", "hyper_parameters": hp}
    _roundtrip(ck, lambda c: c.get("state_dict") or c)


def tensor_pair() -> None:
    """diffusers convert_from_ckpt.py:1079: the unCLIP clip stats, a (mean, std) pair"""
    _roundtrip((torch.zeros(4), torch.ones(4)), lambda t: (t[0][None, :], t[1][None, :]))


class ModelCheckpoint:  # stands for pytorch_lightning's callback class, pickled by reference
    pass


def ldm_release_ckpt() -> None:
    """an original SD weights release: state_dict and counters"""
    _roundtrip({"state_dict": _net().state_dict(), "global_step": 470000, "epoch": 6},
               lambda c: c["state_dict"])


def ldm_lightning_ckpt() -> None:
    """a full CompVis/Lightning training checkpoint: `callbacks` is keyed by the callback class"""
    _roundtrip({"state_dict": _net().state_dict(), "global_step": 1, "epoch": 0,
                "callbacks": {ModelCheckpoint: {"best_model_score": None}}},
               lambda c: c["state_dict"])


def str_int_dict() -> None:
    """s3prl mos_prediction/dataset.py:79 -> :17: judge ids (str) to ints"""
    _roundtrip({"judge_a": 0, "judge_b": 1}, lambda t: t["judge_b"])


def tags_lengths() -> None:
    """s3prl sv_voxceleb1/dataset.py:54 -> :56: [path-part tuples, int lengths]"""
    _roundtrip([[("id10001", "1zcIwhmdeo4", "00001.wav")], [48000]], lambda t: list(zip(*t)))


def s3prl_runner_ckpt() -> None:
    """s3prl downstream/pretrain runner checkpoints: `Args` is the argparse Namespace"""
    import argparse

    net = _net()
    states = {"Optimizer": _optim(net).state_dict(), "Step": 10, "Epoch": 1,
              "Args": argparse.Namespace(upstream="hubert", expdir="result"),
              "Config": {"runner": {"total_steps": 10}}, "Downstream": net.state_dict()}
    _roundtrip(states, lambda c: vars(c["Args"]))


def s3prl_converted() -> None:
    """s3prl upstream/*/convert.py: config dicts, the state dict and symbol lists"""
    out = {"task_cfg": {"_name": "hubert_pretraining", "sample_rate": 16000, "labels": ["km"]},
           "model_cfg": {"_name": "hubert", "extractor_mode": "default", "encoder_layers": 2},
           "model_weight": _net().state_dict(), "dictionaries_symbols": [["<s>", "<pad>", "1", "2"]]}
    _roundtrip(out, lambda c: _net().load_state_dict(c["model_weight"]))


SHAPES: Dict[str, Callable[[], None]] = {
    "list-of-int-ids": list_of_int_ids,
    "state-dict": state_dict,
    "sg-trainer-ckpt": sg_trainer_ckpt,
    "audiolm-pkg": audiolm_pkg,
    "sg-averaging-snapshots": sg_averaging_snapshots,
    "fairseq-ckpt": fairseq_ckpt,
    "lightning-hparams-ckpt": lightning_hparams_ckpt,
    "tensor-pair": tensor_pair,
    "ldm-release-ckpt": ldm_release_ckpt,
    "ldm-lightning-ckpt": ldm_lightning_ckpt,
    "str-int-dict": str_int_dict,
    "tags-lengths": tags_lengths,
    "s3prl-runner-ckpt": s3prl_runner_ckpt,
    "s3prl-converted": s3prl_converted,
}
# shapes whose weights-only load is expected to fail (they document a withheld or breaking fix)
EXPECTED_TO_FAIL = {
    "sg-averaging-snapshots", "fairseq-ckpt", "lightning-hparams-ckpt", "ldm-lightning-ckpt", "s3prl-runner-ckpt",
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("shapes", nargs="*")
    names = ap.parse_args().shapes or list(SHAPES)
    status = 0
    for name in names:
        try:
            SHAPES[name]()
            result = "loads"
        except Exception as e:  # noqa: BLE001 - any failure of the fixed load is the finding
            result = f"FAILS ({type(e).__name__}: {str(e).splitlines()[0][:120]})"
        expected = "FAILS" if name in EXPECTED_TO_FAIL else "loads"
        if not result.startswith(expected):
            status = 1
        print(f"{name:28} {result}  [expected: {expected}]")
    return status


if __name__ == "__main__":
    sys.exit(main())
