"""CKPT108 device-bound: runtime rule metadata (reported by `ckptlint verify`, not by a source pass)."""

from __future__ import annotations

from ckptlint.rules._base import Rule


class DeviceBound(Rule):
    code = "CKPT108"
    name = "device-bound"
    summary = "Checkpoint storages saved on CUDA/MPS"
    phase = "runtime"
    fix_safety = "none"
    security_severity = None
    docs = """
    ## What it does
    Reports the devices (e.g. `cuda:0`, `mps`) recorded for the checkpoint's storages.

    ## Why is this bad?
    `torch.load` without `map_location` restores storages to the recorded device: on a CPU-only
    host it fails, and on a multi-GPU host every rank loads onto GPU 0.

    ## Example
    ```python
    import torch

    model = torch.nn.Linear(2, 3).cuda()
    torch.save(model.state_dict(), "model.pt")
    ```

    ## Use instead
    ```python
    import torch

    model = torch.nn.Linear(2, 3).cuda()
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, "model.pt")
    # or load with torch.load(path, map_location="cpu")
    ```

    ## Fix safety
    No fix.
    """
