"""CKPT111 version-skew: runtime rule metadata (reported by `ckptlint verify`, not by a source pass)."""

from __future__ import annotations

from ckptlint.rules._base import Rule


class VersionSkew(Rule):
    code = "CKPT111"
    name = "version-skew"
    summary = "Checkpoint needs a newer torch than the project supports"
    phase = "runtime"
    fix_safety = "none"
    security_severity = None
    docs = """
    ## What it does
    Compares the checkpoint with the oldest torch the project supports (`torch-version`, or
    the `torch` requirement): a recorded `torch_version`/`pytorch_version` newer than that, the
    zip format with torch before 1.6, or a dtype older torch does not have (float8 before 2.1,
    uint16/32/64 before 2.3). Says which torch wrote it when the checkpoint records that.

    ## Why is this bad?
    Users on the oldest supported torch get an error (or silently different behaviour) when
    loading a checkpoint that a newer torch wrote.

    ## Example
    ```python
    import torch

    # pyproject.toml: dependencies = ["torch>=1.4"]
    torch.save({"torch_version": torch.__version__, "model": torch.nn.Linear(2, 3).state_dict()},
               "model.pt")
    ```

    ## Use instead
    ```python
    import torch

    torch.save(torch.nn.Linear(2, 3).state_dict(), "model.pt",
               _use_new_zipfile_serialization=False)  # readable by torch < 1.6
    # or raise the project's minimum torch version
    ```

    ## Fix safety
    No fix.
    """
