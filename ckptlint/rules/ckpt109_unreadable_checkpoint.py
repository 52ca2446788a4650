"""CKPT109 unreadable-checkpoint: runtime rule metadata (reported by `ckptlint verify`, not by a source pass)."""

from __future__ import annotations

from ckptlint.rules._base import Rule


class UnreadableCheckpoint(Rule):
    code = "CKPT109"
    name = "unreadable-checkpoint"
    summary = "Checkpoint is missing, truncated, corrupt or not a checkpoint"
    phase = "runtime"
    fix_safety = "none"
    security_severity = None
    docs = """
    ## What it does
    Reports a configured file that does not exist, a truncated or corrupt archive (zip CRC
    mismatch, a storage record named in the pickle but absent from the archive or of another
    size), what torch refuses before it unpickles (a record name that is not UTF-8, a record
    outside the archive folder, a missing or unsupported `version` record, an unknown
    `byteorder`, a record torch reads that is encrypted, of an unknown method or marked as a
    directory, a tensor view past its storage), an unparseable pickle, a bad safetensors
    header, a missing shard of a sharded checkpoint, or something that is not a checkpoint at
    all (empty file, HTML page, git-LFS pointer, Python source, JSON or other text: `not a
    checkpoint (Python source)`): one line, no traceback.
    A checkpoint given as a URL (`s3://`, `https://`, `hf://`...) that cannot be read is
    reported the same way, naming the URL and the fault: access denied, a timeout, a server
    that ignores byte ranges, a file that changed while it was read, the fetch budget spent.

    ## Why is this bad?
    The failure otherwise surfaces much later, in a training job or a deployment, as a
    traceback from deep inside `torch.load`.

    ## Example
    ```python
    import torch

    torch.save(torch.nn.Linear(2, 3).state_dict(), "model.pt")
    with open("model.pt", "r+b") as f:  # an interrupted copy
        f.truncate(100)
    ```

    ## Use instead
    ```python
    import os
    import torch

    torch.save(torch.nn.Linear(2, 3).state_dict(), "model.pt.tmp")
    os.replace("model.pt.tmp", "model.pt")  # atomic: never a half-written file
    ```

    ## Fix safety
    No fix.
    """
