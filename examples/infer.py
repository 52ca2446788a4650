"""Inference side: loads what train.py wrote."""

import torch as T
from torch.serialization import load

from train import Classifier


def predict(x):
    model = Classifier()
    model.load_state_dict(load("last.pt", weights_only=True)["model"])
    model.eval()
    return model(x)


def load_from_multi_gpu_run(path):
    model = Classifier()
    state = torch_load_cpu(path)
    # strip DataParallel's prefix (also mangles any key containing "submodule.")
    state = {k.replace("module.", ""): v for k, v in state.items()}
    model.load_state_dict(state, strict=False)  # whatever does not match is silently skipped
    return model


def torch_load_cpu(path):
    return T.load(path, map_location="cpu", weights_only=True)


def load_full(model):
    # train.py wrote a whole pickled model to this path, not a state dict
    model.load_state_dict(T.load("classifier_full.pt", map_location="cpu", weights_only=True))


def resume_anything(path):
    # "it failed with weights_only, so turn it off"
    return T.load(path, weights_only=False, map_location="cpu")


def load_for_gpu(path, device):
    return T.load(path, map_location=device)
