"""CKPT103 missing-keys: runtime rule metadata (reported by `ckptlint verify`, not by a source pass)."""

from __future__ import annotations

from ckptlint.rules._base import Rule


class MissingKeys(Rule):
    code = "CKPT103"
    name = "missing-keys"
    summary = "Model parameters or buffers missing from the checkpoint"
    phase = "runtime"
    fix_safety = "none"
    security_severity = None
    levels = ("error", "warning")  # warning: the entry says `strict = false`
    docs = """
    ## What it does
    Builds the configured model on the `meta` device and reports every parameter or
    persistent buffer that `load_state_dict` would find missing in the checkpoint (after any
    CKPT107 prefix remap). BatchNorm's `num_batches_tracked` follows torch's own version rule.

    ## Why is this bad?
    `load_state_dict(strict=True)` fails; with `strict=False` the missing weights silently keep
    their random initialisation.

    ## Example
    ```python
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    sd = model.state_dict()
    del sd["1.bias"]
    torch.save(sd, "model.pt")
    ```

    ## Use instead
    ```python
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    torch.save(model.state_dict(), "model.pt")
    ```

    ## Fix safety
    No fix. With `strict = false` in the entry these findings are warnings.
    """
