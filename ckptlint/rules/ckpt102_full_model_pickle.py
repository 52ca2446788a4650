"""CKPT102 full-model-pickle: runtime rule metadata (reported by `ckptlint verify`, not by a source pass)."""

from __future__ import annotations

from ckptlint.rules._base import Rule


class FullModelPickle(Rule):
    code = "CKPT102"
    name = "full-model-pickle"
    summary = "Checkpoint holds a pickled nn.Module instead of a state dict"
    phase = "runtime"
    fix_safety = "none"
    security_severity = None
    docs = """
    ## What it does
    Reports a checkpoint whose top level (or a value of its top-level dict) is a pickled
    `nn.Module` object rather than a state dict.

    ## Why is this bad?
    A pickled module can only be loaded with `weights_only=False` (arbitrary code execution)
    and only where the exact same class is importable under the same name: renaming a module
    file, or a new library version, breaks the checkpoint.

    ## Example
    ```python
    import torch

    model = torch.nn.Linear(2, 3)
    torch.save(model, "model.pt")
    ```

    ## Use instead
    ```python
    import torch

    model = torch.nn.Linear(2, 3)
    torch.save(model.state_dict(), "model.pt")
    ```

    ## Fix safety
    No fix: re-save with `model.state_dict()`.
    """
