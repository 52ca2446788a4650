"""CKPT104 unexpected-keys: runtime rule metadata (reported by `ckptlint verify`, not by a source pass)."""

from __future__ import annotations

from ckptlint.rules._base import Rule


class UnexpectedKeys(Rule):
    code = "CKPT104"
    name = "unexpected-keys"
    summary = "Checkpoint entries the model has no slot for"
    phase = "runtime"
    fix_safety = "none"
    security_severity = None
    levels = ("error", "warning")  # warning: the entry says `strict = false`
    docs = """
    ## What it does
    Reports checkpoint entries that `load_state_dict` would call unexpected for the configured
    model, including saved non-persistent buffers.

    ## Why is this bad?
    `load_state_dict(strict=True)` fails; with `strict=False` the weights are silently dropped,
    which usually means the checkpoint belongs to a different architecture or version.

    ## Example
    ```python
    import torch

    model = torch.nn.Linear(2, 3)
    sd = model.state_dict()
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, "model.pt")
    ```

    ## Use instead
    ```python
    import torch

    model = torch.nn.Linear(2, 3)
    torch.save(model.state_dict(), "model.pt")
    ```

    ## Fix safety
    No fix. With `strict = false` in the entry these findings are warnings.
    """
