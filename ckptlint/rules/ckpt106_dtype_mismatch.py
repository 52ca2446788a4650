"""CKPT106 dtype-mismatch: runtime rule metadata (reported by `ckptlint verify`, not by a source pass)."""

from __future__ import annotations

from ckptlint.rules._base import Rule


class DtypeMismatch(Rule):
    code = "CKPT106"
    name = "dtype-mismatch"
    summary = "Same key, different dtype in checkpoint and model"
    phase = "runtime"
    fix_safety = "none"
    security_severity = None
    levels = ("warning",)  # load_state_dict casts: it loads
    docs = """
    ## What it does
    Reports keys whose dtype in the checkpoint (e.g. `torch.float16`) differs from the model's
    (e.g. `torch.float32`).

    ## Why is this bad?
    `load_state_dict` silently casts: half-precision weights lose nothing, but integer buffers
    or a model expected to run in half precision may not be what the author meant, and the
    checkpoint is twice the expected size or half the expected precision.

    ## Example
    ```python
    import torch

    model = torch.nn.Linear(2, 3)
    torch.save(model.half().state_dict(), "model.pt")
    ```

    ## Use instead
    ```python
    import torch

    model = torch.nn.Linear(2, 3)
    torch.save(model.state_dict(), "model.pt")
    ```

    ## Fix safety
    No fix.
    """
