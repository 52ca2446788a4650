"""CKPT107 key-prefix: runtime rule metadata (reported by `ckptlint verify`, not by a source pass)."""

from __future__ import annotations

from ckptlint.rules._base import Rule


class KeyPrefix(Rule):
    code = "CKPT107"
    name = "key-prefix"
    summary = "Checkpoint keys differ from the model's only by a wrapper prefix"
    phase = "runtime"
    fix_safety = "none"
    security_severity = None
    docs = """
    ## What it does
    Reports when all (or most) checkpoint keys match the model's only after stripping wrapper
    prefixes (`module.` from DataParallel/DDP, `_orig_mod.` from `torch.compile`, repeatedly), a
    single other top-level prefix such as `model.`, or adding the model's single top-level
    prefix. The message gives the exact remap and how many keys it makes match; the other key
    checks run after the remap.

    ## Why is this bad?
    `load_state_dict` reports every key as missing and every checkpoint entry as unexpected.
    Users then reach for `strict=False` (loading nothing) or `k.replace("module.", "")`, which
    also rewrites `submodule.`.

    ## Example
    ```python
    import torch

    model = torch.nn.DataParallel(torch.nn.Linear(2, 3))
    torch.save(model.state_dict(), "model.pt")  # keys: module.weight, module.bias
    ```

    ## Use instead
    ```python
    import torch

    model = torch.nn.DataParallel(torch.nn.Linear(2, 3))
    torch.save(model.module.state_dict(), "model.pt")
    ```

    ## Fix safety
    No fix for the file; the message shows the remap (`k.removeprefix("module.")`).
    """
