"""What a checkpoint holds, as the code shows it, across a project's files: which loads can
take `weights_only=True`, which readers a save's fix changes. Snippets in the shape of real
detection and speech training code."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.helpers import check, run_cli, run_json


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def project(root: Path) -> None:
    write(root / "pyproject.toml", '[project]\nname = "det"\n')
    write(root / "det" / "__init__.py", "")
    write(root / "det" / "models.py", """\
        import torch.nn as nn


        class Detector(nn.Module):
            def __init__(self, classes=80):
                super().__init__()
                self.head = nn.Linear(8, classes)
    """)
    write(root / "det" / "train.py", """\
        import torch

        from det.models import Detector

        BEST = "runs/best.pt"


        def train():
            model = Detector()
            torch.save(model, BEST)
    """)
    write(root / "det" / "serve.py", """\
        import torch

        from det.train import BEST


        def serve():
            net = torch.load(BEST, map_location="cpu")
            return net
    """)


def test_load_of_a_file_saved_as_a_whole_model_gets_no_weights_only_fix(tmp_path):
    project(tmp_path)
    _, data = run_json("det/serve.py", "--select", "CKPT002", "--unsafe-fixes", cwd=tmp_path)
    (d,) = data
    assert d["fix"] is None
    assert "`runs/best.pt` is saved as a whole model at det/train.py:10" in d["help"]
    assert "re-save it as a state dict at det/train.py:10" in d["help"]
    assert "safe_globals" in d["help"]


def test_whole_model_save_names_the_readers_that_change_with_it(tmp_path):
    project(tmp_path)
    _, data = run_json("det/train.py", "--select", "CKPT001", "--unsafe-fixes", cwd=tmp_path)
    (d,) = data
    assert "its readers (det/serve.py:7) must then build the model and call `load_state_dict`" in d["help"]
    assert d["fix"] is not None


def test_one_dict_saved_to_last_and_best_is_fixed_once(tmp_path):
    source = textwrap.dedent("""\
        import torch
        import torch.nn as nn


        class Net(nn.Module):
            pass


        def save(last, best, is_best):
            model = Net()
            ckpt = {'model': model, 'epoch': 1}
            torch.save(ckpt, last)
            if is_best:
                torch.save(ckpt, best)
    """)
    _, diags, _ = check(source, ["CKPT001"])
    assert [d.location.row for d in diags] == [12, 14]
    assert diags[0].fix is not None and diags[1].fix is None
    assert "fixed with the save at line 12" in diags[1].help
    fixed, left, applied = check(source, ["CKPT001"], fix=True, unsafe=True)
    assert "'model': model.state_dict()" in fixed and left == [] and len(applied) == 1


def test_loaded_config_object_keeps_the_load_unfixed_and_says_why(tmp_path):
    f = write(tmp_path / "asr.py", """\
        import torch


        def build_from_fairseq(path):
            state = torch.load(path, map_location="cpu")
            lr = state["args"].lr
            return lr, state["model"]


        def average(paths):
            avg = torch.load(paths[0], map_location="cpu")
            for k in avg:
                avg[k] = avg[k].float() / len(paths)
            return avg
    """)
    proc, data = run_json("asr.py", "--select", "CKPT002", "--fix", "--unsafe-fixes", cwd=tmp_path)
    text = f.read_text()
    # the fairseq load keeps its default; the plain state-dict average gets the fix
    assert 'state = torch.load(path, map_location="cpu")\n' in text
    assert 'avg = torch.load(paths[0], map_location="cpu", weights_only=True)' in text
    assert "its `args` entry is used as a pickled object, not a tensor (`state[\"args\"].lr`, line 6)" in data[0]["help"]


@pytest.mark.slow
def test_no_save_fix_when_a_reader_uses_that_entry_as_a_module(tmp_path):
    """A detector's training script saves pickled modules under `model` and `ema`; its loader
    (whatever path it reads) fuses them. Turning them into state dicts breaks that loader."""
    write(tmp_path / "setup.py", "")
    write(tmp_path / "det" / "__init__.py", "")
    write(tmp_path / "det" / "train.py", """\
        from copy import deepcopy

        import torch


        def fit(model, epochs, last):
            for epoch in range(epochs):
                ckpt = {'epoch': epoch, 'model': deepcopy(de_parallel(model)).half()}
                torch.save(ckpt, last)
    """)
    write(tmp_path / "det" / "experimental.py", """\
        import torch


        def attempt_load(weights, device=None):
            ckpt = torch.load(weights, map_location='cpu')
            model = (ckpt.get('ema') or ckpt['model']).to(device).float()
            return model.fuse().eval()
    """)
    _, data = run_json("det/train.py", "--select", "CKPT001", "--unsafe-fixes", cwd=tmp_path)
    (d,) = data
    assert d["fix"] is None
    assert "no fix: det/experimental.py:6 (`model`) uses the saved module as one" in d["help"]
    # without that reader the fix is offered
    (tmp_path / "det" / "experimental.py").unlink()
    _, data = run_json("det/train.py", "--select", "CKPT001", "--unsafe-fixes", cwd=tmp_path)
    assert data[0]["fix"] is not None


@pytest.mark.slow
def test_resume_reading_one_entry_of_a_checkpoint_that_pickles_the_model(tmp_path):
    """Resuming reads only `["opt"]`, but the file is the training checkpoint whose `"model"`
    is a pickled module: `weights_only=True` would refuse it."""
    write(tmp_path / "setup.py", "")
    write(tmp_path / "det" / "__init__.py", "")
    write(tmp_path / "det" / "train.py", """\
        from copy import deepcopy

        import torch


        def fit(model, opt, epochs, w):
            for epoch in range(epochs):
                ckpt = {'epoch': epoch, 'model': deepcopy(de_parallel(model)).half(), 'opt': vars(opt)}
                torch.save(ckpt, w / 'last.pt')


        def resume(last):
            d = torch.load(last, map_location='cpu')['opt']
            return d
    """)
    _, data = run_json("det/train.py", "--select", "CKPT002", "--unsafe-fixes", cwd=tmp_path)
    (d,) = data
    assert d["fix"] is None
    assert "it reads `opt` like the checkpoint saved at train.py:9, whose `model` entry is a pickled module" in d["help"]


@pytest.mark.slow
def test_trainer_checkpoint_with_an_ema_attribute_is_known_to_pickle_a_model(tmp_path):
    """A trainer saves `deepcopy(self.ema.ema)` (an EMA helper's module) next to its metrics;
    a loader elsewhere gets the dict from a helper and fuses `ckpt.get("ema")`; a tuner reads
    only `["train_metrics"]` of such a file."""
    write(tmp_path / "setup.py", "")
    write(tmp_path / "yl" / "__init__.py", "")
    write(tmp_path / "yl" / "ema.py", """\
        from copy import deepcopy


        class ModelEMA:
            def __init__(self, model):
                self.ema = deepcopy(de_parallel(model)).eval()
                self.updates = 0
    """)
    write(tmp_path / "yl" / "trainer.py", """\
        from copy import deepcopy

        import torch

        from yl.ema import ModelEMA


        class Trainer:
            def setup(self, model):
                self.ema = ModelEMA(model)

            def save_model(self, path):
                torch.save({"ema": deepcopy(self.ema.ema).half(), "train_metrics": self.metrics}, path)
    """)
    write(tmp_path / "yl" / "tasks.py", """\
        import torch


        def safe_load(weight):
            return torch.load(weight, map_location="cpu")


        def attempt_load_one_weight(weight, device=None):
            ckpt = safe_load(weight)
            model = (ckpt.get("ema") or ckpt["model"]).to(device).float()
            return model.fuse().eval()
    """)
    write(tmp_path / "yl" / "tuner.py", """\
        import torch


        def best_metrics(ckpt_file):
            return torch.load(ckpt_file, map_location="cpu")["train_metrics"]
    """)
    _, data = run_json("yl", "--select", "CKPT001,CKPT002", "--unsafe-fixes", cwd=tmp_path)
    by_file = {(Path(d["filename"]).name, d["code"]): d for d in data}
    save = by_file[("trainer.py", "CKPT001")]
    assert save["fix"] is None and "yl/tasks.py:10 (`ema`) uses the saved module as one" in save["help"]
    tuner = by_file[("tuner.py", "CKPT002")]
    assert tuner["fix"] is None
    assert "it reads `train_metrics` like the checkpoint saved at yl/trainer.py:13, whose `ema` entry" in tuner["help"]


@pytest.mark.slow
def test_ema_loader_of_checkpoints_that_keep_the_argparse_namespace(tmp_path):
    """A checkpoint saver adds `args` (an argparse Namespace) after building its dict; the EMA
    helper reads `["state_dict_ema"]` of such files: `weights_only=True` refuses them."""
    write(tmp_path / "setup.py", "")
    write(tmp_path / "tm" / "__init__.py", "")
    write(tmp_path / "tm" / "saver.py", """\
        import torch


        class CheckpointSaver:
            def save(self, path, epoch, ema=None):
                state = {'epoch': epoch, 'state_dict': self.model.state_dict()}
                if self.args is not None:
                    state['args'] = self.args
                if ema is not None:
                    state['state_dict_ema'] = ema.state_dict()
                torch.save(state, path)
    """)
    write(tmp_path / "tm" / "ema.py", """\
        import torch


        class ModelEma:
            def load(self, checkpoint_path):
                checkpoint = torch.load(checkpoint_path, map_location='cpu')
                self.module.load_state_dict(checkpoint['state_dict_ema'])
    """)
    _, data = run_json("tm/ema.py", "--select", "CKPT002", "--unsafe-fixes", cwd=tmp_path)
    (d,) = data
    assert d["fix"] is None
    assert ("it reads `state_dict_ema` like the checkpoint saved at tm/saver.py:11, whose `args` entry is "
            "a pickled object (`self.args`)") in d["help"]
