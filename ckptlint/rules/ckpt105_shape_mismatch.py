"""CKPT105 shape-mismatch: runtime rule metadata (reported by `ckptlint verify`, not by a source pass)."""

from __future__ import annotations

from ckptlint.rules._base import Rule


class ShapeMismatch(Rule):
    code = "CKPT105"
    name = "shape-mismatch"
    summary = "Same key, different shape in checkpoint and model"
    phase = "runtime"
    fix_safety = "none"
    security_severity = None
    docs = """
    ## What it does
    Reports keys present in both the checkpoint and the model whose shapes differ, with both
    shapes.

    ## Why is this bad?
    `load_state_dict` raises a size-mismatch error even with `strict=False`.

    ## Example
    ```python
    import torch

    torch.save(torch.nn.Linear(2, 4).state_dict(), "model.pt")
    # configured model: torch.nn.Linear(2, 3)
    ```

    ## Use instead
    ```python
    import torch

    torch.save(torch.nn.Linear(2, 3).state_dict(), "model.pt")
    ```

    ## Fix safety
    No fix: the checkpoint and the model's `kwargs` disagree.
    """
