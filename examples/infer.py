"""Inference side: loads what train.py wrote."""

import torch as T
from torch.serialization import load

from train import Classifier


def predict(x):
    model = Classifier()
    model.load_state_dict(load("last.pt", weights_only=True)["model"])
    model.eval()
    return model(x)


def resume_anything(path):
    # "it failed with weights_only, so turn it off"
    return T.load(path, weights_only=False, map_location="cpu")


def load_for_gpu(path, device):
    return T.load(path, map_location=device)
