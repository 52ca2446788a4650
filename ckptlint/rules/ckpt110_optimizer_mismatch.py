"""CKPT110 optimizer-mismatch: runtime rule metadata (reported by `ckptlint verify`, not by a source pass)."""

from __future__ import annotations

from ckptlint.rules._base import Rule


class OptimizerMismatch(Rule):
    code = "CKPT110"
    name = "optimizer-mismatch"
    summary = "Saved optimizer state does not fit the model"
    phase = "runtime"
    fix_safety = "none"
    security_severity = None
    docs = """
    ## What it does
    Reads the optimizer state saved beside the model state (`optimizer_state_dict`,
    `optimizer` or `optim`) and reports when its parameter count differs from the model's, or
    when a per-parameter state tensor (e.g. Adam's `exp_avg`) has a different shape than the
    parameter it belongs to.

    ## Why is this bad?
    Resuming training calls `optimizer.load_state_dict`, which fails on a count mismatch and,
    on a shape mismatch, fails at the first `step()` or silently pairs state with the wrong
    parameters.

    ## Example
    ```python
    import torch

    model = torch.nn.Linear(2, 3)
    other = torch.optim.Adam(torch.nn.Linear(4, 4).parameters())
    torch.save({"model": model.state_dict(), "optimizer": other.state_dict()}, "ckpt.pt")
    ```

    ## Use instead
    ```python
    import torch

    model = torch.nn.Linear(2, 3)
    opt = torch.optim.Adam(model.parameters())
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, "ckpt.pt")
    ```

    ## Fix safety
    No fix.
    """
