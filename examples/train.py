"""A small training script with the checkpoint mistakes ckptlint is for."""

import os
import pickle

import torch
from torch import nn
from torch.hub import load_state_dict_from_url

# Someone hit "Unsupported global" once and switched the safety off for everyone.
os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"

PRETRAINED = "https://example.com/backbone.pth"


class Classifier(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(32, 64), nn.ReLU())
        self.head = nn.Linear(64, num_classes)

    def forward(self, x):
        return self.head(self.backbone(x))


def train(epochs: int = 2) -> None:
    model = Classifier()
    model.backbone.load_state_dict(load_state_dict_from_url(PRETRAINED))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    if os.path.exists("last.pt"):
        state = torch.load("last.pt")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    for _ in range(epochs):
        loss = model(torch.randn(8, 32)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.save(
        {"model": model.state_dict(), "optimizer": optimizer.state_dict()},
        "last.pt",
        _use_new_zipfile_serialization=False,
    )
    torch.save(model, "classifier_full.pt")  # "so we don't need the class to load it"
    with open("classifier_model.pkl", "wb") as fh:
        pickle.dump(model, fh)


if __name__ == "__main__":
    train()
